"""Fixtures for dao unit tests: an in-memory SQLite table using the exact types."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine
from sqlalchemy.engine import Connection

from dao.types import FixedPoint, Money, UtcDateTime


@pytest.fixture
def typed_table() -> Table:
    """A throwaway table with one column of each exact type."""
    return Table(
        "typed",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("money", Money()),
        Column("rate", FixedPoint(4)),
        Column("at", UtcDateTime()),
    )


@pytest.fixture
def sqlite_conn(typed_table: Table) -> Iterator[Connection]:
    """A connection to a fresh in-memory SQLite database holding ``typed_table``."""
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as connection:
            typed_table.metadata.create_all(connection)
            yield connection
    finally:
        engine.dispose()
