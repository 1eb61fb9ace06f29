"""Statements that name many rows at once: a posting's balances, a repayment's receipts.

SQLAlchemy's compiler costs about 50 us a bound parameter in an UPDATE whose CASE names a
thousand rows (building, coercing and naming each one), more than the database takes to run
it. The few such statements (a posting's balances, a repayment's receipts) are written as
SQL text with ``?`` placeholders and run on the session's connection with the values
already in the driver's form, each converted by its column's own type (``driver_form``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column
from sqlalchemy.orm import InstrumentedAttribute, Session

#: Rows named per statement by a set-based write or read of many rows (a posting's accounts,
#: a repayment's receipts, the coupons of its investments): a few statements for thousands
#: of rows, each with short IN and CASE lists (SQLite admits 32,766 parameters a statement,
#: a CASE is searched linearly for each row).
CHUNK = 500


def driver_form(
    session: Session, column: InstrumentedAttribute[Any] | Column[Any]
) -> Callable[[Any], Any]:
    """Converts a value as ``column``'s type binds it on the session's database (Money to
    integer fen, UtcDateTime to naive UTC, ...)."""
    dialect = session.get_bind().dialect
    process = column.type.bind_processor(dialect)
    return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


def placeholders(count: int) -> str:
    """``?, ?, ...``: ``count`` positional placeholders, for an IN list."""
    return ", ".join(["?"] * count)


def case_on_id(
    values: dict[int, Any], default: str | None = None, column: str = "id"
) -> tuple[str, list[Any]]:
    """SQL ``CASE id WHEN ? THEN ? ... [ELSE default] END`` choosing by the row's id (or
    key ``column``) among ``values`` (id -> value in the driver's form), and its parameters
    in order."""
    params: list[Any] = []
    for row_id, value in values.items():
        params += (row_id, value)
    whens = " ".join(["WHEN ? THEN ?"] * len(values))
    otherwise = f" ELSE {default}" if default is not None else ""
    return f"CASE {column} {whens}{otherwise} END", params


def run_sql(session: Session, sql: str, params: Sequence[Any]) -> int:
    """Runs ``sql`` (``?`` placeholders, no other ``?`` or ``%``) with ``params`` in the
    driver's form on the session's connection, in its transaction, not flushing the session
    first; the rows it matched."""
    connection = session.connection()
    if connection.dialect.paramstyle == "format":  # mysqlclient
        sql = sql.replace("?", "%s")
    return connection.exec_driver_sql(sql, tuple(params)).rowcount
