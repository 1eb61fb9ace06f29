"""AccountService on SQLite and MariaDB: a member's balances and ledger entries, compared
with what plain SQL finds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from service.account import AccountService
from service.errors import BusinessError
from service.payment import PaymentService
from service.security import Principal

D = Decimal


@pytest.fixture
def accounts(platform) -> AccountService:
    return platform.service(AccountService)


@pytest.fixture
def payments(platform) -> PaymentService:
    return platform.service(PaymentService)


@pytest.fixture
def member(make_member) -> Principal:
    vo = make_member("BORROWER")
    return Principal(member_id=vo.member_id, role=vo.role)


@pytest.fixture
def card(members, member) -> int:
    """The member's bound card, which withdrawals pay out to."""
    return members.list_cards(member).items[0].card_id


@pytest.fixture
def other(make_member) -> Principal:
    vo = make_member("INVESTOR")
    return Principal(member_id=vo.member_id, role=vo.role)


def sql_balances(sql, member_id: int) -> tuple[Decimal, Decimal]:
    with sql.connect() as conn:
        available, frozen = conn.execute(
            text("SELECT available, frozen FROM account WHERE member_id = :m"), {"m": member_id}
        ).one()
    return D(available) / 100, D(frozen) / 100


def freeze(sql, member_id: int, fen: int) -> None:
    """Move ``fen`` from available to frozen behind the services' back, as an investment
    would, so that both buckets hold money."""
    with sql.begin() as conn:
        conn.execute(
            text(
                "UPDATE account SET available = available - :f, frozen = frozen + :f"
                " WHERE member_id = :m"
            ),
            {"f": fen, "m": member_id},
        )


def test_a_new_member_has_nothing(accounts, member) -> None:
    account = accounts.get_account(member)
    assert (account.member_id, account.available, account.frozen, account.total) == (
        member.member_id,
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )
    page = accounts.list_postings(member)
    assert (page.items, page.total, page.page, page.page_size) == ((), 0, 1, 20)


def test_balances_are_the_account_row(accounts, payments, member, card, sql) -> None:
    payments.recharge(D("1000.05"), "r-1", member)
    payments.withdraw(D("0.02"), card, "w-1", member)
    freeze(sql, member.member_id, 12345)
    account = accounts.get_account(member)
    assert (account.available, account.frozen) == sql_balances(sql, member.member_id)
    assert (account.available, account.frozen) == (D("876.58"), D("123.45"))
    assert account.total == D("1000.03")


def test_postings_are_the_callers_entries_newest_first_with_their_effect(
    accounts, payments, member, card, other
) -> None:
    payments.recharge(D("100.00"), "r-p", member)
    payments.withdraw(D("30.00"), card, "w-p", member)
    payments.recharge(D("7.00"), "r-other", other)

    page = accounts.list_postings(member)
    assert page.total == 4
    got = [(p.business_type, p.bucket, p.direction, p.amount, p.balance_effect) for p in page.items]
    assert got == [
        ("WITHDRAW", "FROZEN", "D", D("30.00"), D("-30.00")),
        ("WITHDRAW_FREEZE", "FROZEN", "C", D("30.00"), D("30.00")),
        ("WITHDRAW_FREEZE", "AVAILABLE", "D", D("30.00"), D("-30.00")),
        ("RECHARGE", "AVAILABLE", "C", D("100.00"), D("100.00")),
    ]
    assert {p.ref_type for p in page.items} == {"PAYMENT_ORDER"}
    ids = [p.posting_id for p in page.items]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 3
    assert str(page.items[0].balance_effect) == "-30.00"

    theirs = accounts.list_postings(other)
    assert theirs.total == 1
    assert theirs.items[0].posting_id not in ids


def test_the_effects_sum_to_the_balances(accounts, payments, member, card, sql) -> None:
    payments.recharge(D("250.75"), "r-s1", member)
    payments.withdraw(D("100.25"), card, "w-s1", member)
    payments.recharge(D("0.01"), "r-s2", member)
    effects = {"AVAILABLE": D(0), "FROZEN": D(0)}
    for p in accounts.list_postings(member, page=1, page_size=100).items:
        effects[p.bucket] += p.balance_effect
    assert (effects["AVAILABLE"], effects["FROZEN"]) == sql_balances(sql, member.member_id)


def test_postings_are_paged(accounts, payments, member) -> None:
    for i in range(3):
        payments.recharge(D("1.00"), f"r-page-{i}", member)
    every = accounts.list_postings(member, page=1, page_size=100).items
    second = accounts.list_postings(member, page=2, page_size=2)
    assert (second.total, second.page, second.page_size) == (3, 2, 2)
    assert second.items == every[2:3]
    assert accounts.list_postings(member, page=3, page_size=2).items == ()


@pytest.mark.parametrize("page, page_size, field", [(0, 10, "page"), (1, 101, "pageSize")])
def test_paging_is_bounded(accounts, member, page, page_size, field) -> None:
    with pytest.raises(BusinessError) as e:
        accounts.list_postings(member, page, page_size)
    assert e.value.code == "VALIDATION_FAILED"
    assert e.value.message.startswith(field + ":")
