"""Batch orders on the wire (service/ocp/protocol.py, service/ocp/batches.py): what a batch's
items must be, how an item is written, the backoff of re-issued items, and a disbursement's
service fees adding up to the platform fee."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from service.ocp import protocol
from service.ocp.batches import item_fields, retry_delay
from service.ocp.protocol import MessageInvalid
from service.p2p.investing import platform_fee
from service.schedule import split

GOOD = {
    "itemNo": "P1",
    "payerAccountNo": "SA1",
    "payeeAccountNo": "SA2",
    "principal": "100.00",
    "interest": "1.25",
    "penalty": "0.00",
    "serviceFee": "0.50",
}


def batch(*items: dict, order_type: str = "REPAY", loan_id: object = "7") -> dict:
    return {"orderNo": "B1", "orderType": order_type, "loanId": loan_id, "items": list(items)}


def test_a_well_formed_batchs_items_are_read_with_their_amounts() -> None:
    [item] = protocol.check_batch_items(batch(GOOD))
    assert item["amount"] == Decimal("101.25")
    assert item["serviceFee"] == Decimal("0.50")
    disburse = {**GOOD, "freezeOrderNo": "F1"}
    assert protocol.check_batch_items(batch(disburse, order_type="DISBURSE"))[0]["freezeOrderNo"]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (batch(GOOD, loan_id=7), "loanId"),
        (batch(GOOD, loan_id="７"), "loanId"),  # a full-width digit is no listing id
        (batch(), "items"),
        ({**batch(), "items": "P1"}, "items"),
        (batch(["P1"]), "items[0]"),
        (batch({**GOOD, "principal": 100}), "items[0]"),
        (batch(GOOD, {**GOOD, "itemNo": "P-2"}), "items[1].itemNo"),
        (
            batch({k: v for k, v in GOOD.items() if k != "payeeAccountNo"}),
            "items[0].payeeAccountNo",
        ),
        (batch({**GOOD, "interest": "1.2"}), "items[0].interest"),
        (batch({**GOOD, "principal": "0.00", "interest": "0.00"}), "items[0].serviceFee"),
        (batch({**GOOD, "serviceFee": "101.26"}), "items[0].serviceFee"),
        (batch(GOOD, order_type="DISBURSE"), "items[0].freezeOrderNo"),
    ],
)
def test_an_ill_formed_batch_names_the_field(message: dict, field: str) -> None:
    with pytest.raises(MessageInvalid) as refused:
        protocol.check_batch_items(message)
    assert refused.value.field == field


def test_an_item_is_written_with_every_value_a_string() -> None:
    item = SimpleNamespace(
        order_no="P1",
        account_no="SA1",
        payee_account_no="SA2",
        principal=Decimal("100.00"),
        interest=Decimal("1.25"),
        penalty=Decimal("0.00"),
        service_fee=Decimal("0.50"),
        freeze_order_no=None,
    )
    assert item_fields(item) == GOOD
    assert protocol.check_batch_items(batch(item_fields(item)))[0]["amount"] == Decimal("101.25")
    item.freeze_order_no = "F1"
    assert item_fields(item)["freezeOrderNo"] == "F1"


def test_the_platforms_own_account_is_named_after_the_merchant() -> None:
    assert protocol.platform_account_no("P2PDEV") == "PFP2PDEV"


def test_an_items_notification_names_its_batch_as_text() -> None:
    event = {
        "notifyId": "N1",
        "orderNo": "P1",
        "orderType": "REPAY",
        "status": "SUCCEEDED",
        "amount": "101.25",
        "fee": "0.00",
        "bankRef": "BR1",
        "finishedAt": "2026-12-03T02:00:00Z",
        "batchNo": "B1",
    }
    protocol.check_notification(event)
    with pytest.raises(MessageInvalid, match="batchNo"):
        protocol.check_notification({**event, "batchNo": 1})


def test_reissued_items_wait_longer_each_time() -> None:
    assert [retry_delay(n, 60) for n in (1, 2, 3)] == [
        timedelta(seconds=60),
        timedelta(seconds=120),
        timedelta(seconds=240),
    ]


@pytest.mark.parametrize(
    ("amount", "investments"),
    [
        ("10000.01", ("3333.33", "3333.33", "3333.35")),
        ("999.99", ("0.01", "999.98")),
        ("100.00", ("33.33", "33.33", "33.34")),
    ],
)
def test_the_platform_fee_split_by_investments_adds_up_to_the_fee(
    amount: str, investments: tuple[str, ...]
) -> None:
    fee = platform_fee(Decimal(amount), Decimal("0.0123"))
    shares = split(fee, [Decimal(i) for i in investments])
    assert sum(shares) == fee
    assert all(0 <= s <= Decimal(i) for s, i in zip(shares, investments, strict=True))
    assert all(s == s.quantize(Decimal("0.01")) for s in shares)
