"""Declarative base shared by every entity, with deterministic constraint names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Executable, Integer, MetaData
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session

from dao.types import BYTE_EXACT_COLLATION

# Names every index and constraint the same way on SQLite and MariaDB, so that
# migrations can refer to them (drop, alter) without guessing generated names.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Surrogate keys: BIGINT on MariaDB; INTEGER on SQLite, where only an
# "INTEGER PRIMARY KEY" column is a rowid alias that autoincrements.
IdType = BigInteger().with_variant(Integer(), "sqlite")

# Table options for MariaDB/MySQL: transactional engine, full Unicode, and byte-exact
# comparison by default, so that a string column nobody thought about compares as SQLite
# does, never case- or accent-blind. Identifiers say so themselves (dao.types.Identifier);
# human text (titles, descriptions, reasons, bank names) keeps this default: no query
# compares, groups or sorts it, so a linguistic collation would buy nothing, and one that
# ever searches it declares its collation on that column.
MYSQL_TABLE_ARGS: dict[str, str] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": BYTE_EXACT_COLLATION,
}


#: Rows named per statement by a set-based write or read of many rows (a posting's accounts,
#: a repayment's receipts, the coupons of its investments): a few statements for thousands
#: of rows, each with short IN and CASE lists (SQLite admits 32,766 parameters a statement,
#: a CASE is searched linearly for each row).
CHUNK = 500


class Base(DeclarativeBase):
    """Base class of every XxxEntity; its metadata is the migrations' target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """SQL text ``column IN ('A','B')`` for CHECK constraints over fixed code lists."""
    for value in values:
        if not value.replace("_", "").isalnum():
            raise ValueError(f"unsafe code value: {value!r}")
    quoted = ",".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def row_count(session: Session, statement: Executable) -> int:
    """Runs an UPDATE or DELETE in ``session``: the rows it matched (the DB-API's rowcount)."""
    result = session.execute(statement)
    if not isinstance(result, CursorResult):
        raise TypeError(f"{statement} returned no row count")
    return result.rowcount


# -- statements with thousands of parameters --------------------------------------------------
# SQLAlchemy's compiler costs about 50 us a bound parameter in an UPDATE whose CASE names a
# thousand rows (building, coercing and naming each one), more than the database takes to run
# it. The few such statements (a posting's balances, a repayment's receipts) are written as
# SQL text with ``?`` placeholders and run on the session's connection with the values
# already in the driver's form, each converted by its column's own type (``driver_form``).


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


def case_on_id(values: dict[int, Any], default: str | None = None) -> tuple[str, list[Any]]:
    """SQL ``CASE id WHEN ? THEN ? ... [ELSE default] END`` choosing by the row's id among
    ``values`` (id -> value in the driver's form), and its parameters in order."""
    params: list[Any] = []
    for row_id, value in values.items():
        params += (row_id, value)
    whens = " ".join(["WHEN ? THEN ?"] * len(values))
    otherwise = f" ELSE {default}" if default is not None else ""
    return f"CASE id {whens}{otherwise} END", params


def run_sql(session: Session, sql: str, params: Sequence[Any]) -> int:
    """Runs ``sql`` (``?`` placeholders, no other ``?`` or ``%``) with ``params`` in the
    driver's form on the session's connection, in its transaction, not flushing the session
    first; the rows it matched."""
    connection = session.connection()
    if connection.dialect.paramstyle == "format":  # mysqlclient
        sql = sql.replace("?", "%s")
    return connection.exec_driver_sql(sql, tuple(params)).rowcount
