"""Only onboarded members (real name verified, fund account open) invest or borrow, on SQLite
and MariaDB: investing, publishing and modifying a listing are refused with
IDENTITY_NOT_VERIFIED or FUND_ACCOUNT_REQUIRED, write nothing, and work with the same request
once the member is onboarded; a listing published before the rule is still disbursed.
(Recharges and withdrawals: test_payment_service.py.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.member import BindCardRequest, IdentityRequest
from service.p2p.investing import platform_fee
from service.p2p.listing import AuditRequest
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.support import onboard

D = Decimal
APPROVE = AuditRequest(approve=True, reason=None)
BANK = "中国工商银行"


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


def count(sql, table: str) -> int:
    with sql.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def principal(vo) -> Principal:
    return Principal(member_id=vo.member_id, role=vo.role)


@pytest.fixture
def payments(platform) -> PaymentService:
    return platform.service(PaymentService)


@pytest.fixture
def unverified(make_member):
    """Factory: a registered member of `role` who has done nothing else; (principal, mobile)."""
    mobiles = iter(range(13600000001, 13600001000))

    def factory(role: str) -> tuple[Principal, str]:
        mobile = str(next(mobiles))
        return principal(make_member(role, mobile, onboarded=False)), mobile

    return factory


@pytest.fixture
def without_fund_account(members, unverified, identities):
    """Factory: a member of `role` with a verified name and a bound card but no fund account;
    (principal, card id)."""

    def factory(role: str) -> tuple[Principal, int]:
        who, mobile = unverified(role)
        person = identities()
        members.verify_identity(IdentityRequest(person.real_name, person.id_number), who)
        card = members.bind_card(BindCardRequest(person.card_number, BANK, mobile), who)
        return who, card.card_id

    return factory


@pytest.fixture
def raising(loans, operator, loan_request):
    vo = loans.publish_loan(loan_request(), operator)
    return loans.audit_loan(vo.loan_id, APPROVE, operator)


def raised(sql, loan_id: int) -> int:
    with sql.connect() as conn:
        return conn.execute(text("SELECT raised FROM loan WHERE id = :l"), {"l": loan_id}).one()[0]


# -- investing -------------------------------------------------------------------------------


def test_an_unverified_investor_may_not_invest_until_onboarded(
    loans, members, payments, unverified, identities, raising, sql
) -> None:
    who, mobile = unverified("INVESTOR")
    e = error_of(loans.invest, raising.loan_id, D("100.00"), "i-gate", who)
    assert e.code == "IDENTITY_NOT_VERIFIED"
    assert "the investor" in e.message and mobile not in e.message
    assert (count(sql, "investment"), count(sql, "request_record")) == (0, 0)
    assert raised(sql, raising.loan_id) == 0

    onboard(members, who.member_id, who.role, mobile, identities())
    payments.recharge(D("100.00"), "r-gate", who)
    assert loans.invest(raising.loan_id, D("100.00"), "i-gate", who).amount == D("100.00")
    assert raised(sql, raising.loan_id) == 10000


def test_an_investor_without_a_fund_account_may_not_invest_until_it_is_open(
    loans, members, payments, without_fund_account, raising, sql
) -> None:
    who, card = without_fund_account("INVESTOR")
    e = error_of(loans.invest, raising.loan_id, D("100.00"), "i-fund", who)
    assert e.code == "FUND_ACCOUNT_REQUIRED"
    assert "the investor" in e.message
    assert (count(sql, "investment"), count(sql, "request_record")) == (0, 0)

    members.open_fund_account(card, who)
    payments.recharge(D("100.00"), "r-fund", who)
    assert loans.invest(raising.loan_id, D("100.00"), "i-fund", who).amount == D("100.00")


def test_the_gate_comes_before_the_listing_is_looked_at(loans, unverified) -> None:
    """Refused for who they are, even naming a listing that does not exist."""
    who, _ = unverified("INVESTOR")
    assert error_of(loans.invest, 987654, D("100.00"), "i-none", who).code == (
        "IDENTITY_NOT_VERIFIED"
    )


# -- publishing and modifying listings -------------------------------------------------------


@pytest.mark.parametrize("step", ["unverified", "without fund account"])
def test_a_listing_names_an_onboarded_borrower_only(
    loans, members, operator, loan_request, unverified, without_fund_account, identities, sql, step
) -> None:
    if step == "unverified":
        borrower, mobile = unverified("BORROWER")
        expected = "IDENTITY_NOT_VERIFIED"
    else:
        borrower, card = without_fund_account("BORROWER")
        expected = "FUND_ACCOUNT_REQUIRED"
    terms = loan_request(borrower_id=borrower.member_id)
    e = error_of(loans.publish_loan, terms, operator)
    assert e.code == expected
    assert "the borrower" in e.message
    assert count(sql, "loan") == 0

    if step == "unverified":
        onboard(members, borrower.member_id, borrower.role, mobile, identities())
    else:
        members.open_fund_account(card, borrower)
    assert loans.publish_loan(terms, operator).borrower_id == borrower.member_id


def test_modifying_a_listing_to_name_a_borrower_not_onboarded_is_refused(
    loans, operator, loan_request, borrower, unverified, without_fund_account, sql
) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    for who, code in [
        (unverified("BORROWER")[0], "IDENTITY_NOT_VERIFIED"),
        (without_fund_account("BORROWER")[0], "FUND_ACCOUNT_REQUIRED"),
    ]:
        terms = loan_request(borrower_id=who.member_id)
        assert error_of(loans.update_loan, vo.loan_id, terms, operator).code == code
    assert loans.get_loan(vo.loan_id, operator).borrower_id == borrower.member_id
    with sql.connect() as conn:
        stored = conn.execute(text("SELECT borrower_id FROM loan WHERE id = :l"), {"l": vo.loan_id})
        assert stored.scalar_one() == borrower.member_id


def test_a_listing_published_before_the_rule_is_still_disbursed(
    platform, loans, payments, operator, loan_request, borrower, make_member, sql
) -> None:
    """The check at publishing is the gate: a listing whose borrower was never onboarded
    (published before the rule; here the borrower's onboarding is erased afterwards) raises,
    is disbursed and its borrower is paid."""
    vo = loans.publish_loan(loan_request(amount=D("1000.00")), operator)
    loans.audit_loan(vo.loan_id, APPROVE, operator)
    with sql.begin() as conn:
        conn.execute(
            text(
                "UPDATE member SET identity_verified_at = NULL, fund_account_no = NULL,"
                " fund_account_opened_at = NULL WHERE id = :m"
            ),
            {"m": borrower.member_id},
        )
    investor = principal(make_member("INVESTOR"))
    payments.recharge(D("1000.00"), "r-legacy", investor)
    loans.invest(vo.loan_id, D("1000.00"), "i-legacy", investor)
    assert loans.disburse_loan(vo.loan_id, "d-legacy", operator).status == "REPAYING"
    with sql.connect() as conn:
        available = conn.execute(
            text("SELECT available FROM account WHERE member_id = :m"), {"m": borrower.member_id}
        ).scalar_one()
    fee = platform_fee(D("1000.00"), platform.settings.loan.platform_fee_rate)
    assert available == int((D("1000.00") - fee) * 100)
