"""Declarative transactions with Spring's propagation semantics; the one place that commits.

``@transactional`` on a service method (its object has a ``tx`` TransactionManager), or
``tx.run(fn, ...)``, gives the call a scope: a session in a real transaction, a savepoint,
or a non-transactional (AUTOCOMMIT) session, chosen by the propagation. Scopes live in a
context variable, so threads never share a session, and form a stack so that
REQUIRES_NEW and NOT_SUPPORTED can suspend the current transaction.

Decisions where Spring leaves a choice:

* Rollback rule: an exception rolls back unless the nearest matching class among
  ``rollback_for`` and ``no_rollback_for`` (nearest in the exception's MRO) is a
  ``no_rollback_for`` one; ``rollback_for`` wins a tie; an exception matching neither rolls
  back. Retryable errors (deadlocks, lock timeouts) always roll back. The exception always
  propagates.
* A joined scope (REQUIRED/SUPPORTS/MANDATORY inside a transaction) that fails marks the
  transaction rollback-only. If the outer function then swallows the error and returns,
  the outer scope rolls back and raises UnexpectedRollbackError (Spring's
  UnexpectedRollbackException) rather than commit half the work.
* NESTED rolls back only its savepoint, and drops the after-commit hooks registered inside
  it. If the savepoint cannot be rolled back, or the error is retryable (MariaDB has then
  rolled back the whole transaction), the outer transaction is marked rollback-only.
* ``isolation`` and ``read_only`` apply to the scope that starts a transaction; a joined or
  nested scope runs in the outer transaction's mode and ignores them (the isolation value is
  still validated). On a non-transactional scope isolation is ignored (AUTOCOMMIT).
* A read-only transaction is rolled back at its end; its after-commit hooks still run, as
  Spring runs them for a read-only transaction that completes normally.
* after-commit hooks belong to the physical transaction in which they are registered: those
  of a REQUIRES_NEW transaction run when it commits, those of joined or nested scopes when
  the transaction's outermost scope commits. They run after the session is closed.
* Retry: only a scope that started a physical transaction retries, re-running the whole
  function; joined and nested scopes never do. Non-transactional scopes never retry.
* ``tx.read(fn, ...)`` runs Core reads without a session: in a scope on its connection,
  outside any on the database's read-only autocommit pool (retried as a scope that started
  a transaction is, and made again once on a connection the server had dropped).
* A non-transactional scope flushes its session at the end (each statement autocommits);
  on an error that rolls back, pending ORM changes are discarded, executed statements stay.
* SQLite admits one writer: starting a writing transaction (REQUIRES_NEW, or REQUIRED under
  NOT_SUPPORTED) while this context holds a suspended writing transaction would wait for
  itself, so it is refused at once with IllegalTransactionStateError. Make one of them
  ``read_only``, or use MariaDB. A NOT_SUPPORTED write under a writing SQLite transaction
  fails after the busy timeout with "database is locked".
"""

from __future__ import annotations

import contextvars
import enum
import functools
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from dao.db import READ_ONLY_OPTION

log = logging.getLogger(__name__)

T = TypeVar("T")

_MYSQL_RETRYABLE = frozenset({1205, 1213})  # lock wait timeout, deadlock
_SQLITE_RETRYABLE = ("database is locked", "database is busy")
_ISOLATION_LEVELS = {
    "sqlite": frozenset({"SERIALIZABLE", "READ UNCOMMITTED"}),
    "mysql": frozenset({"READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"}),
}


class Propagation(enum.Enum):
    """How a scope relates to the transaction already active, as in Spring."""

    REQUIRED = "REQUIRED"
    REQUIRES_NEW = "REQUIRES_NEW"
    NESTED = "NESTED"
    SUPPORTS = "SUPPORTS"
    MANDATORY = "MANDATORY"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    NEVER = "NEVER"


class IllegalTransactionStateError(Exception):
    """The scope cannot run here: MANDATORY without a transaction, NEVER inside one,
    session() outside any scope, or a suspension SQLite cannot serve."""


class RetryTransaction(Exception):
    """Raised to have the transaction retried from its start: e.g. a unique key that another
    transaction claimed at the same moment, whose row the retry will then see."""


class UnexpectedRollbackError(Exception):
    """The transaction was rolled back although its outermost scope returned normally,
    because an inner joined scope failed and marked it rollback-only."""


def is_retryable(exc: BaseException) -> bool:
    """True for deadlocks and lock conflicts worth retrying the whole transaction for:
    MySQL/MariaDB errors 1213 and 1205, SQLite "database is locked"/"database is busy", and
    :class:`RetryTransaction`.
    Follows the chain of explicit causes (``raise ... from``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _retryable_here(current):
            return True
        current = current.__cause__
    return False


def _retryable_here(exc: BaseException) -> bool:
    if isinstance(exc, RetryTransaction):
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    # sqlite3 is looked up, not imported: a worker on MySQL never loads it, and then no error
    # can be one of its.
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return any(marker in text for marker in _SQLITE_RETRYABLE)
    module = type(orig).__module__ or ""
    if module.startswith(("MySQLdb", "pymysql")) and orig.args:
        return orig.args[0] in _MYSQL_RETRYABLE
    return False


@dataclass(frozen=True)
class _Rule:
    rollback_for: tuple[type[BaseException], ...]
    no_rollback_for: tuple[type[BaseException], ...]

    def rolls_back(self, exc: BaseException) -> bool:
        if is_retryable(exc):
            return True
        mro = type(exc).__mro__

        def nearest(classes: tuple[type[BaseException], ...]) -> int:
            return min((mro.index(c) for c in classes if c in mro), default=len(mro))

        keep = nearest(self.no_rollback_for)
        return keep == len(mro) or nearest(self.rollback_for) <= keep


@dataclass(frozen=True)
class _Options:
    propagation: Propagation
    read_only: bool
    isolation: str | None
    rule: _Rule


@dataclass(eq=False)
class _Scope:
    """A session this context opened: a physical transaction, or a non-transactional one."""

    session: Session
    transactional: bool
    read_only: bool
    rollback_only: bool = False
    hooks: list[Callable[[], None]] = field(default_factory=list)


class TransactionManager:
    """Runs functions in transaction scopes on one Database (see the module docstring)."""

    def __init__(self, database: Any, *, max_retries: int = 3, backoff_seconds: float = 0.02):
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.database = database
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._stack: contextvars.ContextVar[tuple[_Scope, ...]] = contextvars.ContextVar(
            f"p2p_tx_{id(self)}", default=()
        )

    # -- queries ------------------------------------------------------------

    def session(self) -> Session:
        """The session of the current scope; IllegalTransactionStateError outside any."""
        stack = self._stack.get()
        if not stack:
            raise IllegalTransactionStateError("no transaction scope is active in this context")
        return stack[-1].session

    def in_transaction(self) -> bool:
        """True when a real (not AUTOCOMMIT) transaction is active in this context."""
        stack = self._stack.get()
        return bool(stack) and stack[-1].transactional

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the current physical transaction commits; dropped if it rolls
        back. Without a transaction, run it now. Failures are logged, never raised."""
        if self.in_transaction():
            self._stack.get()[-1].hooks.append(fn)
        else:
            _run_hooks([fn])

    # -- running ------------------------------------------------------------

    def run(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        propagation: Propagation = Propagation.REQUIRED,
        read_only: bool = False,
        isolation: str | None = None,
        rollback_for: tuple[type[BaseException], ...] = (Exception,),
        no_rollback_for: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> T:
        """Call ``fn(*args, **kwargs)`` in a scope with the given propagation.

        The keyword names of this method cannot be passed through to ``fn``; use
        functools.partial for a function that takes them."""
        options = _Options(
            propagation, read_only, isolation, _Rule(tuple(rollback_for), tuple(no_rollback_for))
        )
        return self._execute(fn, args, kwargs, options)

    def _execute(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], o: _Options
    ) -> T:
        if not isinstance(o.propagation, Propagation):
            raise TypeError(f"propagation must be a Propagation, got {o.propagation!r}")
        isolation = self._check_isolation(o.isolation)
        stack = self._stack.get()
        current = stack[-1] if stack else None
        active = current is not None and current.transactional
        p = o.propagation
        if p is Propagation.MANDATORY and not active:
            raise IllegalTransactionStateError(
                f"{_name(fn)} needs a transaction (MANDATORY) and none is active"
            )
        if p is Propagation.NEVER and active:
            raise IllegalTransactionStateError(
                f"{_name(fn)} must not run in a transaction (NEVER) and one is active"
            )
        if (
            current is not None
            and active
            and p in (Propagation.REQUIRED, Propagation.SUPPORTS, Propagation.MANDATORY)
        ):
            return self._joined(current, fn, args, kwargs, o.rule)
        if current is not None and active and p is Propagation.NESTED:
            return self._nested(current, fn, args, kwargs, o.rule)
        if p in (Propagation.REQUIRED, Propagation.NESTED, Propagation.REQUIRES_NEW):
            return self._new_with_retry(fn, args, kwargs, o, isolation)
        # SUPPORTS or NEVER without a transaction, NOT_SUPPORTED always: non-transactional.
        if current is not None and not current.transactional:
            return self._joined(current, fn, args, kwargs, o.rule)
        return self._new(fn, args, kwargs, o, None, transactional=False)

    def _joined(
        self, scope: _Scope, fn: Callable[..., T], args: Any, kwargs: Any, rule: _Rule
    ) -> T:
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            if scope.transactional and rule.rolls_back(exc):
                scope.rollback_only = True
            raise

    def _nested(
        self, scope: _Scope, fn: Callable[..., T], args: Any, kwargs: Any, rule: _Rule
    ) -> T:
        mark = len(scope.hooks)
        savepoint = scope.session.begin_nested()
        try:
            result = fn(*args, **kwargs)
            savepoint.commit()
        except BaseException as exc:
            if rule.rolls_back(exc):
                del scope.hooks[mark:]
                if is_retryable(exc) or not _rollback_savepoint(savepoint):
                    scope.rollback_only = True
            elif savepoint.is_active:
                savepoint.commit()
            raise
        return result

    def read(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(connection, *args)``: a read of Core statements, without an ORM session (a
        session per call costs several times a one-row query). In a scope, on that scope's
        connection, its session flushed first: the read sees the scope's changes, as the
        session's own queries would. Outside any, on a connection of the database's reads
        pool (read-only, autocommit: the statements alone, see :class:`dao.db.Database`),
        made again on a new connection if the server had dropped the one drawn, and retried
        as :meth:`run` retries a transaction; in-memory SQLite, whose one connection has no
        such pool, reads in a read-only transaction rolled back at its end."""
        stack = self._stack.get()
        if stack:
            session = stack[-1].session
            session.flush()
            return fn(session.connection(), *args)
        reads = self.database.reads
        if reads is None:
            return self._retrying(fn, lambda: self._read_in_transaction(fn, args))
        return self._retrying(fn, lambda: _read_on(reads, fn, args))

    def _read_in_transaction(self, fn: Callable[..., T], args: Any) -> T:
        with self.database.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY_OPTION: True})
            connection.begin()
            try:
                return fn(connection, *args)
            finally:
                connection.rollback()

    def _new_with_retry(
        self, fn: Callable[..., T], args: Any, kwargs: Any, o: _Options, isolation: str | None
    ) -> T:
        return self._retrying(
            fn, lambda: self._new(fn, args, kwargs, o, isolation, transactional=True)
        )

    def _retrying(self, fn: Callable[..., Any], attempt_once: Callable[[], T]) -> T:
        """``attempt_once()``, again on a retryable error, at most max_retries more times."""
        attempt = 0
        while True:
            try:
                return attempt_once()
            except Exception as exc:
                if attempt >= self.max_retries or not is_retryable(exc):
                    raise
                attempt += 1
                delay = self.backoff_seconds * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311
                log.warning(
                    "retrying %s after %s (attempt %d of %d, in %.0f ms)",
                    _name(fn),
                    type(exc).__name__,
                    attempt,
                    self.max_retries,
                    delay * 1000,
                )
                time.sleep(delay)

    def _new(
        self,
        fn: Callable[..., T],
        args: Any,
        kwargs: Any,
        o: _Options,
        isolation: str | None,
        *,
        transactional: bool,
    ) -> T:
        self._refuse_unservable_suspension(fn, transactional=transactional, read_only=o.read_only)
        session = self._open(
            transactional=transactional, read_only=o.read_only, isolation=isolation
        )
        scope = _Scope(session, transactional, o.read_only)
        token = self._stack.set((*self._stack.get(), scope))
        completed = False
        try:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                if o.rule.rolls_back(exc) or scope.rollback_only:
                    session.rollback()
                else:
                    completed = self._finish(scope)
                raise
            if scope.rollback_only:
                session.rollback()
                raise UnexpectedRollbackError(
                    f"{_name(fn)}: transaction rolled back because an inner scope failed"
                )
            completed = self._finish(scope)
            return result
        finally:
            self._stack.reset(token)
            session.close()
            if completed:
                _run_hooks(scope.hooks)

    def _finish(self, scope: _Scope) -> bool:
        if scope.read_only:
            scope.session.rollback()
        else:
            scope.session.commit()
        return scope.transactional

    def _open(self, *, transactional: bool, read_only: bool, isolation: str | None) -> Session:
        options: dict[str, Any] = {}
        if not transactional:
            options["isolation_level"] = "AUTOCOMMIT"
        elif isolation is not None:
            options["isolation_level"] = isolation
        if read_only:
            options[READ_ONLY_OPTION] = True
        session: Session = self.database.session_factory(autoflush=not read_only)
        try:
            # Begin now, so the BEGIN and read-only settings run before fn's first statement.
            session.connection(execution_options=options)
        except BaseException:
            session.close()
            raise
        return session

    def _refuse_unservable_suspension(
        self, fn: Callable[..., Any], *, transactional: bool, read_only: bool
    ) -> None:
        stack = self._stack.get()
        if stack and getattr(self.database, "single_connection", False):
            raise IllegalTransactionStateError(
                f"{_name(fn)}: an in-memory SQLite database has one connection, so the "
                "current scope cannot be suspended; use a file database"
            )
        if not transactional or read_only or not getattr(self.database, "single_writer", False):
            return
        if any(s.transactional and not s.read_only for s in stack):
            raise IllegalTransactionStateError(
                f"{_name(fn)}: SQLite admits one writer and this context already holds a "
                "writing transaction; a new writing transaction would wait for itself "
                "(mark one of them read_only, or use MariaDB)"
            )

    def _check_isolation(self, isolation: str | None) -> str | None:
        if isolation is None:
            return None
        level = isolation.strip().upper().replace("_", " ")
        allowed = _ISOLATION_LEVELS.get(self.database.dialect_name)
        if allowed is not None and level not in allowed:
            raise ValueError(
                f"isolation {isolation!r} is not supported on {self.database.dialect_name}; "
                f"use one of {sorted(allowed)} (AUTOCOMMIT: use Propagation.NOT_SUPPORTED)"
            )
        return level


def transactional(
    fn: Callable[..., T] | None = None,
    *,
    propagation: Propagation = Propagation.REQUIRED,
    read_only: bool = False,
    isolation: str | None = None,
    rollback_for: tuple[type[BaseException], ...] = (Exception,),
    no_rollback_for: tuple[type[BaseException], ...] = (),
) -> Any:
    """Decorator for methods of objects that have a `tx` attribute (a TransactionManager).
    Usable bare (@transactional) or with arguments."""
    options = _Options(
        propagation, read_only, isolation, _Rule(tuple(rollback_for), tuple(no_rollback_for))
    )

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            manager: TransactionManager = self.tx
            return manager._execute(method, (self, *args), kwargs, options)

        return wrapper

    return decorate(fn) if fn is not None else decorate


def _rollback_savepoint(savepoint: SessionTransaction) -> bool:
    try:
        savepoint.rollback()
    except SQLAlchemyError:
        log.exception("could not roll back to the savepoint")
        return False
    return True


def _run_hooks(hooks: list[Callable[[], None]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            log.exception("after-commit hook %s failed", _name(hook))


def _read_on(reads: Engine, fn: Callable[..., T], args: Any) -> T:
    try:
        with reads.connect() as connection:
            return fn(connection, *args)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    # The server had closed the pooled connection (a restart, wait_timeout): SQLAlchemy has
    # let go of the pool's connections of that age; a read is safe to make again.
    with reads.connect() as connection:
        return fn(connection, *args)


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
