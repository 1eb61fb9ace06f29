"""The gate before money moves (service/member/onboarding.py): identity first, then the fund
account, in messages that name the role and nothing personal."""

from __future__ import annotations

import datetime as dt

import pytest

from dao.member import MemberEntity
from service.errors import BusinessError
from service.member.onboarding import require_onboarded

MOBILE = "13812345678"
VERIFIED_AT = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def member(*, verified: bool, account: bool) -> MemberEntity:
    return MemberEntity(
        id=7,
        mobile=MOBILE,
        role="INVESTOR",
        identity_verified_at=VERIFIED_AT if verified else None,
        fund_account_no="SANDBOX-ACCT-1" if account else None,
    )


def refusal(entity: MemberEntity, **who: str) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        require_onboarded(entity, **who)
    return e.value


def test_an_onboarded_member_passes() -> None:
    assert require_onboarded(member(verified=True, account=True)) is None


@pytest.mark.parametrize("account", [False, True])
def test_an_unverified_member_is_refused_for_identity_first(account: bool) -> None:
    e = refusal(member(verified=False, account=account), who="the investor")
    assert e.code == "IDENTITY_NOT_VERIFIED"
    assert e.message == "the investor must verify their real name first"


def test_a_verified_member_without_a_fund_account_is_refused_for_it() -> None:
    e = refusal(member(verified=True, account=False), who="the borrower")
    assert e.code == "FUND_ACCOUNT_REQUIRED"
    assert e.message == "the borrower must open a fund account at the depository first"


def test_the_default_name_is_the_member_and_no_message_holds_the_mobile() -> None:
    for entity in (member(verified=False, account=False), member(verified=True, account=False)):
        e = refusal(entity)
        assert e.message.startswith("the member must ")
        assert MOBILE not in e.message and MOBILE not in str(e)
