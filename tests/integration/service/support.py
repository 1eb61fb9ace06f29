"""What service tests share beside their fixtures: signing a member up as a member does (a
REGISTER code sent, read back from the platform's sandbox sender, the member's phone, then
registration), onboarding (real name, card, fund account), callers, errors and races.

The `make_member` fixture signs up on the test's platform; these serve tests that build
platforms of their own.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from conf import load_settings
from server.app import Platform
from service.errors import BusinessError
from service.member import (
    BindCardRequest,
    IdentityRequest,
    MemberService,
    MemberVo,
    RegisterRequest,
    VerificationCodeRequest,
)
from service.pii import PersonalData
from service.security import Principal

#: Where the `clock` fixture starts.
START = dt.datetime(2026, 3, 1, 8, 30, 0, tzinfo=dt.UTC)
PASSWORD = "secret123"


def last_code(platform: Platform, mobile: str, purpose: str) -> str | None:
    """The code `platform` last sent to `mobile` for `purpose`, None when it sent none."""
    return platform.components["verification"].sender.last_code(mobile, purpose)


def send_code(platform: Platform, mobile: str, purpose: str = "REGISTER") -> str:
    """Ask `platform` for a code and read it from the sandbox sender."""
    platform.service(MemberService).send_verification_code(VerificationCodeRequest(mobile, purpose))
    code = last_code(platform, mobile, purpose)
    assert code is not None, f"no {purpose} code was delivered"
    return code


def sign_up(
    platform: Platform,
    mobile: str,
    role: str = "INVESTOR",
    *,
    password: str = PASSWORD,
    invite_code: str | None = None,
) -> MemberVo:
    code = send_code(platform, mobile)
    request = RegisterRequest(mobile, password, role, code, invite_code)
    return platform.service(MemberService).register(request)


def onboard(members: MemberService, member_id: int, role: str, mobile: str, who) -> int:
    """Verify the member's real name, bind a card and open their fund account; the card id."""
    caller = Principal(member_id=member_id, role=role)
    members.verify_identity(IdentityRequest(who.real_name, who.id_number), caller)
    card = members.bind_card(BindCardRequest(who.card_number, "中国工商银行", mobile), caller)
    members.open_fund_account(card.card_id, caller)
    return card.card_id


def caller(vo) -> Principal:
    return Principal(member_id=vo.member_id, role=vo.role)


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


def sealer() -> PersonalData:
    """The test settings' PersonalData, to open what the platform stored."""
    key = load_settings({"P2P_ENV": "test"}).security.secret_key
    return PersonalData.from_setting(key)


def race(calls) -> list[object]:
    """Run the calls at the same moment, one thread each; their results or error codes."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        fn, *args = calls[i]
        barrier.wait()
        try:
            outcomes[i] = fn(*args)
        except BusinessError as e:
            outcomes[i] = e.code
        except Exception as e:  # anything else fails the test below
            outcomes[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes
