"""The daily files: ready once the business day (Asia/Shanghai) has ended, signed, their
headers matching their lines, every order that became final that day on its day (a reversal on
its own day), BALANCE equal to the books at the end of the day, and the same bytes whenever
fetched again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from service.ocp import protocol
from service.ocp.signing import Signer, generate_keypair
from tests.banksupport import MERCHANT, PLATFORM_KEY_ID
from tests.integration.banksim.conftest import BANK_KEYS, CARD, PLATFORM

DAY = "2026-12-02"
NEXT_DAY = "2026-12-03"


def fetch(sim, day: str, file_type: str, *, signer: Signer = PLATFORM, **query):
    fields = {"merchantId": MERCHANT, "timestamp": protocol.format_time(sim.clock()), **query}
    target = f"/v1/files/{day}/{file_type}?{urlencode(fields)}".encode()
    return sim.bank.daily_file(target, protocol.signed_headers(signer, target), day, file_type)


def rows(sim, day: str, file_type: str) -> list[dict]:
    reply = fetch(sim, day, file_type)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    protocol.verify(BANK_KEYS, reply.body, reply.headers)
    return protocol.parse_file(file_type, reply.body)  # the header matches the lines


def at(sim, utc: str) -> None:
    sim.clock.now = dt.datetime.fromisoformat(utc)


@pytest.fixture
def day_of_orders(sim):
    """On 2026-12-02 (Shanghai): an account opened and funded with 100.00, W1 30.00 paid out,
    W2 refused, W3 20.00 paid out at 23:59:59 and returned the next day, R9 finishing just
    after midnight."""
    account_no = sim.funded_account("7", "100.00")
    sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="30.00", cardNumber=CARD)
    sim.submit("W2", "WITHDRAW", accountNo=account_no, amount="500.00", cardNumber=CARD)
    sim.settle()
    sim.arm("WITHDRAW", "reverse_after_success", seconds=3600)
    at(sim, "2026-12-02T15:59:57+00:00")
    sim.submit("W3", "WITHDRAW", accountNo=account_no, amount="20.00", cardNumber=CARD)
    sim.submit("R9", "RECHARGE", accountNo=account_no, amount="1.50")
    sim.settle(2)  # 15:59:59Z, 23:59:59 in Shanghai: both finish on the 2nd
    sim.submit("R10", "RECHARGE", accountNo=account_no, amount="2.25")
    at(sim, "2026-12-02T15:59:59+00:00")
    sim.clock.advance(1)  # 16:00:00Z: midnight in Shanghai
    sim.bank.run_due()
    sim.settle(3600)  # W3 returned on the 3rd
    return account_no


def test_a_file_of_a_day_not_yet_ended_is_not_ready(sim) -> None:
    at(sim, "2026-12-02T15:59:59+00:00")
    reply = fetch(sim, DAY, "BALANCE")
    assert reply.status == 404 and sim.answer(reply)["error"] == "FILE_NOT_READY"
    sim.clock.advance(1)
    assert fetch(sim, DAY, "BALANCE").status == 200


def test_an_order_file_lists_what_became_final_that_day(sim, day_of_orders) -> None:
    account_no = day_of_orders
    withdrawals = rows(sim, DAY, "WITHDRAW")
    assert [(r["orderNo"], r["status"], r["amount"]) for r in withdrawals] == [
        ("W2", "FAILED", "500.00"),
        ("W1", "SUCCEEDED", "30.00"),
        ("W3", "SUCCEEDED", "20.00"),
    ]
    assert {r["accountNo"] for r in withdrawals} == {account_no}
    assert withdrawals[-1]["finishedAt"] == "2026-12-02T15:59:59Z"
    assert [(r["orderNo"], r["amount"]) for r in rows(sim, DAY, "RECHARGE")] == [
        ("FUND7", "100.00"),
        ("R9", "1.50"),
    ]
    at(sim, "2026-12-03T16:00:00+00:00")
    assert [r["orderNo"] for r in rows(sim, NEXT_DAY, "RECHARGE")] == ["R10"]
    returned = rows(sim, NEXT_DAY, "WITHDRAW")
    assert [(r["orderNo"], r["status"], r["amount"], r["fee"]) for r in returned] == [
        ("W3", "REVERSED", "20.00", "0.00")
    ]
    assert [r["orderNo"] for r in rows(sim, DAY, "OPEN_ACCOUNT")] == ["OPEN7"]
    assert fetch(sim, DAY, "RECHARGE").body.startswith(b"2|101.50|0.00\n")


def test_balance_is_the_books_at_the_end_of_the_day(sim, day_of_orders) -> None:
    account_no = day_of_orders
    end_of_day = {r["accountNo"]: r for r in rows(sim, DAY, "BALANCE")}
    # 100.00 in, 30.00 and 20.00 out, 1.50 in; R10 and W3's return belong to the 3rd.
    assert end_of_day[account_no] == {
        "accountNo": account_no,
        "memberId": "7",
        "available": "51.50",
        "frozen": "0.00",
    }
    assert end_of_day[sim.bank.platform_account_no]["memberId"] == ""
    at(sim, "2026-12-03T16:00:00+00:00")
    books = {a["accountNo"]: a for a in sim.bank.accounts()}
    next_day = rows(sim, NEXT_DAY, "BALANCE")
    assert {r["accountNo"]: (r["available"], r["frozen"]) for r in next_day} == {
        no: (a["available"], a["frozen"]) for no, a in books.items()
    }
    assert Decimal(books[account_no]["available"]) == Decimal("73.75")


def test_a_file_is_written_once_and_served_as_written(sim, day_of_orders) -> None:
    first = fetch(sim, DAY, "BALANCE").body
    account_no = day_of_orders
    sim.submit("R11", "RECHARGE", accountNo=account_no, amount="9.00")
    sim.settle()
    sim.clock.advance(86_400)
    again = fetch(sim, DAY, "BALANCE")
    assert again.body == first
    protocol.verify(BANK_KEYS, again.body, again.headers)


def test_a_day_without_orders_has_empty_files(sim) -> None:
    at(sim, "2026-12-05T00:00:00+00:00")
    assert fetch(sim, "2026-12-01", "WITHDRAW").body == b"0|0.00|0.00\n"


OTHER = Signer(PLATFORM_KEY_ID, generate_keypair()[0])


@pytest.mark.parametrize(
    ("request_", "status", "error"),
    [
        ({"signer": OTHER}, 401, "SIGNATURE_INVALID"),
        ({"merchantId": "OTHER"}, 401, "UNKNOWN_MERCHANT"),
        ({"timestamp": "2026-12-01T00:00:00Z"}, 401, "STALE"),
        ({"timestamp": "yesterday"}, 400, "MALFORMED"),
    ],
)
def test_a_file_request_that_cannot_be_trusted_is_refused(sim, request_, status, error) -> None:
    at(sim, "2026-12-05T00:00:00+00:00")
    reply = fetch(sim, DAY, "BALANCE", **request_)
    assert (reply.status, sim.answer(reply)["error"]) == (status, error)


def test_unknown_files_and_days_are_refused(sim) -> None:
    at(sim, "2026-12-05T00:00:00+00:00")
    reply = fetch(sim, DAY, "LOANS")
    assert (reply.status, sim.answer(reply)["field"]) == (404, "fileType")
    reply = fetch(sim, "2026-13-01", "BALANCE")
    assert (reply.status, sim.answer(reply)["field"]) == (400, "date")
