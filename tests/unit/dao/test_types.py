"""Money, FixedPoint and UtcDateTime: exact round trips and loud refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Table, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from dao.types import FixedPoint, Money, UtcDateTime, to_scaled_int

CST = timezone(timedelta(hours=8))


def _store(conn: Connection, table: Table, **values: object) -> int:
    result = conn.execute(insert(table).values(**values))
    (row_id,) = result.inserted_primary_key
    return row_id


def _raw(conn: Connection, column: str, row_id: int) -> object:
    # Plain SQL, so the stored representation is seen without the type's help.
    return conn.execute(text(f"SELECT {column} FROM typed WHERE id = :id"), {"id": row_id}).scalar()


@pytest.mark.parametrize(
    ("amount", "fen"),
    [
        (Decimal("10000.01"), 1000001),
        (Decimal("50000000.00"), 5000000000),
        (Decimal("0.01"), 1),
        (Decimal("0"), 0),
        (Decimal("-7.5"), -750),
        (Decimal("92233720368547758.07"), 2**63 - 1),
    ],
)
def test_money_round_trip_is_exact(
    sqlite_conn: Connection, typed_table: Table, amount: Decimal, fen: int
) -> None:
    row_id = _store(sqlite_conn, typed_table, money=amount)

    assert _raw(sqlite_conn, "money", row_id) == fen
    back = sqlite_conn.execute(select(typed_table.c.money)).scalar_one()
    assert isinstance(back, Decimal)
    assert back == amount
    assert back.as_tuple().exponent == -2  # always quantized to cents


def test_money_accepts_int_and_exact_trailing_zeros(
    sqlite_conn: Connection, typed_table: Table
) -> None:
    first = _store(sqlite_conn, typed_table, money=100)
    second = _store(sqlite_conn, typed_table, money=Decimal("1.2300"))
    third = _store(sqlite_conn, typed_table, money=Decimal("1E+3"))

    assert _raw(sqlite_conn, "money", first) == 10000
    assert _raw(sqlite_conn, "money", second) == 123
    assert _raw(sqlite_conn, "money", third) == 100000
    values = sqlite_conn.execute(select(typed_table.c.money).order_by(typed_table.c.id)).scalars()
    assert [str(v) for v in values] == ["100.00", "1.23", "1000.00"]


def test_money_null_stays_null(sqlite_conn: Connection, typed_table: Table) -> None:
    row_id = _store(sqlite_conn, typed_table, money=None)

    assert _raw(sqlite_conn, "money", row_id) is None
    assert sqlite_conn.execute(select(typed_table.c.money)).scalar_one() is None


def test_money_comparison_binds_through_the_type(
    sqlite_conn: Connection, typed_table: Table
) -> None:
    for amount in ("0.01", "0.02", "100.00"):
        _store(sqlite_conn, typed_table, money=Decimal(amount))

    stmt = select(typed_table.c.money).where(typed_table.c.money >= Decimal("0.02"))
    assert sorted(sqlite_conn.execute(stmt).scalars()) == [Decimal("0.02"), Decimal("100.00")]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (Decimal("0.001"), ValueError),
        (Decimal("10000.015"), ValueError),
        (Decimal("NaN"), ValueError),
        (Decimal("sNaN"), ValueError),
        (Decimal("Infinity"), ValueError),
        (Decimal("-Infinity"), ValueError),
        (Decimal("92233720368547758.08"), ValueError),
        (Decimal("1E+30"), ValueError),
        (1.5, TypeError),
        (0.1, TypeError),
        ("1.00", TypeError),
        (True, TypeError),
    ],
)
def test_money_refuses_inexact_values(
    sqlite_conn: Connection, typed_table: Table, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        Money().process_bind_param(value, sqlite.dialect())
    with pytest.raises(StatementError) as caught:
        _store(sqlite_conn, typed_table, money=value)
    assert isinstance(caught.value.orig, error)
    assert sqlite_conn.execute(text("SELECT count(*) FROM typed")).scalar() == 0


@pytest.mark.parametrize(
    ("rate", "units"),
    [
        (Decimal("12.3456"), 123456),
        (Decimal("12.5"), 125000),
        (Decimal("36.0000"), 360000),
        (Decimal("0.0001"), 1),
    ],
)
def test_fixed_point_round_trip_is_exact(
    sqlite_conn: Connection, typed_table: Table, rate: Decimal, units: int
) -> None:
    row_id = _store(sqlite_conn, typed_table, rate=rate)

    assert _raw(sqlite_conn, "rate", row_id) == units
    back = sqlite_conn.execute(select(typed_table.c.rate)).scalar_one()
    assert back == rate
    assert back.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("value", "error"),
    [(Decimal("12.34567"), ValueError), (Decimal("NaN"), ValueError), (12.5, TypeError)],
)
def test_fixed_point_refuses_inexact_values(
    sqlite_conn: Connection, typed_table: Table, value: object, error: type[Exception]
) -> None:
    with pytest.raises(StatementError) as caught:
        _store(sqlite_conn, typed_table, rate=value)
    assert isinstance(caught.value.orig, error)


def test_fixed_point_scale_is_part_of_the_type() -> None:
    with pytest.raises(ValueError):
        FixedPoint(0).process_bind_param(Decimal("1.5"), sqlite.dialect())
    assert FixedPoint(6).process_bind_param(Decimal("1.5"), sqlite.dialect()) == 1500000
    assert FixedPoint(6).process_result_value(1500000, sqlite.dialect()) == Decimal("1.500000")


def test_utc_datetime_stores_naive_utc_and_returns_aware_utc(
    sqlite_conn: Connection, typed_table: Table
) -> None:
    local = datetime(2024, 3, 1, 8, 30, 15, 123456, tzinfo=CST)
    row_id = _store(sqlite_conn, typed_table, at=local)

    raw = _raw(sqlite_conn, "at", row_id)
    assert isinstance(raw, str)
    assert raw.startswith("2024-03-01 00:30:15.123456")  # converted to UTC, no offset
    back = sqlite_conn.execute(select(typed_table.c.at)).scalar_one()
    assert back == local
    assert back.tzinfo is UTC
    assert back.hour == 0
    assert back.microsecond == 123456


def test_utc_datetime_refuses_naive(sqlite_conn: Connection, typed_table: Table) -> None:
    with pytest.raises(ValueError):
        UtcDateTime().process_bind_param(datetime(2024, 3, 1, 8, 30), sqlite.dialect())
    with pytest.raises(StatementError) as caught:
        _store(sqlite_conn, typed_table, at=datetime(2024, 3, 1, 8, 30))
    assert isinstance(caught.value.orig, ValueError)


def test_utc_datetime_refuses_non_datetime() -> None:
    with pytest.raises(TypeError):
        UtcDateTime().process_bind_param("2024-03-01T00:00:00Z", sqlite.dialect())


def test_to_scaled_int_is_exact_for_huge_precision() -> None:
    # 30 significant digits exceed the default decimal context; still exact, no rounding.
    value = Decimal("12345678901234567.8900000000000")
    assert to_scaled_int(value, 2) == 1234567890123456789
    with pytest.raises(ValueError):
        to_scaled_int(Decimal("12345678901234567.8900000000001"), 2)
