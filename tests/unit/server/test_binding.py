"""The data binding: what each wire type accepts from text and JSON, and how it is written."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from spyne import Boolean, Date, DateTime, Integer32, Long, Unicode

from facade.member.account import Mobile, Password
from facade.p2p.loan import LoanRequest, RepaymentMethod
from facade.types import NOT_BLANK_LINE, Money, MultilineText, Rate
from server.binding import (
    LONG_NUMBER,
    MAX_NUMBER_LENGTH,
    SINGLE_LINE_PATTERN,
    Complex,
    InvalidValue,
    carriable,
    shown,
    snake,
)
from server.declared import describe

MONEY = describe(Money)
RATE = describe(Rate)
INT = describe(Integer32)
LONG = describe(Long)
ENUM = describe(RepaymentMethod)
MOBILE = describe(Mobile)
PASSWORD = describe(Password)
DATETIME = describe(DateTime)
DATE = describe(Date)
BOOLEAN = describe(Boolean)
LINE = describe(Unicode(max_len=100))
TEXT = describe(MultilineText(max_len=2000))


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


# -- the text the contract accepts -------------------------------------------------------------

#: One of each kind of character no string may hold: C0 controls (not TAB, LF, CR), C1
#: controls, surrogates, noncharacters at the ends of their ranges and in several planes.
REFUSED = [
    "\x00",
    "\x01",
    "\x08",
    "\x0b",
    "\x0c",
    "\x0e",
    "\x1f",
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\ufdd0",
    "\ufdef",
    "\ufffe",
    "\uffff",
    "\U0001fffe",
    "\U0001ffff",
    "\U0010fffe",
    "\U0010ffff",
]
#: Next to them, and what text is made of: all accepted.
ACCEPTED = [
    "\x20",
    "\x7e",
    "\xa0",
    "\ufdcf",
    "\ufdf0",
    "\ufffd",
    "\ue000",
    "\U0001fffd",
    "\U00020000",
    "\U0010fffd",
    "\u2028",
    "周转",
    "😀",
    "Ⅻ",
]


@pytest.mark.parametrize("t", [LINE, TEXT], ids=["single-line", "multi-line"])
@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
def test_characters_xml_cannot_carry_or_discourages_are_refused(t, char: str) -> None:
    with pytest.raises(InvalidValue, match=f"may not contain U\\+{ord(char):04X}"):
        t.from_text(f"a{char}b")
    with pytest.raises(InvalidValue, match=f"U\\+{ord(char):04X}"):
        t.from_json(char)


@pytest.mark.parametrize("char", ACCEPTED)
def test_other_characters_are_text(char: str) -> None:
    assert LINE.from_text(f"a{char}b") == f"a{char}b"
    assert TEXT.from_json(f"a{char}b") == f"a{char}b"


@pytest.mark.parametrize("char", ["\t", "\n", "\r"])
def test_only_multi_line_text_holds_tabs_and_line_breaks(char: str) -> None:
    assert TEXT.from_text(f"one{char}two") == f"one{char}two"
    with pytest.raises(InvalidValue, match=f"single line .*U\\+{ord(char):04X}"):
        LINE.from_text(f"one{char}two")


def test_characters_are_checked_before_length_and_pattern() -> None:
    """The message names the character, whatever else is wrong with the value."""
    with pytest.raises(InvalidValue, match="U\\+0001"):
        MOBILE.from_text("1381234567\x01")
    with pytest.raises(InvalidValue, match="U\\+0085"):
        LINE.from_text("\x85" * 500)


def test_the_contract_shows_which_strings_are_single_lines() -> None:
    assert LINE.pattern == SINGLE_LINE_PATTERN and not LINE.multiline
    assert TEXT.pattern is None and TEXT.multiline
    assert MOBILE.pattern == "1[3-9][0-9]{9}"  # its own pattern holds no line break either
    assert ENUM.pattern is None and MONEY.pattern is None and LONG.pattern is None
    t = describe(LoanRequest)
    assert t.by_name["title"].type.pattern == NOT_BLANK_LINE  # its own: one line, not blank
    assert t.by_name["description"].type.multiline
    for text in ("a", "", "周转 x"):
        assert re.fullmatch(SINGLE_LINE_PATTERN, text)
    for text in ("a\tb", "a\n", "\r"):
        assert not re.fullmatch(SINGLE_LINE_PATTERN, text)


def test_declared_patterns_read_digits_as_ascii() -> None:
    digits = describe(Unicode(pattern=r"\d{3}"))
    assert digits.from_text("100") == "100"
    for text in ("١٠٠", "１００", "१००"):
        with pytest.raises(InvalidValue, match="wrong format"):
            digits.from_text(text)


@given(st.text(st.characters(exclude_categories=())))
def test_accepted_text_survives_xml_and_utf8(text: str) -> None:
    """Whatever a string field accepts, XML carries unchanged and UTF-8 encodes."""
    try:
        value = TEXT.from_text(text)
    except InvalidValue:
        return
    element = etree.Element("t")
    element.text = value
    assert etree.fromstring(etree.tostring(element, encoding="UTF-8")).text in (value, None)
    value.encode("utf-8")


@given(st.text(st.characters(exclude_categories=())))
def test_carriable_text_is_always_writable(text: str) -> None:
    out = carriable(text)
    assert len(out) == len(text)
    element = etree.Element("t")
    element.text = out  # lxml refuses what XML cannot carry
    etree.tostring(element, encoding="UTF-8")
    out.encode("utf-8")


def test_carriable_replaces_only_what_xml_cannot_carry() -> None:
    assert carriable("a\x00\x01\x1f\ud800\udfff\ufffe\uffffb") == "a" + "\ufffd" * 7 + "b"
    kept = "\t\n\r\x7f\x85\ufdd0\U0001fffe周"  # carried, though input refuses some of it
    assert carriable(kept) == kept


@given(st.text(st.characters(exclude_categories=())), st.integers(2, 80))
def test_shown_text_is_one_safe_bounded_line(text: str, limit: int) -> None:
    out = shown(text, limit)
    assert len(out) <= limit
    assert LINE.from_text(out) == out
    try:
        accepted = LINE.from_text(text)
    except InvalidValue:
        return
    if len(text) <= limit:
        assert out == accepted  # a short, valid line is quoted as it is


def test_shown_cuts_long_text() -> None:
    assert shown("x" * 1000) == "x" * 39 + "…"
    assert shown("a\nb\ud800") == "a\ufffdb\ufffd"


# -- numbers: bounded, ASCII -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (MONEY, "100." + "0" * 5000),
        (MONEY, "0" * 5000 + "1"),
        (MONEY, "1" * 5000),
        (RATE, "1." + "0" * (MAX_NUMBER_LENGTH - 1)),
        (LONG, "0" * 5000 + "1"),
        (LONG, "1" * 5000),
        (INT, "-" + "0" * MAX_NUMBER_LENGTH),
    ],
)
def test_numbers_longer_than_the_bound_are_refused_before_parsing(t, text: str) -> None:
    with pytest.raises(InvalidValue, match=f"at most {MAX_NUMBER_LENGTH} characters"):
        t.from_text(text)


def test_numbers_up_to_the_bound_are_read() -> None:
    assert MONEY.from_text("0" * (MAX_NUMBER_LENGTH - 4) + "1.00") == Decimal("1.00")
    assert MONEY.from_text("1." + "0" * (MAX_NUMBER_LENGTH - 2)) == Decimal(1)
    assert LONG.from_text("0" * (MAX_NUMBER_LENGTH - 1) + "7") == 7
    assert LONG.from_text(f" {'0' * (MAX_NUMBER_LENGTH - 1)}7 ") == 7  # spaces do not count


@pytest.mark.parametrize("t", [MONEY, LONG, INT])
def test_json_numbers_too_long_to_parse_are_refused(t) -> None:
    with pytest.raises(InvalidValue, match=f"at most {MAX_NUMBER_LENGTH} characters"):
        t.from_json(LONG_NUMBER)


@pytest.mark.parametrize(
    "value", [Decimal("0E+999999999"), Decimal("0E-999999999"), Decimal("1." + "0" * 150)]
)
def test_decimals_too_long_written_out_are_refused(value: Decimal) -> None:
    """A zero with a huge exponent, or trailing zeros, pass every count of significant
    digits, but not what converts them next."""
    with pytest.raises(InvalidValue, match="written out"):
        MONEY.from_json(value)


def test_short_exponents_are_exact() -> None:
    assert MONEY.from_json(Decimal("1000000E-6")) == 1
    assert MONEY.from_json(Decimal("0E+5")) == 0


#: 100 in other scripts' digits: int(), Decimal() and \d all take them.
OTHER_DIGITS = ["١٠٠", "１００", "۱۰۰", "१००", "๑๐๐", "𝟏𝟎𝟎", "1٠0"]


@pytest.mark.parametrize("text", OTHER_DIGITS)
@pytest.mark.parametrize(("t", "problem"), [(MONEY, "decimal"), (LONG, "whole"), (INT, "whole")])
def test_only_ascii_digits_are_numbers(t, problem: str, text: str) -> None:
    with pytest.raises(InvalidValue, match=problem):
        t.from_text(text)
    with pytest.raises(InvalidValue):
        t.from_json(text)


def test_only_ascii_digits_after_the_point() -> None:
    with pytest.raises(InvalidValue, match="decimal"):
        MONEY.from_text("1.٠٠")


@pytest.mark.parametrize("text", ["\u300012", "12\u3000", "\xa012", "12\u2003", "\u202f12"])
def test_only_xml_white_space_around_numbers(text: str) -> None:
    with pytest.raises(InvalidValue):
        LONG.from_text(text)
    with pytest.raises(InvalidValue):
        MONEY.from_text(text)
    assert LONG.from_text(" \t\n\r12\r\n\t ") == 12


@pytest.mark.parametrize("text", ["1_000", "1 000", "+-1", "1e3", "0x10", "١"])
def test_integer_spellings_int_would_take(text: str) -> None:
    with pytest.raises(InvalidValue, match="whole number"):
        LONG.from_text(text)


def test_booleans() -> None:
    assert BOOLEAN.from_text(" true ") is True
    assert BOOLEAN.from_text("0") is False
    for text in ("\u3000true", "١", "１", "True", "yes"):
        with pytest.raises(InvalidValue, match="true or false"):
            BOOLEAN.from_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "２０２６-01-31T08:00:00Z",
        "2026-01-31T08:00:0٠Z",
        "20260131T080000Z",  # ISO 8601 basic: fromisoformat takes it, xs:dateTime does not
        "2026-01-31 08:00:00Z",
        "2026-01-31T08Z",
        "2026-W05-6T08:00:00Z",
        "2026-01-31T08:00:00,5Z",
        "2026-01-31T08:00:00." + "0" * 5000 + "Z",
    ],
)
def test_date_times_are_xml_schema_date_times(text: str) -> None:
    with pytest.raises(InvalidValue, match="date and time"):
        DATETIME.from_text(text)


def test_date_times_with_fractions_and_offsets() -> None:
    at = DATETIME.from_text("2026-01-31T16:00:00.1234567+08:00")  # .NET writes 7 digits
    assert at == dt.datetime(2026, 1, 31, 8, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "text", ["２０２６-01-31", "2026-0١-31", "20260131", "2026-W05-6", "2026-1-31"]
)
def test_dates_are_xml_schema_dates(text: str) -> None:
    with pytest.raises(InvalidValue, match="a date such as"):
        DATE.from_text(text)
    assert DATE.from_text(" 2026-01-31 ") == dt.date(2026, 1, 31)
