"""Sending orders and querying them on doubt, on SQLite and MariaDB, time moved by the clock
component: an unanswered submission is UNKNOWN and queried, never sent under a new number;
NOT_FOUND sends it again under the same one; the first query waits
bank.query_first_after_seconds, then the interval doubles from query_min_interval_seconds to
query_max_interval_seconds and the queries go on; an order open past doubt_age_seconds is
handed to reconciliation; the send job runs twice harmlessly and never inside a
transaction."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.ocp import protocol
from service.transaction import IllegalTransactionStateError
from tests.integration.service.banking import AUTHORIZE, Banking, wire
from tests.integration.service.support import caller

D = Decimal
TIMING = {
    "bank.query_first_after_seconds": "60",
    "bank.query_min_interval_seconds": "30",
    "bank.query_max_interval_seconds": "200",
    "bank.doubt_age_seconds": "3600",
}


@pytest.fixture
def timed(make_platform) -> Banking:
    return wire(make_platform(**TIMING))


@pytest.fixture
def investor(timed: Banking, make_member):
    return caller(make_member("INVESTOR"))


def recharge(banking: Banking, who, request_no: str, amount: str = "50.00") -> str:
    order = banking.payments.recharge(D(amount), request_no, who)
    banking.run_jobs()
    return order.order_no


def test_an_unanswered_submission_is_unknown_until_a_query_settles_it(
    timed: Banking, investor, clock, sql
) -> None:
    timed.bank.result = None  # the bank's answer never comes (a read timeout)
    order_no = recharge(timed, investor, "q-1")
    row = timed.order(order_no)
    assert (row.status, row.send_count) == ("UNKNOWN", 1)
    assert row.in_doubt_since is not None
    assert timed.payments.get_order(order_no, investor).status == "PENDING"
    assert timed.ledger_ok()

    assert timed.orders.query_due() == 0  # not before query_first_after_seconds
    clock.advance(seconds=60)
    timed.bank.status[order_no] = {"status": "SUCCEEDED", "amount": "50.00", "bankRef": "B1"}
    assert timed.orders.query_due() == 1
    assert timed.bank.queried == [order_no]
    assert timed.payments.get_order(order_no, investor).status == "SUCCESS"
    assert timed.order(order_no).status == "SUCCEEDED"
    assert len(timed.bank.submitted) == 1  # never sent again, never under another number
    with sql.connect() as conn:
        kinds = conn.execute(text("SELECT kind, attempt_key FROM bank_evidence ORDER BY id")).all()
    assert [tuple(k) for k in kinds] == [
        ("REQUEST", "1"),
        ("RESPONSE", "1"),
        ("QUERY", "1"),
        ("QUERY_RESULT", "1"),
    ]
    assert timed.ledger_ok()


def test_not_found_sends_the_order_again_under_the_same_number(
    timed: Banking, investor, clock
) -> None:
    timed.bank.result = None
    order_no = recharge(timed, investor, "q-2")
    clock.advance(seconds=60)
    timed.bank.status[order_no] = {"status": protocol.NOT_FOUND}
    timed.bank.result = protocol.ACCEPTED
    assert timed.orders.query_due() == 1
    assert timed.order(order_no).status == "UNKNOWN"
    assert timed.run_jobs() == 1  # the send job, handed over after the query's commit
    assert [s["orderNo"] for s in timed.bank.submitted] == [order_no, order_no]
    row = timed.order(order_no)
    assert (row.status, row.send_count, row.authorize_url) == (
        "ACCEPTED",
        2,
        AUTHORIZE + order_no,
    )


def test_processing_for_an_unanswered_order_sends_it_again_for_its_page(
    timed: Banking, investor, clock
) -> None:
    """The bank has it, but the page where the member confirms came in the lost answer: the
    duplicate submission's answer carries it."""
    timed.bank.result = None
    order_no = recharge(timed, investor, "q-3")
    clock.advance(seconds=60)
    timed.bank.result = protocol.ACCEPTED
    timed.orders.query_due()
    timed.run_jobs()
    row = timed.order(order_no)
    assert (row.status, row.authorize_url) == ("ACCEPTED", AUTHORIZE + order_no)


def test_queries_back_off_from_the_minimum_to_the_maximum_interval_and_go_on(
    timed: Banking, investor, clock
) -> None:
    order_no = recharge(timed, investor, "q-4")  # ACCEPTED; the bank says PROCESSING
    sent_at = clock.now
    expected_waits = [60, 30, 60, 120, 200, 200, 200]
    at = sent_at
    for wait in expected_waits:
        clock.now = at + timedelta(seconds=wait - 1)
        assert timed.orders.query_due() == 0, f"queried before {wait} s"
        clock.now = at + timedelta(seconds=wait)
        assert timed.orders.query_due() == 1, f"not queried after {wait} s"
        at = clock.now
    row = timed.order(order_no)
    assert (row.status, row.query_count) == ("ACCEPTED", len(expected_waits))


def test_one_order_is_never_queried_twice_within_the_minimum_interval(
    timed: Banking, investor, clock, sql
) -> None:
    order_no = recharge(timed, investor, "q-5")
    clock.advance(seconds=60)
    assert timed.orders.query(order_no) is True
    with sql.begin() as conn:  # another run's view: its next query due at once
        conn.execute(
            text("UPDATE bank_order SET next_query_at = :at WHERE order_no = :no"),
            {"at": clock.now.replace(tzinfo=None), "no": order_no},
        )
    clock.advance(seconds=29)
    assert timed.orders.query(order_no) is False
    clock.advance(seconds=1)
    assert timed.orders.query(order_no) is True
    assert timed.bank.queried == [order_no, order_no]


def test_an_unanswered_query_changes_nothing_but_the_schedule(
    timed: Banking, investor, clock
) -> None:
    order_no = recharge(timed, investor, "q-6")
    timed.bank.status[order_no] = None
    clock.advance(seconds=60)
    assert timed.orders.query_due() == 1
    row = timed.order(order_no)
    assert (row.status, row.query_count) == ("ACCEPTED", 1)


def test_not_found_for_an_accepted_order_is_alerted_and_changes_nothing(
    timed: Banking, investor, clock
) -> None:
    order_no = recharge(timed, investor, "q-7")
    timed.bank.status[order_no] = {"status": protocol.NOT_FOUND}
    clock.advance(seconds=60)
    timed.orders.query_due()
    assert timed.order(order_no).status == "ACCEPTED"
    assert timed.conflicts.kinds == {"lost": 1}
    assert timed.run_jobs() == 0


def test_a_query_answer_with_another_amount_is_alerted_and_changes_nothing(
    timed: Banking, investor, clock
) -> None:
    order_no = recharge(timed, investor, "q-8")
    timed.bank.status[order_no] = {"status": "SUCCEEDED", "amount": "5000.00"}
    clock.advance(seconds=60)
    timed.orders.query_due()
    assert timed.order(order_no).status == "ACCEPTED"
    assert timed.conflicts.kinds == {"amount": 1}
    assert timed.ledger_ok()


def test_an_order_open_too_long_is_handed_to_reconciliation_and_still_queried(
    timed: Banking, investor, clock, caplog
) -> None:
    order_no = recharge(timed, investor, "q-9")
    settled = recharge(timed, investor, "q-10")
    timed.notify(timed.notification(settled, "SUCCEEDED", "50.00"))
    clock.advance(seconds=3599)
    timed.orders.query_due()
    assert timed.orders.in_doubt_count() == 0
    clock.advance(seconds=1)
    with caplog.at_level(logging.ERROR, logger="service.ocp.alerts"):
        timed.orders.query_due()
    row = timed.order(order_no)
    assert row.handed_to_reconciliation_at is not None and row.status == "ACCEPTED"
    assert timed.order(settled).handed_to_reconciliation_at is None
    assert timed.orders.in_doubt_count() == 1
    assert [r.getMessage() for r in caplog.records if order_no in r.getMessage()]
    clock.advance(seconds=3600)
    timed.orders.query_due()  # alerted once, queried still
    assert len([r for r in caplog.records if order_no in r.getMessage()]) == 1
    assert timed.bank.queried.count(order_no) == 2

    timed.bank.status[order_no] = {"status": "FAILED", "amount": "50.00"}
    clock.advance(seconds=3600)
    timed.orders.query_due()
    assert timed.orders.in_doubt_count() == 0  # settled: no longer in doubt
    assert timed.ledger_ok()


def test_the_send_job_delivered_twice_sends_once(timed: Banking, investor) -> None:
    order = timed.payments.recharge(D("1.00"), "q-11", investor)
    job = timed.outbox.jobs[0]
    timed.run_jobs()
    timed.orders.send(**job[1])  # the engine delivers it again (a worker died after the call)
    assert len(timed.bank.submitted) == 1
    assert timed.order(order.order_no).send_count == 1


def test_the_bank_is_never_called_inside_a_transaction(timed: Banking, investor) -> None:
    order = timed.payments.recharge(D("1.00"), "q-12", investor)
    with pytest.raises(IllegalTransactionStateError):
        timed.platform.tx.run(timed.orders.send, order.order_no)
    with pytest.raises(IllegalTransactionStateError):
        timed.platform.tx.run(timed.orders.query_due)
    assert timed.bank.submitted == []
