"""Transaction propagation, rollback rules, hooks and retry, on SQLite and on MariaDB.

Every test runs on both engines (the `database` fixture). Results are read with plain SQL
on a connection of a separate engine, never through the code under test.

SQLite admits one writer, so where a test needs a suspended outer transaction next to a
writing inner one, the outer is read-only there (`outer_writes` is False); on MariaDB it
writes, and its rollback is checked too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from dao.db import Database
from service.transaction import (
    IllegalTransactionStateError,
    Propagation,
    TransactionManager,
    UnexpectedRollbackError,
    is_retryable,
    transactional,
)

metadata = MetaData()
probe = Table(
    "tx_probe",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("hits", Integer, nullable=False, default=0),
)


class Boom(Exception):
    """A business failure raised by the functions under test."""


@pytest.fixture
def checker(database: Database) -> Iterator[Engine]:
    """A separate engine, outside the code under test, that creates and reads tx_probe."""
    engine = create_engine(database.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def tx(database: Database, checker: Engine) -> TransactionManager:
    return TransactionManager(database, max_retries=2, backoff_seconds=0.001)


def names(checker: Engine) -> list[str]:
    with checker.connect() as conn:
        return sorted(conn.execute(text("SELECT name FROM tx_probe")).scalars())


def add(tx: TransactionManager, name: str) -> None:
    tx.session().execute(insert(probe).values(name=name, hits=0))


def outer_writes(database: Database) -> bool:
    """Whether an outer transaction may write while an inner one also writes."""
    return not database.single_writer


# -- REQUIRED -----------------------------------------------------------------------


class Ledger:
    """A service written the way business services are: @transactional methods on `tx`."""

    def __init__(self, tx: TransactionManager) -> None:
        self.tx = tx
        self.sessions: list[Any] = []

    @transactional
    def outer(self, inner: Callable[[], None]) -> None:
        self.sessions.append(self.tx.session())
        add(self.tx, "outer")
        inner()

    @transactional(propagation=Propagation.REQUIRED)
    def inner(self, fail: bool) -> None:
        self.sessions.append(self.tx.session())
        add(self.tx, "inner")
        if fail:
            raise Boom


def test_required_joins_and_commits_once(tx, checker):
    ledger = Ledger(tx)

    ledger.outer(lambda: ledger.inner(fail=False))

    assert ledger.sessions[0] is ledger.sessions[1]
    assert names(checker) == ["inner", "outer"]


def test_required_inner_failure_rolls_back_the_whole_transaction(tx, checker):
    ledger = Ledger(tx)

    with pytest.raises(Boom):
        ledger.outer(lambda: ledger.inner(fail=True))

    assert names(checker) == []


def test_required_inner_failure_swallowed_by_outer_still_rolls_back(tx, checker):
    ledger = Ledger(tx)

    def swallow() -> None:
        with contextlib.suppress(Boom):
            ledger.inner(fail=True)

    with pytest.raises(UnexpectedRollbackError):
        ledger.outer(swallow)

    assert names(checker) == []


# -- REQUIRES_NEW ---------------------------------------------------------------------


def test_requires_new_commits_independently_of_outer_rollback(tx, checker, database):
    seen: dict[str, Any] = {}

    def inner() -> None:
        seen["inner"] = tx.session()
        add(tx, "inner")

    def outer() -> None:
        seen["outer"] = tx.session()
        if outer_writes(database):
            add(tx, "outer")
        tx.run(inner, propagation=Propagation.REQUIRES_NEW)
        seen["during"] = names(checker)
        assert tx.session() is seen["outer"]  # resumed
        raise Boom

    with pytest.raises(Boom):
        tx.run(outer, read_only=not outer_writes(database))

    assert seen["inner"] is not seen["outer"]
    assert seen["during"] == ["inner"]
    assert names(checker) == ["inner"]


def test_outer_survives_requires_new_rollback(tx, checker, database):
    def inner() -> None:
        add(tx, "inner")
        raise Boom

    def outer() -> int:
        if outer_writes(database):
            add(tx, "outer")
        with pytest.raises(Boom):
            tx.run(inner, propagation=Propagation.REQUIRES_NEW)
        assert tx.in_transaction()
        return tx.session().execute(text("SELECT COUNT(*) FROM tx_probe")).scalar_one()

    seen_by_outer = tx.run(outer, read_only=not outer_writes(database))

    expected = ["outer"] if outer_writes(database) else []
    assert seen_by_outer == len(expected)
    assert names(checker) == expected


def test_sqlite_refuses_a_writer_that_would_wait_for_itself(sqlite_database):
    tx = TransactionManager(sqlite_database)
    calls: list[str] = []

    def outer() -> None:
        tx.run(calls.append, "inner", propagation=Propagation.REQUIRES_NEW)

    with pytest.raises(IllegalTransactionStateError, match="one writer"):
        tx.run(outer)

    assert calls == []


# -- NESTED ---------------------------------------------------------------------------


def test_nested_failure_rolls_back_only_the_savepoint(tx, checker):
    def nested() -> None:
        add(tx, "nested")
        raise Boom

    def outer() -> None:
        add(tx, "outer")
        with pytest.raises(Boom):
            tx.run(nested, propagation=Propagation.NESTED)
        add(tx, "after")

    tx.run(outer)

    assert names(checker) == ["after", "outer"]


def test_nested_database_error_leaves_the_outer_usable(tx, checker):
    def outer() -> None:
        add(tx, "first")
        with pytest.raises(IntegrityError):
            tx.run(add, tx, "first", propagation=Propagation.NESTED)  # duplicate name
        add(tx, "second")

    tx.run(outer)

    assert names(checker) == ["first", "second"]


def test_nested_success_commits_with_the_outer_and_rolls_back_with_it(tx, checker):
    def outer() -> None:
        add(tx, "outer")
        tx.run(add, tx, "nested", propagation=Propagation.NESTED)
        assert names(checker) == []
        raise Boom

    with pytest.raises(Boom):
        tx.run(outer)
    assert names(checker) == []

    tx.run(lambda: tx.run(add, tx, "nested", propagation=Propagation.NESTED))
    assert names(checker) == ["nested"]


def test_nested_without_transaction_starts_one(tx, checker):
    def alone() -> None:
        assert tx.in_transaction()
        add(tx, "a")
        raise Boom

    with pytest.raises(Boom):
        tx.run(alone, propagation=Propagation.NESTED)

    assert names(checker) == []


# -- SUPPORTS, MANDATORY, NEVER --------------------------------------------------------


def test_supports_joins_a_transaction(tx, checker):
    def outer() -> None:
        session = tx.session()
        add(tx, "outer")
        tx.run(lambda: (assert_same(session), add(tx, "s")), propagation=Propagation.SUPPORTS)
        raise Boom

    def assert_same(session: Any) -> None:
        assert tx.in_transaction() and tx.session() is session

    with pytest.raises(Boom):
        tx.run(outer)

    assert names(checker) == []


@pytest.mark.parametrize("propagation", [Propagation.SUPPORTS, Propagation.NEVER])
def test_without_transaction_runs_each_statement_on_its_own(tx, checker, propagation):
    during: list[list[str]] = []

    def alone() -> None:
        assert not tx.in_transaction()
        add(tx, "first")
        during.append(names(checker))
        raise Boom

    with pytest.raises(Boom):
        tx.run(alone, propagation=propagation)

    assert during == [["first"]]
    assert names(checker) == ["first"]


def test_mandatory_raises_without_transaction_and_joins_one(tx, checker):
    with pytest.raises(IllegalTransactionStateError, match="MANDATORY"):
        tx.run(add, tx, "m", propagation=Propagation.MANDATORY)

    def outer() -> None:
        tx.run(add, tx, "m", propagation=Propagation.MANDATORY)
        raise Boom

    with pytest.raises(Boom):
        tx.run(outer)
    assert names(checker) == []


def test_never_raises_inside_a_transaction(tx, checker):
    def outer() -> None:
        add(tx, "outer")
        tx.run(add, tx, "never", propagation=Propagation.NEVER)

    with pytest.raises(IllegalTransactionStateError, match="NEVER"):
        tx.run(outer)

    assert names(checker) == []


# -- NOT_SUPPORTED -------------------------------------------------------------------


def test_not_supported_suspends_the_transaction(tx, checker, database):
    seen: dict[str, Any] = {}

    def suspended() -> None:
        assert not tx.in_transaction()
        seen["inner"] = tx.session()
        add(tx, "suspended")
        seen["during"] = names(checker)

    def outer() -> None:
        seen["outer"] = tx.session()
        if outer_writes(database):
            add(tx, "outer")
        tx.run(suspended, propagation=Propagation.NOT_SUPPORTED)
        assert tx.in_transaction() and tx.session() is seen["outer"]
        raise Boom

    with pytest.raises(Boom):
        tx.run(outer, read_only=not outer_writes(database))

    assert seen["inner"] is not seen["outer"]
    assert seen["during"] == ["suspended"]
    assert names(checker) == ["suspended"]


# -- read_only, isolation ---------------------------------------------------------------


def assert_write_refused(database: Database, caught: pytest.ExceptionInfo[DBAPIError]) -> None:
    if database.dialect_name == "mysql":
        assert caught.value.orig.args[0] == 1792
    else:
        assert "readonly" in str(caught.value.orig)


@pytest.mark.parametrize("propagation", [Propagation.REQUIRED, Propagation.SUPPORTS])
def test_read_only_refuses_writes_and_the_connection_is_reset(tx, checker, database, propagation):
    def read_then_write() -> None:
        assert tx.session().autoflush is False
        assert tx.session().execute(text("SELECT COUNT(*) FROM tx_probe")).scalar_one() == 0
        add(tx, "written")

    with pytest.raises(DBAPIError) as caught:
        tx.run(read_then_write, propagation=propagation, read_only=True)

    assert_write_refused(database, caught)
    assert names(checker) == []
    for attempt in range(3):  # every pooled connection accepts writes again
        tx.run(add, tx, f"after-{attempt}")
    assert names(checker) == ["after-0", "after-1", "after-2"]


def test_isolation_applies_to_the_new_transaction_only(tx, database):
    if database.dialect_name == "mysql":
        query, wanted, default = "SELECT @@tx_isolation", "SERIALIZABLE", "READ-COMMITTED"
        level = "SERIALIZABLE"
    else:
        query, wanted, default = "PRAGMA read_uncommitted", 1, 0
        level = "READ UNCOMMITTED"

    def current() -> Any:
        return tx.session().execute(text(query)).scalar_one()

    assert tx.run(current, isolation=level) == wanted
    assert [tx.run(current) for _ in range(3)] == [default] * 3
    assert tx.run(lambda: tx.run(current, isolation=level)) == default  # joined: ignored


def test_sqlite_refuses_isolation_levels_it_lacks(sqlite_database):
    tx = TransactionManager(sqlite_database)
    with pytest.raises(ValueError, match="not supported on sqlite"):
        tx.run(lambda: None, isolation="REPEATABLE READ")


# -- rollback rules ---------------------------------------------------------------------


class Declined(Exception):
    """An outcome that is an exception but keeps the work done so far."""


class DeclinedHard(Declined):
    pass


def test_no_rollback_for_commits_and_still_raises(tx, checker):
    def fn(name: str, error: type[Exception]) -> None:
        add(tx, name)
        raise error

    with pytest.raises(Declined):
        tx.run(fn, "kept", Declined, no_rollback_for=(Declined,))
    with pytest.raises(DeclinedHard):
        tx.run(
            fn, "dropped", DeclinedHard, no_rollback_for=(Declined,), rollback_for=(DeclinedHard,)
        )
    with pytest.raises(Boom):
        tx.run(fn, "other", Boom, no_rollback_for=(Declined,))

    assert names(checker) == ["kept"]


def test_no_rollback_for_in_a_joined_scope_keeps_the_transaction(tx, checker):
    def inner() -> None:
        add(tx, "inner")
        raise Declined

    def outer() -> None:
        with pytest.raises(Declined):
            tx.run(inner, no_rollback_for=(Declined,))
        add(tx, "outer")

    tx.run(outer)

    assert names(checker) == ["inner", "outer"]


# -- after-commit hooks -----------------------------------------------------------------


def test_after_commit_runs_after_the_outermost_commit(tx, checker):
    events: list[tuple[str, list[str]]] = []

    def hook(label: str) -> Callable[[], None]:
        return lambda: events.append((label, names(checker)))

    def inner() -> None:
        add(tx, "inner")
        tx.after_commit(hook("inner"))

    def nested() -> None:
        add(tx, "nested")
        tx.after_commit(hook("nested"))

    def outer() -> None:
        tx.after_commit(hook("outer"))
        tx.run(inner)
        tx.run(nested, propagation=Propagation.NESTED)
        assert events == []

    tx.run(outer)

    committed = ["inner", "nested"]
    assert events == [("outer", committed), ("inner", committed), ("nested", committed)]


def test_after_commit_never_runs_after_a_rollback(tx, checker):
    events: list[str] = []

    def failing() -> None:
        tx.after_commit(lambda: events.append("failing"))
        raise Boom

    def rolled_back_nested() -> None:
        tx.after_commit(lambda: events.append("nested"))
        raise Boom

    def outer() -> None:
        with pytest.raises(Boom):
            tx.run(rolled_back_nested, propagation=Propagation.NESTED)
        tx.after_commit(lambda: events.append("outer"))

    with pytest.raises(Boom):
        tx.run(failing)
    tx.run(outer)
    with pytest.raises(UnexpectedRollbackError):
        tx.run(lambda: (tx.after_commit(lambda: events.append("doomed")), _swallow(tx)))

    assert events == ["outer"]


def _swallow(tx: TransactionManager) -> None:
    with contextlib.suppress(Boom):
        tx.run(_raise_boom)


def _raise_boom() -> None:
    raise Boom


def test_after_commit_of_requires_new_runs_at_its_own_commit(tx, checker, database):
    events: list[list[str]] = []

    def inner() -> None:
        add(tx, "inner")
        tx.after_commit(lambda: events.append(names(checker)))

    def outer() -> None:
        tx.run(inner, propagation=Propagation.REQUIRES_NEW)
        assert events == [["inner"]]
        raise Boom

    with pytest.raises(Boom):
        tx.run(outer, read_only=not outer_writes(database))

    assert events == [["inner"]]


# -- retry ------------------------------------------------------------------------------


@pytest.fixture
def conflict(database, checker, tx) -> Iterator[Callable[[], None]]:
    """A function that raises a real lock-conflict OperationalError inside a transaction."""
    if database.dialect_name == "mysql":
        with checker.connect() as setup:
            setup.execute(insert(probe).values(name="locked", hits=0))
        with checker.connect() as holder:
            holder.execute(text("BEGIN"))
            holder.execute(text("SELECT id FROM tx_probe WHERE name = 'locked' FOR UPDATE"))

            def conflict() -> None:
                tx.session().execute(
                    text("SELECT id FROM tx_probe WHERE name = 'locked' FOR UPDATE NOWAIT")
                )

            yield conflict
            holder.execute(text("ROLLBACK"))
    else:
        # The manager's own transaction holds the write lock (BEGIN IMMEDIATE); a second
        # connection that will not wait cannot get it.
        other = create_engine(database.engine.url, poolclass=NullPool, connect_args={"timeout": 0})

        def conflict() -> None:
            with other.begin() as conn:
                conn.execute(insert(probe).values(name="elsewhere", hits=0))

        yield conflict
        other.dispose()


def test_retry_reruns_after_a_lock_conflict(tx, checker, conflict, caplog):
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        add(tx, "retried")
        if len(calls) == 1:
            conflict()

    with caplog.at_level(logging.WARNING, logger="service.transaction"):
        tx.run(fn)

    assert len(calls) == 2
    assert "retried" in names(checker)
    assert [r.levelno for r in caplog.records if "retrying" in r.getMessage()] == [logging.WARNING]


def test_retry_gives_up_after_max_retries(tx, checker, conflict):
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        add(tx, "never")
        conflict()

    with pytest.raises(OperationalError) as caught:
        tx.run(fn)

    assert is_retryable(caught.value)
    assert len(calls) == 1 + tx.max_retries
    assert "never" not in names(checker)


def test_a_joined_scope_never_retries_the_outer_does(tx, checker, conflict):
    calls = {"outer": 0, "inner": 0}

    def inner() -> None:
        calls["inner"] += 1
        conflict()

    def outer() -> None:
        calls["outer"] += 1
        tx.run(inner)

    with pytest.raises(OperationalError):
        tx.run(outer)

    assert calls == {"outer": 1 + tx.max_retries, "inner": 1 + tx.max_retries}


@pytest.mark.mysql
def test_retry_resolves_a_real_deadlock(mysql_database):
    engine = create_engine(mysql_database.engine.url, poolclass=NullPool)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(probe), [{"name": "a", "hits": 0}, {"name": "b", "hits": 0}])
        tx = TransactionManager(mysql_database, max_retries=3, backoff_seconds=0.01)
        both_hold_one = threading.Barrier(2, timeout=10)
        attempts: list[str] = []
        errors: list[BaseException] = []

        def bump(name: str) -> None:
            tx.session().execute(
                text("UPDATE tx_probe SET hits = hits + 1 WHERE name = :n"), {"n": name}
            )

        def transfer(first: str, second: str) -> None:
            attempts.append(first)
            bump(first)
            if attempts.count(first) == 1:
                both_hold_one.wait()  # each holds one row and wants the other's
            bump(second)

        def worker(first: str, second: str) -> None:
            try:
                tx.run(transfer, first, second)
            except BaseException as exc:  # reported to the main thread
                errors.append(exc)

        threads = [
            threading.Thread(target=worker, args=("a", "b")),
            threading.Thread(target=worker, args=("b", "a")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert errors == []
        assert len(attempts) == 3  # one victim of the deadlock ran again
        with engine.connect() as conn:
            hits = dict(conn.execute(text("SELECT name, hits FROM tx_probe")).all())
        assert hits == {"a": 2, "b": 2}
    finally:
        metadata.drop_all(engine)
        engine.dispose()


# -- contexts -------------------------------------------------------------------------


def test_threads_never_share_a_scope(tx, checker):
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        seen["thread_in_tx"] = tx.in_transaction()
        seen["thread_session"] = tx.run(tx.session)

    def outer() -> None:
        seen["main_session"] = tx.session()
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join(10)

    tx.run(outer, read_only=True)

    assert seen["thread_in_tx"] is False
    assert seen["thread_session"] is not seen["main_session"]


# -- the engine under the transactions ---------------------------------------------------


def test_engine_settings(database):
    with database.engine.connect() as conn:
        if database.dialect_name == "mysql":
            row = conn.execute(text("SELECT @@character_set_client, @@tx_isolation")).one()
            assert tuple(row) == ("utf8mb4", "READ-COMMITTED")
        else:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {p}").scalar_one()
                for p in ("foreign_keys", "journal_mode", "busy_timeout")
            ]
            assert pragmas == [1, "wal", 5000]


def test_ping(database, tmp_path):
    assert database.ping() is True
    broken = Database(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    try:
        assert broken.ping() is False
    finally:
        broken.dispose()


def test_slow_sql_logs_the_statement_never_the_parameters(database, checker, caplog):
    database.slow_sql_ms = 0  # every statement counts as slow
    padding = " OR name = 'x'" * 60
    with caplog.at_level(logging.WARNING, logger="dao.sql.slow"), database.engine.connect() as conn:
        conn.execute(
            text(f"SELECT name FROM tx_probe WHERE name = :secret{padding}"),
            {"secret": "13800138000-SECRET"},
        )
    records = [r for r in caplog.records if r.name == "dao.sql.slow"]
    assert records and all(r.levelno == logging.WARNING for r in records)
    logged = records[-1].getMessage()
    assert "SELECT name FROM tx_probe" in logged
    assert "SECRET" not in logged
    assert len(logged) < 500 + 40  # text cut to 500 characters plus the timing
    assert all("SECRET" not in str(r.args) for r in records)


def test_savepoints_work_on_the_raw_engine(database, checker):
    with database.engine.connect() as conn:
        conn.execute(insert(probe).values(name="kept", hits=0))
        savepoint = conn.begin_nested()
        conn.execute(insert(probe).values(name="undone", hits=0))
        savepoint.rollback()
        conn.commit()
    assert names(checker) == ["kept"]
