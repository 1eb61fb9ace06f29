"""The bank orders' pure parts: what evidence shows of a message, the query backoff, reading
the bank's final word, and what makes two deliveries the same notification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.ocp import protocol
from service.ocp.evidence import redact
from service.ocp.machine import BankResult, new_order_no
from service.ocp.notifications import _digest
from service.ocp.queries import next_interval

ID_NUMBER = "11010519491231002X"
CARD = "6222020200112233445"


def test_evidence_masks_every_personal_field_and_keeps_the_rest() -> None:
    raw = protocol.encode(
        {
            "orderNo": "A1",
            "realName": "张三丰",
            "idNumber": ID_NUMBER,
            "cardNumber": CARD,
            "mobile": "13987654321",
            "memberId": "7",
        }
    )
    shown = protocol.decode(redact(raw))
    assert shown == {
        "orderNo": "A1",
        "realName": "张**",
        "idNumber": "1****************X",
        "cardNumber": "**** **** **** 3445",
        "mobile": "139****4321",
        "memberId": "7",
    }


@pytest.mark.parametrize(
    "raw", [protocol.encode({"orderNo": "R1", "amount": "1.00"}), b"<html>502</html>", b"[1]"]
)
def test_a_message_without_personal_data_is_kept_as_it_is(raw: bytes) -> None:
    assert redact(raw) is None


def test_queries_back_off_by_doubling_from_the_minimum_to_the_maximum() -> None:
    waits = [next_interval(n, 30, 3600).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert next_interval(10_000, 30, 3600) == timedelta(seconds=3600)  # forever, no overflow


def test_the_banks_final_word_is_read_exactly() -> None:
    result = BankResult.read(
        {
            "status": "SUCCEEDED",
            "orderType": "WITHDRAW",
            "amount": "1000.10",
            "fee": "0.00",
            "bankRef": "B9",
            "finishedAt": "2026-12-03T02:51:30Z",
        },
        "notification",
    )
    assert result == BankResult(
        "SUCCEEDED",
        "notification",
        order_type="WITHDRAW",
        amount=Decimal("1000.10"),
        fee=Decimal("0.00"),
        bank_ref="B9",
        finished_at=datetime(2026, 12, 3, 2, 51, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 1000.1),
        ("amount", "1000.1"),
        ("fee", "-1.00"),
        ("bankRef", 9),
        ("finishedAt", "now"),
    ],
)
def test_a_malformed_field_is_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(protocol.MessageInvalid) as caught:
        BankResult.read({"status": "FAILED", field: value}, "query")
    assert caught.value.field == field


def test_a_notification_retried_with_a_fresh_timestamp_is_the_same_event() -> None:
    event = {"notifyId": "N1", "orderNo": "R1", "status": "SUCCEEDED", "amount": "1.00"}
    first = _digest({**event, "timestamp": "2026-12-03T02:51:30Z"})
    assert first == _digest({**event, "timestamp": "2026-12-03T04:51:30Z"})
    assert first != _digest({**event, "timestamp": "2026-12-03T02:51:30Z", "amount": "2.00"})


def test_order_numbers_are_protocol_order_numbers_and_fresh() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    numbers = {new_order_no("A", now) for _ in range(100)}
    assert len(numbers) == 100
    for number in numbers:
        assert protocol.check_order_no(number) == number and number.startswith("A20261203")
