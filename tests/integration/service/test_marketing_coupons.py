"""Coupons on investments, on SQLite and MariaDB, through the real flow (campaigns and
templates made by an operator, recharge, invest, disburse, repay): every rule checked on
invest, a coupon locked to its investment, released when the listing fails or is cancelled,
used at disbursement and paid once (CASH) or with each repayment (RATE_BOOST, early settlement
paying it as the base interest); and the abuse cases: two investments naming one coupon at
once, a budget with one coupon left and ten concurrent claims, a 3-coupon limit claimed six
times at once, overlapping amount tiers. Results are read with plain SQL; the ledger check
(marketing's invariants included) passes after each."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from service.audit import LedgerAudit
from service.marketing import CampaignService, MarketingService
from service.marketing.boost import boosts
from service.p2p import AuditRequest
from service.payment import PaymentService
from service.security import Principal
from service.treasury import TreasuryService
from tests.integration.service.marketing_support import (
    active_template,
    campaign_request,
    one,
    rows,
    template_request,
)
from tests.integration.service.support import caller, error_of, race

D = Decimal
_numbers = itertools.count(1)


def n() -> int:
    return next(_numbers)


@pytest.fixture
def campaigns(platform) -> CampaignService:
    return platform.service(CampaignService)


@pytest.fixture
def marketing(platform) -> MarketingService:
    return platform.service(MarketingService)


@pytest.fixture
def payments(platform) -> PaymentService:
    return platform.service(PaymentService)


@pytest.fixture
def funded(platform, operator) -> None:
    """The platform's own account holds money to pay rewards from."""
    platform.service(TreasuryService).fund_platform_account(D("5000.00"), "fund", operator)


@pytest.fixture
def raising(loans, operator, loan_request):
    """Factory: a RAISING listing; keyword arguments override its terms."""

    def factory(**terms) -> int:
        vo = loans.publish_loan(loan_request(**terms), operator)
        loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
        return vo.loan_id

    return factory


@pytest.fixture
def investor(make_member, payments):
    """Factory: an onboarded investor with ``funds`` in their account."""

    def factory(funds: str = "20000.00") -> Principal:
        who = caller(make_member("INVESTOR"))
        payments.recharge(D(funds), f"r{n()}", who)
        return who

    return factory


def issue(campaigns, operator, template, who) -> int:
    [coupon] = campaigns.issue_coupons(
        template.template_id, [who.member_id], f"issue{n()}", operator
    ).items
    return coupon.coupon_id


def coupon_row(sql, coupon_id: int) -> tuple:
    return rows(sql, "SELECT status, investment_id FROM coupon WHERE id = :c", c=coupon_id)[0]


def available(sql, member_id: int) -> int:
    return one(sql, "SELECT available FROM account WHERE member_id = :m", m=member_id)


def ledger_ok(platform) -> None:
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]


def test_a_cash_coupon_is_locked_on_invest_used_at_disbursement_and_paid_once(
    platform, campaigns, marketing, loans, operator, investor, raising, funded, sql
):
    template = active_template(campaigns, operator, face_value=D("18.88"))
    loan_id = raising(amount=D("10000.00"))
    who, other = investor(), investor()
    coupon_id = issue(campaigns, operator, template, who)
    assert marketing.list_coupons(who, "AVAILABLE").total == 1

    invested = loans.invest(loan_id, D("4000.00"), "inv-1", who, [coupon_id])
    assert coupon_row(sql, coupon_id) == ("LOCKED", invested.investment_id)
    assert loans.invest(loan_id, D("4000.00"), "inv-1", who, [coupon_id]) == invested  # repeat
    spend = campaigns.get_campaign_spend(template.campaign_id)
    assert (spend.spent_amount, spend.coupons_locked) == (D("18.88"), 1)
    loans.invest(loan_id, D("6000.00"), "inv-2", other)
    before = available(sql, who.member_id)
    loans.disburse_loan(loan_id, "disburse-1", operator)

    assert coupon_row(sql, coupon_id) == ("USED", invested.investment_id)
    assert marketing.get_coupon(coupon_id, who).state == "USED"
    assert available(sql, who.member_id) == before + 1888
    assert rows(
        sql, "SELECT kind, source_id, amount, status FROM marketing_reward ORDER BY id"
    ) == [("CASH_COUPON", coupon_id, 1888, "PAID")]
    assert one(sql, "SELECT COUNT(*) FROM posting WHERE business_type = 'MKT_CASH_COUPON'") == 1
    spend = campaigns.get_campaign_spend(template.campaign_id)
    assert (spend.spent_amount, spend.coupons_used, spend.rewards_paid) == (
        D("18.88"),
        1,
        D("18.88"),
    )
    ledger_ok(platform)


@pytest.mark.parametrize("ending", ["cancel", "fail"])
def test_a_coupon_on_a_listing_that_ends_unlent_is_released_and_used_again(
    ending, platform, campaigns, loans, operator, investor, raising, clock, sql
):
    template = active_template(campaigns, operator, face_value=D("10.00"))
    first = raising(raise_days=1)
    who = investor()
    coupon_id = issue(campaigns, operator, template, who)
    loans.invest(first, D("1000.00"), "inv-1", who, [coupon_id])
    assert campaigns.get_campaign_spend(template.campaign_id).spent_amount == D("10.00")
    if ending == "cancel":
        loans.cancel_loan(first, "借款人撤回", operator)
    else:
        clock.advance(days=2)
        assert loans.close_expired_loans().failed == 1
    assert coupon_row(sql, coupon_id) == ("AVAILABLE", None)
    assert campaigns.get_campaign_spend(template.campaign_id).spent_amount == D("0.00")
    ledger_ok(platform)

    second = raising()
    again = loans.invest(second, D("1000.00"), "inv-2", who, [coupon_id])
    assert coupon_row(sql, coupon_id) == ("LOCKED", again.investment_id)
    ledger_ok(platform)


def test_every_rule_is_checked_on_invest_and_a_refusal_leaves_nothing(
    platform, campaigns, loans, operator, investor, raising, clock, sql
):
    who, stranger = investor(), investor()
    loan_id = raising(term_months=12, repayment_method="EQUAL_INSTALLMENT")
    tiered = active_template(
        campaigns,
        operator,
        campaign={"name": "分档"},
        min_invest=D("1000.00"),
        max_invest=D("5000.00"),
        stackable=False,
    )
    terms = active_template(campaigns, operator, campaign={"name": "期限"}, terms=[3, 6])
    methods = active_template(campaigns, operator, campaign={"name": "方式"}, methods=["BULLET"])
    boost = dict(kind="RATE_BOOST", face_value=None, extra_rate=D("1.5"))
    boost_a = active_template(campaigns, operator, campaign={"name": "加息甲"}, **boost)
    boost_b = active_template(campaigns, operator, campaign={"name": "加息乙"}, **boost)
    short = active_template(campaigns, operator, campaign={"name": "限时"}, valid_days=1)
    experience = active_template(campaigns, operator, campaign={"name": "体验"}, kind="EXPERIENCE")
    c = {t.template_id: issue(campaigns, operator, t, who) for t in (tiered, terms, methods)}
    c_boost = [issue(campaigns, operator, t, who) for t in (boost_a, boost_b)]
    c_short = issue(campaigns, operator, short, who)
    c_experience = issue(campaigns, operator, experience, who)
    c_stranger = issue(campaigns, operator, tiered, stranger)

    def refused(amount: str, coupon_ids: list[int]) -> str:
        return error_of(loans.invest, loan_id, D(amount), f"no{n()}", who, coupon_ids).code

    tid = tiered.template_id
    assert refused("999.99", [c[tid]]) == "COUPON_NOT_APPLICABLE"  # below its tier
    assert refused("5000.00", [c[tid]]) == "COUPON_NOT_APPLICABLE"  # its tier's bound
    assert refused("1000.00", [c[terms.template_id]]) == "COUPON_NOT_APPLICABLE"
    assert refused("1000.00", [c[methods.template_id]]) == "COUPON_NOT_APPLICABLE"
    assert refused("1000.00", [c_experience]) == "COUPON_NOT_APPLICABLE"
    assert refused("1000.00", [c[tid], c_short]) == "COUPONS_NOT_STACKABLE"
    assert refused("1000.00", c_boost) == "COUPONS_NOT_STACKABLE"  # one rate boost at most
    assert refused("1000.00", [c_short, c_short]) == "COUPONS_NOT_STACKABLE"
    assert refused("1000.00", [c_stranger]) == "COUPON_NOT_FOUND"
    assert refused("1000.00", [999_999]) == "COUPON_NOT_FOUND"
    campaigns.set_campaign_status(boost_a.campaign_id, "INACTIVE", operator)
    assert refused("1000.00", [c_boost[0]]) == "CAMPAIGN_INACTIVE"
    clock.advance(days=1)
    assert refused("1000.00", [c_short]) == "COUPON_EXPIRED"
    assert one(sql, "SELECT COUNT(*) FROM investment") == 0
    assert one(sql, "SELECT COUNT(*) FROM coupon WHERE status <> 'AVAILABLE'") == 0
    assert one(sql, "SELECT COALESCE(SUM(spent_amount), 0) FROM campaign") == 0
    loans.invest(loan_id, D("1000.00"), "ok", who, [c[tid]])
    ledger_ok(platform)


def test_a_budget_that_covers_one_more_coupon_is_spent_once_by_ten_investments_at_once(
    platform, campaigns, loans, operator, investor, raising, sql
):
    template = active_template(
        campaigns, operator, campaign={"budget_amount": D("25.00")}, face_value=D("10.00")
    )
    loan_id = raising(amount=D("20000.00"))
    people = [investor("1000.00") for _ in range(10)]
    coupons = [issue(campaigns, operator, template, who) for who in people]
    setup = investor("1000.00")
    loans.invest(
        loan_id, D("100.00"), "first", setup, [issue(campaigns, operator, template, setup)]
    )
    outcomes = race(
        [
            (loans.invest, loan_id, D("100.00"), f"race{i}", who, [coupon])
            for i, (who, coupon) in enumerate(zip(people, coupons, strict=True))
        ]
    )
    won = [o for o in outcomes if not isinstance(o, str)]
    assert len(won) == 1, outcomes
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["CAMPAIGN_BUDGET_EXHAUSTED"] * 9
    assert one(sql, "SELECT spent_amount FROM campaign") == 2000
    assert one(sql, "SELECT COUNT(*) FROM coupon WHERE status = 'LOCKED'") == 2
    ledger_ok(platform)


def test_one_coupon_named_by_two_investments_at_once_is_locked_once(
    platform, campaigns, loans, operator, investor, raising, sql
):
    template = active_template(campaigns, operator)
    loan_id = raising()
    who = investor()
    coupon_id = issue(campaigns, operator, template, who)
    outcomes = race(
        [(loans.invest, loan_id, D("500.00"), f"twice{i}", who, [coupon_id]) for i in range(2)]
    )
    won = [o for o in outcomes if not isinstance(o, str)]
    assert len(won) == 1 and [o for o in outcomes if isinstance(o, str)] == [
        "COUPON_NOT_AVAILABLE"
    ], outcomes
    assert coupon_row(sql, coupon_id) == ("LOCKED", won[0].investment_id)
    assert one(sql, "SELECT COUNT(*) FROM investment") == 1
    assert one(sql, "SELECT spent_amount FROM campaign") == 1000
    ledger_ok(platform)


def test_the_last_coupon_of_a_count_budget_goes_to_one_of_ten_concurrent_claims(
    platform, campaigns, operator, make_member, sql
):
    template = active_template(campaigns, operator, campaign={"budget_count": 3}, audience="LIST")
    early = [make_member("INVESTOR", onboarded=False) for _ in range(2)]
    campaigns.issue_coupons(template.template_id, [m.member_id for m in early], "early", operator)
    late = [make_member("INVESTOR", onboarded=False) for _ in range(10)]
    outcomes = race(
        [
            (campaigns.issue_coupons, template.template_id, [m.member_id], f"claim{i}", operator)
            for i, m in enumerate(late)
        ]
    )
    assert sum(1 for o in outcomes if not isinstance(o, str)) == 1, outcomes
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["CAMPAIGN_BUDGET_EXHAUSTED"] * 9
    assert rows(sql, "SELECT spent_count, budget_count FROM campaign") == [(3, 3)]
    assert one(sql, "SELECT COUNT(*) FROM coupon") == 3
    ledger_ok(platform)


@pytest.mark.parametrize("limit", ["total_count", "per_member_limit"])
def test_a_three_coupon_limit_is_never_passed_by_six_claims_at_once(
    limit, platform, campaigns, operator, make_member, sql
):
    template = active_template(campaigns, operator, audience="LIST", **{limit: 3})
    members = [make_member("INVESTOR", onboarded=False) for _ in range(6)]
    if limit == "per_member_limit":
        members = [members[0]] * 6  # one member claims six times
    outcomes = race(
        [
            (campaigns.issue_coupons, template.template_id, [m.member_id], f"use{i}", operator)
            for i, m in enumerate(members)
        ]
    )
    assert sum(1 for o in outcomes if not isinstance(o, str)) == 3, outcomes
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["COUPON_LIMIT_REACHED"] * 3
    assert one(sql, "SELECT COUNT(*) FROM coupon") == 3
    assert one(sql, "SELECT issued_count FROM coupon_template") == 3
    ledger_ok(platform)


def test_overlapping_amount_tiers_are_refused(campaigns, operator):
    c = campaigns.create_campaign(campaign_request(), operator).campaign_id

    def make(low: str, high: str | None, kind: str = "CASH"):
        extra = {} if kind == "CASH" else {"face_value": None, "extra_rate": D("1.00")}
        return campaigns.create_coupon_template(
            template_request(c, kind=kind, min_invest=D(low), max_invest=high and D(high), **extra),
            operator,
        )

    make("100.00", "1000.00")
    top = make("1000.00", None)  # [1000, ∞) meets [100, 1000) at no amount
    for low, high in (("500.00", "2000.00"), ("0.00", "100.01"), ("99999.00", None)):
        assert error_of(make, low, high).code == "COUPON_TIERS_OVERLAP"
    make("0.00", "100.00")
    make("100.00", None, kind="RATE_BOOST")  # another kind: tiers of their own
    moved = template_request(c, min_invest=D("900.00"), max_invest=None)
    error = error_of(campaigns.update_coupon_template, top.template_id, moved, operator)
    assert error.code == "COUPON_TIERS_OVERLAP"


def test_a_registration_rule_issues_a_coupon_and_an_exhausted_one_never_blocks_sign_up(
    platform, campaigns, marketing, operator, make_member, sql
):
    active_template(
        campaigns,
        operator,
        campaign={"budget_count": 1},
        issue_rule="REGISTRATION",
        audience="NEW_MEMBERS",
    )
    first = make_member("INVESTOR", onboarded=False)
    second = make_member("INVESTOR", onboarded=False)
    assert [c.reason for c in marketing.list_coupons(caller(first)).items] == ["注册奖励"]
    assert marketing.list_coupons(caller(second)).total == 0
    assert error_of(marketing.get_coupon, 1, caller(second)).code == "COUPON_NOT_FOUND"
    ledger_ok(platform)


@pytest.mark.parametrize("method", ["EQUAL_INSTALLMENT", "EQUAL_PRINCIPAL", "MONTHLY_INTEREST"])
def test_a_rate_boost_is_paid_with_each_repayment_and_waived_as_the_base_interest(
    method,
    platform,
    campaigns,
    loans,
    payments,
    operator,
    investor,
    raising,
    borrower,
    funded,
    clock,
    sql,
):
    template = active_template(
        campaigns,
        operator,
        kind="RATE_BOOST",
        face_value=None,
        extra_rate=D("2.4"),
        boost_periods=5,
    )
    loan_id = raising(amount=D("10000.00"), term_months=6, repayment_method=method)
    who, other = investor(), investor()
    coupon_id = issue(campaigns, operator, template, who)
    loans.invest(loan_id, D("3333.33"), "inv", who, [coupon_id])
    loans.invest(loan_id, D("6666.67"), "inv2", other)
    table = boosts(D("3333.33"), D("12.5"), 6, method, D("2.4"), 5)
    assert campaigns.get_campaign_spend(template.campaign_id).spent_amount == sum(table.values())
    loans.disburse_loan(loan_id, "d", operator)
    me = caller(borrower)
    payments.recharge(D("5000.00"), "topup", me)
    for period in (1, 2):
        clock.advance(days=20)
        loans.repay(loan_id, f"pay{period}", me)
    clock.advance(days=5)
    loans.settle_early(loan_id, "settle", me)  # period 3 is current; 4 to 6 waived

    paid = rows(
        sql,
        "SELECT rc.period, r.amount FROM marketing_reward r JOIN receipt rc ON rc.id = r.source_id"
        " WHERE r.kind = 'RATE_BOOST' AND r.status = 'PAID' ORDER BY rc.period",
    )
    kept = (1, 2, 3)  # repayment.early_settlement_interest CURRENT_PERIOD: period 3's interest
    assert paid == [(p, int(table[p] * 100)) for p in kept]
    waived = sum(table[p] for p in table if p not in kept)
    spend = campaigns.get_campaign_spend(template.campaign_id)
    assert spend.spent_amount == sum(table.values()) - waived
    assert spend.rewards_paid == spend.spent_amount
    ledger_ok(platform)
