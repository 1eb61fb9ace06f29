"""Referral rewards and experience gold (service/loyalty/referral.py, experience.py) on SQLite
and MariaDB: a referral reward owed once per (investment, referrer) however often the
disbursement is told, reversed when the money is given back; experience gold granted once,
never invested twice, its interest owed once at maturity as real money from
MARKETING_EXPENSE, `p2p check-ledger` clean throughout."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from service.audit import LedgerAudit
from service.loyalty.service import LoyaltyService
from service.marketing import MarketingService
from service.member import MemberService
from service.p2p import AuditRequest, LoanService
from service.payment import PaymentService
from service.security import Principal
from service.treasury import TreasuryService
from tests.integration.service.marketing_support import one, rows
from tests.integration.service.support import caller, error_of, onboard, race, sign_up

D = Decimal
_numbers = itertools.count(1)


def rno() -> str:
    return f"rw-{next(_numbers)}"


@pytest.fixture
def invited(platform, make_member, identities):
    """Factory: an onboarded investor invited by ``referrer``, with ``funds`` recharged."""
    mobiles = itertools.count(1)

    def factory(referrer, funds: str = "5000.00") -> Principal:
        code = platform.service(MemberService).get_promotion(caller(referrer)).invite_code
        mobile = f"137{next(mobiles):08d}"
        vo = sign_up(platform, mobile, invite_code=code)
        onboard(platform.service(MemberService), vo.member_id, "INVESTOR", mobile, identities())
        who = caller(vo)
        platform.service(PaymentService).recharge(D(funds), rno(), who)
        return who

    return factory


@pytest.fixture
def raising(loans, operator, loan_request):
    def factory(amount: str, months: int = 3) -> int:
        vo = loans.publish_loan(
            loan_request(amount=D(amount), min_invest=D("0.01"), term_months=months), operator
        )
        return loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator).loan_id

    return factory


def ledger_ok(platform) -> None:
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [c for c in report.checks if not c.ok]


def test_a_referral_reward_is_owed_once_however_often_the_disbursement_is_told(
    platform, make_member, invited, raising, loans, operator, sql
):
    platform.service(TreasuryService).fund_platform_account(D("100.00"), rno(), operator)
    referrer = make_member("INVESTOR")
    invitee = invited(referrer)
    loan_id = raising("1000.00", months=3)
    investment = loans.invest(loan_id, D("1000.00"), rno(), invitee)
    # 1000 x 0.5% a year x 3/12, accrued while the money is frozen.
    assert rows(sql, "SELECT status, amount FROM referral_reward") == [("ACCRUED", 125)]
    disbursing = rno()
    loans.disburse_loan(loan_id, disbursing, operator)
    loans.disburse_loan(loan_id, disbursing, operator)  # the same request again
    assert rows(sql, "SELECT status FROM referral_reward") == [("PAID",)]

    def told_again() -> None:
        loan = platform.service(LoanService)._loans.get(loan_id)
        lent = platform.service(LoanService)._investments.of_loan(loan_id, status="ACTIVE")
        platform.components["lifecycle"].loan_disbursed(loan, lent)

    platform.tx.run(told_again)  # a disbursement told once more
    assert rows(sql, "SELECT kind, source_id, member_id, amount, status FROM marketing_reward") == [
        ("REFERRAL", investment.investment_id, referrer.member_id, 125, "PAID")
    ]
    assert one(sql, "SELECT COUNT(*) FROM posting WHERE business_type = 'MKT_REFERRAL'") == 1
    assert platform.service(MarketingService).pay_due_rewards().paid == 0
    (listed,) = platform.service(MemberService).list_invitees(caller(referrer)).items
    assert listed.rewards == D("1.25")  # listInvitees shows what the invitee earned
    ledger_ok(platform)


def test_a_referral_reward_is_reversed_when_the_money_is_given_back_and_capped(
    make_platform, make_member, identities, operator, loan_request, sql
):
    platform = make_platform(**{"loyalty.referral_cap": "2.00"})
    loans = platform.service(LoanService)
    referrer = make_member("INVESTOR")
    code = platform.service(MemberService).get_promotion(caller(referrer)).invite_code
    vo = sign_up(platform, "13600000001", invite_code=code)
    onboard(platform.service(MemberService), vo.member_id, "INVESTOR", "13600000001", identities())
    platform.service(PaymentService).recharge(D("5000.00"), rno(), caller(vo))
    listing = loans.publish_loan(
        loan_request(amount=D("5000.00"), min_invest=D("0.01"), term_months=12), operator
    )
    loans.audit_loan(listing.loan_id, AuditRequest(True, None), operator)
    loans.invest(listing.loan_id, D("4000.00"), rno(), caller(vo))
    assert rows(sql, "SELECT status, amount FROM referral_reward") == [("ACCRUED", 200)]  # capped
    loans.cancel_loan(listing.loan_id, "撤回", operator)
    assert rows(sql, "SELECT status FROM referral_reward") == [("REVERSED",)]
    assert one(sql, "SELECT COUNT(*) FROM marketing_reward") == 0
    ledger_ok(platform)


def test_no_referral_reward_without_a_referrer(platform, make_member, raising, loans, sql):
    alone = caller(make_member("INVESTOR"))
    platform.service(PaymentService).recharge(D("100.00"), rno(), alone)
    loans.invest(raising("1000.00"), D("100.00"), rno(), alone)
    assert one(sql, "SELECT COUNT(*) FROM referral_reward") == 0


def test_experience_gold_is_granted_once_invested_within_it_and_its_interest_owed_once(
    make_platform, operator, clock, sql, identities
):
    platform = make_platform(**{"loyalty.experience_on_registration": "1000.00"})
    loyalty = platform.service(LoyaltyService)
    platform.service(TreasuryService).fund_platform_account(D("10.00"), rno(), operator)
    vo = sign_up(platform, "13500000001")
    onboard(platform.service(MemberService), vo.member_id, "INVESTOR", "13500000001", identities())
    who = caller(vo)
    sign_up(platform, "13500000002", "BORROWER")  # a borrower is given none
    assert rows(sql, "SELECT member_id, source, amount FROM experience_grant") == [
        (who.member_id, "REGISTRATION", 100000)
    ]
    balance = loyalty.get_experience_balance(who)
    assert (balance.granted, balance.invested, balance.available) == (D("1000.00"), 0, 1000)

    made = loyalty.invest_experience(D("600.00"), "e-1", who)
    assert (made.annual_rate, made.term_days, made.interest) == (D("8.0000"), 7, D("0.92"))
    assert loyalty.invest_experience(D("600.00"), "e-1", who) == made  # a repeat
    assert error_of(loyalty.invest_experience, D("500.00"), "e-2", who).code == (
        "EXPERIENCE_INSUFFICIENT"
    )
    outcomes = race(
        [
            (loyalty.invest_experience, D("300.00"), "e-3", who),
            (loyalty.invest_experience, D("300.00"), "e-4", who),
        ]
    )
    assert sorted(o if isinstance(o, str) else "OK" for o in outcomes) == [
        "EXPERIENCE_INSUFFICIENT",
        "OK",
    ]
    assert loyalty.get_experience_balance(who).available == D("100.00")
    assert (
        one(
            sql,
            "SELECT COUNT(*) FROM posting_entry e JOIN account a ON a.id = e.account_id"
            " WHERE a.member_id = :m",
            m=who.member_id,
        )
        == 0
    )  # never in a real account

    assert loyalty.mature_experience() == 0  # not due yet
    clock.advance(days=7)
    assert loyalty.mature_experience() == 2
    assert loyalty.mature_experience() == 0
    assert rows(sql, "SELECT kind, amount, status FROM marketing_reward ORDER BY id") == [
        ("EXPERIENCE_INTEREST", 92, "PAID"),
        ("EXPERIENCE_INTEREST", 46, "PAID"),  # 300 x 8% x 7 / 365 = 0.46
    ]
    assert loyalty.get_experience_balance(who).available == D("100.00")  # never returned
    page = loyalty.list_experience_investments(who, 1, 10)
    assert (page.total, {i.status for i in page.items}) == (2, {"PAID"})
    ledger_ok(platform)


def test_check_ledger_finds_loyalty_rows_that_disagree(
    platform, make_member, invited, raising, loans, operator, sql
):
    from sqlalchemy import text

    referrer = make_member("INVESTOR")
    invitee = invited(referrer)
    loyalty = platform.service(LoyaltyService)
    loyalty.check_in(invitee)
    loans.invest(raising("1000.00"), D("1000.00"), rno(), invitee)
    ledger_ok(platform)
    with sql.begin() as conn:
        conn.execute(text("UPDATE point_entry SET remaining = remaining - 1 WHERE kind = 'INVEST'"))
        conn.execute(text("UPDATE checkin SET points = points + 1"))
        conn.execute(text("UPDATE referral_reward SET status = 'PAID'"))
        conn.execute(
            text(
                "INSERT INTO experience_account (member_id, granted, invested) VALUES (:m, 100, 0)"
            ),
            {"m": invitee.member_id},
        )
    report = LedgerAudit(platform.tx).run()
    failed = {c.name: c.problems for c in report.checks if not c.ok}
    assert set(failed) == {
        "experience gold agrees with its grants and investments",
        "the points ledger is consistent",
        "one referral reward per investment and referrer, owed once when paid",
    }
    assert len(failed["the points ledger is consistent"]) == 2


def test_with_the_bank_points_and_the_referral_reward_come_once_however_often_it_notifies(
    banking, platform, make_member, invited, raising, operator, sql
):
    from sqlalchemy import text

    platform.service(TreasuryService).fund_platform_account(D("100.00"), rno(), operator)
    referrer = make_member("INVESTOR")
    invitee = invited(referrer)
    loan_id = raising("1000.00", months=6)
    order = banking.loans.invest(loan_id, D("1000.00"), rno(), invitee)
    banking.run_jobs()
    assert one(sql, "SELECT COUNT(*) FROM point_entry WHERE kind = 'INVEST'") == 0  # PENDING
    notice = banking.notification(order.order_no, "SUCCEEDED", "1000.00", "FREEZE")
    assert banking.notify(notice).outcome == "applied"
    assert banking.notify(notice).outcome != "applied"  # the bank says it again
    assert rows(sql, "SELECT kind, points FROM point_entry WHERE kind = 'INVEST'") == [
        ("INVEST", 1000)
    ]
    assert rows(sql, "SELECT status, amount FROM referral_reward") == [("ACCRUED", 250)]

    banking.loans.disburse_loan(loan_id, rno(), operator)
    banking.run_jobs()
    with sql.connect() as conn:
        (item,) = conn.execute(
            text("SELECT order_no FROM bank_order WHERE order_type = 'DISBURSE'")
        ).scalars()
    lent = banking.notification(item, "SUCCEEDED", "1000.00", "DISBURSE")
    assert banking.notify(lent).outcome == "applied"
    assert banking.notify(lent).outcome != "applied"
    assert rows(sql, "SELECT status FROM referral_reward") == [("PAID",)]
    assert rows(sql, "SELECT kind, member_id, amount, status FROM marketing_reward") == [
        ("REFERRAL", referrer.member_id, 250, "PAID")
    ]
    assert banking.ledger_ok()


def test_an_experience_coupon_gives_its_face_value_once_to_its_holder_only(
    platform, make_member, operator, sql
):
    from service.marketing import CouponIssuer
    from service.marketing.campaigns import CampaignService
    from tests.integration.service.marketing_support import active_template

    campaigns = platform.service(CampaignService)
    gold = active_template(campaigns, operator, kind="EXPERIENCE", face_value=D("888.00"))
    cash = active_template(campaigns, operator, campaign={"name": "现金"}, face_value=D("5.00"))
    holder = caller(make_member("INVESTOR"))
    other = caller(make_member("INVESTOR"))
    issuer = CouponIssuer(platform.tx, platform.components["clock"])

    def issue(template_id: int) -> int:
        return platform.tx.run(issuer.issue, template_id, holder.member_id, rno(), "test").id

    experience, money = issue(gold.template_id), issue(cash.template_id)
    loyalty = platform.service(LoyaltyService)
    assert loyalty.claim_experience_coupon(experience, holder).granted == D("888.00")
    assert loyalty.claim_experience_coupon(experience, holder).granted == D("888.00")  # once
    assert error_of(loyalty.claim_experience_coupon, experience, other).code == ("COUPON_NOT_FOUND")
    assert error_of(loyalty.claim_experience_coupon, money, holder).code == (
        "COUPON_NOT_APPLICABLE"
    )
    assert rows(sql, "SELECT source, ref_id, amount FROM experience_grant") == [
        ("COUPON", experience, 88800)
    ]
    ledger_ok(platform)
