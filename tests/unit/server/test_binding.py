"""The data binding: what each wire type accepts from text and JSON, and how it is written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from spyne import DateTime, Integer32, Long

from facade.member.account import Mobile, Password
from facade.p2p.loan import LoanRequest, RepaymentMethod
from facade.types import Money, Rate
from server.binding import Complex, InvalidValue, describe, snake

MONEY = describe(Money)
RATE = describe(Rate)
INT = describe(Integer32)
LONG = describe(Long)
ENUM = describe(RepaymentMethod)
MOBILE = describe(Mobile)
PASSWORD = describe(Password)
DATETIME = describe(DateTime)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000.00", Decimal("1000.00")),
        ("1000", Decimal("1000")),
        ("0.5", Decimal("0.5")),
        (" 12.34 ", Decimal("12.34")),
        ("9999999999999.99", Decimal("9999999999999.99")),
    ],
)
def test_money_text_is_read_exactly(text: str, expected: Decimal) -> None:
    value = MONEY.from_text(text)
    assert isinstance(value, Decimal)
    assert value == expected
    assert value.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1000.001", "at most 2 decimal places"),
        ("0.005", "at most 2 decimal places"),
        ("1E+999999", "decimal number"),
        ("1e3", "decimal number"),
        ("NaN", "decimal number"),
        ("Infinity", "decimal number"),
        ("-1.00", "at least 0"),
        ("12345678901234.56", "at most 15 digits"),
        ("", "decimal number"),
        ("1,000.00", "decimal number"),
        ("0x10", "decimal number"),
        # More digits than the default decimal context's precision (28) must not hide decimals.
        ("1.0000000000000000000000000001", "at most 2 decimal places"),
    ],
)
def test_money_text_refused(text: str, problem: str) -> None:
    with pytest.raises(InvalidValue, match=problem):
        MONEY.from_text(text)


def test_rate_has_four_decimals() -> None:
    assert RATE.from_text("12.5") == Decimal("12.5")
    assert RATE.from_text("36.0001") == Decimal("36.0001")  # the (0, 36] rule is the service's
    with pytest.raises(InvalidValue, match="at most 4 decimal places"):
        RATE.from_text("12.00001")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1000.00", Decimal("1000.00")),
        (Decimal("0.1"), Decimal("0.1")),  # a JSON number, as the parser hands it over
        (Decimal("1000.10"), Decimal("1000.10")),
        (5, Decimal(5)),
    ],
)
def test_money_json_taken_exactly(value: object, expected: Decimal) -> None:
    result = MONEY.from_json(value)
    assert isinstance(result, Decimal)
    assert result == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Decimal("1E+999999"), "digits"),
        (Decimal("1E+9999999"), "digits"),  # beyond the decimal context's exponent range
        (Decimal("1E-9999999"), "decimal places"),
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        (Decimal("-Infinity"), "finite"),
        (Decimal("0.001"), "decimal places"),
        (0.1, "string"),
        (True, "string"),
        (None, "string"),
        ([], "string"),
        ("1E+999999", "decimal number"),
    ],
)
def test_money_json_refused(value: object, problem: str) -> None:
    with pytest.raises(InvalidValue, match=problem):
        MONEY.from_json(value)


@pytest.mark.parametrize(
    ("t", "text", "expected"),
    [
        (INT, "2147483647", 2**31 - 1),
        (INT, "-2147483648", -(2**31)),
        (LONG, "9223372036854775807", 2**63 - 1),
        (LONG, "-9223372036854775808", -(2**63)),
        (LONG, " 42 ", 42),
    ],
)
def test_integer_bounds_accepted(t, text: str, expected: int) -> None:
    assert t.from_text(text) == expected
    assert t.from_json(expected) == expected


@pytest.mark.parametrize(
    ("t", "number"),
    [(INT, 2**31), (INT, -(2**31) - 1), (LONG, 2**63), (LONG, -(2**63) - 1), (LONG, 10**30)],
)
def test_integer_out_of_range_refused(t, number: int) -> None:
    with pytest.raises(InvalidValue, match="between"):
        t.from_text(str(number))
    with pytest.raises(InvalidValue, match="between"):
        t.from_json(number)


@pytest.mark.parametrize("text", ["1.0", "1e3", "", "abc", "0x1F", "9" * 5000])
def test_integer_text_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        LONG.from_text(text)


@pytest.mark.parametrize("value", [True, 1.0, Decimal("1"), "1", None])
def test_integer_json_must_be_a_json_integer(value: object) -> None:
    with pytest.raises(InvalidValue, match="whole number"):
        LONG.from_json(value)


def test_enum_values() -> None:
    assert ENUM.values == ("EQUAL_INSTALLMENT", "EQUAL_PRINCIPAL", "MONTHLY_INTEREST", "BULLET")
    assert ENUM.from_text("BULLET") == "BULLET"
    assert ENUM.from_json("EQUAL_PRINCIPAL") == "EQUAL_PRINCIPAL"
    for bad in ("bullet", "BULLET ", "", "OTHER"):
        with pytest.raises(InvalidValue, match="one of EQUAL_INSTALLMENT"):
            ENUM.from_text(bad)
    with pytest.raises(InvalidValue, match="string"):
        ENUM.from_json(1)


def test_string_length_and_pattern() -> None:
    assert MOBILE.from_text("13812345678") == "13812345678"
    with pytest.raises(InvalidValue, match="at least 11"):
        MOBILE.from_text("1381234567")
    with pytest.raises(InvalidValue, match="at most 11"):
        MOBILE.from_text("138123456789")
    with pytest.raises(InvalidValue, match="wrong format"):
        MOBILE.from_text("12812345678")
    with pytest.raises(InvalidValue, match="wrong format"):
        MOBILE.from_text("1381234567a")
    with pytest.raises(InvalidValue, match="at most 64"):
        PASSWORD.from_text("a1" * 33)
    assert PASSWORD.from_text("a1" * 32) == "a1" * 32


def test_datetime_needs_a_time_zone() -> None:
    value = DATETIME.from_text("2026-01-31T16:00:00+08:00")
    assert value == dt.datetime(2026, 1, 31, 8, 0, tzinfo=dt.UTC)
    assert value.utcoffset() == dt.timedelta(0)
    assert DATETIME.from_json("2026-01-31T08:00:00Z") == value
    with pytest.raises(InvalidValue, match="time zone"):
        DATETIME.from_text("2026-01-31T08:00:00")
    with pytest.raises(InvalidValue, match="date and time"):
        DATETIME.from_text("yesterday")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1000"), "1000.00"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("1E+12"), "1000000000000.00"),
        (Decimal("0.5"), "0.50"),
        (Decimal("0E-10"), "0.00"),
        (Decimal("1234567890123.45"), "1234567890123.45"),
    ],
)
def test_money_written_with_two_decimals_never_exponent(value: Decimal, text: str) -> None:
    assert MONEY.to_text(value) == text
    assert MONEY.to_json(value) == text


def test_rate_written_with_four_decimals() -> None:
    assert RATE.to_text(Decimal("12.5")) == "12.5000"
    assert RATE.to_json(Decimal("1E+1")) == "10.0000"


def test_other_kinds_written() -> None:
    at = dt.datetime(2026, 1, 31, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert DATETIME.to_text(at) == "2026-01-31T08:00:00Z"
    assert LONG.to_json(7) == 7
    assert LONG.to_text(7) == "7"


def test_complex_type_fields() -> None:
    t = describe(LoanRequest)
    assert isinstance(t, Complex)
    amount = t.by_name["amount"].type
    assert (amount.kind, amount.name, amount.fraction_digits) == ("decimal", "positiveMoney", 2)
    assert t.by_name["amount"].attr == "amount"
    assert t.by_name["minInvest"].attr == "min_invest"
    assert t.by_name["amount"].required
    assert not t.by_name["maxInvestPerInvestor"].required
    assert snake("maxInvestPerInvestor") == "max_invest_per_investor"
