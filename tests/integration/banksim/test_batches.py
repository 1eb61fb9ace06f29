"""The simulator's batch orders (banksim/batches.py): a REPAY batch received whole, each item an
order of its own (finished, notified with its batch number, queried and filed by its item
number), refusals that take no item, duplicates that move nothing, and faults per batch or
per item."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from service.ocp import protocol
from tests.banksupport import MERCHANT

D = Decimal
PLATFORM_ACCOUNT = protocol.platform_account_no(MERCHANT)


def item(no: str, payer: str, payee: str, principal: str, **fields: str) -> dict:
    return {
        "itemNo": no,
        "payerAccountNo": payer,
        "payeeAccountNo": payee,
        "principal": principal,
        "interest": fields.get("interest", "0.00"),
        "penalty": fields.get("penalty", "0.00"),
        "serviceFee": fields.get("serviceFee", "0.00"),
    }


def repay(sim, batch_no: str, items: list[dict], loan_id: str = "42"):
    return sim.submit(batch_no, "REPAY", loanId=loan_id, items=items)


def test_a_batch_is_accepted_and_each_item_paid_notified_and_filed_on_its_own(sim) -> None:
    borrower = sim.funded_account("1", "1000.00")
    a, b = sim.open_account("2"), sim.open_account("3")
    items = [
        item("I1", borrower, a, "300.00", interest="10.00"),
        item("I2", borrower, b, "200.00", penalty="5.00", serviceFee="1.00"),
        item("I3", borrower, PLATFORM_ACCOUNT, "0.00", penalty="2.50"),
    ]
    answer = sim.answer(repay(sim, "B1", items))
    assert (answer["orderNo"], answer["result"]) == ("B1", "ACCEPTED")
    assert sim.query("I1")["status"] == "PROCESSING"
    assert sim.query("B1")["status"] == "NOT_FOUND"  # a batch number is not an order
    sim.settle()
    assert sim.balance(borrower) == (D("482.50"), D("0.00"))
    assert sim.balance(a) == (D("310.00"), D("0.00"))
    assert sim.balance(b) == (D("204.00"), D("0.00"))
    assert sim.balance(PLATFORM_ACCOUNT) == (D("3.50"), D("0.00"))
    events = {m["orderNo"]: m for m in sim.platform.received if m["orderType"] == "REPAY"}
    assert sorted(events) == ["I1", "I2", "I3"]
    assert {m["batchNo"] for m in events.values()} == {"B1"}
    assert (events["I2"]["status"], events["I2"]["amount"]) == ("SUCCEEDED", "205.00")
    assert sim.query("I2")["status"] == "SUCCEEDED"

    again = sim.answer(repay(sim, "B1", items))
    assert (again["result"], again["duplicate"]) == ("ACCEPTED", True)
    sim.settle()
    assert sim.balance(borrower) == (D("482.50"), D("0.00"))  # nothing moved twice

    sim.clock.advance(86400)
    with sim.bank.books.transaction() as db:
        day = protocol.business_day(sim.clock() - dt.timedelta(days=1))
        lines = protocol.parse_file("REPAY", sim.bank.file_body(db, day, "REPAY"))
    assert [(r["orderNo"], r["amount"], r["status"]) for r in lines] == [
        ("I1", "310.00", "SUCCEEDED"),
        ("I2", "205.00", "SUCCEEDED"),
        ("I3", "2.50", "SUCCEEDED"),
    ]


def test_an_item_the_payer_cannot_pay_fails_alone(sim) -> None:
    borrower = sim.funded_account("1", "100.00")
    a = sim.open_account("2")
    repay(sim, "B1", [item("I1", borrower, a, "80.00"), item("I2", borrower, a, "80.00")])
    sim.settle()
    assert (sim.query("I1")["status"], sim.query("I2")["status"]) == ("SUCCEEDED", "FAILED")
    assert sim.query("I2")["reason"] == "INSUFFICIENT_BALANCE"
    assert sim.balance(borrower) == (D("20.00"), D("0.00"))


def test_a_batch_is_refused_whole(sim) -> None:
    borrower = sim.funded_account("1", "100.00")
    a = sim.open_account("2")
    unknown = sim.answer(
        repay(sim, "B1", [item("I1", borrower, a, "1.00"), item("I2", "X", a, "1.00")])
    )
    assert (unknown["result"], unknown["reason"]) == ("REFUSED", "ACCOUNT_NOT_FOUND")
    assert sim.query("I1")["status"] == "FAILED"  # recorded, refused: a query tells
    too_many = [item(f"J{k}", borrower, a, "0.01") for k in range(protocol.MAX_BATCH_ITEMS + 1)]
    assert sim.answer(repay(sim, "B2", too_many))["reason"] == "TOO_MANY_ITEMS"
    reused = sim.answer(repay(sim, "B3", [item("I1", borrower, a, "1.00")]))
    assert reused["reason"] == "ITEM_NO_USED"
    bad = sim.answer(repay(sim, "B4", [{**item("K1", borrower, a, "1.00"), "principal": "1"}]))
    assert bad["reason"] == "MALFORMED"
    sim.arm("REPAY", "refuse")
    assert sim.answer(repay(sim, "B5", [item("L1", borrower, a, "1.00")]))["reason"] == (
        "REFUSED_BY_BANK"
    )
    sim.settle()
    assert sim.balance(borrower) == (D("100.00"), D("0.00"))
    assert sim.bank.submit(*sim.signed({"orderNo": "B6", "orderType": "REPAY"})).status == 400


def test_item_faults_take_one_count_an_item_and_batch_faults_one_a_batch(sim) -> None:
    borrower = sim.funded_account("1", "100.00")
    a = sim.open_account("2")
    sim.arm("REPAY", "fail", count=1)
    repay(sim, "B1", [item("I1", borrower, a, "10.00"), item("I2", borrower, a, "10.00")])
    sim.settle()
    assert [sim.query(n)["status"] for n in ("I1", "I2")] == ["FAILED", "SUCCEEDED"]
    assert sim.query("I1")["reason"] == "DECLINED_BY_BANK"

    sim.arm("REPAY", "timeout_without_moving")
    assert repay(sim, "B2", [item("J1", borrower, a, "10.00")]).status == 503
    assert sim.query("J1")["status"] == "NOT_FOUND"  # then sent again, whole
    assert sim.answer(repay(sim, "B2", [item("J1", borrower, a, "10.00")]))["result"] == (
        "ACCEPTED"
    )
    sim.arm("REPAY", "timeout_after_moving")
    reply = repay(sim, "B3", [item("K1", borrower, a, "10.00")])
    assert reply.hang_seconds > 0
    assert sim.query("K1")["status"] == "SUCCEEDED"
    sim.settle()
    assert sim.balance(borrower) == (D("70.00"), D("0.00"))


def frozen(sim, account_no: str, order_no: str, amount: str) -> None:
    """A SUCCEEDED FREEZE of ``amount`` on ``account_no``."""
    sim.submit(order_no, "FREEZE", accountNo=account_no, amount=amount)
    sim.settle()
    assert sim.query(order_no)["status"] == "SUCCEEDED"


def test_a_disbursement_draws_each_investment_from_its_freeze(sim) -> None:
    borrower = sim.open_account("1")
    a, b = sim.funded_account("2", "600.00"), sim.funded_account("3", "400.00")
    frozen(sim, a, "F1", "600.00")
    frozen(sim, b, "F2", "300.00")  # froze less than it lends
    items = [
        {**item("D1", a, borrower, "600.00", serviceFee="6.00"), "freezeOrderNo": "F1"},
        {**item("D2", b, borrower, "400.00", serviceFee="4.00"), "freezeOrderNo": "F2"},
    ]
    assert sim.answer(sim.submit("B1", "DISBURSE", loanId="9", items=items))["result"] == (
        "ACCEPTED"
    )
    sim.settle()
    assert sim.query("D1")["status"] == "SUCCEEDED"
    assert (sim.query("D2")["status"], sim.query("D2")["reason"]) == (
        "FAILED",
        "INSUFFICIENT_FROZEN",
    )
    assert sim.balance(a) == (D("0.00"), D("0.00"))
    assert sim.balance(b) == (D("100.00"), D("300.00"))  # still frozen under F2
    assert sim.balance(borrower) == (D("594.00"), D("0.00"))
    assert sim.balance(PLATFORM_ACCOUNT) == (D("6.00"), D("0.00"))

    # An UNFREEZE cannot release what a DISBURSE item took; a failed item gave its draw back.
    sim.arm("DISBURSE", "fail")
    again = [{**item("D3", b, borrower, "300.00"), "freezeOrderNo": "F2"}]
    sim.submit("B2", "DISBURSE", loanId="9", items=again)
    sim.settle()
    assert sim.query("D3")["status"] == "FAILED"
    sim.submit("U1", "UNFREEZE", accountNo=b, amount="300.00", freezeOrderNo="F2")
    sim.settle()
    assert sim.query("U1")["status"] == "SUCCEEDED"
    assert sim.balance(b) == (D("400.00"), D("0.00"))
    sim.submit("U2", "UNFREEZE", accountNo=a, amount="0.01", freezeOrderNo="F1")
    assert sim.query("U2")["status"] == "FAILED"
