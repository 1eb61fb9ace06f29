"""The reconciliation's reading of the bank's files, its comparison both ways, and the ledger's
figure at the end of a day (the midnight rule), on plain values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from service.ocp import protocol
from service.ocp.client import Exchange
from service.reconciliation import FileRefused, _refusal, day_bounds, read_files
from service.reconciliation.compare import (
    BankLine,
    Found,
    PlatformOrder,
    bank_orders,
    compare_balances,
    compare_orders,
    compare_platform,
)
from service.reconciliation.ledger import LegTimes, Posting, dated, figures_at

D = Decimal
DAY = dt.date(2026, 3, 1)
START, END = day_bounds(DAY)
NOON = START + dt.timedelta(hours=12)


def row(no="R1", order_type="RECHARGE", status="SUCCEEDED", amount="100.00", fee="1.00", at=NOON):
    return {
        "orderNo": no,
        "orderType": order_type,
        "accountNo": "SA01",
        "amount": amount,
        "fee": fee,
        "status": status,
        "bankRef": "B1",
        "finishedAt": protocol.format_time(at),
    }


def line(no="R1", order_type="RECHARGE", status="SUCCEEDED", amount="100.00", fee="1.00", at=NOON):
    return BankLine(no, order_type, "SA01", D(amount), D(fee), status, "B1", at)


def mine(no="R1", order_type="RECHARGE", status="SUCCEEDED", amount="100.00", fee="1.00"):
    return PlatformOrder(
        no, order_type, 7, D(amount) if amount else None, D(fee) if fee else None, status, NOON
    )


def found(bank, platform, day=()):
    return sorted(compare_orders(bank_orders(bank), platform, day))


# -- the day and the files ---------------------------------------------------------------------


def test_a_business_day_is_the_shanghai_calendar_day() -> None:
    shanghai_midnights = (START, END)
    assert shanghai_midnights == (
        dt.datetime(2026, 2, 28, 16, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.UTC),
    )


def test_the_files_of_a_day_become_lines_member_balances_and_the_platforms() -> None:
    balance = [
        {"accountNo": "PFM1", "memberId": "", "available": "5.00", "frozen": "1.50"},
        {"accountNo": "SA01", "memberId": "7", "available": "100.25", "frozen": "20.00"},
    ]
    files = read_files(DAY, [("RECHARGE", [row()]), ("BALANCE", balance)])
    assert files.lines == [line()]
    assert files.balances == [("SA01", D("120.25"))]
    assert files.platform == ("PFM1", D("6.50"))  # the line without a member
    assert read_files(DAY, [("BALANCE", balance[1:])]).platform is None


@pytest.mark.parametrize(
    "bad",
    [
        row(status="PROCESSING"),
        row(no="R-1"),
        row(order_type="WITHDRAW"),  # a line of another type than its file
        row(order_type="PAYOUT"),
        row(at=END),  # finished after the day
        row(at=START - dt.timedelta(seconds=1)),
        {**row(), "finishedAt": "2026-03-01 12:00:00"},
    ],
)
def test_a_line_that_is_not_the_day_s_is_refused(bad) -> None:
    with pytest.raises(FileRefused) as refused:
        read_files(DAY, [("RECHARGE", [row(no="R0"), bad])])
    assert (refused.value.reason, refused.value.file_type) == ("FILE_MALFORMED", "RECHARGE")


def _exchange(status, body, signature="VALID", error=None, answer=None) -> Exchange:
    now = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    return Exchange(b"", body, status, now, now, signature, error, answer)


@pytest.mark.parametrize(
    ("exchange", "reason"),
    [
        (
            _exchange(404, b"{}", error="http_404", answer={"error": "FILE_NOT_READY"}),
            "FILE_NOT_READY",
        ),
        (
            _exchange(200, b"1|1.00|0.00\n", signature="INVALID", error="signature"),
            "SIGNATURE_INVALID",
        ),
        (_exchange(200, b"1|1.00|0.00\n", error="unreadable"), "FILE_HEADER_MISMATCH"),
        (_exchange(200, b"0|0.00|0.00\nR1|RECHARGE\n", error="unreadable"), "FILE_MALFORMED"),
        (_exchange(None, None, signature=None, error="read_timeout"), "BANK_UNAVAILABLE"),
        (_exchange(503, b"", signature="MISSING", error="http_503"), "BANK_UNAVAILABLE"),
    ],
)
def test_a_file_the_run_cannot_use_fails_it_with_its_reason(exchange, reason) -> None:
    assert _refusal(exchange, "RECHARGE") == reason


# -- orders, both ways -------------------------------------------------------------------------


def test_a_day_that_agrees_finds_nothing() -> None:
    bank = [line(), line("W1", "WITHDRAW"), line("F1", status="FAILED", fee="0.00")]
    platform = {
        "R1": mine(),
        "W1": mine("W1", "WITHDRAW"),
        "F1": mine("F1", status="FAILED", fee=None),  # refused: no fee recorded
    }
    assert found(bank, platform, ["R1", "W1", "F1"]) == []


def test_a_line_without_a_platform_order_of_its_number_and_type_is_bank_only() -> None:
    platform = {"W1": mine("W1", "WITHDRAW")}
    assert [(f.category, f.subject) for f in found([line(), line("W1")], platform)] == [
        ("BANK_ONLY", "R1"),
        ("BANK_ONLY", "W1"),  # the bank has W1 as a recharge
    ]
    [bank_only] = found([line()], {})
    assert bank_only == Found(
        "BANK_ONLY",
        "R1",
        "RECHARGE",
        None,
        "SUCCEEDED",
        None,
        D("100.00"),
        None,
        D("1.00"),
        None,
        "B1",
        "SA01",
        NOON,
    )


def test_an_order_of_the_day_the_bank_does_not_list_is_platform_only() -> None:
    platform = {"R1": mine(), "R2": mine("R2", status="UNKNOWN", fee=None)}
    assert found([], platform, ["R1", "R2"]) == [
        Found(
            "PLATFORM_ONLY",
            "R1",
            "RECHARGE",
            7,
            platform_status="SUCCEEDED",
            platform_amount=D("100.00"),
            platform_fee=D("1.00"),
        ),
        Found(
            "PLATFORM_ONLY",
            "R2",
            "RECHARGE",
            7,
            platform_status="UNKNOWN",
            platform_amount=D("100.00"),
        ),
    ]


def test_an_order_open_at_the_platform_and_final_at_the_bank_is_a_status_mismatch() -> None:
    platform = {"R1": mine(status="ACCEPTED", fee=None)}
    [mismatch] = found([line()], platform, ["R1"])  # not platform-only as well
    assert (mismatch.category, mismatch.bank_status, mismatch.platform_status) == (
        "STATUS",
        "SUCCEEDED",
        "ACCEPTED",
    )


@pytest.mark.parametrize(
    ("bank", "platform", "category"),
    [
        ("SUCCEEDED", "FAILED", "STATUS"),
        ("FAILED", "SUCCEEDED", "STATUS"),
        ("REVERSED", "SUCCEEDED", "STATUS"),  # a return not applied yet
        ("SUCCEEDED", "REVERSED", None),  # returned later
        ("REVERSED", "REVERSED", None),
    ],
)
def test_statuses_agree_as_the_bank_s_events_follow_each_other(bank, platform, category) -> None:
    fee = "0.00" if bank == "REVERSED" else "1.00"
    result = found(
        [line("W1", "WITHDRAW", bank, fee=fee)], {"W1": mine("W1", "WITHDRAW", platform)}
    )
    assert [f.category for f in result] == ([category] if category else [])


def test_amounts_and_fees_are_compared_both_sides_final() -> None:
    assert [f.category for f in found([line(amount="100.01")], {"R1": mine()})] == ["AMOUNT"]
    [fee] = found([line(fee="2.00")], {"R1": mine()})
    assert (fee.category, fee.bank_fee, fee.platform_fee) == ("FEE", D("2.00"), D("1.00"))
    # An account opening carries no amount at the platform: 0.00, as the bank writes it.
    opening = line("O1", "OPEN_ACCOUNT", amount="0.00", fee="0.00")
    assert found([opening], {"O1": mine("O1", "OPEN_ACCOUNT", amount=None, fee=None)}) == []


def test_a_withdrawal_paid_and_returned_the_same_day_is_one_order() -> None:
    paid = line("W1", "WITHDRAW", "SUCCEEDED", fee="2.00")
    returned = line("W1", "WITHDRAW", "REVERSED", fee="0.00", at=NOON + dt.timedelta(hours=1))
    [order] = bank_orders([returned, paid]).values()
    assert (order.status, order.fee) == ("REVERSED", D("2.00"))
    assert found([returned, paid], {"W1": mine("W1", "WITHDRAW", "REVERSED", fee="2.00")}) == []
    # Only the return listed that day (paid the day before): its fee is not compared.
    only = bank_orders([returned])
    assert only[("WITHDRAW", "W1")].fee is None


@pytest.mark.parametrize("order_type", protocol.ORDER_TYPES)
def test_every_order_type_is_compared_alike(order_type) -> None:
    bank = [line("X1", order_type, "FAILED", fee="0.00")]
    assert found(bank, {"X1": mine("X1", order_type, "FAILED", fee=None)}, ["X1"]) == []
    assert [f.category for f in found(bank, {"X1": mine("X1", order_type)})] == ["STATUS"]


# -- balances ----------------------------------------------------------------------------------


def test_balances_compare_each_sub_account_s_total() -> None:
    bank = [("SA01", D("120.25")), ("SA02", D("5.00")), ("SA03", D("1.00"))]
    platform = {
        "SA01": (7, D("120.25")),
        "SA02": (8, D("4.00")),
        "SA04": (9, D("3.00")),  # not at the bank
        "SA05": (10, D("0.00")),  # opened after the day: nothing to say
    }
    assert sorted(compare_balances(bank, platform)) == [
        Found(
            "BALANCE",
            "SA02",
            member_id=8,
            bank_amount=D("5.00"),
            platform_amount=D("4.00"),
            bank_account_no="SA02",
        ),
        Found("BALANCE", "SA03", bank_amount=D("1.00"), bank_account_no="SA03"),
        Found("BALANCE", "SA04", member_id=9, platform_amount=D("3.00")),
    ]


@pytest.mark.parametrize(
    ("bank", "mine", "found"),
    [
        (("PFM1", D("6.50")), D("6.50"), []),
        (
            ("PFM1", D("6.50")),
            D("5.00"),
            [
                Found(
                    "BALANCE",
                    "PFM1",
                    bank_amount=D("6.50"),
                    platform_amount=D("5.00"),
                    bank_account_no="PFM1",
                )
            ],
        ),
        (None, D("0.00"), []),  # no line, nothing held: the account was not opened yet
        (None, D("2.00"), [Found("BALANCE", "PFM1", platform_amount=D("2.00"))]),
    ],
)
def test_the_platforms_own_account_is_compared_with_its_mirror(bank, mine, found) -> None:
    """A mismatch is a BALANCE discrepancy of the platform's account number, naming no
    member."""
    assert list(compare_platform(bank, "PFM1", mine)) == found


# -- the midnight rule -------------------------------------------------------------------------

BEFORE = END - dt.timedelta(seconds=10)
AFTER = END + dt.timedelta(seconds=10)
LEG = ("PAYMENT_ORDER", 1)


def test_a_posting_made_after_midnight_for_an_order_the_bank_finished_before_counts() -> None:
    late = Posting(1, LEG, AFTER, 7, D("100.00"))  # the recharge's notification came late
    legs = {LEG: LegTimes(BEFORE)}
    assert dated(late, legs) == BEFORE
    assert figures_at(END, {7: D("100.00")}, [late], legs) == {7: D("100.00")}


def test_a_posting_made_before_midnight_for_an_order_the_bank_finished_after_does_not() -> None:
    early = Posting(1, LEG, BEFORE, 7, D("100.00"))  # a clock on the other side of midnight
    assert figures_at(END, {7: D("100.00")}, [early], {LEG: LegTimes(AFTER)}) == {7: D("0.00")}


def test_other_postings_count_by_when_they_were_made() -> None:
    no_order = Posting(1, ("INVESTMENT", 5), AFTER, 7, D("-50.00"))
    still_open = Posting(2, LEG, AFTER, 7, D("10.00"))
    legs = {LEG: LegTimes(None)}
    assert figures_at(END, {7: D("60.00")}, [no_order, still_open], legs) == {7: D("100.00")}


def test_a_return_is_dated_by_its_own_time_not_the_payout_s() -> None:
    payout = Posting(1, LEG, BEFORE, 7, D("-100.00"))
    returned = Posting(2, LEG, AFTER + dt.timedelta(days=3), 7, D("100.00"))
    # Paid in the day, returned three days later: the day's figure is after the payout only.
    legs = {LEG: LegTimes(NOON, reversal_posting=2, reversed_at=returned.created_at)}
    assert figures_at(END, {7: D("100.00")}, [payout, returned], legs) == {7: D("0.00")}
    # Returned within the day (the day's file says when), applied after midnight: it counts.
    legs = {LEG: LegTimes(NOON, reversal_posting=2, reversed_at=BEFORE)}
    assert figures_at(END, {7: D("100.00")}, [payout, returned], legs) == {7: D("100.00")}


def test_members_the_bank_does_not_know_are_left_alone() -> None:
    stranger = Posting(1, LEG, AFTER, 99, D("5.00"))
    assert figures_at(END, {7: D("1.00")}, [stranger], {}) == {7: D("1.00")}
