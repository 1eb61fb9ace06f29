"""PaymentService on SQLite and MariaDB: recharges and withdrawals, their postings checked
with plain SQL, the depository's refusals, request numbers, ownership, only onboarded members
moving money, withdrawals only to the caller's bound cards, concurrent withdrawals from one
account, and a card unbound while a withdrawal pays out to it."""

from __future__ import annotations

import base64
import logging
import threading
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from service.errors import BusinessError
from service.gateway import AccountHolder, DepositoryGateway, GatewayResult, SandboxGateway
from service.member import BindCardRequest, IdentityRequest
from service.payment import PaymentService
from service.pii import PersonalData
from service.security import Principal
from tests.integration.service.support import onboard

D = Decimal
BANK = "中国工商银行"
#: MariaDB's "Lock wait timeout exceeded", also its answer to NOWAIT on a locked row.
LOCK_WAIT_TIMEOUT = 1205


class RefusingGateway(DepositoryGateway):
    """A depository that refuses every instruction, as a bank does for a blocked card."""

    reason = "card blocked by the bank"

    def open_account(self, holder: AccountHolder) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)

    def recharge(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)

    def withdraw(
        self, order_no: str, member_id: int, amount: Decimal, card_number: str
    ) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)

    def fund(self, order_no: str, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)

    def transfer(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)


class UnreachableGateway(DepositoryGateway):
    """A depository that cannot be reached: every call raises."""

    def open_account(self, holder: AccountHolder) -> GatewayResult:
        raise ConnectionError("depository unreachable")

    def recharge(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        raise ConnectionError("depository unreachable")

    def withdraw(
        self, order_no: str, member_id: int, amount: Decimal, card_number: str
    ) -> GatewayResult:
        raise ConnectionError("depository unreachable")

    def fund(self, order_no: str, amount: Decimal) -> GatewayResult:
        raise ConnectionError("depository unreachable")

    def transfer(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        raise ConnectionError("depository unreachable")


class RecordingGateway(SandboxGateway):
    """The sandbox, remembering every withdrawal instruction it was given."""

    def __init__(self) -> None:
        self.withdrawals: list[tuple[str, int, Decimal, str]] = []

    def withdraw(
        self, order_no: str, member_id: int, amount: Decimal, card_number: str
    ) -> GatewayResult:
        self.withdrawals.append((order_no, member_id, amount, card_number))
        return super().withdraw(order_no, member_id, amount, card_number)


@pytest.fixture
def payments(platform) -> PaymentService:
    return platform.service(PaymentService)


@pytest.fixture
def payments_via(platform, clock):
    """Factory: a PaymentService on the test's platform that talks to the given gateway."""
    return lambda gateway: PaymentService(
        platform.tx, platform.settings, clock, gateway, platform.components["pii"]
    )


def principal(vo) -> Principal:
    return Principal(member_id=vo.member_id, role=vo.role)


@pytest.fixture
def investor(make_member) -> Principal:
    return principal(make_member("INVESTOR"))


@pytest.fixture
def other(make_member) -> Principal:
    return principal(make_member("BORROWER"))


def card_of(members, who: Principal) -> int:
    """The member's first bound card: the one onboarding bound."""
    return members.list_cards(who).items[0].card_id


@pytest.fixture
def card(members, investor) -> int:
    return card_of(members, investor)


@pytest.fixture
def bind(members, identities):
    """Factory: bind one more card, with a fresh number, for ``who``; (card id, number)."""

    def factory(who: Principal) -> tuple[int, str]:
        number = identities().card_number
        vo = members.bind_card(BindCardRequest(number, BANK, "13700000001"), who)
        return vo.card_id, number

    return factory


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
                " failure_reason, card_id FROM payment_order WHERE order_no = :o"
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
    assert order.card_number is None
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
    assert row.card_id is None
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
    again = payments.recharge(D("300"), "r-same", investor)
    assert again == first
    assert count(sql, "payment_order") == 1
    assert count(sql, "posting") == 1
    assert balances(sql, investor.member_id) == (30000, 0)


#: One request number and others that differ from it only in case, an accent (precomposed and
#: combining) or full-width letters: each is a request of its own. (One with surrounding
#: blanks is refused: test_a_request_no_is_taken_as_it_is_or_refused.)
LOOK_ALIKES = (
    "order-abc",
    "ORDER-ABC",
    "ordér-abc",
    "orde\u0301r-abc",
    "ｏｒｄｅｒ-ａｂｃ",
)


def test_request_numbers_are_compared_exactly_as_sent(payments, investor, sql) -> None:
    """On MariaDB a case- and accent-blind, space-padding collation once made these one
    request: every recharge after the first answered with the first order and moved nothing.
    Each is its own order now, stored as sent, and each repeats only itself."""
    orders = [payments.recharge(D("100.00"), no, investor) for no in LOOK_ALIKES]
    assert len({o.order_no for o in orders}) == len(LOOK_ALIKES)
    assert balances(sql, investor.member_id) == (100_00 * len(LOOK_ALIKES), 0)
    assert [order_row(sql, o.order_no).request_no for o in orders] == list(LOOK_ALIKES)
    with sql.connect() as conn:
        claimed = conn.execute(text("SELECT request_no FROM request_record")).scalars().all()
        posted = conn.execute(text("SELECT request_no FROM posting")).scalars().all()
    assert sorted(claimed) == sorted(posted) == sorted(LOOK_ALIKES)

    for no, order in zip(LOOK_ALIKES, orders, strict=True):
        assert payments.recharge(D("100.00"), no, investor) == order
    assert count(sql, "payment_order") == len(LOOK_ALIKES)


@pytest.mark.parametrize("request_no", ["", " ", " r-same", "r-same ", "r-same\n", "\t", "x" * 65])
def test_a_request_no_is_taken_as_it_is_or_refused(payments, investor, sql, request_no) -> None:
    """Request numbers compare byte for byte: one that is blank, or begins or ends with a
    blank, is refused (the contract's pattern), never trimmed into another number."""
    payments.recharge(D("300.00"), "r-same", investor)
    e = error_of(payments.recharge, D("300.00"), request_no, investor)
    assert (e.code, e.message.split(":")[0]) == ("VALIDATION_FAILED", "requestNo")
    assert count(sql, "payment_order") == 1
    assert balances(sql, investor.member_id) == (30000, 0)


def test_a_request_no_reused_for_another_request_is_refused(payments, investor, card, sql) -> None:
    payments.recharge(D("300.00"), "r-reuse", investor)
    assert error_of(payments.recharge, D("300.01"), "r-reuse", investor).code == (
        "REQUEST_NO_REUSED"
    )
    assert error_of(payments.withdraw, D("300.00"), card, "r-reuse", investor).code == (
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
def test_amounts_are_checked(payments, investor, card, sql, amount, problem) -> None:
    commands = [
        lambda: payments.recharge(amount, "bad-amount", investor),
        lambda: payments.withdraw(amount, card, "bad-amount", investor),
    ]
    for command in commands:
        e = error_of(command)
        assert e.code == "VALIDATION_FAILED"
        assert e.message.startswith("amount:") and problem in e.message
    assert count(sql, "payment_order") == 0
    assert count(sql, "request_record") == 0


def test_the_largest_amount_is_the_largest_loan(payments, investor, sql) -> None:
    assert payments.recharge(D("50000000.00"), "r-max", investor).status == "SUCCESS"
    assert balances(sql, investor.member_id) == (5_000_000_000, 0)


# -- withdraw --------------------------------------------------------------------------------


def test_withdraw_freezes_then_settles(payments, investor, card, sql) -> None:
    payments.recharge(D("500.00"), "r-w", investor)
    order = payments.withdraw(D("120.34"), card, "w-1", investor)
    assert (order.type, order.status, order.amount) == ("WITHDRAW", "SUCCESS", D("120.34"))
    assert order.order_no.startswith("W")
    assert order_row(sql, order.order_no).card_id == card
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


def test_a_refused_withdrawal_is_unfrozen(payments, payments_via, investor, card, sql) -> None:
    payments.recharge(D("500.00"), "r-wr", investor)
    order = payments_via(RefusingGateway()).withdraw(D("200.00"), card, "w-refused", investor)
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


def test_a_repeated_withdrawal_moves_nothing_again(payments, investor, card, sql) -> None:
    payments.recharge(D("500.00"), "r-wa", investor)
    first = payments.withdraw(D("100.00"), card, "w-same", investor)
    assert payments.withdraw(D("100.00"), card, "w-same", investor) == first
    assert balances(sql, investor.member_id) == (40000, 0)
    assert count(sql, "payment_order") == 2
    assert count(sql, "posting") == 3


def test_withdrawing_more_than_available_writes_nothing(payments, investor, card, sql) -> None:
    payments.recharge(D("100.00"), "r-short", investor)
    e = error_of(payments.withdraw, D("100.01"), card, "w-short", investor)
    assert e.code == "INSUFFICIENT_FUNDS"
    assert balances(sql, investor.member_id) == (10000, 0)
    assert count(sql, "payment_order") == 1
    assert count(sql, "posting") == 1
    assert count(sql, "request_record") == 1
    # Nothing of the refused request was kept: its number works once funds are there.
    payments.recharge(D("0.01"), "r-short-2", investor)
    assert payments.withdraw(D("100.01"), card, "w-short", investor).status == "SUCCESS"
    assert balances(sql, investor.member_id) == (0, 0)


# -- only onboarded members move money -------------------------------------------------------


def assert_nothing_written(sql) -> None:
    for table in ("payment_order", "posting", "request_record"):
        assert count(sql, table) == 0, table


def test_an_unverified_member_may_not_move_money_until_onboarded(
    payments, members, make_member, identities, sql
) -> None:
    """Refused before anything else, even before the card is looked at (no card exists);
    nothing is written, so the same request numbers work once the member is onboarded."""
    mobile = "13600000001"
    who = principal(make_member("INVESTOR", mobile, onboarded=False))
    refused = [
        error_of(payments.recharge, D("100.00"), "r-gate", who),
        error_of(payments.withdraw, D("1.00"), 987654321, "w-gate", who),
    ]
    assert [e.code for e in refused] == ["IDENTITY_NOT_VERIFIED"] * 2
    assert not any(mobile in e.message for e in refused)
    assert_nothing_written(sql)

    card = onboard(members, who.member_id, who.role, mobile, identities())
    assert payments.recharge(D("100.00"), "r-gate", who).status == "SUCCESS"
    assert payments.withdraw(D("1.00"), card, "w-gate", who).status == "SUCCESS"
    assert balances(sql, who.member_id) == (9900, 0)


def test_a_verified_member_without_a_fund_account_may_not_move_money_until_it_is_open(
    payments, members, make_member, identities, sql
) -> None:
    who = principal(make_member("BORROWER", onboarded=False))
    person = identities()
    members.verify_identity(IdentityRequest(person.real_name, person.id_number), who)
    card = members.bind_card(BindCardRequest(person.card_number, BANK, "13600000002"), who)
    refused = [
        error_of(payments.recharge, D("100.00"), "r-fund", who),
        error_of(payments.withdraw, D("1.00"), card.card_id, "w-fund", who),
    ]
    assert [e.code for e in refused] == ["FUND_ACCOUNT_REQUIRED"] * 2
    assert_nothing_written(sql)

    members.open_fund_account(card.card_id, who)
    assert payments.recharge(D("100.00"), "r-fund", who).status == "SUCCESS"
    assert payments.withdraw(D("1.00"), card.card_id, "w-fund", who).status == "SUCCESS"
    assert balances(sql, who.member_id) == (9900, 0)
    assert count(sql, "payment_order") == 2


# -- the card a withdrawal pays out to -------------------------------------------------------


def test_the_depository_gets_the_full_card_number_callers_only_its_mask(
    payments, payments_via, investor, bind, sql, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    payments.recharge(D("100.00"), "r-mask", investor)
    card_id, number = bind(investor)
    gateway = RecordingGateway()
    order = payments_via(gateway).withdraw(D("12.34"), card_id, "w-mask", investor)

    assert gateway.withdrawals == [(order.order_no, investor.member_id, D("12.34"), number)]
    mask = "**** **** **** " + number[-4:]
    assert order.card_number == mask
    assert payments.get_order(order.order_no, investor).card_number == mask
    assert [o.card_number for o in payments.list_orders(investor).items] == [mask, None]
    row = order_row(sql, order.order_no)
    assert row.card_id == card_id
    assert number not in repr(order) + repr(tuple(row))
    assert not [r for r in caplog.records if number in r.getMessage()]


def test_only_the_callers_bound_cards_are_paid_out_to(
    payments, members, investor, other, bind, sql
) -> None:
    """Someone else's card, a card unbound and a card that never was are refused alike:
    whether a card exists, or whose it is, is not told."""
    payments.recharge(D("100.00"), "r-cards", investor)
    spare, _ = bind(investor)
    members.unbind_card(spare, investor)
    cards = {"theirs": card_of(members, other), "unbound": spare, "missing": 987654321}
    refused = {
        name: error_of(payments.withdraw, D("10.00"), card_id, f"w-{name}", investor)
        for name, card_id in cards.items()
    }
    assert {e.code for e in refused.values()} == {"CARD_NOT_FOUND"}
    assert len({e.message.replace(str(cards[n]), "X") for n, e in refused.items()}) == 1
    assert balances(sql, investor.member_id) == (10000, 0)
    assert balances(sql, other.member_id) == (0, 0)
    assert (count(sql, "payment_order"), count(sql, "posting")) == (1, 1)
    assert count(sql, "request_record") == 1


def test_a_request_no_names_one_card_and_its_repeat_needs_the_card_no_more(
    payments, members, investor, card, bind, sql
) -> None:
    payments.recharge(D("100.00"), "r-2cards", investor)
    spare, _ = bind(investor)
    first = payments.withdraw(D("10.00"), spare, "w-card", investor)
    e = error_of(payments.withdraw, D("10.00"), card, "w-card", investor)
    assert e.code == "REQUEST_NO_REUSED"
    # A repeat returns the first order even once its card is unbound: it moves nothing.
    members.unbind_card(spare, investor)
    assert payments.withdraw(D("10.00"), spare, "w-card", investor) == first
    assert error_of(payments.withdraw, D("10.00"), spare, "w-new", investor).code == (
        "CARD_NOT_FOUND"
    )
    assert balances(sql, investor.member_id) == (9000, 0)
    assert count(sql, "payment_order") == 2


def test_without_the_security_key_no_card_can_be_read_and_nothing_is_paid_out(
    platform, payments, investor, card, clock, sql
) -> None:
    keyless = PaymentService(platform.tx, platform.settings, clock, SandboxGateway(), None)
    assert keyless.recharge(D("100.00"), "r-keyless", investor).status == "SUCCESS"
    e = error_of(keyless.withdraw, D("10.00"), card, "w-keyless", investor)
    assert e.code == "SERVICE_UNAVAILABLE"
    assert balances(sql, investor.member_id) == (10000, 0)
    assert (count(sql, "payment_order"), count(sql, "request_record")) == (1, 1)
    assert payments.withdraw(D("10.00"), card, "w-keyless", investor).status == "SUCCESS"


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


def test_orders_are_listed_newest_first_per_member(payments, investor, card, other, clock) -> None:
    made = []
    for i in range(5):
        made.append(payments.recharge(D(f"{i + 1}.00"), f"r-list-{i}", investor))
        clock.advance(minutes=1)
    made.append(payments.withdraw(D("1.00"), card, "w-list", investor))
    payments.recharge(D("9.00"), "r-list-other", other)

    first = payments.list_orders(investor, page=1, page_size=4)
    assert (first.total, first.page, first.page_size) == (6, 1, 4)
    assert [o.order_no for o in first.items] == [o.order_no for o in reversed(made)][:4]
    second = payments.list_orders(investor, page=2, page_size=4)
    assert [o.order_no for o in second.items] == [made[1].order_no, made[0].order_no]
    assert payments.list_orders(investor).page_size == 20
    assert payments.list_orders(other).total == 1


def test_order_numbers_are_compared_exactly_as_sent(payments, investor) -> None:
    """An order number in other case, with an accent or a trailing space names no order (a
    case-blind, space-padding collation once found the order for each)."""
    order = payments.recharge(D("1.00"), "r-exact", investor)
    accented = order.order_no.replace("R", "Ŕ", 1)
    for other in (order.order_no.lower(), accented, order.order_no + " "):
        e = error_of(payments.get_order, other, investor)
        assert e.code == "PAYMENT_ORDER_NOT_FOUND"
    assert payments.get_order(order.order_no, investor) == order


@pytest.mark.parametrize("page, page_size, field", [(0, 10, "page"), (1, 101, "pageSize")])
def test_paging_is_bounded(payments, investor, page, page_size, field) -> None:
    e = error_of(payments.list_orders, investor, page, page_size)
    assert e.code == "VALIDATION_FAILED" and e.message.startswith(field + ":")


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_concurrent_withdrawals_never_overdraw(payments, investor, card, sql) -> None:
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
                    order = payments.withdraw(D("10.00"), card, f"w-{name}-{i}", investor)
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
def test_two_concurrent_withdrawals_of_more_than_half_one_wins(
    payments, investor, card, sql
) -> None:
    payments.recharge(D("100.00"), "r-half", investor)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def take(request_no: str) -> None:
        barrier.wait()
        try:
            results.append(payments.withdraw(D("60.00"), card, request_no, investor).status)
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
def test_recharging_while_withdrawing_keeps_the_books(payments, investor, card, sql) -> None:
    """One member recharges in one thread and withdraws in another: the two lock CLEARING and
    the member's row in opposite orders, so a deadlock may be retried, but every fen is
    accounted for."""
    payments.recharge(D("50.00"), "r-mix", investor)
    barrier = threading.Barrier(2)
    outcomes: dict[str, list[str]] = {"recharge": [], "withdraw": []}

    def run(kind: str) -> None:
        def command(request_no: str):
            if kind == "recharge":
                return payments.recharge(D("10.00"), request_no, investor)
            return payments.withdraw(D("10.00"), card, request_no, investor)

        barrier.wait()
        for i in range(15):
            try:
                outcomes[kind].append(command(f"{kind}-mix-{i}").status)
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


def locked_now(sql, table: str, row_id: int) -> bool:
    """Whether another transaction holds a lock on the row now: a locking read from a
    connection of our own that refuses to wait (NOWAIT) is refused exactly then."""
    with sql.connect() as conn:
        try:
            conn.execute(
                text(f"SELECT id FROM {table} WHERE id = :i FOR UPDATE NOWAIT"), {"i": row_id}
            )
        except OperationalError as e:
            if e.orig.args[0] != LOCK_WAIT_TIMEOUT:
                raise
            return True
        finally:
            conn.rollback()
    return False


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_a_card_cannot_be_unbound_under_a_withdrawal_paying_out_to_it(
    platform, payments, members, investor, bind, clock, sql
) -> None:
    """From the moment a withdrawal has chosen its card (before the order is written) to its
    commit, the card's row is locked: unbinding, which must write that row, waits for the
    payout. Then the card is unbound as asked, and later withdrawals to it are refused."""
    payments.recharge(D("100.00"), "r-unbind", investor)
    spare, number = bind(investor)
    seen: dict[str, bool] = {}

    class ProbingOnceChosen(PersonalData):
        def open(self, kind: str, stored: str, member_id: int) -> str:
            seen["card locked when chosen"] = locked_now(sql, "bank_card", spare)
            return super().open(kind, stored, member_id)

    class ProbingAtPayout(RecordingGateway):
        def withdraw(self, order_no, member_id, amount, card_number) -> GatewayResult:
            seen["card locked during the payout"] = locked_now(sql, "bank_card", spare)
            return super().withdraw(order_no, member_id, amount, card_number)

    key = base64.b64decode(platform.settings.security.secret_key)
    gateway = ProbingAtPayout()
    probing = PaymentService(platform.tx, platform.settings, clock, gateway, ProbingOnceChosen(key))
    order = probing.withdraw(D("10.00"), spare, "w-unbind", investor)
    assert seen == {"card locked when chosen": True, "card locked during the payout": True}
    assert (order.status, [w[3] for w in gateway.withdrawals]) == ("SUCCESS", [number])
    assert not locked_now(sql, "bank_card", spare)

    members.unbind_card(spare, investor)
    assert error_of(payments.withdraw, D("10.00"), spare, "w-after", investor).code == (
        "CARD_NOT_FOUND"
    )
    assert balances(sql, investor.member_id) == (9000, 0)
