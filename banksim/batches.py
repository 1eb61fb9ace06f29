"""The simulated bank's batch orders (DISBURSE, REPAY): a batch received whole, item by item.

A batch is received atomically: ACCEPTED, every item becomes an order of its own (PROCESSING,
finished ``delay`` later like any order, notified, queried and filed by its item number), or
REFUSED, no item taken (the items whose numbers are new are recorded FAILED with the batch's
reason, so a query tells that). A batch number already received answers that batch as it
is (``duplicate``) and moves nothing. When an item finishes, its payer pays principal +
interest + penalty (REPAY from available; DISBURSE from frozen, what it drew from its FREEZE
when the batch was accepted, given back if the item fails), the payee receives that less the
service fee, and the platform's account the service fee; an item the payer cannot pay FAILS on
its own (INSUFFICIENT_BALANCE; INSUFFICIENT_FROZEN when its FREEZE could not cover it).

Faults, per order type: ``refuse``, ``http_5xx``, ``timeout_after_moving`` (every item finished
at once, a ``fail`` an item drew not applied) and ``timeout_without_moving`` are used by a
batch; the others (``fail``, ``delay``, ``never_notify``, ``notify_twice``,
``notify_out_of_order``, ``bad_signature``) by its items, one count an item: ``REPAY:fail:2``
fails the next two REPAY items, wherever they are.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

from banksim.books import draw, drawn_by, frozen_under, stamp
from service.ocp import protocol
from service.ocp.protocol import MessageInvalid

ZERO = Decimal("0.00")
MALFORMED = "MALFORMED"
TOO_MANY_ITEMS = "TOO_MANY_ITEMS"
ITEM_NO_USED = "ITEM_NO_USED"
INSUFFICIENT_FROZEN = "INSUFFICIENT_FROZEN"
#: Faults a batch uses; the other faults are used by its items.
BATCH_FAULTS = frozenset({"refuse", "http_5xx", "timeout_after_moving", "timeout_without_moving"})
ITEM_FAULTS = frozenset(
    {"fail", "delay", "never_notify", "notify_twice", "notify_out_of_order", "bad_signature"}
)
# The envelope: a batch whose number, type, listing or item array cannot be read is answered
# 400 MALFORMED and recorded nowhere; a malformed item refuses the batch (MALFORMED).
_ENVELOPE = ("orderNo", "loanId", "items", "notifyUrl")


# banksim.bank imports this module; its book helpers are imported where they are used.


def submit(bank, message: dict, now: dt.datetime):
    """POST /v1/orders for a batch: the Reply (``bank`` is the banksim.bank.Bank)."""
    from banksim.bank import _account, _order, _unavailable

    try:
        batch_no = protocol.check_order_no(message.get("orderNo"))
        protocol.require(message, ("notifyUrl",))
        items, malformed = protocol.check_batch_items(message), None
    except MessageInvalid as refused:
        if refused.field is None or refused.field in _ENVELOPE:
            return bank._refusal(refused)
        items, malformed = [], refused
    order_type = message["orderType"]
    with bank.books.transaction() as db:
        existing = _batch(db, batch_no)
        if existing is not None:
            return bank._signed(200, _answer(existing, duplicate=True))
        fault = bank.faults.take(order_type, among=BATCH_FAULTS)
        name = fault.name if fault else None
        if name == "http_5xx":
            return _unavailable()
        if name == "timeout_without_moving":
            return _unavailable(bank.config.hang_seconds)
        fee = bank.config.fees.get(order_type, ZERO)
        reason = _refusal(db, bank, batch_no, items, malformed, fault, fee, _account)
        at = stamp(now)
        db.execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                batch_no,
                order_type,
                message["loanId"],
                protocol.REFUSED if reason else protocol.ACCEPTED,
                reason,
                _bank_ref(db, now),
                at,
            ),
        )
        for item in _fresh(db, items):
            item_fault = None if reason else bank.faults.take(order_type, among=ITEM_FAULTS)
            _record_item(db, bank, batch_no, order_type, message, item, item_fault, reason, now)
        hang = 0.0
        if name == "timeout_after_moving":
            if reason is None:
                for item in items:
                    bank._finish(db, _order(db, item["itemNo"]), protocol.SUCCEEDED, None, now)
            hang = bank.config.hang_seconds
        answer = _answer(_batch(db, batch_no))
    return bank._signed(200, answer, hang)


def execute(db: sqlite3.Connection, row: sqlite3.Row, platform_account_no: str, at: str):
    """Carry out item ``row`` (its order) if its payer can pay: (status, reason)."""
    from banksim.bank import _account, _move

    item = db.execute("SELECT * FROM items WHERE item_no = ?", (row["order_no"],)).fetchone()
    amount, service_fee = Decimal(row["amount"]), Decimal(item["service_fee"])
    payer = _account(db, row["account_no"])
    if _account(db, item["payee_account_no"]) is None or payer is None:
        return protocol.FAILED, "ACCOUNT_NOT_FOUND"
    order_no = row["order_no"]
    if row["order_type"] == protocol.DISBURSE:
        if drawn_by(db, order_no) is None:  # its FREEZE did not cover it when accepted
            return protocol.FAILED, INSUFFICIENT_FROZEN
        _move(db, payer["account_no"], order_no, "PAY", ZERO, -amount, at)
    else:
        if Decimal(payer["available"]) < amount:
            return protocol.FAILED, "INSUFFICIENT_BALANCE"
        _move(db, payer["account_no"], order_no, "PAY", -amount, ZERO, at)
    _move(db, item["payee_account_no"], order_no, "RECEIVE", amount - service_fee, ZERO, at)
    if service_fee:
        _move(db, platform_account_no, order_no, "SERVICE_FEE", service_fee, ZERO, at)
    return protocol.SUCCEEDED, None


def with_batch_no(db: sqlite3.Connection, event: dict) -> dict:
    """A notification's content, with its item's batch number when it is about an item."""
    item = db.execute(
        "SELECT batch_no FROM items WHERE item_no = ?", (event["orderNo"],)
    ).fetchone()
    return event if item is None else {**event, "batchNo": item["batch_no"]}


def _refusal(db, bank, batch_no, items, malformed, fault, fee, account) -> str | None:
    """Why the batch is refused (no item taken), or None."""
    if malformed is not None:
        return MALFORMED
    if fault is not None and fault.name == "refuse":
        return "REFUSED_BY_BANK"
    if len(items) > protocol.MAX_BATCH_ITEMS:
        return TOO_MANY_ITEMS
    numbers = [item["itemNo"] for item in items]
    taken = db.execute(
        "SELECT 1 FROM orders WHERE order_no = ? UNION ALL SELECT 1 FROM batches"
        " WHERE batch_no = ?",
        (batch_no, batch_no),
    ).fetchone()
    if taken is not None or len(set(numbers)) != len(numbers) or batch_no in numbers:
        return ITEM_NO_USED
    if any(_known(db, number) for number in numbers):
        return ITEM_NO_USED
    for item in items:
        payer = account(db, item["payerAccountNo"])
        if (
            payer is None
            or payer["member_id"] is None
            or account(db, item["payeeAccountNo"]) is None
        ):
            return "ACCOUNT_NOT_FOUND"
    platform = account(db, bank.platform_account_no)
    if fee * len(items) > Decimal(platform["available"]):
        return "FEE_UNPAYABLE"
    return None


def _known(db: sqlite3.Connection, number: str) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM orders WHERE order_no = ? UNION ALL SELECT 1 FROM batches"
            " WHERE batch_no = ?",
            (number, number),
        ).fetchone()
        is not None
    )


def _fresh(db: sqlite3.Connection, items: list[dict]) -> list[dict]:
    """The items whose numbers the bank has never seen (each once): those it records."""
    seen: set[str] = set()
    fresh = []
    for item in items:
        number = item["itemNo"]
        if number not in seen and not _known(db, number):
            fresh.append(item)
        seen.add(number)
    return fresh


def _record_item(db, bank, batch_no, order_type, message, item, fault, reason, now) -> None:
    """The item as an order of its own: PROCESSING (due after the delay), or FAILED with the
    batch's refusal."""
    from banksim.bank import _account, _bank_ref, _move

    payer = _account(db, item["payerAccountNo"])
    fee = ZERO if reason else bank.config.fees.get(order_type, ZERO)
    at = stamp(now)
    db.execute(
        "INSERT INTO orders (order_no, order_type, result, status, reason, member_id,"
        " account_no, amount, fee, bank_ref, notify_url, fault, fault_seconds, accepted_at,"
        " due_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item["itemNo"],
            order_type,
            protocol.REFUSED if reason else protocol.ACCEPTED,
            protocol.FAILED if reason else protocol.PROCESSING,
            reason,
            payer["member_id"] if payer is not None else None,
            item["payerAccountNo"],
            str(item["amount"]),
            str(fee),
            _bank_ref(db, now),
            message["notifyUrl"],
            fault.name if fault else None,
            fault.seconds if fault else None,
            at,
            None if reason else stamp(now + dt.timedelta(seconds=bank.config.delay_seconds)),
            at if reason else None,
        ),
    )
    db.execute(
        "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item["itemNo"],
            batch_no,
            item["payeeAccountNo"],
            str(item["principal"]),
            str(item["interest"]),
            str(item["penalty"]),
            str(item["serviceFee"]),
            item.get("freezeOrderNo"),
        ),
    )
    if fee:
        _move(db, bank.platform_account_no, item["itemNo"], "FEE_FREEZE", -fee, fee, at)
    freeze_no = item.get("freezeOrderNo")
    if not reason and freeze_no is not None:  # a DISBURSE item draws from its FREEZE now
        remaining = frozen_under(db, freeze_no, item["payerAccountNo"])
        if remaining is not None and remaining >= item["amount"]:
            draw(db, freeze_no, item["itemNo"], item["amount"], at)


def _batch(db: sqlite3.Connection, batch_no: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM batches WHERE batch_no = ?", (batch_no,)).fetchone()


def _bank_ref(db: sqlite3.Connection, now: dt.datetime) -> str:
    (count,) = db.execute("SELECT COUNT(*) FROM batches").fetchone()
    return f"BB{protocol.business_day(now):%Y%m%d}{count + 1:08d}"


def _answer(row: sqlite3.Row, *, duplicate: bool = False) -> dict:
    answer = {"orderNo": row["batch_no"], "result": row["result"], "bankRef": row["bank_ref"]}
    if row["reason"] is not None:
        answer["reason"] = row["reason"]
    if duplicate:
        answer["duplicate"] = True
    return answer
