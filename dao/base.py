"""Declarative base shared by every entity, with deterministic constraint names."""

from __future__ import annotations

from sqlalchemy import BigInteger, Executable, Integer, MetaData, Table
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import DeclarativeBase, Session

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


def row_count(session: Session, statement: Executable, params: dict | None = None) -> int:
    """Runs an UPDATE or DELETE in ``session`` (with ``params`` for its bound parameters):
    the rows it matched (the DB-API's rowcount)."""
    result = session.execute(statement, params)
    if not isinstance(result, CursorResult):
        raise TypeError(f"{statement} returned no row count")
    return result.rowcount


def table_of(entity: type[Base]) -> Table:
    """The entity's table, for Core statements that run without the ORM (no entity loaded,
    no unit of work to flush)."""
    table = entity.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{entity.__name__} is not mapped to a table")
    return table


def inserted_id(session: Session, statement: Executable, params: dict) -> int:
    """Runs a one-row INSERT in ``session``: the new row's primary key."""
    result = session.execute(statement, params)
    if not isinstance(result, CursorResult):
        raise TypeError(f"{statement} returned no primary key")
    return result.inserted_primary_key[0]
