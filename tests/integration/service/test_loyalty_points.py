"""Check-in and points (service/loyalty/points.py) on SQLite and MariaDB, the server in UTC and
the business day in Asia/Shanghai: once a business day (two workers at once count once), the
streak broken and restarted, points earned by investing and taken back with the money, spent
oldest first, expiring."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal

import pytest

from service.loyalty.service import LoyaltyService
from service.p2p import AuditRequest
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.marketing_support import active_template, one, rows
from tests.integration.service.support import error_of, race

D = Decimal
UTC = dt.UTC
_numbers = itertools.count(1)
#: 23:59:30 in Shanghai on 2026-03-01 is 15:59:30 UTC.
BEFORE_MIDNIGHT = dt.datetime(2026, 3, 1, 15, 59, 30, tzinfo=UTC)


def rno() -> str:
    return f"pt-{next(_numbers)}"


@pytest.fixture
def loyalty(platform) -> LoyaltyService:
    return platform.service(LoyaltyService)


@pytest.fixture
def member(make_member) -> Principal:
    return Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")


def test_one_check_in_a_shanghai_day_around_midnight_with_the_server_in_utc(loyalty, member, clock):
    clock.now = BEFORE_MIDNIGHT
    first = loyalty.check_in(member)
    assert (first.business_day, first.streak, first.points) == (dt.date(2026, 3, 1), 1, 5)
    clock.advance(seconds=20)  # 23:59:50 Shanghai: the same day
    assert error_of(loyalty.check_in, member).code == "ALREADY_CHECKED_IN"
    clock.advance(seconds=20)  # 00:00:10 Shanghai on 03-02, still 03-01 in UTC
    assert clock.now.date() == dt.date(2026, 3, 1)
    second = loyalty.check_in(member)
    assert (second.business_day, second.streak, second.points) == (dt.date(2026, 3, 2), 2, 5)
    clock.now = dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 Shanghai, 03-02 again
    assert error_of(loyalty.check_in, member).code == "ALREADY_CHECKED_IN"
    clock.now = dt.datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on 03-03
    assert loyalty.check_in(member).streak == 3
    assert loyalty.get_points(member).balance == 5 + 5 + 10


def test_a_missed_day_breaks_the_streak_and_the_table_ends_at_its_last_value(
    make_platform, make_member, clock
):
    platform = make_platform(**{"loyalty.checkin_points": "[1, 2, 3]"})
    loyalty = platform.service(LoyaltyService)
    who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    earned = []
    for _ in range(5):
        earned.append((loyalty.check_in(who).streak, loyalty.get_points(who).balance))
        clock.advance(days=1)
    assert earned == [(1, 1), (2, 3), (3, 6), (4, 9), (5, 12)]
    clock.advance(days=1)  # a day missed
    restarted = loyalty.check_in(who)
    assert (restarted.streak, restarted.points) == (1, 1)


def test_two_check_ins_at_once_count_once(loyalty, member, sql):
    outcomes = race([(loyalty.check_in, member), (loyalty.check_in, member)])
    assert sorted(o if isinstance(o, str) else "OK" for o in outcomes) == [
        "ALREADY_CHECKED_IN",
        "OK",
    ]
    assert one(sql, "SELECT COUNT(*) FROM checkin") == 1
    assert one(sql, "SELECT SUM(points) FROM point_entry") == 5


def test_points_expire_and_are_spent_oldest_first(make_platform, make_member, clock, operator, sql):
    platform = make_platform()
    from service.marketing.campaigns import CampaignService

    template = active_template(platform.service(CampaignService), operator)
    catalogue = [{"item": "CASH10", "points": 7, "template": template.template_id}]
    platform = make_platform(
        **{"loyalty.points_ttl_days": "2", "loyalty.catalogue": json.dumps(catalogue)}
    )
    loyalty = platform.service(LoyaltyService)
    who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    loyalty.check_in(who)  # 5, expires in 2 days
    clock.advance(days=1)
    loyalty.check_in(who)  # 5 more
    assert loyalty.get_points(who).balance == 10
    assert loyalty.get_points(who).next_expiry_points == 5
    bought = loyalty.redeem_points("CASH10", "r-1", who)
    assert (bought.points, bought.balance) == (7, 3)
    assert loyalty.redeem_points("CASH10", "r-1", who) == bought  # a repeat
    assert error_of(loyalty.redeem_points, "CASH5", "r-1", who).code == "REQUEST_NO_REUSED"
    # The first day's 5 went first, then 2 of the second's.
    assert rows(sql, "SELECT kind, points, remaining FROM point_entry ORDER BY id") == [
        ("CHECK_IN", 5, 0),
        ("CHECK_IN", 5, 3),
        ("REDEEM", -7, 0),
    ]
    assert one(sql, "SELECT COUNT(*) FROM coupon WHERE issue_key LIKE 'POINTS-%'") == 1
    assert error_of(loyalty.redeem_points, "CASH10", "r-3", who).code == "POINTS_INSUFFICIENT"
    assert error_of(loyalty.redeem_points, "NOPE", "r-4", who).code == "CATALOGUE_ITEM_UNKNOWN"
    clock.advance(days=2)  # the second day's points have expired too
    assert loyalty.get_points(who).balance == 0
    page = loyalty.list_point_entries(who, 1, 2)
    assert (page.total, [e.kind for e in page.items]) == (3, ["REDEEM", "CHECK_IN"])


def test_investing_earns_points_taken_back_when_the_money_is_given_back(
    platform, loyalty, make_member, loans, operator, loan_request, sql
):
    who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    platform.service(PaymentService).recharge(D("1000.00"), rno(), who)
    vo = loans.publish_loan(loan_request(amount=D("5000.00"), min_invest=D("0.01")), operator)
    loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
    loans.invest(vo.loan_id, D("300.50"), rno(), who)
    assert loyalty.get_points(who).balance == 300  # 1 a yuan, rounded down
    loyalty.check_in(who)
    assert loyalty.get_points(who).balance == 305
    loans.cancel_loan(vo.loan_id, "撤回", operator)
    assert loyalty.get_points(who).balance == 5
    assert rows(
        sql, "SELECT kind, points FROM point_entry WHERE kind LIKE 'INVEST%' ORDER BY id"
    ) == [
        ("INVEST", 300),
        ("INVEST_REVERSAL", -300),
    ]
