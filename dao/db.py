"""The pooled engine: connection pool, per-dialect session setup and slow-SQL logging.

Built by the composition root from settings; nothing here connects at import.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from typing import Any, Protocol

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool, StaticPool

# Connection execution option read by the "begin" event: a truthy value marks the
# transaction about to begin as read-only (see Database).
READ_ONLY_OPTION = "p2p_read_only"

_slow_log = logging.getLogger("dao.sql.slow")
_START_KEY = "p2p_sql_start"
_RESET_KEY = "p2p_reset_read_only"
_ENDED_KEY = "p2p_transaction_ended"
_STATEMENT_LIMIT = 500
_SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseObserver(Protocol):
    """Told of every statement and pool checkout (metrics); must not raise."""

    def statement(self, seconds: float, slow: bool) -> None: ...
    def checkout(self, seconds: float, timed_out: bool) -> None: ...


class Database:
    """One pooled engine and its session factory, for SQLite or MySQL/MariaDB.

    SQLite (``sqlite:////path/file.db``, or ``sqlite://`` in memory on one shared
    connection, for quick tests only: see ``single_connection``): foreign keys on, WAL
    journal, 5 s busy timeout. The driver's own transaction handling is turned off and
    the "begin" event emits BEGIN itself (SQLAlchemy's documented recipe), so SAVEPOINT
    works. A transaction that may
    write starts with ``BEGIN IMMEDIATE``, so concurrent writers queue on the busy
    timeout instead of failing when a read lock is upgraded; a read-only one starts
    with plain ``BEGIN``.

    MySQL/MariaDB (``mysql+mysqldb://``): pre-ping, the configured pool sizes,
    utf8mb4, READ COMMITTED by default. A connection going back to the pool is rolled back
    unless its last transaction ended by the Connection's own COMMIT or ROLLBACK, which
    succeeded, with nothing run since (SQLAlchemy's reset-on-return would send a ROLLBACK
    after every COMMIT: one round trip a transaction for nothing). The pre-ping is kept: one
    COM_PING a checkout, without which a connection the server dropped (a restart, a
    failover, wait_timeout) fails the request that draws it, since only deadlocks and lock
    timeouts are retried (service/transaction.py).

    Read-only: a connection whose execution options carry ``READ_ONLY_OPTION``
    (``conn.execution_options(p2p_read_only=True)``, which is what the transaction
    manager passes to ``Session.connection``) makes the database refuse writes for
    the transaction that begins on it: ``SET TRANSACTION READ ONLY`` on MySQL (``SET
    SESSION TRANSACTION READ ONLY`` in AUTOCOMMIT mode), ``PRAGMA query_only=ON`` on
    SQLite. Session-wide settings are undone when the connection returns to the pool.

    Slow SQL: every cursor execution taking ``slow_sql_ms`` or more (0 logs every
    statement) is logged at WARNING on ``dao.sql.slow`` with its text, cut to 500
    characters, and the milliseconds; never the parameters, which carry personal data.

    Reads (``reads``): a second pool, for reads made outside any transaction, whose
    connections are read-only and in autocommit for their whole life, so that a read is its
    statements and nothing else: no BEGIN or SET TRANSACTION, no ROLLBACK at its end, no
    pre-ping (the transaction manager reads again, once, on a new connection when the server
    had dropped the one it drew). MySQL/MariaDB: ``SET SESSION TRANSACTION READ ONLY`` once
    per connection, and the driver's ``rollback()``, which SQLAlchemy calls when a
    Connection closes, is a no-op on them: an autocommit connection has no transaction to
    roll back, and each would be a round trip. SQLite: ``PRAGMA query_only=ON`` once per
    connection, no BEGIN. Under READ COMMITTED (MySQL/MariaDB) each statement of a
    transaction reads its own snapshot anyway, so a read of several statements sees what it
    would in a transaction; on SQLite they may see different commits. In-memory SQLite has
    its one connection only: ``reads`` is None there.

    Observers (``observe``) hear of every statement's time and every pool checkout's wait,
    on both pools.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        pool_timeout: float = 10.0,
        pool_recycle: int = 1800,
        echo: bool = False,
        slow_sql_ms: int = 200,
    ) -> None:
        parsed = make_url(url)
        self.dialect_name: str = parsed.get_backend_name()
        self.slow_sql_ms = slow_sql_ms
        self._observers: list[DatabaseObserver] = []
        poolclass = _observed_pool(self._observers)
        self.reads: Engine | None = None
        if self.dialect_name == "sqlite":
            sqlite_engine = functools.partial(
                _sqlite_engine,
                parsed,
                poolclass=poolclass,
                echo=echo,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
            )
            self.engine: Engine = sqlite_engine()
            if not self.single_connection:
                self.reads = sqlite_engine(read_only=True)
        elif self.dialect_name == "mysql":
            # hide_parameters on every engine: statement parameters (mobile numbers, names)
            # never reach a log line or an exception's text, even with database.echo on.
            mysql_engine = functools.partial(
                create_engine,
                parsed,
                poolclass=poolclass,
                echo=echo,
                hide_parameters=True,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                pool_recycle=pool_recycle,
                connect_args={"charset": "utf8mb4"},
                # the main pool's _on_reset rolls back when it is needed; reads hold nothing
                pool_reset_on_return=None,
            )
            self.engine = mysql_engine(pool_pre_ping=True, isolation_level="READ COMMITTED")
            event.listen(self.engine, "commit", _transaction_ends)
            event.listen(self.engine, "rollback", _transaction_ends)
            event.listen(self.engine, "handle_error", _transaction_failed)
            event.listen(self.engine, "reset", _on_reset)
            self.reads = mysql_engine(isolation_level="AUTOCOMMIT")
            event.listen(self.reads, "do_connect", _mysql_reading_connection)
            event.listen(self.reads, "connect", _mysql_read_only_session)
        else:
            raise ValueError(f"unsupported database: {self.dialect_name!r} (sqlite or mysql)")
        event.listen(self.engine, "begin", self._on_begin)
        event.listen(self.engine, "checkin", self._on_checkin)
        for engine in (self.engine, self.reads):
            if engine is not None:
                event.listen(engine, "before_cursor_execute", _before_execute)
                event.listen(engine, "after_cursor_execute", self._after_execute)
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, s: Any) -> Database:
        """Build from an object with url, pool_size, max_overflow, pool_timeout,
        pool_recycle, echo and slow_sql_ms attributes (conf's DatabaseSettings)."""
        return cls(
            s.url,
            pool_size=s.pool_size,
            max_overflow=s.max_overflow,
            pool_timeout=s.pool_timeout,
            pool_recycle=s.pool_recycle,
            echo=s.echo,
            slow_sql_ms=s.slow_sql_ms,
        )

    def observe(self, observer: DatabaseObserver) -> None:
        """Report statement times and pool checkouts to ``observer`` from now on."""
        self._observers.append(observer)

    @property
    def single_connection(self) -> bool:
        """True for in-memory SQLite: one shared connection, so no transaction can be
        suspended (REQUIRES_NEW, NOT_SUPPORTED) while another is open."""
        return isinstance(self.engine.pool, StaticPool)

    @property
    def single_writer(self) -> bool:
        """True when the database admits one writing transaction at a time (SQLite)."""
        return self.dialect_name == "sqlite"

    def ping(self) -> bool:
        """``SELECT 1`` on a pooled connection; False on any database error (readiness)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{READ_ONLY_OPTION: True}).exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            return False
        return True

    def dispose(self, *, close: bool = True) -> None:
        """Let go of every pooled connection of both pools: closed (shutdown), or, with
        ``close=False`` in a forked child, left to the parent that shares them."""
        for engine in (self.engine, self.reads):
            if engine is not None:
                engine.dispose(close=close)

    def __repr__(self) -> str:
        return f"Database({self.engine.url!r})"

    # -- events -------------------------------------------------------------

    def _on_begin(self, conn: Connection) -> None:
        conn.connection.info.pop(_ENDED_KEY, None)
        options = conn.get_execution_options()
        autocommit = options.get("isolation_level") == "AUTOCOMMIT"
        read_only = bool(options.get(READ_ONLY_OPTION))
        if self.dialect_name == "sqlite":
            dbapi_conn = conn.connection.dbapi_connection
            # SQLAlchemy's isolation-level reset hands control back to the driver;
            # take it again before every transaction.
            dbapi_conn.isolation_level = None
            if read_only:
                conn.exec_driver_sql("PRAGMA query_only=ON")
                conn.connection.info[_RESET_KEY] = "PRAGMA query_only=OFF"
            if not autocommit:
                conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
        elif read_only:
            if autocommit:
                conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
                conn.connection.info[_RESET_KEY] = "SET SESSION TRANSACTION READ WRITE"
            else:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    def _on_checkin(self, dbapi_conn: Any, record: Any) -> None:
        reset = record.info.pop(_RESET_KEY, None)
        if dbapi_conn is None:
            return
        if reset is not None:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute(reset)
            finally:
                cursor.close()
        if self.dialect_name == "sqlite":
            dbapi_conn.isolation_level = None

    def _after_execute(self, conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info.pop(_START_KEY, None)
        if started is None:
            return
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        slow = elapsed_ms >= self.slow_sql_ms
        if slow:
            _slow_log.warning("slow SQL (%.1f ms): %s", elapsed_ms, statement[:_STATEMENT_LIMIT])
        for observer in self._observers:
            observer.statement(elapsed_ms / 1000.0, slow)


def _transaction_ends(conn: Connection) -> None:
    # Told just before the driver's COMMIT or ROLLBACK; should that fail, _transaction_failed
    # takes the mark back. An invalidated connection is closed by the pool, not reset.
    if not (conn.invalidated or conn.closed):
        conn.connection.info[_ENDED_KEY] = True


def _transaction_failed(context: Any) -> None:
    conn = context.connection
    if conn is not None and not (conn.invalidated or conn.closed):
        conn.connection.info.pop(_ENDED_KEY, None)


def _on_reset(dbapi_conn: Any, record: Any, state: Any) -> None:
    """The pool's reset of a connection coming back (MySQL/MariaDB): a ROLLBACK unless its
    last transaction was ended by the Connection (committed or rolled back, successfully) and
    nothing ran since, or the Connection has just rolled it back on close."""
    ended = record.info.pop(_ENDED_KEY, False)
    if state.terminate_only or state.transaction_was_reset or ended:
        return
    dbapi_conn.rollback()


def _before_execute(conn: Connection, *_: Any) -> None:
    # One statement at a time runs on a connection, so one slot is enough; a failed
    # statement leaves a stale value that the next execution overwrites.
    conn.info[_START_KEY] = time.perf_counter()


def _observed_pool(observers: list[DatabaseObserver]) -> type[QueuePool]:
    """A QueuePool that times each checkout for ``observers`` (a class of its own per
    Database: ``dispose()`` rebuilds the pool from its class)."""

    class ObservedQueuePool(QueuePool):
        # SQLAlchemy names a pool's logger after its class; under "sqlalchemy", which it sets
        # to WARNING, the pool's INFO lines ("Pool disposed", "Pool recreating") stay quiet
        # as QueuePool's own do, while its warnings and errors are still logged.
        _sqla_logger_namespace = "sqlalchemy.pool.impl.ObservedQueuePool"

        def connect(self) -> Any:
            if not observers:
                return super().connect()
            started = time.perf_counter()
            try:
                conn = super().connect()
            except PoolTimeoutError:
                _notify_checkout(observers, time.perf_counter() - started, True)
                raise
            _notify_checkout(observers, time.perf_counter() - started, False)
            return conn

    return ObservedQueuePool


def _notify_checkout(observers: list[DatabaseObserver], seconds: float, timed_out: bool) -> None:
    for observer in observers:
        observer.checkout(seconds, timed_out)


def _mysql_reading_connection(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """The ``do_connect`` of the reads' pool: a driver connection whose ``rollback()`` sends
    nothing (see Database)."""
    return _reading_connection_class(dialect.loaded_dbapi)(*cargs, **cparams)


@functools.cache
def _reading_connection_class(dbapi: Any) -> type:
    # mysqlclient's (and PyMySQL's) connection class: the module's connect() is a factory
    base = importlib.import_module(f"{dbapi.__name__}.connections").Connection

    class ReadingConnection(base):  # type: ignore[valid-type,misc]
        """A connection in autocommit, read-only for its whole life: nothing to roll back."""

        def rollback(self) -> None:
            pass

    return ReadingConnection


def _mysql_read_only_session(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
    finally:
        cursor.close()


def _sqlite_engine(
    url: URL,
    *,
    poolclass: type[QueuePool],
    echo: bool,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float,
    read_only: bool = False,
) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        engine = create_engine(
            url,
            poolclass=poolclass,
            echo=echo,
            hide_parameters=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            connect_args={"check_same_thread": False},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see Database)
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    return engine
