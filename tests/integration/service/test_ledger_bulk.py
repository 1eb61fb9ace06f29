"""A posting with many legs, on SQLite and MariaDB: balances changed in a few statements
(chunks of accounts, here 3 a statement so that a dozen accounts take several), entries in
one INSERT, the non-negative balance guarantee kept for the whole posting."""

from decimal import Decimal

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.ledger import AVAILABLE, FROZEN, Ledger, credit, debit

D = Decimal
INVESTORS = 11
#: Distinct odd amounts, so a balance off by another account's delta shows.
AMOUNTS = [D("10.01") * (k + 1) + D("0.37") * k for k in range(INVESTORS)]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr("dao.ledger.CHUNK", 3)


@pytest.fixture
def ledger(platform):
    return Ledger(platform.tx)


@pytest.fixture
def members(make_member) -> list[int]:
    return [make_member("INVESTOR", onboarded=False).member_id for _ in range(INVESTORS)]


def balances(sql, member_ids: list[int]) -> list[tuple[int, int]]:
    with sql.connect() as conn:
        rows = dict(
            (m, (int(a), int(f)))
            for m, a, f in conn.execute(
                text("SELECT member_id, available, frozen FROM account WHERE member_id IS NOT NULL")
            )
        )
    return [rows[m] for m in member_ids]


def counts(sql) -> tuple[int, int]:
    with sql.connect() as conn:
        return (
            conn.scalar(text("SELECT COUNT(*) FROM posting")),
            conn.scalar(text("SELECT COUNT(*) FROM posting_entry")),
        )


def fund(platform, ledger, member_ids: list[int]) -> None:
    """Each member credited their amount out of CLEARING, in one posting of many legs."""

    def work():
        legs = [debit(ledger.platform("CLEARING"), AVAILABLE, sum(AMOUNTS))]
        legs += [
            credit(ledger.account_of(m), AVAILABLE, a)
            for m, a in zip(member_ids, AMOUNTS, strict=True)
        ]
        ledger.post("RECHARGE", ("test", 1), legs)

    platform.tx.run(work)


def test_a_posting_of_many_legs_moves_every_balance_exactly(platform, ledger, members, sql):
    fund(platform, ledger, members)
    assert balances(sql, members) == [(int(a * 100), 0) for a in AMOUNTS]
    with sql.connect() as conn:
        assert conn.scalar(text("SELECT available FROM account WHERE code = 'CLEARING'")) == int(
            sum(AMOUNTS) * 100
        )
    assert counts(sql) == (1, INVESTORS + 1)

    # Every member freezes part of their money (a debit and a credit on each account) and
    # pays the rest to the next one, in one posting; amounts read back in the same
    # transaction are the new ones.
    def work():
        accounts = [ledger.account_of(m) for m in members]
        assert [a.available for a in accounts] == AMOUNTS
        legs = []
        for k, account in enumerate(accounts):
            half = (AMOUNTS[k] / 2).quantize(D("0.01"))
            nxt = accounts[(k + 1) % INVESTORS]
            legs += [
                debit(account, AVAILABLE, AMOUNTS[k]),
                credit(account, FROZEN, half),
                credit(nxt, AVAILABLE, AMOUNTS[k] - half),
            ]
        ledger.post("SHUFFLE", ("test", 2), legs)
        return [(a.available, a.frozen) for a in accounts]

    seen = platform.tx.run(work)
    halves = [(a / 2).quantize(D("0.01")) for a in AMOUNTS]
    expected = [
        (AMOUNTS[k - 1] - halves[k - 1], halves[k]) for k in range(INVESTORS)
    ]  # k - 1 wraps to the last
    assert seen == expected
    assert balances(sql, members) == [(int(a * 100), int(f * 100)) for a, f in expected]
    assert counts(sql) == (2, INVESTORS + 1 + 3 * INVESTORS)


@pytest.mark.parametrize("poor", [0, 5, INVESTORS - 1])
def test_one_debit_too_large_refuses_the_whole_posting(platform, ledger, members, sql, poor):
    """Even when the caller catches the refusal and commits: no balance of any chunk, before
    or after the poor account's, moved, and no posting was written."""
    fund(platform, ledger, members)
    before, written = balances(sql, members), counts(sql)

    def work():
        accounts = [ledger.account_of(m) for m in members]
        legs = [
            debit(account, AVAILABLE, AMOUNTS[k] + (D("0.01") if k == poor else 0))
            for k, account in enumerate(accounts)
        ]
        legs.append(credit(ledger.platform("CLEARING"), AVAILABLE, sum(AMOUNTS) + D("0.01")))
        with pytest.raises(BusinessError) as e:
            ledger.post("WITHDRAW", ("test", 3), legs)
        return e.value.code, str(e.value)

    code, message = platform.tx.run(work)
    assert code == "INSUFFICIENT_FUNDS"
    assert "available balance is too low" in message
    assert balances(sql, members) == before
    assert counts(sql) == written


def test_a_frozen_bucket_too_low_is_named(platform, ledger, members, sql):
    fund(platform, ledger, members)

    def work():
        account = ledger.account_of(members[0])
        ledger.post(
            "UNFREEZE",
            ("test", 4),
            [debit(account, FROZEN, D("0.01")), credit(account, AVAILABLE, D("0.01"))],
        )

    with pytest.raises(BusinessError) as e:
        platform.tx.run(work)
    assert e.value.code == "INSUFFICIENT_FUNDS"
    assert "frozen balance is too low" in str(e.value)
    assert balances(sql, members)[0] == (int(AMOUNTS[0] * 100), 0)
