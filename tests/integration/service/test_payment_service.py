"""PaymentService on SQLite and MariaDB: recharges and withdrawals, their postings checked
with plain SQL, the depository's refusals, request numbers, ownership, and concurrent
withdrawals from one account."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.gateway import DepositoryGateway, GatewayResult
from service.payment import PaymentService
from service.security import Principal

D = Decimal


class RefusingGateway(DepositoryGateway):
    """A depository that refuses every instruction, as a bank does for a blocked card."""

    reason = "card blocked by the bank"

    def recharge(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)

    def withdraw(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)


class UnreachableGateway(DepositoryGateway):
    """A depository that cannot be reached: every call raises."""

    def recharge(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        raise ConnectionError("depository unreachable")

    def withdraw(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        raise ConnectionError("depository unreachable")


@pytest.fixture
def payments(platform) -> PaymentService:
    return platform.service(PaymentService)


@pytest.fixture
def payments_via(platform, clock):
    """Factory: a PaymentService on the test's platform that talks to the given gateway."""
    return lambda gateway: PaymentService(platform.tx, platform.settings, clock, gateway)


@pytest.fixture
def investor(make_member) -> Principal:
    vo = make_member("INVESTOR")
    return Principal(member_id=vo.member_id, role=vo.role)


@pytest.fixture
def other(make_member) -> Principal:
    vo = make_member("BORROWER")
    return Principal(member_id=vo.member_id, role=vo.role)


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


def fen(amount: str) -> int:
    return int(D(amount) * 100)


# -- plain-SQL views -------------------------------------------------------------------------


def balances(sql, member_id: int) -> tuple[int, int]:
    """(available, frozen) of a member's account, in fen."""
    with sql.connect() as conn:
        return tuple(
            conn.execute(
                text("SELECT available, frozen FROM account WHERE member_id = :m"),
                {"m": member_id},
            ).one()
        )


def clearing(sql) -> tuple[int, int]:
    with sql.connect() as conn:
        return tuple(
            conn.execute(
                text("SELECT available, frozen FROM account WHERE code = 'CLEARING'")
            ).one()
        )


def order_row(sql, order_no: str):
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, member_id, type, amount, status, request_no, gateway_ref,"
                " failure_reason FROM payment_order WHERE order_no = :o"
            ),
            {"o": order_no},
        ).one()


def count(sql, table: str) -> int:
    with sql.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def entries_of_order(sql, order_no: str) -> list[tuple]:
    """(business type, owner, bucket, direction, fen) of every entry the order booked, in
    booking order; the owner is the member id or the platform account's code."""
    with sql.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.business_type, a.member_id, a.code, e.bucket, e.direction, e.amount"
                " FROM posting p JOIN posting_entry e ON e.posting_id = p.id"
                " JOIN account a ON a.id = e.account_id"
                " JOIN payment_order o ON o.id = p.ref_id AND p.ref_type = 'PAYMENT_ORDER'"
                " WHERE o.order_no = :o ORDER BY p.id, e.id"
            ),
            {"o": order_no},
        ).all()
    return [(r[0], r[1] if r[1] is not None else r[2], r[3], r[4], r[5]) for r in rows]


def assert_every_posting_balances(sql) -> None:
    with sql.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT posting_id,"
                " SUM(CASE WHEN direction = 'D' THEN amount ELSE 0 END),"
                " SUM(CASE WHEN direction = 'C' THEN amount ELSE 0 END)"
                " FROM posting_entry GROUP BY posting_id"
            )
        ).all()
    assert rows, "expected postings"
    unbalanced = [r for r in rows if r[1] != r[2]]
    assert not unbalanced


# -- recharge --------------------------------------------------------------------------------


def test_recharge_credits_available_with_one_balanced_posting(
    payments, investor, sql, clock
) -> None:
    order = payments.recharge(D("1000.01"), "r-1", investor)
    assert order.type == "RECHARGE"
    assert order.status == "SUCCESS"
    assert order.amount == D("1000.01")
    assert order.failure_reason is None
    assert order.created_at == order.updated_at == clock.now
    assert order.order_no.startswith("R20260301")

    row = order_row(sql, order.order_no)
    assert (row.member_id, row.type, row.amount, row.status, row.request_no) == (
        investor.member_id,
        "RECHARGE",
        100001,
        "SUCCESS",
        "r-1",
    )
    assert row.gateway_ref.startswith("SANDBOX-")
    assert balances(sql, investor.member_id) == (100001, 0)
    assert clearing(sql) == (100001, 0)
    assert entries_of_order(sql, order.order_no) == [
        ("RECHARGE", "CLEARING", "AVAILABLE", "D", 100001),
        ("RECHARGE", investor.member_id, "AVAILABLE", "C", 100001),
    ]
    assert_every_posting_balances(sql)


def test_order_numbers_are_unique(payments, investor) -> None:
    numbers = {payments.recharge(D("1.00"), f"u-{i}", investor).order_no for i in range(20)}
    assert len(numbers) == 20


def test_a_refused_recharge_fails_the_order_and_moves_nothing(payments_via, investor, sql) -> None:
    refusing = payments_via(RefusingGateway())
    order = refusing.recharge(D("50.00"), "r-refused", investor)
    assert order.status == "FAILED"
    assert order.failure_reason == RefusingGateway.reason
    row = order_row(sql, order.order_no)
    assert (row.status, row.failure_reason) == ("FAILED", RefusingGateway.reason)
    assert balances(sql, investor.member_id) == (0, 0)
    assert clearing(sql) == (0, 0)
    assert count(sql, "posting") == 0

    again = refusing.recharge(D("50.00"), "r-refused", investor)
    assert again == order
    assert count(sql, "payment_order") == 1


def test_a_repeated_recharge_returns_the_first_order_and_moves_nothing(
    payments, investor, sql
) -> None:
    first = payments.recharge(D("300.00"), "r-same", investor)
    again = payments.recharge(D("300"), " r-same ", investor)
    assert again == first
    assert count(sql, "payment_order") == 1
    assert count(sql, "posting") == 1
    assert balances(sql, investor.member_id) == (30000, 0)


def test_a_request_no_reused_for_another_request_is_refused(payments, investor, sql) -> None:
    payments.recharge(D("300.00"), "r-reuse", investor)
    assert error_of(payments.recharge, D("300.01"), "r-reuse", investor).code == (
        "REQUEST_NO_REUSED"
    )
    assert error_of(payments.withdraw, D("300.00"), "r-reuse", investor).code == (
        "REQUEST_NO_REUSED"
    )
    assert count(sql, "payment_order") == 1
    assert balances(sql, investor.member_id) == (30000, 0)


def test_request_numbers_belong_to_their_caller(payments, investor, other, sql) -> None:
    mine = payments.recharge(D("10.00"), "shared-no", investor)
    theirs = payments.recharge(D("20.00"), "shared-no", other)
    assert mine.order_no != theirs.order_no
    assert balances(sql, other.member_id) == (2000, 0)


def test_an_unreachable_depository_leaves_nothing_and_the_request_may_be_sent_again(
    payments, payments_via, investor, sql
) -> None:
    with pytest.raises(ConnectionError):
        payments_via(UnreachableGateway()).recharge(D("80.00"), "r-retry", investor)
    assert count(sql, "payment_order") == 0
    assert count(sql, "request_record") == 0
    assert payments.recharge(D("80.00"), "r-retry", investor).status == "SUCCESS"
    assert balances(sql, investor.member_id) == (8000, 0)


@pytest.mark.parametrize(
    "amount, problem",
    [
        (D("0"), "above 0"),
        (D("0.00"), "above 0"),
        (D("-1.00"), "above 0"),
        (D("1.001"), "2 decimal places"),
        (D("50000000.01"), "at most 50000000.00"),
        (D("NaN"), "2 decimal places"),
    ],
)
def test_amounts_are_checked(payments, investor, sql, amount, problem) -> None:
    for command in (payments.recharge, payments.withdraw):
        e = error_of(command, amount, "bad-amount", investor)
        assert e.code == "VALIDATION_FAILED"
        assert e.message.startswith("amount:") and problem in e.message
    assert count(sql, "payment_order") == 0
    assert count(sql, "request_record") == 0


def test_the_largest_amount_is_the_largest_loan(payments, investor, sql) -> None:
    assert payments.recharge(D("50000000.00"), "r-max", investor).status == "SUCCESS"
    assert balances(sql, investor.member_id) == (5_000_000_000, 0)


# -- withdraw --------------------------------------------------------------------------------


def test_withdraw_freezes_then_settles(payments, investor, sql) -> None:
    payments.recharge(D("500.00"), "r-w", investor)
    order = payments.withdraw(D("120.34"), "w-1", investor)
    assert (order.type, order.status, order.amount) == ("WITHDRAW", "SUCCESS", D("120.34"))
    assert order.order_no.startswith("W")
    assert balances(sql, investor.member_id) == (50000 - 12034, 0)
    assert clearing(sql) == (50000 - 12034, 0)
    m = investor.member_id
    assert entries_of_order(sql, order.order_no) == [
        ("WITHDRAW_FREEZE", m, "AVAILABLE", "D", 12034),
        ("WITHDRAW_FREEZE", m, "FROZEN", "C", 12034),
        ("WITHDRAW", m, "FROZEN", "D", 12034),
        ("WITHDRAW", "CLEARING", "AVAILABLE", "C", 12034),
    ]
    assert order_row(sql, order.order_no).gateway_ref.startswith("SANDBOX-")
    assert_every_posting_balances(sql)


def test_a_refused_withdrawal_is_unfrozen(payments, payments_via, investor, sql) -> None:
    payments.recharge(D("500.00"), "r-wr", investor)
    order = payments_via(RefusingGateway()).withdraw(D("200.00"), "w-refused", investor)
    assert (order.status, order.failure_reason) == ("FAILED", RefusingGateway.reason)
    assert balances(sql, investor.member_id) == (50000, 0)
    assert clearing(sql) == (50000, 0)
    m = investor.member_id
    assert entries_of_order(sql, order.order_no) == [
        ("WITHDRAW_FREEZE", m, "AVAILABLE", "D", 20000),
        ("WITHDRAW_FREEZE", m, "FROZEN", "C", 20000),
        ("WITHDRAW_UNFREEZE", m, "FROZEN", "D", 20000),
        ("WITHDRAW_UNFREEZE", m, "AVAILABLE", "C", 20000),
    ]
    assert_every_posting_balances(sql)


def test_a_repeated_withdrawal_moves_nothing_again(payments, investor, sql) -> None:
    payments.recharge(D("500.00"), "r-wa", investor)
    first = payments.withdraw(D("100.00"), "w-same", investor)
    assert payments.withdraw(D("100.00"), "w-same", investor) == first
    assert balances(sql, investor.member_id) == (40000, 0)
    assert count(sql, "payment_order") == 2
    assert count(sql, "posting") == 3


def test_withdrawing_more_than_available_writes_nothing(payments, investor, sql) -> None:
    payments.recharge(D("100.00"), "r-short", investor)
    e = error_of(payments.withdraw, D("100.01"), "w-short", investor)
    assert e.code == "INSUFFICIENT_FUNDS"
    assert balances(sql, investor.member_id) == (10000, 0)
    assert count(sql, "payment_order") == 1
    assert count(sql, "posting") == 1
    assert count(sql, "request_record") == 1
    # Nothing of the refused request was kept: its number works once funds are there.
    payments.recharge(D("0.01"), "r-short-2", investor)
    assert payments.withdraw(D("100.01"), "w-short", investor).status == "SUCCESS"
    assert balances(sql, investor.member_id) == (0, 0)


# -- queries ---------------------------------------------------------------------------------


def test_an_order_is_visible_to_its_owner_only(payments, investor, other) -> None:
    order = payments.recharge(D("10.00"), "r-own", investor)
    assert payments.get_order(order.order_no, investor) == order
    hidden = error_of(payments.get_order, order.order_no, other)
    missing = error_of(payments.get_order, "R20260301NOSUCHORDER", other)
    assert hidden.code == missing.code == "PAYMENT_ORDER_NOT_FOUND"
    assert hidden.message.replace(order.order_no, "X") == missing.message.replace(
        "R20260301NOSUCHORDER", "X"
    )


def test_orders_are_listed_newest_first_per_member(payments, investor, other, clock) -> None:
    made = []
    for i in range(5):
        made.append(payments.recharge(D(f"{i + 1}.00"), f"r-list-{i}", investor))
        clock.advance(minutes=1)
    made.append(payments.withdraw(D("1.00"), "w-list", investor))
    payments.recharge(D("9.00"), "r-list-other", other)

    first = payments.list_orders(investor, page=1, page_size=4)
    assert (first.total, first.page, first.page_size) == (6, 1, 4)
    assert [o.order_no for o in first.items] == [o.order_no for o in reversed(made)][:4]
    second = payments.list_orders(investor, page=2, page_size=4)
    assert [o.order_no for o in second.items] == [made[1].order_no, made[0].order_no]
    assert payments.list_orders(investor).page_size == 20
    assert payments.list_orders(other).total == 1


@pytest.mark.parametrize("page, page_size, field", [(0, 10, "page"), (1, 101, "pageSize")])
def test_paging_is_bounded(payments, investor, page, page_size, field) -> None:
    e = error_of(payments.list_orders, investor, page, page_size)
    assert e.code == "VALIDATION_FAILED" and e.message.startswith(field + ":")


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_concurrent_withdrawals_never_overdraw(payments, investor, sql) -> None:
    """Two threads withdraw 10.00 at a time from 100.00 until refused: exactly ten succeed,
    the account ends at zero and nothing is left frozen."""
    payments.recharge(D("100.00"), "r-race", investor)
    barrier = threading.Barrier(2)
    outcomes: dict[str, list[str]] = {"a": [], "b": []}
    failures: list[BaseException] = []

    def drain(name: str) -> None:
        barrier.wait()
        try:
            for i in range(10):
                try:
                    order = payments.withdraw(D("10.00"), f"w-{name}-{i}", investor)
                    outcomes[name].append(order.status)
                except BusinessError as e:
                    outcomes[name].append(e.code)
        except BaseException as e:  # surfaced by the assertion below
            failures.append(e)

    threads = [threading.Thread(target=drain, args=(n,)) for n in outcomes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not failures
    every = outcomes["a"] + outcomes["b"]
    assert every.count("SUCCESS") == 10
    assert every.count("INSUFFICIENT_FUNDS") == 10
    assert balances(sql, investor.member_id) == (0, 0)
    assert clearing(sql) == (0, 0)
    with sql.connect() as conn:
        withdrawn = conn.execute(
            text("SELECT SUM(amount) FROM payment_order WHERE type = 'WITHDRAW'")
        ).scalar_one()
    assert withdrawn == 10000
    assert_every_posting_balances(sql)


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_two_concurrent_withdrawals_of_more_than_half_one_wins(payments, investor, sql) -> None:
    payments.recharge(D("100.00"), "r-half", investor)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def take(request_no: str) -> None:
        barrier.wait()
        try:
            results.append(payments.withdraw(D("60.00"), request_no, investor).status)
        except BusinessError as e:
            results.append(e.code)

    threads = [threading.Thread(target=take, args=(f"w-half-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["INSUFFICIENT_FUNDS", "SUCCESS"]
    assert balances(sql, investor.member_id) == (4000, 0)
    assert count(sql, "payment_order") == 2


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_recharging_while_withdrawing_keeps_the_books(payments, investor, sql) -> None:
    """One member recharges in one thread and withdraws in another: the two lock CLEARING and
    the member's row in opposite orders, so a deadlock may be retried, but every fen is
    accounted for."""
    payments.recharge(D("50.00"), "r-mix", investor)
    barrier = threading.Barrier(2)
    outcomes: dict[str, list[str]] = {"recharge": [], "withdraw": []}

    def run(kind: str) -> None:
        command = payments.recharge if kind == "recharge" else payments.withdraw
        barrier.wait()
        for i in range(15):
            try:
                outcomes[kind].append(command(D("10.00"), f"{kind}-mix-{i}", investor).status)
            except BusinessError as e:
                outcomes[kind].append(e.code)

    threads = [threading.Thread(target=run, args=(k,)) for k in outcomes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes["recharge"] == ["SUCCESS"] * 15
    withdrawn = outcomes["withdraw"].count("SUCCESS")
    assert withdrawn + outcomes["withdraw"].count("INSUFFICIENT_FUNDS") == 15
    expected = 5000 + 15 * 1000 - withdrawn * 1000
    assert balances(sql, investor.member_id) == (expected, 0)
    assert clearing(sql) == (expected, 0)
    assert_every_posting_balances(sql)
