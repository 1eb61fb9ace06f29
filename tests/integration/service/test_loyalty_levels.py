"""Member levels (service/loyalty/levels.py) on SQLite and MariaDB: half-open thresholds,
re-evaluated when an investment is frozen and by the periodic job, a level going down only
when the rule says so."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest
from sqlalchemy import event, text

from service.p2p import AuditRequest
from service.payment import PaymentService
from service.security import Principal

D = Decimal
_numbers = itertools.count(1)
LEVELS = json.dumps(
    [
        {"name": "REGULAR", "from": "0", "below": "5000.00"},
        {"name": "SILVER", "from": "5000.00", "below": "50000.00", "fee_discount": "0.05"},
        {"name": "GOLD", "from": "50000.00", "fee_discount": "0.10", "monthly_coupons": [10]},
    ]
)


def rno() -> str:
    return f"lv-{next(_numbers)}"


@pytest.fixture
def investor(platform, make_member):
    def factory(funds: str) -> Principal:
        who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
        platform.service(PaymentService).recharge(D(funds), rno(), who)
        return who

    return factory


@pytest.fixture
def raising(loans, operator, loan_request):
    def factory(amount: str) -> int:
        vo = loans.publish_loan(
            loan_request(amount=D(amount), min_invest=D("0.01"), term_months=3), operator
        )
        return loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator).loan_id

    return factory


def levels_of(make_platform, **settings):
    platform = make_platform(**{"loyalty.levels": LEVELS, **settings})
    return platform, platform.components["levels"]


def test_a_member_moves_up_at_each_threshold_exactly_when_an_investment_is_frozen(
    platform, investor, raising, loans
):
    levels = platform.components["levels"]
    who = investor("60000.00")
    never = levels.level_of(who.member_id)
    assert (never.level, never.invested, never.next_level) == ("REGULAR", D("0.00"), "SILVER")
    assert never.evaluated_at is None

    loan_id = raising("100000.00")
    loans.invest(loan_id, D("4999.99"), rno(), who)
    assert levels.level_of(who.member_id).level == "REGULAR"  # [0, 5000): 4999.99 is in it
    loans.invest(loan_id, D("0.01"), rno(), who)
    silver = levels.level_of(who.member_id)
    assert (silver.level, silver.invested) == ("SILVER", D("5000.00"))  # 5000 starts SILVER
    assert silver.fee_discount == D("0.05")
    assert (silver.next_level, silver.next_level_from) == ("GOLD", D("50000.00"))
    loans.invest(loan_id, D("45000.00"), rno(), who)
    gold = levels.level_of(who.member_id)
    assert (gold.level, gold.invested) == ("GOLD", D("50000.00"))
    assert (gold.next_level, gold.next_level_from) == ("PLATINUM", D("500000.00"))


def test_the_periodic_job_lowers_a_level_when_money_was_given_back_and_drops_are_allowed(
    make_platform, clock, make_member, operator, loan_request
):
    platform, levels = levels_of(make_platform)
    from service.p2p import LoanService

    loans = platform.service(LoanService)
    who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    platform.service(PaymentService).recharge(D("6000.00"), rno(), who)
    vo = loans.publish_loan(loan_request(amount=D("10000.00"), min_invest=D("0.01")), operator)
    loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
    loans.invest(vo.loan_id, D("6000.00"), rno(), who)
    assert levels.level_of(who.member_id).level == "SILVER"
    loans.cancel_loan(vo.loan_id, "撤回", operator)  # the money given back
    assert levels.level_of(who.member_id).level == "SILVER"  # until evaluated again
    run = levels.evaluate_levels()
    assert (run.evaluated, run.changed) >= (1, 1)
    assert levels.level_of(who.member_id).level == "REGULAR"


def test_a_level_that_may_not_drop_is_kept_and_a_rolling_window_moves_on(
    make_platform, clock, make_member, operator, loan_request
):
    from service.p2p import LoanService

    platform, levels = levels_of(
        make_platform,
        **{
            "loyalty.level_basis": "ROLLING",
            "loyalty.level_rolling_days": "30",
            "loyalty.levels_can_drop": "false",
        },
    )
    loans = platform.service(LoanService)
    kept = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    platform.service(PaymentService).recharge(D("5000.00"), rno(), kept)
    vo = loans.publish_loan(loan_request(amount=D("5000.00"), min_invest=D("0.01")), operator)
    loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
    loans.invest(vo.loan_id, D("5000.00"), rno(), kept)
    assert levels.level_of(kept.member_id).level == "SILVER"
    clock.advance(days=31)  # the investment leaves the 30-day window
    levels.evaluate_levels()
    after = levels.level_of(kept.member_id)
    assert (after.level, after.invested) == ("SILVER", D("0.00"))  # kept: may not drop

    dropping = make_platform(
        **{
            "loyalty.levels": LEVELS,
            "loyalty.level_basis": "ROLLING",
            "loyalty.level_rolling_days": "30",
        }
    ).components["levels"]
    dropping.evaluate_levels()
    assert dropping.level_of(kept.member_id).level == "REGULAR"


def test_two_evaluations_of_one_member_at_once_record_one_level(platform, investor, raising):
    from tests.integration.service.support import race

    levels = platform.components["levels"]
    who = investor("10.00")
    outcomes = race([(levels.evaluate, who.member_id), (levels.evaluate, who.member_id)])
    assert [o.level for o in outcomes] == ["REGULAR", "REGULAR"]


def test_a_level_s_monthly_coupons_are_issued_once_a_shanghai_month(
    make_platform, platform, make_member, operator, loan_request, clock, sql
):
    import datetime as dt

    from service.loyalty.service import LoyaltyService
    from service.marketing.campaigns import CampaignService
    from service.p2p import LoanService
    from tests.integration.service.marketing_support import active_template, rows

    template = active_template(platform.service(CampaignService), operator, min_invest=D("1.00"))
    levels = json.loads(LEVELS)
    levels[1]["monthly_coupons"] = [template.template_id]
    levels[2]["monthly_coupons"] = []
    dressed = make_platform(**{"loyalty.levels": json.dumps(levels)})
    silver = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    regular = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    for who, amount in ((silver, "5000.00"), (regular, "100.00")):
        dressed.service(PaymentService).recharge(D(amount), rno(), who)
    loans = dressed.service(LoanService)
    vo = loans.publish_loan(loan_request(amount=D("6000.00"), min_invest=D("0.01")), operator)
    loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
    loans.invest(vo.loan_id, D("5000.00"), rno(), silver)
    loans.invest(vo.loan_id, D("100.00"), rno(), regular)

    loyalty = dressed.service(LoyaltyService)
    clock.now = dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC)  # 00:30 on April 1st, Shanghai
    assert loyalty.issue_monthly_coupons() == 1
    assert loyalty.issue_monthly_coupons() == 1  # the month's coupon again: the same one
    clock.now = dt.datetime(2026, 4, 30, 16, 30, tzinfo=dt.UTC)  # May 1st, Shanghai
    loyalty.issue_monthly_coupons()
    assert rows(sql, "SELECT member_id, issue_key FROM coupon ORDER BY id") == [
        (silver.member_id, "LEVEL-SILVER-2026-04"),
        (silver.member_id, "LEVEL-SILVER-2026-05"),
    ]


def test_the_fee_discounts_are_read_for_many_members_in_two_queries(
    platform, investor, raising, loans, sql, make_member
):
    """The lending core's fee_discounts: each member's level's fee_discount, a member never
    evaluated (no level row) by the level their invested amount falls in; one query for the
    recorded levels and one for the amounts of the others, however many members."""
    levels = platform.components["fee_discounts"]
    assert levels is platform.components["levels"]
    loan_id = raising("100000.00")
    silver, gold, regular, forgotten = (investor("60000.00") for _ in range(4))
    for who, amount in ((silver, "5000.00"), (gold, "50000.00"), (regular, "4999.99")):
        loans.invest(loan_id, D(amount), rno(), who)
    loans.invest(loan_id, D("5000.00"), rno(), forgotten)
    with sql.begin() as conn:  # as for a member who invested before levels existed
        forget = text("DELETE FROM member_level WHERE member_id = :m")
        assert conn.execute(forget, {"m": forgotten.member_id}).rowcount == 1
    nobody = make_member("INVESTOR")  # no level, nothing invested
    members = [w.member_id for w in (silver, gold, regular, forgotten, nobody)]

    statements: list[str] = []
    engine = platform.database.engine

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        got = levels.discounts(members)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert got == dict(zip(members, (D("0.05"), D("0.10"), D(0), D("0.05"), D(0)), strict=True))
    assert len(statements) == 2, statements
    statements.clear()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert levels.discounts(members[:3]) == dict(list(got.items())[:3])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements  # every one evaluated: the levels alone
