"""Exact column types: money as integer fen, fixed-point rates, UTC timestamps, identifiers
compared byte for byte.

No float ever crosses these types: SQLAlchemy's Numeric is a float on SQLite, so
amounts are stored as scaled integers and read back as quantized Decimals.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: MariaDB's collation comparing code point by code point without padding: 'order-abc',
#: 'ORDER-ABC', 'ordér-abc' and 'order-abc ' are four values, as they are to SQLite's BINARY.
#: (utf8mb4_bin pads: it finds 'abc' equal to 'abc '. MariaDB 10.2 and later.)
BYTE_EXACT_COLLATION = "utf8mb4_nopad_bin"

_BIGINT_MIN = -(2**63)
_BIGINT_MAX = 2**63 - 1


def to_scaled_int(value: Decimal | int, scale: int) -> int:
    """Return ``value * 10**scale`` as an exact int; refuse anything that would round.

    Raises TypeError for floats, strings and bools, ValueError for NaN, infinity,
    more than ``scale`` decimal places, or a result outside a signed 64-bit integer.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"expected Decimal or int, got {type(value).__name__}")
    if isinstance(value, int):
        scaled = value * 10**scale
    else:
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite, checked above
        coefficient = int("".join(map(str, digits)) or "0")
        shift = exponent + scale
        if coefficient == 0:
            scaled = 0
        elif shift >= 0:
            if shift > 19:  # >= 10**19 cannot fit in BIGINT; avoid huge powers
                raise ValueError(f"out of range: {value}")
            scaled = coefficient * 10**shift
        else:
            scaled, remainder = divmod(coefficient, 10**-shift)
            if remainder:
                raise ValueError(f"more than {scale} decimal places: {value}")
        if sign:
            scaled = -scaled
    if not _BIGINT_MIN <= scaled <= _BIGINT_MAX:
        raise ValueError(f"out of range: {value}")
    return scaled


def from_scaled_int(value: int | Decimal, scale: int) -> Decimal:
    """Inverse of :func:`to_scaled_int`: an int of units back to a Decimal with ``scale`` places."""
    if isinstance(value, float):  # a driver handing back a float would be a bug upstream
        raise TypeError("scaled integer column returned a float")
    return Decimal(int(value)).scaleb(-scale).quantize(Decimal(1).scaleb(-scale))


class FixedPoint(TypeDecorator[Decimal]):
    """A Decimal with at most ``scale`` places, stored exactly as BIGINT ``value * 10**scale``.

    ``FixedPoint(4)`` stores 12.5 as 125000. Values needing more places are refused,
    never rounded.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int) -> None:
        if not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= 18:
            raise ValueError("scale must be an int between 0 and 18")
        super().__init__()
        self.scale = scale

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_scaled_int(value, self.scale)

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        if value is None:
            return "NULL"
        return str(to_scaled_int(value, self.scale))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return from_scaled_int(value, self.scale)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scale})"


class Money(FixedPoint):
    """An amount in yuan as a Decimal with two places, stored as BIGINT fen (分)."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identifier(TypeDecorator[str]):
    """A string that names something (a request or order number, a code, a hash, a status):
    VARCHAR(``length``) equal only to the same characters on every engine, in comparisons and
    unique keys alike; no case folding, no accent folding, no trailing-space padding.

    On MariaDB the column carries :data:`BYTE_EXACT_COLLATION`; SQLite compares with BINARY
    (memcmp) by default. Whatever is unique, looked up by equality or compared with a code
    list is an Identifier; only text people write and read is a plain String.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    @property
    def python_type(self) -> type[str]:
        return str

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(
                mysql.VARCHAR(self.length, collation=BYTE_EXACT_COLLATION)
            )
        return dialect.type_descriptor(String(self.length))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.length})"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as naive UTC (DATETIME(6) on MySQL/MariaDB).

    Binding a naive datetime raises ValueError: the caller must say what zone it meant.
    Results come back as aware datetimes in UTC.
    """

    impl = DateTime
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused; pass a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (default for timestamp columns)."""
    return datetime.now(UTC)
