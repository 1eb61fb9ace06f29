"""The development clock on SQLite and MariaDB: moved once, through the database, it moves
for every platform on that database (each web worker, job worker and command builds its
own), and the business rules follow it; concurrent moves add up; where clock.adjustable is
false the services read the wall clock and the clock refuses to move."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest

from server import cli
from service.clock import ClockNotAdjustable, PlatformClock
from service.p2p import AuditRequest, LoanService
from service.payment import PaymentService
from service.security import Principal

ADJUSTABLE = {"clock.adjustable": "true"}


def test_a_move_is_seen_by_every_platform_on_the_database(make_platform, clock) -> None:
    worker, command = make_platform(**ADJUSTABLE), make_platform(**ADJUSTABLE)
    business = worker.components["clock"]
    assert business() == clock()  # not moved: the wall clock
    moved = command.components["clock"].advance(dt.timedelta(days=40))
    assert moved == clock() + dt.timedelta(days=40)
    assert business() == moved
    clock.advance(hours=1)  # the business clock runs on from where it was set
    assert business() == moved + dt.timedelta(hours=1)
    at = dt.datetime(2027, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert command.components["clock"].set(at) == at
    assert business() == at
    assert command.components["clock"].reset() == clock()
    assert business() == clock()


def test_a_listing_s_raising_period_ends_when_the_clock_is_moved_past_it(
    make_platform, loan_request, operator
) -> None:
    platform = make_platform(**ADJUSTABLE)
    loans = platform.service(LoanService)
    loan = loans.publish_loan(loan_request(raise_days=3), operator)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    assert loans.close_expired_loans().failed == 0
    platform.components["clock"].advance(dt.timedelta(days=3, seconds=1))
    assert loans.close_expired_loans().failed == 1
    assert loans.get_loan(loan.loan_id, operator).status == "FAILED"


def test_concurrent_advances_add_up(make_platform, clock) -> None:
    platforms = [make_platform(**ADJUSTABLE) for _ in range(4)]
    start = threading.Barrier(len(platforms))
    failures: list[BaseException] = []

    def advance(platform) -> None:
        try:
            start.wait()
            for _ in range(5):
                platform.components["clock"].advance(dt.timedelta(hours=1))
        except BaseException as e:  # reported below, not lost in the thread
            failures.append(e)

    threads = [threading.Thread(target=advance, args=(p,)) for p in platforms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert platforms[0].components["clock"]() == clock() + dt.timedelta(hours=20)


def test_where_the_clock_is_not_adjustable_it_is_the_wall_clock_and_refuses_to_move(
    make_platform, clock
) -> None:
    adjustable = make_platform(**ADJUSTABLE)
    adjustable.components["clock"].advance(dt.timedelta(days=2))
    fixed = make_platform(**{"clock.adjustable": "false"})
    assert fixed.components["clock"]() == clock()  # the offset in the database is ignored
    refusing = PlatformClock(fixed.tx, adjustable=False, wall=clock)
    with pytest.raises(ClockNotAdjustable):
        refusing.advance(dt.timedelta(days=1))
    with pytest.raises(ClockNotAdjustable):
        refusing.set(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    assert adjustable.components["clock"]() == clock() + dt.timedelta(days=2)


def test_the_command_moves_the_clock_and_refuses_where_it_may_not(
    make_platform, service_url, capsys
) -> None:
    business = make_platform(**ADJUSTABLE).components["clock"]
    before = business()
    on = ["--set", f"database.url={service_url}", "--set", "clock.adjustable=true"]
    assert cli.main(["clock", "advance", "40d", *on]) == 0
    assert "platform time" in capsys.readouterr().out
    assert dt.timedelta(days=40) <= business() - before < dt.timedelta(days=41)
    assert cli.main(["clock", "set", "2027-01-05T10:00:00", *on]) == 2  # no zone
    assert "zone" in capsys.readouterr().err
    off = ["--set", f"database.url={service_url}", "--set", "clock.adjustable=false"]
    assert cli.main(["clock", "reset", *off]) == 1
    assert "REFUSED" in capsys.readouterr().err
    assert business() - before >= dt.timedelta(days=40)  # the refused reset moved nothing
    assert cli.main(["clock", "reset", *on]) == 0
    assert business() - before < dt.timedelta(days=1)


def test_close_expired_loans_as_of_a_later_time(
    make_platform, service_url, loan_request, operator, capsys
) -> None:
    loans = make_platform().service(LoanService)
    loan = loans.publish_loan(loan_request(raise_days=3), operator)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    at = ["--set", f"database.url={service_url}"]
    assert cli.main(["close-expired-loans", *at]) == 0
    assert loans.get_loan(loan.loan_id, operator).status == "RAISING"
    assert cli.main(["close-expired-loans", "--as-of", "2099-01-01T00:00:00Z", *at]) == 0
    assert "1 expired listing(s) marked FAILED" in capsys.readouterr().out
    assert loans.get_loan(loan.loan_id, operator).status == "FAILED"


def test_mark_overdue_as_of_a_later_time(
    make_platform, service_url, loan_request, operator, make_member, capsys
) -> None:
    platform = make_platform()
    loans, payments = platform.service(LoanService), platform.service(PaymentService)
    loan = loans.publish_loan(loan_request(amount=Decimal("1000.00"), term_months=3), operator)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    investor = make_member("INVESTOR")
    who = Principal(member_id=investor.member_id, role="INVESTOR")
    payments.recharge(Decimal("1000.00"), "clock-r1", who)
    loans.invest(loan.loan_id, Decimal("1000.00"), "clock-i1", who)
    loans.disburse_loan(loan.loan_id, "clock-d1", operator)
    at = ["--set", f"database.url={service_url}"]
    assert cli.main(["mark-overdue", *at]) == 0
    assert "0 installment(s) marked overdue" in capsys.readouterr().out
    assert cli.main(["mark-overdue", "--as-of", "2099-01-01T00:00:00Z", *at]) == 0
    assert "3 installment(s) marked overdue" in capsys.readouterr().out
    plan = loans.get_repayment_schedule(loan.loan_id, operator)
    assert [i.status for i in plan.items] == ["OVERDUE"] * 3
