"""The bank's notifications applied to its orders, on SQLite and MariaDB: accepted once by
notifyId, applied exactly once, repeats acknowledged and changing nothing, conflicts kept,
counted, alerted and acknowledged; refusals (unknown order, another amount or order type, a
notifyId reused for other content) never acknowledged; and a notification racing a query
answer, or another notification, for one order applied once. (Signatures, key ids and
timestamps are checked before this, by the endpoint: test_bank_notify_endpoint.py.)"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.ocp.orders import NotificationRefused
from tests.integration.service.banking import Banking
from tests.integration.service.support import caller, race

D = Decimal


@pytest.fixture
def investor(make_member):
    return caller(make_member("INVESTOR"))


@pytest.fixture
def accepted(banking: Banking, investor):
    """Factory: a recharge of ``amount`` the bank has accepted; its order number."""
    numbers = iter(range(1, 1000))

    def factory(amount: str = "200.00") -> str:
        order = banking.payments.recharge(D(amount), f"n-{next(numbers)}", investor)
        banking.run_jobs()
        return order.order_no

    return factory


def rows(sql, query: str, **params) -> list:
    with sql.connect() as conn:
        return conn.execute(text(query), params).all()


def recharge_postings(sql, order_no: str) -> int:
    return len(
        rows(
            sql,
            "SELECT p.id FROM posting p JOIN payment_order o ON p.ref_id = o.id"
            " AND p.ref_type = 'PAYMENT_ORDER' WHERE o.order_no = :no",
            no=order_no,
        )
    )


def refusal(banking: Banking, message: dict) -> NotificationRefused:
    with pytest.raises(NotificationRefused) as caught:
        banking.notify(message)
    return caught.value


def test_a_repeat_of_an_applied_notification_is_acknowledged_and_changes_nothing(
    banking: Banking, accepted, sql, clock
) -> None:
    order_no = accepted()
    message = banking.notification(order_no, "SUCCEEDED", "200.00")
    first = banking.notify(message)
    clock.advance(seconds=30)
    # The bank's retry: the same event signed again with a fresh timestamp.
    again = banking.notify(
        {**message, "timestamp": banking.notification(order_no, "X", "0")["timestamp"]}
    )
    assert (first.outcome, again.outcome) == ("applied", "repeat")
    assert b'"result":"OK"' in again.body and message["notifyId"].encode() in again.body
    assert recharge_postings(sql, order_no) == 1
    [(outcome,)] = rows(sql, "SELECT outcome FROM bank_notification")
    assert outcome == "APPLIED"
    kinds = [r.kind for r in rows(sql, "SELECT kind FROM bank_evidence ORDER BY id")]
    assert kinds == ["REQUEST", "RESPONSE", "NOTIFICATION", "ACK"]  # first write wins
    assert banking.ledger_ok()


def test_another_event_agreeing_with_the_order_confirms_it(banking: Banking, accepted, sql):
    order_no = accepted()
    banking.notify(banking.notification(order_no, "SUCCEEDED", "200.00"))
    assert banking.notify(banking.notification(order_no, "SUCCEEDED", "200.00")).outcome == (
        "confirmed"
    )
    assert recharge_postings(sql, order_no) == 1
    assert banking.conflicts.kinds == {}


@pytest.mark.parametrize(
    ("first", "then", "kind"),
    [
        ("SUCCEEDED", "FAILED", "status"),
        ("FAILED", "SUCCEEDED", "status"),
        ("SUCCEEDED", "REVERSED", "reversal"),
    ],
)
def test_conflicting_news_is_kept_counted_alerted_acknowledged_and_changes_nothing(
    banking: Banking, accepted, investor, sql, caplog, first: str, then: str, kind: str
) -> None:
    order_no = accepted()
    banking.notify(banking.notification(order_no, first, "200.00"))
    status_before = banking.order(order_no).status
    balance_before = banking.payments.get_order(order_no, investor).status

    with caplog.at_level(logging.ERROR, logger="service.ocp.alerts"):
        ack = banking.notify(banking.notification(order_no, then, "200.00"))
    assert ack.outcome == "conflict"  # acknowledged: the bank stops, a person looks
    assert banking.order(order_no).status == status_before
    assert banking.payments.get_order(order_no, investor).status == balance_before
    assert banking.conflicts.kinds == {kind: 1}
    alert = [r.getMessage() for r in caplog.records if "ALERT" in r.getMessage()]
    assert len(alert) == 1 and order_no in alert[0] and f"conflict ({kind})" in alert[0]
    outcomes = [r.outcome for r in rows(sql, "SELECT outcome FROM bank_notification ORDER BY id")]
    assert outcomes == ["APPLIED", "CONFLICT"]
    assert len(rows(sql, "SELECT id FROM bank_evidence WHERE kind = 'NOTIFICATION'")) == 2
    assert recharge_postings(sql, order_no) == (1 if first == "SUCCEEDED" else 0)
    assert banking.ledger_ok()


def test_another_amount_is_refused_kept_and_alerted_and_refused_again(
    banking: Banking, accepted, sql
) -> None:
    order_no = accepted("200.00")
    message = banking.notification(order_no, "SUCCEEDED", "2000.00")
    refused = refusal(banking, message)
    assert (refused.outcome, refused.http_status) == ("mismatch", 409)
    assert banking.order(order_no).status == "ACCEPTED"
    assert recharge_postings(sql, order_no) == 0
    assert banking.conflicts.kinds == {"amount": 1}
    # Kept: the bank's signed word is evidence, and its notifyId is taken (refused).
    [(outcome, amount)] = rows(sql, "SELECT outcome, amount FROM bank_notification")
    assert (outcome, amount) == ("REFUSED", 200_000)
    assert len(rows(sql, "SELECT id FROM bank_evidence WHERE kind = 'NOTIFICATION'")) == 1
    assert rows(sql, "SELECT id FROM bank_evidence WHERE kind = 'ACK'") == []
    assert refusal(banking, message).outcome == "mismatch"  # the bank's retry: refused again
    assert banking.ledger_ok()


def test_another_order_type_is_refused(banking: Banking, accepted) -> None:
    order_no = accepted()
    message = banking.notification(order_no, "SUCCEEDED", "200.00", "WITHDRAW")
    assert refusal(banking, message).outcome == "mismatch"
    assert banking.conflicts.kinds == {"type": 1}
    assert banking.order(order_no).status == "ACCEPTED"


def test_an_unknown_order_is_refused_and_nothing_is_kept(banking: Banking, accepted, sql):
    accepted()
    refused = refusal(banking, banking.notification("R20261203NOSUCHORDER", "SUCCEEDED", "1.00"))
    assert (refused.outcome, refused.http_status) == ("unknown_order", 404)
    assert rows(sql, "SELECT id FROM bank_notification") == []


def test_an_order_number_differing_only_in_case_is_another_order(banking: Banking, accepted):
    """MariaDB's default collation folds case; an order number is compared exactly."""
    order_no = accepted()
    message = banking.notification(order_no.lower(), "SUCCEEDED", "200.00")
    assert refusal(banking, message).outcome == "unknown_order"
    assert banking.order(order_no).status == "ACCEPTED"


def test_a_notify_id_reused_for_other_content_is_refused(
    banking: Banking, accepted, sql, caplog
) -> None:
    order_no = accepted()
    message = banking.notification(order_no, "SUCCEEDED", "200.00")
    banking.notify(message)
    forged = {**message, "status": "FAILED", "reason": "nope"}
    with caplog.at_level(logging.ERROR, logger="service.ocp"):
        refused = refusal(banking, forged)
    assert (refused.outcome, refused.http_status) == ("replayed", 409)
    assert any("ALERT" in r.getMessage() for r in caplog.records)
    assert banking.order(order_no).status == "SUCCEEDED"
    assert len(rows(sql, "SELECT id FROM bank_notification")) == 1
    other = accepted()
    elsewhere = {**message, "orderNo": other}
    assert refusal(banking, elsewhere).outcome == "replayed"
    assert banking.order(other).status == "ACCEPTED"


def test_a_notification_arriving_while_the_bank_answers_a_query_applies_once(
    banking: Banking, accepted, sql, clock
) -> None:
    """The query has taken its slot and the bank is answering it when the notification is
    applied; the query's answer then finds the order settled and confirms it."""
    order_no = accepted()
    clock.advance(seconds=120)  # the order's first query is due
    banking.bank.status[order_no] = {"status": "SUCCEEDED", "amount": "200.00"}
    message = banking.notification(order_no, "SUCCEEDED", "200.00")
    answered = banking.bank.query
    outcomes = []

    def answer_after_the_notification(number: str):
        outcomes.append(banking.notify(message).outcome)
        return answered(number)

    banking.bank.query = answer_after_the_notification
    assert banking.orders.query(order_no) is True
    assert outcomes == ["applied"]
    assert recharge_postings(sql, order_no) == 1
    assert [r.kind for r in rows(sql, "SELECT kind FROM bank_evidence ORDER BY id")][-2:] == [
        "QUERY",
        "QUERY_RESULT",
    ]
    assert banking.conflicts.kinds == {}
    assert banking.ledger_ok()


def test_a_notification_and_a_query_answer_racing_apply_once(
    banking: Banking, accepted, sql, clock
) -> None:
    """Both hold the bank's word at the same moment and race for the order's row: one
    applies it, the other finds it applied."""
    for _ in range(3):
        order_no = accepted()
        clock.advance(seconds=120)
        banking.bank.status[order_no] = {"status": "SUCCEEDED", "amount": "200.00"}
        attempt = banking.orders._claim_query(order_no)
        exchange = banking.bank.query(order_no)
        message = banking.notification(order_no, "SUCCEEDED", "200.00")
        notified, recorded = race(
            [(banking.notify, message), (banking.orders._record_query, order_no, attempt, exchange)]
        )
        assert notified.outcome in ("applied", "confirmed") and recorded is None
        assert recharge_postings(sql, order_no) == 1
        assert banking.order(order_no).status == "SUCCEEDED"
    assert banking.conflicts.kinds == {}
    assert banking.ledger_ok()


def test_two_notifications_at_once_apply_once(banking: Banking, accepted, sql) -> None:
    for same_id in (True, False, True):
        order_no = accepted()
        first = banking.notification(order_no, "SUCCEEDED", "200.00")
        second = first if same_id else banking.notification(order_no, "SUCCEEDED", "200.00")
        outcomes = race([(banking.notify, first), (banking.notify, second)])
        assert sorted(a.outcome for a in outcomes) == (
            ["applied", "repeat"] if same_id else ["applied", "confirmed"]
        )
        assert recharge_postings(sql, order_no) == 1
    assert banking.ledger_ok()
