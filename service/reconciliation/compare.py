"""The comparison of one business day: the bank's daily files against the platform's books,
both ways, on plain tuples (no ORM objects), so that a day of hundreds of thousands of orders
is compared in memory keyed by (order type, order number).

Orders (every order type of the protocol, protocol.ORDER_TYPES, the same way):

* The bank's lines of one order in one day's file are taken together: a withdrawal paid and
  returned the same day has a SUCCEEDED line and a REVERSED line. The last line (by finishedAt)
  gives the bank's status; the fee is the paying line's (a return's line says 0.00 and the fee
  is not refunded); the amount is the order's.
* BANK_ONLY: the bank lists an order the platform has no order of that number and type.
* PLATFORM_ONLY: an order of the day at the platform the bank's file does not list: one the
  platform holds as final (SUCCEEDED, FAILED, REVERSED) with finished_at in the day, or still
  open (CREATED, SENT, ACCEPTED, UNKNOWN) though created before the day ended. An order open at
  the platform that the bank's file lists as final is a STATUS mismatch, not platform-only; an
  order the bank refused at submission is in the bank's file as FAILED.
* STATUS: the bank's status and the platform's disagree. The bank's SUCCEEDED agrees with the
  platform's REVERSED (the return came later), its REVERSED with REVERSED only, FAILED with
  FAILED only; an open platform order agrees with nothing final.
* AMOUNT: the amounts differ (the platform's order without an amount, an account opening, is
  0.00, as the bank writes it).
* FEE: both sides agree the order is final, and bank_order.fee (0.00 when the bank gave none)
  differs from the fee of the bank's paying line. An open order's fee is not compared: its
  status mismatch says more, and applying it brings the bank's fee.

Balances: every member's sub-account total (available + frozen) in the BALANCE file against the
platform's figure for that member at the end of the day (service/reconciliation/ledger.py
says how it is computed). Totals, not the two buckets, because the platform freezes a
withdrawal when the member asks for it and the bank only when it accepts the order: between
the two the buckets differ and the total does not. A sub-account the platform knows no member
of, and a platform member's account the bank does not list with a figure other than 0.00, are
balance mismatches too. The platform's own account (the BALANCE line without a member) is
compared the same way with the ledger's PLATFORM_FUNDS at the end of the day: a mismatch is a
BALANCE discrepancy of its account number, naming no member.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from service.ocp import protocol

BANK_ONLY = "BANK_ONLY"
PLATFORM_ONLY = "PLATFORM_ONLY"
AMOUNT = "AMOUNT"
STATUS = "STATUS"
FEE = "FEE"
BALANCE = "BALANCE"
ZERO = Decimal("0.00")
OPEN = frozenset({"CREATED", "SENT", "ACCEPTED", "UNKNOWN"})
#: The platform statuses each status of the bank's file agrees with.
AGREES = {
    protocol.SUCCEEDED: frozenset({protocol.SUCCEEDED, protocol.REVERSED}),
    protocol.FAILED: frozenset({protocol.FAILED}),
    protocol.REVERSED: frozenset({protocol.REVERSED}),
}


class BankLine(NamedTuple):
    """One line of an order file, read."""

    order_no: str
    order_type: str
    account_no: str
    amount: Decimal
    fee: Decimal
    status: str
    bank_ref: str
    finished_at: datetime


class BankOrder(NamedTuple):
    """What the bank's file of the day says about one order (its lines taken together)."""

    order_no: str
    order_type: str
    account_no: str
    amount: Decimal
    fee: Decimal | None  # the paying line's; None when only a return is listed
    status: str
    bank_ref: str
    finished_at: datetime


class PlatformOrder(NamedTuple):
    """A bank order as the platform holds it (``member_id`` None for the platform's own)."""

    order_no: str
    order_type: str
    member_id: int | None
    amount: Decimal | None
    fee: Decimal | None
    status: str
    finished_at: datetime | None


class Found(NamedTuple):
    """One discrepancy with both sides' values (None where a side has none)."""

    category: str
    subject: str
    order_type: str | None = None
    member_id: int | None = None
    bank_status: str | None = None
    platform_status: str | None = None
    bank_amount: Decimal | None = None
    platform_amount: Decimal | None = None
    bank_fee: Decimal | None = None
    platform_fee: Decimal | None = None
    bank_ref: str | None = None
    bank_account_no: str | None = None
    bank_finished_at: datetime | None = None


def read_line(row: Mapping[str, str]) -> BankLine:
    """A parsed file row (protocol.parse_file) as a BankLine; MessageInvalid naming the field
    that is not well-formed."""
    order_type = row["orderType"]
    if order_type not in protocol.ORDER_TYPES:
        raise protocol.MessageInvalid("malformed", "orderType")
    status = row["status"]
    if status not in AGREES:
        raise protocol.MessageInvalid("malformed", "status")
    return BankLine(
        protocol.check_order_no(row["orderNo"]),
        order_type,
        row["accountNo"],
        protocol.parse_amount(row["amount"], "amount"),
        protocol.parse_amount(row["fee"], "fee"),
        status,
        row["bankRef"],
        protocol.parse_time(row["finishedAt"], "finishedAt"),
    )


def bank_orders(lines: Iterable[BankLine]) -> dict[tuple[str, str], BankOrder]:
    """The bank's orders of the day by (order type, order number), each order's lines taken
    together (see the module's docstring)."""
    ordered = sorted(lines, key=lambda line: (line.finished_at, line.status == protocol.REVERSED))
    orders: dict[tuple[str, str], BankOrder] = {}
    for line in ordered:
        key = (line.order_type, line.order_no)
        before = orders.get(key)
        paying_fee = None if line.status == protocol.REVERSED else line.fee
        if before is not None and paying_fee is None:
            paying_fee = before.fee
        orders[key] = BankOrder(
            line.order_no,
            line.order_type,
            line.account_no,
            line.amount,
            paying_fee,
            line.status,
            line.bank_ref,
            line.finished_at,
        )
    return orders


def compare_orders(
    bank: Mapping[tuple[str, str], BankOrder],
    platform: Mapping[str, PlatformOrder],
    of_the_day: Iterable[str],
) -> Iterator[Found]:
    """The order discrepancies of one day. ``platform`` holds the platform's orders by number:
    at least every number the bank lists and every order of ``of_the_day`` (the numbers of the
    platform's orders of the day: final with finished_at in it, or open and created before its
    end)."""
    for line in bank.values():
        mine = platform.get(line.order_no)
        if mine is None or mine.order_type != line.order_type:
            yield _bank_side(BANK_ONLY, line)
            continue
        expected = mine.amount if mine.amount is not None else ZERO
        if line.amount != expected:
            yield _both(AMOUNT, line, mine)
        agrees = mine.status in AGREES[line.status]
        if not agrees:
            yield _both(STATUS, line, mine)
        elif line.fee is not None and (mine.fee if mine.fee is not None else ZERO) != line.fee:
            yield _both(FEE, line, mine)
    for order_no in of_the_day:
        mine = platform[order_no]
        if (mine.order_type, order_no) not in bank:
            yield Found(
                PLATFORM_ONLY,
                order_no,
                mine.order_type,
                mine.member_id,
                platform_status=mine.status,
                platform_amount=mine.amount,
                platform_fee=mine.fee,
            )


def compare_balances(
    bank: Iterable[tuple[str, Decimal]],
    platform: Mapping[str, tuple[int, Decimal]],
) -> Iterator[Found]:
    """Balance discrepancies: ``bank`` gives (account number, available + frozen) for every
    member's sub-account in the BALANCE file; ``platform`` the member and the platform's
    figure by account number."""
    listed = set()
    for account_no, total in bank:
        listed.add(account_no)
        member_id, mine = platform.get(account_no, (None, None))
        if mine != total:
            yield Found(
                BALANCE,
                account_no,
                member_id=member_id,
                bank_amount=total,
                platform_amount=mine,
                bank_account_no=account_no,
            )
    for account_no, (member_id, mine) in platform.items():
        if account_no not in listed and mine != ZERO:
            yield Found(BALANCE, account_no, member_id=member_id, platform_amount=mine)


def compare_platform(
    bank: tuple[str, Decimal] | None, account_no: str, mine: Decimal
) -> Iterator[Found]:
    """The platform's own account ``account_no``: ``bank`` is the BALANCE file's line without
    a member (its account number, available + frozen), None when the file has none (a figure
    of 0.00 agrees with that); ``mine`` is the ledger's figure."""
    listed_no, total = bank if bank is not None else (None, None)
    if total != mine and (total is not None or mine != ZERO):
        yield Found(
            BALANCE, account_no, bank_amount=total, platform_amount=mine, bank_account_no=listed_no
        )


def _bank_side(category: str, line: BankOrder) -> Found:
    return Found(
        category,
        line.order_no,
        line.order_type,
        bank_status=line.status,
        bank_amount=line.amount,
        bank_fee=line.fee,
        bank_ref=line.bank_ref,
        bank_account_no=line.account_no or None,
        bank_finished_at=line.finished_at,
    )


def _both(category: str, line: BankOrder, mine: PlatformOrder) -> Found:
    return _bank_side(category, line)._replace(
        member_id=mine.member_id,
        platform_status=mine.status,
        platform_amount=mine.amount,
        platform_fee=mine.fee,
    )
