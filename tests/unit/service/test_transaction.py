"""Unit tests of the transaction manager on in-memory SQLite: rules, hooks, retry, decorator.

Propagation against real file and server databases is in
tests/integration/test_transaction_propagation.py.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator

import MySQLdb
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from dao.db import Database
from service import transaction
from service.transaction import (
    IllegalTransactionStateError,
    Propagation,
    TransactionManager,
    is_retryable,
    transactional,
)


@pytest.fixture
def db() -> Iterator[Database]:
    database = Database("sqlite://")
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (name VARCHAR(20) NOT NULL)")
    yield database
    database.dispose()


@pytest.fixture
def tx(db: Database) -> TransactionManager:
    return TransactionManager(db, max_retries=2, backoff_seconds=0.01)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []
    monkeypatch.setattr(transaction.time, "sleep", delays.append)
    return delays


def rows(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(conn.execute(text("SELECT name FROM t")).scalars())


def add(tx: TransactionManager, name: str) -> None:
    tx.session().execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": name})


def locked() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("database is locked")


# -- is_retryable ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (locked(), True),
        (sqlite3.OperationalError("database is busy"), True),
        (OperationalError("INSERT", {}, locked()), True),
        (OperationalError("UPDATE", {}, MySQLdb.OperationalError(1213, "Deadlock found")), True),
        (OperationalError("SELECT", {}, MySQLdb.OperationalError(1205, "Lock wait")), True),
        (MySQLdb.OperationalError(1213, "Deadlock found"), True),
        (OperationalError("INSERT", {}, MySQLdb.IntegrityError(1062, "Duplicate")), False),
        (OperationalError("SELECT", {}, MySQLdb.OperationalError(2006, "gone away")), False),
        (sqlite3.OperationalError("no such table: t"), False),
        (ValueError("database is locked"), False),
    ],
)
def test_is_retryable(error, expected):
    assert is_retryable(error) is expected


def test_is_retryable_follows_explicit_causes_only():
    try:
        try:
            raise locked()
        except sqlite3.OperationalError as exc:
            raise RuntimeError("while booking") from exc
    except RuntimeError as wrapped:
        assert is_retryable(wrapped)
    try:
        try:
            raise locked()
        except sqlite3.OperationalError:
            raise RuntimeError("unrelated failure in a handler") from None
    except RuntimeError as unrelated:
        assert not is_retryable(unrelated)


# -- scopes ---------------------------------------------------------------------------


def test_session_outside_any_scope_raises(tx):
    assert tx.in_transaction() is False
    with pytest.raises(IllegalTransactionStateError):
        tx.session()


def test_run_passes_arguments_and_returns_the_result(tx, db):
    def fn(a: int, b: int, *, name: str) -> int:
        add(tx, name)
        return a + b

    assert tx.run(fn, 1, 2, name="x") == 3
    assert rows(db) == ["x"]


@pytest.mark.parametrize(
    ("propagation", "in_transaction"),
    [
        (Propagation.REQUIRED, True),
        (Propagation.REQUIRES_NEW, True),
        (Propagation.NESTED, True),
        (Propagation.SUPPORTS, False),
        (Propagation.NOT_SUPPORTED, False),
        (Propagation.NEVER, False),
    ],
)
def test_every_scope_has_a_session(tx, propagation, in_transaction):
    def probe() -> bool:
        return tx.session().execute(text("SELECT 1")).scalar_one() == 1 and tx.in_transaction()

    assert tx.run(probe, propagation=propagation) is in_transaction
    assert tx.in_transaction() is False


def test_non_transactional_scopes_share_one_session(tx):
    def outer():
        session = tx.session()
        assert tx.run(tx.session, propagation=Propagation.SUPPORTS) is session
        assert tx.run(tx.session, propagation=Propagation.NEVER) is session

    tx.run(outer, propagation=Propagation.NOT_SUPPORTED)


def test_mandatory_and_never(tx):
    with pytest.raises(IllegalTransactionStateError, match="MANDATORY"):
        tx.run(lambda: None, propagation=Propagation.MANDATORY)
    with pytest.raises(IllegalTransactionStateError, match="NEVER"):
        tx.run(lambda: tx.run(lambda: None, propagation=Propagation.NEVER))


def test_in_memory_database_refuses_suspension(tx):
    for propagation in (Propagation.REQUIRES_NEW, Propagation.NOT_SUPPORTED):
        with pytest.raises(IllegalTransactionStateError, match="in-memory"):
            tx.run(lambda p=propagation: tx.run(lambda: None, propagation=p))


def test_propagation_must_be_a_propagation(tx):
    with pytest.raises(TypeError):
        tx.run(lambda: None, propagation="REQUIRED")


def test_read_only_scope_does_not_autoflush(tx):
    assert tx.run(lambda: tx.session().autoflush, read_only=True) is False
    assert tx.run(lambda: tx.session().autoflush) is True


def test_isolation_levels_are_checked_per_dialect(tx):
    with pytest.raises(ValueError, match="REPEATABLE READ"):
        tx.run(lambda: None, isolation="REPEATABLE READ")
    with pytest.raises(ValueError, match="AUTOCOMMIT"):
        tx.run(lambda: None, isolation="AUTOCOMMIT")
    assert tx.run(lambda: 1, isolation="read_uncommitted") == 1


def test_max_retries_must_not_be_negative(db):
    with pytest.raises(ValueError):
        TransactionManager(db, max_retries=-1)


# -- rollback rules -------------------------------------------------------------------


class Declined(Exception):
    pass


class DeclinedHard(Declined):
    pass


@pytest.mark.parametrize(
    ("error", "rollback_for", "no_rollback_for", "kept"),
    [
        (ValueError(), (Exception,), (), False),
        (Declined(), (Exception,), (Declined,), True),
        (DeclinedHard(), (Exception,), (Declined,), True),
        (DeclinedHard(), (DeclinedHard,), (Declined,), False),
        (Declined(), (Declined,), (Declined,), False),  # a tie rolls back
        (ValueError(), (KeyError,), (Declined,), False),  # unmatched rolls back
        (KeyboardInterrupt(), (Exception,), (Exception,), False),
        (locked(), (Exception,), (sqlite3.OperationalError,), False),  # retryable always
    ],
)
def test_rollback_rule(db, error, rollback_for, no_rollback_for, kept):
    tx = TransactionManager(db, max_retries=0)

    def fn() -> None:
        add(tx, "x")
        raise error

    with pytest.raises(type(error)):
        tx.run(fn, rollback_for=rollback_for, no_rollback_for=no_rollback_for)

    assert rows(db) == (["x"] if kept else [])


# -- after-commit hooks ------------------------------------------------------------------


def test_after_commit_without_transaction_runs_at_once(tx):
    ran: list[str] = []
    tx.after_commit(lambda: ran.append("now"))
    assert ran == ["now"]
    tx.run(
        lambda: tx.after_commit(lambda: ran.append("supports")), propagation=Propagation.SUPPORTS
    )
    assert ran == ["now", "supports"]


def test_a_failing_hook_is_logged_and_later_hooks_still_run(tx, caplog):
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("cache down")

    def fn() -> None:
        tx.after_commit(broken)
        tx.after_commit(lambda: ran.append("second"))

    with caplog.at_level(logging.ERROR, logger="service.transaction"):
        tx.run(fn)

    assert ran == ["second"]
    failures = [r for r in caplog.records if "after-commit hook" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None


# -- retry ----------------------------------------------------------------------------


def test_retry_reruns_until_success_with_a_growing_jittered_backoff(tx, db, sleeps, caplog):
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        add(tx, f"try-{len(calls)}")
        if len(calls) <= 2:
            raise locked()
        return "done"

    with caplog.at_level(logging.WARNING, logger="service.transaction"):
        assert tx.run(fn) == "done"

    assert len(calls) == 3
    assert rows(db) == ["try-3"]
    assert len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.015 and 0.01 <= sleeps[1] <= 0.03
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert [r.levelno for r in retries] == [logging.WARNING, logging.WARNING]


def test_retry_gives_up_after_max_retries(tx, sleeps):
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        raise locked()

    with pytest.raises(sqlite3.OperationalError):
        tx.run(fn)

    assert len(calls) == 3 and len(sleeps) == 2


def test_no_retry_for_other_errors_or_non_transactional_scopes(tx, sleeps):
    calls: list[str] = []

    def fails(kind: str, error: Exception) -> None:
        calls.append(kind)
        raise error

    with pytest.raises(ValueError):
        tx.run(fails, "plain", ValueError())
    with pytest.raises(sqlite3.OperationalError):
        tx.run(fails, "autocommit", locked(), propagation=Propagation.NOT_SUPPORTED)

    assert calls == ["plain", "autocommit"] and sleeps == []


def test_a_joined_scope_leaves_the_retry_to_the_outer(tx, sleeps):
    calls = {"outer": 0, "inner": 0}

    def inner() -> None:
        calls["inner"] += 1
        raise locked()

    def outer() -> None:
        calls["outer"] += 1
        tx.run(inner)

    with pytest.raises(sqlite3.OperationalError):
        tx.run(outer)

    assert calls == {"outer": 3, "inner": 3}


# -- Core reads without a session ----------------------------------------------------------


def names(connection) -> list[str]:
    return sorted(connection.execute(text("SELECT name FROM t")).scalars())


def test_a_read_outside_any_scope_is_a_read_only_transaction_of_its_own(tx, db):
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO t (name) VALUES ('kept')"))

    def writes(connection) -> None:
        connection.execute(text("INSERT INTO t (name) VALUES ('refused')"))

    assert tx.read(names) == ["kept"]
    with pytest.raises(OperationalError, match="readonly"):
        tx.read(writes)
    assert rows(db) == ["kept"]
    tx.run(add, tx, "after")  # the connection went back writable
    assert rows(db) == ["after", "kept"]


def test_a_read_in_a_scope_sees_the_scope_s_changes(tx, db):
    def scope() -> list[str]:
        add(tx, "uncommitted")
        return tx.read(names)

    assert tx.run(scope) == ["uncommitted"]


def test_a_read_is_retried_as_a_transaction_is(tx, sleeps):
    calls: list[int] = []

    def fn(connection) -> list[str]:
        calls.append(1)
        if len(calls) <= 2:
            raise locked()
        return names(connection)

    assert tx.read(fn) == []
    assert len(calls) == 3 and len(sleeps) == 2


# -- decorator --------------------------------------------------------------------------


class Service:
    def __init__(self, tx: TransactionManager) -> None:
        self.tx = tx

    @transactional
    def bare(self, name: str, *, propagation: str = "kept") -> str:
        """Adds a row."""
        assert self.tx.in_transaction()
        add(self.tx, name)
        return propagation

    @transactional(propagation=Propagation.NEVER)
    def never(self) -> bool:
        return self.tx.in_transaction()

    @transactional(no_rollback_for=(Declined,))
    def declines(self) -> None:
        add(self.tx, "declined")
        raise Declined

    @transactional(propagation=Propagation.MANDATORY)
    def mandatory(self) -> None:
        pass


def test_decorator_bare_and_with_arguments(tx, db):
    service = Service(tx)

    assert service.bare("a", propagation="passed through") == "passed through"
    assert service.bare.__name__ == "bare" and service.bare.__doc__ == "Adds a row."
    assert service.never() is False
    with pytest.raises(Declined):
        service.declines()
    with pytest.raises(IllegalTransactionStateError):
        service.mandatory()

    assert rows(db) == ["a", "declined"]
