"""The daily reconciliation against the bank simulator served over HTTP from a thread, on SQLite
and MariaDB, time moved by the clock: a clean day finds nothing; each fault finds exactly its
discrepancies; APPLY settles through the order machine and a re-run is clean; EXPLAIN closes;
re-running a day is idempotent; a file the run cannot trust fails it with nothing recorded; two
runs of one day at once record once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.ocp.client import HttpBankClient
from service.ocp.signing import Signer, generate_keypair
from service.reconciliation import ReconciliationService
from service.security import Principal
from tests.integration.service.bankworld import World, bank_world, onboarded

D = Decimal
DAY = "2026-03-01"  # the clock's START, 16:30 in Shanghai


@pytest.fixture
def world(tmp_path: Path, clock, service_url) -> Iterator[World]:
    yield from bank_world(tmp_path, clock, service_url, auto_authorize=True)


@pytest.fixture
def recon(world: World) -> Iterator[ReconciliationService]:
    """The platform's reconciliation, its files fetched with a read timeout of 10 s: the
    world's 0.5 s is for the orders' timeout faults, and a loaded machine may take longer to
    serve a file."""
    service = world.platform.service(ReconciliationService)
    settings = world.platform.settings.current()
    patient = SimpleNamespace(bank=replace(settings.bank, read_timeout_seconds=10.0))
    service._client = HttpBankClient(patient, clock=world.clock)
    yield service
    service._client.close()


@pytest.fixture
def member(world: World, make_member, identities):
    """An onboarded member with 1000.00 recharged and 300.00 withdrawn on the day."""
    who, card_id, account_no = onboarded(world, make_member, identities)
    world.payments.recharge(D("1000.00"), "rc-fund", who)
    world.settle()
    world.payments.withdraw(D("300.00"), card_id, "rc-out", who)
    world.settle()
    return who, card_id, account_no


def at_the_bank_only(world: World, seconds: float = 3.0) -> None:
    """Time passes at the bank, which finishes what is due; the platform hears nothing."""
    world.clock.advance(seconds=seconds)
    world.bank.run_due()


def next_day(world: World) -> None:
    world.clock.advance(hours=9)  # 01:30 the next day in Shanghai


def run(recon: ReconciliationService, day: str = DAY):
    return recon.run_day(date.fromisoformat(day))


def found(recon: ReconciliationService, status: str | None = None) -> Counter:
    page = recon.list_discrepancies(status=status, page_size=100)
    return Counter(item.category for item in page.items)


def only(recon: ReconciliationService, category: str):
    [item] = [i for i in recon.list_discrepancies(page_size=100).items if i.category == category]
    return item


def resolve(recon, item, action: str, operator: Principal, reason=None, no="fix-1"):
    return recon.resolve_discrepancy(item.discrepancy_id, action, reason, no, operator)


def test_a_clean_day_finds_nothing(world: World, recon, member) -> None:
    next_day(world)
    result = run(recon)
    assert result.status == "SUCCEEDED"
    assert found(recon) == Counter()
    assert (result.bank_balance, result.platform_balance) == (D("700.00"), D("700.00"))
    # The account opening, the recharge and the withdrawal, on both sides.
    assert (result.bank_lines, result.platform_orders) == (3, 3)
    assert result.bank_amount == result.platform_amount == D("1300.00")


def test_a_success_never_notified_is_a_status_mismatch_apply_settles_it(
    world: World, recon, member, operator, sql
) -> None:
    who, _, _ = member
    world.arm("RECHARGE", "never_notify")
    order = world.payments.recharge(D("50.00"), "rc-silent", who)
    at_the_bank_only(world)
    next_day(world)
    assert run(recon).status_mismatches == 1
    # The member's money at the bank is 50.00 more than the platform's books say.
    assert found(recon) == Counter({"STATUS": 1, "BALANCE": 1})
    status, balance = only(recon, "STATUS"), only(recon, "BALANCE")
    assert (status.subject, status.bank_status, status.platform_status) == (
        order.order_no,
        "SUCCEEDED",
        "ACCEPTED",
    )
    assert (balance.bank_amount, balance.platform_amount) == (D("750.00"), D("700.00"))
    with pytest.raises(BusinessError) as refused:
        resolve(recon, balance, "APPLY", operator)
    assert refused.value.code == "APPLY_NOT_APPLICABLE"

    applied = resolve(recon, status, "APPLY", operator)
    assert (applied.status, applied.resolution, applied.resolved_by) == (
        "RESOLVED",
        "APPLY",
        operator.member_id,
    )
    assert world.payments.get_order(order.order_no, who).status == "SUCCESS"
    world.books_agree(who, member[2])  # the postings happened once, the ledger check passes
    again = resolve(recon, status, "APPLY", operator)  # the same requestNo: nothing more
    assert again == applied
    with sql.connect() as conn:
        postings = conn.execute(
            text("SELECT COUNT(*) FROM posting WHERE business_type = 'RECHARGE'")
        ).scalar_one()
    assert postings == 2

    rerun = run(recon)
    assert (rerun.status_mismatches, rerun.balance_mismatches, rerun.attempts) == (0, 0, 2)
    assert found(recon, "OPEN") == Counter()
    assert only(recon, "STATUS").resolution == "APPLY"  # the operator's resolution stands
    assert only(recon, "BALANCE").resolution == "CLEARED"  # the books agree now


def test_the_schedule_runs_a_day_again_while_it_has_discrepancies_open(
    world: World, recon, member
) -> None:
    who, _, _ = member
    world.arm("RECHARGE", "never_notify")
    world.payments.recharge(D("50.00"), "rc-late", who)
    at_the_bank_only(world)
    next_day(world)
    assert recon.reconcile() == 7
    assert found(recon, "OPEN") == Counter({"STATUS": 1, "BALANCE": 1})
    world.settle(seconds=120)  # the query on doubt learns the outcome meanwhile
    assert recon.reconcile() == 1  # the day with discrepancies open, again
    assert found(recon, "OPEN") == Counter()
    assert found(recon, "RESOLVED") == Counter({"STATUS": 1, "BALANCE": 1})  # CLEARED
    assert recon.reconcile() == 0


def test_an_order_the_bank_never_received_is_platform_only_explain_closes_it(
    world: World, recon, member, operator, sql
) -> None:
    who, _, _ = member
    world.arm("RECHARGE", "timeout_without_moving")
    order = world.payments.recharge(D("20.00"), "rc-lost", who)
    next_day(world)
    run(recon)
    assert found(recon) == Counter({"PLATFORM_ONLY": 1})
    item = only(recon, "PLATFORM_ONLY")
    assert (item.subject, item.platform_status, item.bank_status) == (
        order.order_no,
        "UNKNOWN",
        None,
    )
    with pytest.raises(BusinessError) as refused:
        resolve(recon, item, "APPLY", operator)
    assert refused.value.code == "APPLY_NOT_APPLICABLE"
    with pytest.raises(BusinessError) as refused:
        resolve(recon, item, "EXPLAIN", operator, no="fix-2")
    assert refused.value.code == "VALIDATION_FAILED"  # a reason is required
    reason = "银行未收到该订单。\nThe query job sends it again."
    closed = resolve(recon, item, "EXPLAIN", operator, reason, no="fix-3")
    assert (closed.resolution, closed.reason) == ("EXPLAIN", reason)
    with pytest.raises(BusinessError) as refused:
        resolve(recon, item, "EXPLAIN", operator, "again", no="fix-4")
    assert refused.value.code == "DISCREPANCY_RESOLVED"
    with pytest.raises(BusinessError) as refused:
        resolve(recon, item, "EXPLAIN", operator, "other", no="fix-3")
    assert refused.value.code == "REQUEST_NO_REUSED"
    run(recon)  # still not at the bank: found again, the explanation stands
    assert found(recon, "OPEN") == Counter()
    assert [i.subject for i in recon.list_discrepancies(status="RESOLVED").items] == [
        order.order_no
    ]
    assert recon.list_discrepancies(category="BALANCE").total == 0
    # Still open past bank.doubt_age_seconds, it is among the orders in doubt as well.
    assert recon.list_orders_in_doubt().total == 0
    with sql.begin() as conn:
        conn.execute(
            text(
                "UPDATE bank_order SET handed_to_reconciliation_at = created_at"
                " WHERE order_no = :no"
            ),
            {"no": order.order_no},
        )
    [doubt] = recon.list_orders_in_doubt().items
    assert (doubt.order_no, doubt.status) == (order.order_no, "UNKNOWN")


def test_a_return_not_yet_applied_is_a_status_mismatch_apply_returns_the_money(
    world: World, recon, member, operator
) -> None:
    who, card_id, account_no = member
    world.arm("WITHDRAW", "reverse_after_success", seconds=5.0)
    order = world.payments.withdraw(D("200.00"), card_id, "rc-back", who)
    world.settle()  # paid out, and the platform knows
    assert world.payments.get_order(order.order_no, who).status == "SUCCESS"
    at_the_bank_only(world, 10.0)  # returned; the notification is not delivered
    next_day(world)
    run(recon)
    assert found(recon) == Counter({"STATUS": 1, "BALANCE": 1})
    item = only(recon, "STATUS")
    assert (item.bank_status, item.platform_status) == ("REVERSED", "SUCCEEDED")
    resolve(recon, item, "APPLY", operator)
    assert world.payments.get_order(order.order_no, who).status == "REVERSED"
    assert run(recon).balance_mismatches == 0
    assert found(recon, "OPEN") == Counter()
    assert world.books_agree(who, account_no) == D("700.00")


def test_a_fee_that_differs_is_a_fee_mismatch(world: World, recon, member, sql) -> None:
    who, _, _ = member
    order = world.payments.recharge(D("10.00"), "rc-fee", who)
    world.settle()
    with sql.begin() as conn:
        conn.execute(
            text("UPDATE bank_order SET fee = 150 WHERE order_no = :no"), {"no": order.order_no}
        )
    next_day(world)
    run(recon)
    assert found(recon) == Counter({"FEE": 1})
    item = only(recon, "FEE")
    assert (item.bank_fee, item.platform_fee) == (D("0.00"), D("1.50"))


def test_a_file_the_run_cannot_trust_fails_it_and_records_nothing(
    world: World, recon, member
) -> None:
    genuine = world.bank._signer
    world.bank._signer = Signer("bank-test", generate_keypair()[0])  # the bank's key id, forged
    next_day(world)
    failed = run(recon)
    assert (failed.status, failed.reason, failed.failed_file) == (
        "FAILED",
        "SIGNATURE_INVALID",
        "OPEN_ACCOUNT",
    )
    assert found(recon) == Counter()
    world.bank._signer = genuine
    again = run(recon)
    assert (again.status, again.attempts, again.failed_attempts) == ("SUCCEEDED", 2, 1)


def test_a_file_not_ready_fails_the_run_and_the_schedule_takes_the_day_again(
    world: World, recon
) -> None:
    world.clock.advance(hours=7, minutes=30, seconds=30)  # 00:00:30 on the 2nd, in Shanghai
    genuine = world.bank._clock
    world.bank._clock = lambda: world.clock.now - timedelta(seconds=90)  # still the 1st there
    failed = run(recon)
    assert (failed.status, failed.reason, failed.failed_file) == (
        "FAILED",
        "FILE_NOT_READY",
        "OPEN_ACCOUNT",
    )
    world.bank._clock = genuine
    assert recon.reconcile() == 7  # the day again, and the six before it
    assert recon.get_run(date.fromisoformat(DAY)).status == "SUCCEEDED"


def test_a_run_that_breaks_otherwise_fails_with_error_and_raises(world: World, recon) -> None:
    next_day(world)
    client = recon._client

    def broken(day, file_type):
        raise ConnectionResetError("the bank went away mid-file")

    client.fetch_file = broken
    try:
        with pytest.raises(ConnectionResetError):
            run(recon)
    finally:
        del client.fetch_file
    failed = recon.get_run(date.fromisoformat(DAY))
    assert (failed.status, failed.reason, failed.failed_file) == ("FAILED", "ERROR", None)
    assert run(recon).status == "SUCCEEDED"  # not left RUNNING: a re-run goes at once


def test_a_day_not_begun_is_not_run_and_a_day_never_run_is_not_found(world: World, recon) -> None:
    with pytest.raises(BusinessError) as refused:
        run(recon, "2026-03-02")
    assert refused.value.code == "VALIDATION_FAILED"
    with pytest.raises(BusinessError) as refused:
        recon.get_run(date.fromisoformat(DAY))
    assert refused.value.code == "RECONCILIATION_RUN_NOT_FOUND"
    assert recon.list_runs().total == 0


def test_today_is_the_bank_s_to_say_over_or_not(world: World, recon) -> None:
    failed = run(recon)  # the bank has not closed the day
    assert (failed.status, failed.reason) == ("FAILED", "FILE_NOT_READY")
    closed = world.bank.close_day(date.fromisoformat(DAY))
    assert closed.startswith(DAY)
    assert run(recon).status == "SUCCEEDED"


def test_the_schedule_runs_each_recent_day_not_yet_reconciled(world: World, recon) -> None:
    next_day(world)
    assert recon.reconcile() == 7  # bank.reconcile_catch_up_days
    assert recon.reconcile() == 0  # all done: nothing runs again
    assert recon.list_runs(page_size=100).total == 7
    latest = date.fromisoformat(DAY)
    window = recon.list_runs(latest - timedelta(days=2), latest)
    assert [r.business_date for r in window.items] == [
        latest,
        latest - timedelta(days=1),
        latest - timedelta(days=2),
    ]


def test_two_runs_of_one_day_at_once_record_once(world: World, recon, member) -> None:
    who, _, _ = member
    world.arm("RECHARGE", "never_notify")
    world.payments.recharge(D("50.00"), "rc-race", who)
    at_the_bank_only(world)
    next_day(world)
    client = recon._client
    real_fetch = client.fetch_file
    tried: dict[int, threading.Event] = {}
    started = threading.Barrier(2)
    outcomes: list[str] = []

    def held_fetch(day, file_type):
        """The run that claimed the day fetches once the other has tried to claim it."""
        for ident, event in tried.items():
            if ident != threading.get_ident():
                event.wait(timeout=30)
        return real_fetch(day, file_type)

    def attempt() -> None:
        tried[threading.get_ident()] = threading.Event()
        started.wait(timeout=30)
        try:
            outcomes.append(run(recon).status)
        except BusinessError as e:
            outcomes.append(e.code)
        finally:
            tried[threading.get_ident()].set()

    client.fetch_file = held_fetch
    try:
        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        client.fetch_file = real_fetch
    assert sorted(outcomes) == ["RECONCILIATION_RUNNING", "SUCCEEDED"]
    assert recon.get_run(date.fromisoformat(DAY)).attempts == 1
    assert found(recon) == Counter({"STATUS": 1, "BALANCE": 1})
