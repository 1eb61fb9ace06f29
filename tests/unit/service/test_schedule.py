"""Unit tests of service/schedule.py: repayment schedules, largest-remainder split, due dates
and overdue penalties.

Expected values come from literal tables checked by hand and with bc(1) at 60 digits, and
from ``_reference``: a step-by-step reading of the written rules in exact ``Fraction`` yuan,
rounded with ``math.floor``, independent of the module's integer-fen arithmetic.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.schedule import (
    BULLET,
    EQUAL_INSTALLMENT,
    EQUAL_PRINCIPAL,
    METHODS,
    MONTHLY_INTEREST,
    Installment,
    accrued_penalty,
    due_dates,
    schedule,
    split,
)

D = Decimal
# No example database in the source tree; no deadline, since timing is not what is tested.
SETTINGS = settings(database=None, deadline=None, max_examples=300)

Row = tuple[int, str, str, str, str]  # period, principal, interest, payment, remaining


def rows(installments: tuple[Installment, ...]) -> list[Row]:
    """Installments as comparable tuples; str() also pins the 2-place form ("0.00", not "0")."""
    return [
        (i.period, str(i.principal), str(i.interest), str(i.payment), str(i.remaining))
        for i in installments
    ]


# --- reference: the written rules, step by step, in exact rationals ---------------------------


def _fen(x: Fraction) -> Fraction:
    """x yuan rounded half up to the fen (x >= 0)."""
    return Fraction(math.floor(x * 100 + Fraction(1, 2)), 100)


def _text(x: Fraction) -> str:
    cents = x * 100
    assert cents.denominator == 1 and cents >= 0
    return f"{cents.numerator // 100}.{cents.numerator % 100:02d}"


def _reference(principal: str, annual_rate: str, n: int, method: str) -> list[Row]:
    p = Fraction(principal)
    a = Fraction(annual_rate) / 100
    r = a / 12
    out: list[tuple[int, Fraction, Fraction, Fraction]] = []  # period, principal, interest, rem
    if method == BULLET:
        return [(n, _text(p), _text(_fen(p * a * n / 12)), _text(p + _fen(p * a * n / 12)), "0.00")]
    if method == MONTHLY_INTEREST:
        interest = _fen(p * r)
        for k in range(1, n + 1):
            out.append((k, p if k == n else Fraction(0), interest, Fraction(0) if k == n else p))
    else:
        if method == EQUAL_PRINCIPAL or r == 0:
            fixed_principal = _fen(p / n)
        else:
            payment = _fen(p * r * (1 + r) ** n / ((1 + r) ** n - 1))
        remaining = p
        for k in range(1, n + 1):
            interest = _fen(remaining * r)
            if k == n:
                part = remaining
            elif method == EQUAL_PRINCIPAL or r == 0:
                part = fixed_principal
            else:
                part = payment - interest
            part = min(part, remaining)  # a few-fen loan can repay early; never overpay
            remaining -= part
            out.append((k, part, interest, remaining))
    return [(k, _text(pr), _text(i), _text(pr + i), _text(rem)) for k, pr, i, rem in out]


# --- literal tables ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # r = 1%; payment = 10000 * 0.01 * 1.01^3 / (1.01^3 - 1) = 3400.2211 -> 3400.22.
        # Interest 100.00, 66.9978 -> 67.00, 33.6656 -> 33.67; the last row takes 3366.56.
        (
            EQUAL_INSTALLMENT,
            [
                (1, "3300.22", "100.00", "3400.22", "6699.78"),
                (2, "3333.22", "67.00", "3400.22", "3366.56"),
                (3, "3366.56", "33.67", "3400.23", "0.00"),
            ],
        ),
        # 10000 / 3 = 3333.33; interest on 10000, 6666.67 and 3333.34 at 1%.
        (
            EQUAL_PRINCIPAL,
            [
                (1, "3333.33", "100.00", "3433.33", "6666.67"),
                (2, "3333.33", "66.67", "3400.00", "3333.34"),
                (3, "3333.34", "33.33", "3366.67", "0.00"),
            ],
        ),
        (
            MONTHLY_INTEREST,
            [
                (1, "0.00", "100.00", "100.00", "10000.00"),
                (2, "0.00", "100.00", "100.00", "10000.00"),
                (3, "10000.00", "100.00", "10100.00", "0.00"),
            ],
        ),
        # One row, numbered as the last period: 10000 * 12% * 3 / 12 = 300.
        (BULLET, [(3, "10000.00", "300.00", "10300.00", "0.00")]),
    ],
)
def test_three_months_at_twelve_percent(method: str, expected: list[Row]) -> None:
    assert rows(schedule(D("10000.00"), D("12"), 3, method)) == expected


@pytest.mark.parametrize("method", METHODS)
def test_one_month_is_one_row_of_principal_and_a_month_of_interest(method: str) -> None:
    # 10000.01 * 12.5% / 12 = 104.16677 -> 104.17, whatever the method.
    assert rows(schedule(D("10000.01"), D("12.5"), 1, method)) == [
        (1, "10000.01", "104.17", "10104.18", "0.00")
    ]


def test_equal_installment_matches_the_published_100000_at_12_percent_over_12_months() -> None:
    table = rows(schedule(D("100000.00"), D("12"), 12, EQUAL_INSTALLMENT))
    assert table[:3] == [
        (1, "7884.88", "1000.00", "8884.88", "92115.12"),
        (2, "7963.73", "921.15", "8884.88", "84151.39"),
        (3, "8043.37", "841.51", "8884.88", "76108.02"),
    ]
    assert table[-2:] == [
        (11, "8709.81", "175.07", "8884.88", "8796.88"),
        (12, "8796.88", "87.97", "8884.85", "0.00"),
    ]
    assert sum(D(row[2]) for row in table) == D("6618.53")


def test_equal_installment_50_million_at_12_5_percent_over_36_months() -> None:
    table = rows(schedule(D("50000000.00"), D("12.5"), 36, EQUAL_INSTALLMENT))
    assert len(table) == 36
    assert table[:2] == [
        (1, "1151847.95", "520833.33", "1672681.28", "48848152.05"),
        (2, "1163846.36", "508834.92", "1672681.28", "47684305.69"),
    ]
    assert table[-2:] == [
        (35, "1638370.78", "34310.50", "1672681.28", "1655437.09"),
        (36, "1655437.09", "17244.14", "1672681.23", "0.00"),
    ]
    # Interest in periods 10 and 22 ends in exactly half a fen (39190761.12 / 96 = 408237.095,
    # 23117221.92 / 96 = 240804.395); rounding those down gives 1655437.07 and 10216526.01.
    assert sum(D(row[2]) for row in table) == D("10216526.03")


def test_four_decimal_rate_on_an_odd_principal_over_36_months() -> None:
    p, rate = D("10000.01"), D("9.8765")
    installment = rows(schedule(p, rate, 36, EQUAL_INSTALLMENT))
    assert installment[0] == (1, "239.79", "82.30", "322.09", "9760.22")
    assert installment[-1] == (36, "319.54", "2.63", "322.17", "0.00")
    assert sum(D(row[2]) for row in installment) == D("1595.31")
    # Interest rounded once at maturity differs from 36 roundings of a month's interest.
    assert rows(schedule(p, rate, 36, BULLET)) == [(36, "10000.01", "2962.95", "12962.96", "0.00")]
    monthly = rows(schedule(p, rate, 36, MONTHLY_INTEREST))
    assert {row[2] for row in monthly} == {"82.30"}
    assert monthly[-1] == (36, "10000.01", "82.30", "10082.31", "0.00")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (
            EQUAL_INSTALLMENT,
            [
                (1, "33.33", "0.00", "33.33", "66.67"),
                (2, "33.33", "0.00", "33.33", "33.34"),
                (3, "33.34", "0.00", "33.34", "0.00"),
            ],
        ),
        (
            EQUAL_PRINCIPAL,
            [
                (1, "33.33", "0.00", "33.33", "66.67"),
                (2, "33.33", "0.00", "33.33", "33.34"),
                (3, "33.34", "0.00", "33.34", "0.00"),
            ],
        ),
        (
            MONTHLY_INTEREST,
            [
                (1, "0.00", "0.00", "0.00", "100.00"),
                (2, "0.00", "0.00", "0.00", "100.00"),
                (3, "100.00", "0.00", "100.00", "0.00"),
            ],
        ),
        (BULLET, [(3, "100.00", "0.00", "100.00", "0.00")]),
    ],
)
def test_rate_zero(method: str, expected: list[Row]) -> None:
    assert rows(schedule(D("100.00"), D("0"), 3, method)) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # 100.50 * 1% = 1.005 yuan: half up gives 1.01 (half even would give 1.00).
        (("100.50", "12", 2, MONTHLY_INTEREST), [(2, "100.50", "1.01", "101.51", "0.00")]),
        (("100.50", "12", 1, BULLET), [(1, "100.50", "1.01", "101.51", "0.00")]),
        # 0.03 / 2 = 0.015 -> 0.02, the last period takes 0.01.
        (("0.03", "0", 2, EQUAL_PRINCIPAL), [(2, "0.01", "0.00", "0.01", "0.00")]),
        (("10000.01", "0", 2, EQUAL_INSTALLMENT), [(2, "5000.00", "0.00", "5000.00", "0.00")]),
    ],
)
def test_halves_round_up(args: tuple, expected: list[Row]) -> None:
    principal, rate, n, method = args
    assert rows(schedule(D(principal), D(rate), n, method))[-1:] == expected


def test_halves_round_up_in_the_first_period() -> None:
    assert rows(schedule(D("10000.01"), D("0"), 2, EQUAL_INSTALLMENT))[0] == (
        1,
        "5000.01",
        "0.00",
        "5000.01",
        "5000.00",
    )


def test_a_few_fen_repaid_early_never_overpay() -> None:
    # 0.03 / 5 = 0.006 -> 0.01 a period; the debt is gone after three periods.
    assert rows(schedule(D("0.03"), D("0"), 5, EQUAL_PRINCIPAL)) == [
        (1, "0.01", "0.00", "0.01", "0.02"),
        (2, "0.01", "0.00", "0.01", "0.01"),
        (3, "0.01", "0.00", "0.01", "0.00"),
        (4, "0.00", "0.00", "0.00", "0.00"),
        (5, "0.00", "0.00", "0.00", "0.00"),
    ]
    # 0.14 at 36% over 60 months: payment 0.14 * 3.61% = 0.005 -> 0.01, interest 0.0042 -> 0.
    table = rows(schedule(D("0.14"), D("36"), 60, EQUAL_INSTALLMENT))
    assert table[12:15] == [
        (13, "0.01", "0.00", "0.01", "0.01"),
        (14, "0.01", "0.00", "0.01", "0.00"),
        (15, "0.00", "0.00", "0.00", "0.00"),
    ]
    assert table[-1] == (60, "0.00", "0.00", "0.00", "0.00")


def test_trailing_zeros_and_int_inputs_are_accepted() -> None:
    assert schedule(D("1E+2"), 12, 1, BULLET) == schedule(D("100.000"), D("12.00000"), 1, BULLET)
    assert str(schedule(100, 0, 1, BULLET)[0].principal) == "100.00"


def test_installments_are_immutable() -> None:
    row = schedule(D("100"), D("12"), 1, BULLET)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.interest = D("0")  # type: ignore[misc]


# --- against the reference --------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("term", [1, 2, 12, 36, 60])
@pytest.mark.parametrize("rate", ["0", "12.5", "9.8765", "36", "0.0001"])
@pytest.mark.parametrize("principal", ["10000.01", "50000000.00", "0.01", "1.00", "123.45"])
def test_matches_reference(principal: str, rate: str, term: int, method: str) -> None:
    assert rows(schedule(D(principal), D(rate), term, method)) == _reference(
        principal, rate, term, method
    )


def test_reference_reproduces_the_literal_tables() -> None:
    """The reference is checked too, so it cannot agree with a bug by sharing it."""
    assert _reference("10000.00", "12", 3, EQUAL_INSTALLMENT)[-1] == (
        3,
        "3366.56",
        "33.67",
        "3400.23",
        "0.00",
    )
    assert _reference("50000000.00", "12.5", 36, EQUAL_INSTALLMENT)[0][3] == "1672681.28"
    assert _reference("0.03", "0", 5, EQUAL_PRINCIPAL)[3] == (4, "0.00", "0.00", "0.00", "0.00")


principals = st.one_of(st.integers(1, 3_000), st.integers(1, 5_000_000_000)).map(
    lambda fen: D(fen).scaleb(-2)
)
rates = st.one_of(st.just(0), st.integers(0, 360_000)).map(lambda units: D(units).scaleb(-4))
terms = st.integers(1, 60)
methods = st.sampled_from(METHODS)


@SETTINGS
@given(principals, rates, terms, methods)
def test_random_inputs_match_reference(p: Decimal, rate: Decimal, n: int, method: str) -> None:
    assert rows(schedule(p, rate, n, method)) == _reference(str(p), str(rate), n, method)


@SETTINGS
@given(principals, rates, terms, methods)
def test_schedule_invariants(p: Decimal, rate: Decimal, n: int, method: str) -> None:
    table = schedule(p, rate, n, method)
    assert [row.period for row in table] == ([n] if method == BULLET else list(range(1, n + 1)))
    owed = p
    for row in table:
        for amount in (row.principal, row.interest, row.payment, row.remaining):
            assert amount >= 0
            assert amount.as_tuple().exponent == -2
        assert row.payment == row.principal + row.interest
        owed -= row.principal
        assert row.remaining == owed
    assert sum(row.principal for row in table) == p
    assert table[-1].remaining == 0
    remaining = [row.remaining for row in table]
    assert remaining == sorted(remaining, reverse=True)
    if method == EQUAL_INSTALLMENT:
        # Equal payments until the debt is cleared (only a loan of a few fen clears it early).
        assert len({row.payment for row in table[:-1] if row.remaining > 0}) <= 1
        if p >= 1000:
            assert len({row.payment for row in table[:-1]}) <= 1
    if rate == 0:
        assert all(row.interest == 0 for row in table)


# --- validation -------------------------------------------------------------------------------

GOOD = {"principal": D("1000.00"), "annual_rate": D("12"), "term_months": 12, "method": BULLET}


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("principal", D("0")),
        ("principal", D("-0.01")),
        ("principal", D("1.001")),
        ("principal", D("NaN")),
        ("principal", D("Infinity")),
        ("principal", D("1E+20")),
        ("principal", 1.5),
        ("principal", "100"),
        ("principal", True),
        ("annual_rate", D("-0.0001")),
        ("annual_rate", D("36.0001")),
        ("annual_rate", D("12.00001")),
        ("annual_rate", 0.12),
        ("term_months", 0),
        ("term_months", 61),
        ("term_months", 12.0),
        ("term_months", True),
        ("term_months", D(12)),
        ("method", "equal_installment"),
        ("method", ""),
        ("method", None),
    ],
)
def test_schedule_rejects_bad_input_naming_the_argument(argument: str, value: object) -> None:
    with pytest.raises(ValueError, match=argument):
        schedule(**{**GOOD, argument: value})


@pytest.mark.parametrize(("rate", "term"), [(D("36"), 60), (D("0"), 1)])
def test_schedule_accepts_the_bounds(rate: Decimal, term: int) -> None:
    assert schedule(D("0.01"), rate, term, EQUAL_PRINCIPAL)[-1].remaining == 0


# --- split ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        ("0.01", ["1", "1"], ["0.01", "0.00"]),
        ("0.02", ["1", "1", "1"], ["0.01", "0.01", "0.00"]),
        ("0.05", ["1"] * 6, ["0.01"] * 5 + ["0.00"]),
        # Exact 0.00333 and 0.00667: the larger remainder wins over the earlier holder.
        ("0.01", ["1", "2"], ["0.00", "0.01"]),
        ("100.00", ["1", "2"], ["33.33", "66.67"]),
        ("10.00", ["3", "3", "3"], ["3.34", "3.33", "3.33"]),
        # 7.00 * (0.01, 0.02, 0.03) / 0.06 = 1.1666, 2.3333, 3.50: 3.50 exact, 0.01 to the first.
        ("7.00", ["0.01", "0.02", "0.03"], ["1.17", "2.33", "3.50"]),
        ("0", ["5", "7"], ["0.00", "0.00"]),
        ("0.00", ["0.01"], ["0.00"]),
        ("123.45", ["0.01"], ["123.45"]),
        ("50000000.00", ["1000000.00", "3.00"], ["49999850.00", "150.00"]),
    ],
)
def test_split_literal(total: str, weights: list[str], expected: list[str]) -> None:
    shares = split(D(total), [D(w) for w in weights])
    assert [str(s) for s in shares] == expected


def test_split_one_thousand_equal_holders() -> None:
    weights = [D("100.00")] * 1000
    assert split(D("10.00"), weights) == (D("0.01"),) * 1000
    assert [str(s) for s in split(D("9.99"), weights)] == ["0.01"] * 999 + ["0.00"]
    assert [str(s) for s in split(D("20.01"), weights)] == ["0.03"] + ["0.02"] * 999


def _check_largest_remainder(total: Decimal, weights: list[Decimal], shares: tuple) -> None:
    """The properties that pin down the largest-remainder rule, stated without its algorithm."""
    assert len(shares) == len(weights)
    assert sum(shares) == total
    whole = sum(Fraction(w) for w in weights)
    exact = [Fraction(total) * Fraction(w) / whole * 100 for w in weights]  # in fen
    got = [Fraction(s) * 100 for s in shares]
    for s in shares:
        assert s.as_tuple().exponent == -2
    for g, e in zip(got, exact, strict=True):
        assert math.floor(e) <= g <= math.floor(e) + 1  # within one fen, never below the floor
    raised = [g > math.floor(e) for g, e in zip(got, exact, strict=True)]
    remainder = [e - math.floor(e) for e in exact]
    for i in range(len(weights)):
        for j in range(len(weights)):
            if raised[i] and not raised[j]:
                assert remainder[i] > remainder[j] or (remainder[i] == remainder[j] and i < j)


def test_split_one_thousand_mixed_holders() -> None:
    weights = [D(k * 37 % 1001).scaleb(-2) + D(k) for k in range(1, 1001)]
    total = D("1234567.89")
    _check_largest_remainder(total, weights, split(total, weights))


@SETTINGS
@given(
    st.integers(0, 10**11).map(lambda fen: D(fen).scaleb(-2)),
    st.lists(
        st.one_of(st.integers(1, 5), st.integers(1, 10**10)).map(lambda fen: D(fen).scaleb(-2)),
        min_size=1,
        max_size=40,
    ),
)
def test_split_properties(total: Decimal, weights: list[Decimal]) -> None:
    shares = split(total, weights)
    _check_largest_remainder(total, weights, shares)


def test_split_accepts_any_sequence_and_returns_a_tuple() -> None:
    assert split(D("0.03"), (D("1"), D("2"))) == (D("0.01"), D("0.02"))


@pytest.mark.parametrize(
    ("total", "weights", "argument"),
    [
        (D("-0.01"), [D("1")], "total"),
        (D("0.001"), [D("1")], "total"),
        (0.5, [D("1")], "total"),
        (D("1"), [], "weights"),
        (D("1"), [D("1"), D("0")], "weights"),
        (D("1"), [D("-1"), D("2")], "weights"),
        (D("1"), [D("0.001")], "weights"),
        (D("1"), [1.0], "weights"),
        (D("1"), "12", "weights"),
        (D("1"), None, "weights"),
    ],
)
def test_split_rejects_bad_input(total: object, weights: object, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        split(total, weights)  # type: ignore[arg-type]


# --- due dates --------------------------------------------------------------------------------


def test_due_dates_clamp_to_month_end_without_drift() -> None:
    assert due_dates(datetime.date(2026, 1, 31), 6) == (
        datetime.date(2026, 2, 28),
        datetime.date(2026, 3, 31),
        datetime.date(2026, 4, 30),
        datetime.date(2026, 5, 31),
        datetime.date(2026, 6, 30),
        datetime.date(2026, 7, 31),
    )


def test_due_dates_leap_year() -> None:
    assert due_dates(datetime.date(2027, 11, 30), 4) == (
        datetime.date(2027, 12, 30),
        datetime.date(2028, 1, 30),
        datetime.date(2028, 2, 29),
        datetime.date(2028, 3, 30),
    )
    from_leap_day = due_dates(datetime.date(2028, 2, 29), 48)
    assert from_leap_day[0] == datetime.date(2028, 3, 29)
    assert from_leap_day[11] == datetime.date(2029, 2, 28)
    assert from_leap_day[12] == datetime.date(2029, 3, 29)
    assert from_leap_day[47] == datetime.date(2032, 2, 29)


def test_due_dates_across_years_and_the_longest_term() -> None:
    assert due_dates(datetime.date(2026, 12, 15), 1) == (datetime.date(2027, 1, 15),)
    dates = due_dates(datetime.date(2026, 1, 31), 60)
    assert len(dates) == 60
    assert dates[0] == datetime.date(2026, 2, 28)
    assert dates[-1] == datetime.date(2031, 1, 31)


@SETTINGS
@given(st.dates(datetime.date(1900, 1, 1), datetime.date(2200, 12, 31)), terms)
def test_due_dates_properties(start: datetime.date, n: int) -> None:
    dates = due_dates(start, n)
    assert len(dates) == n
    for k, due in enumerate(dates, start=1):
        assert (due.year * 12 + due.month) - (start.year * 12 + start.month) == k
        if due.day != start.day:
            assert due.day < start.day
            assert (due + datetime.timedelta(days=1)).day == 1  # the month's last day
    assert list(dates) == sorted(set(dates))


@pytest.mark.parametrize(
    ("start", "term", "argument"),
    [
        (datetime.datetime(2026, 1, 31, 12, 0), 3, "start"),
        ("2026-01-31", 3, "start"),
        (datetime.date(2026, 1, 31), 0, "term_months"),
        (datetime.date(2026, 1, 31), 61, "term_months"),
    ],
)
def test_due_dates_rejects_bad_input(start: object, term: object, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        due_dates(start, term)  # type: ignore[arg-type]


# --- penalty ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "daily_rate", "days", "expected"),
    [
        ("10000.00", "0.0005", 30, "150.00"),
        # 0.005 yuan: half up to 0.01 (half even and down would give 0.00).
        ("0.01", "0.5", 1, "0.01"),
        ("100.00", "0.00005", 1, "0.01"),
        ("1234.57", "0.0003", 7, "2.59"),  # 2.592597
        ("50000000.00", "0.00012345", 365, "2252962.50"),
        ("10000.00", "0.0005", 0, "0.00"),
        ("0", "0.0005", 30, "0.00"),
        ("10000.00", "0", 30, "0.00"),
    ],
)
def test_accrued_penalty(principal: str, daily_rate: str, days: int, expected: str) -> None:
    assert str(accrued_penalty(D(principal), D(daily_rate), days)) == expected


@pytest.mark.parametrize(
    ("principal", "daily_rate", "days", "argument"),
    [
        (D("-0.01"), D("0.0005"), 1, "overdue_principal"),
        (D("0.001"), D("0.0005"), 1, "overdue_principal"),
        (D("1"), D("-0.0005"), 1, "daily_rate"),
        (D("1"), D("1"), 1, "daily_rate"),
        (D("1"), D("0.000000001"), 1, "daily_rate"),
        (D("1"), 0.0005, 1, "daily_rate"),
        (D("1"), D("0.0005"), -1, "days"),
        (D("1"), D("0.0005"), True, "days"),
        (D("1"), D("0.0005"), 1.0, "days"),
    ],
)
def test_accrued_penalty_rejects_bad_input(
    principal: object, daily_rate: object, days: object, argument: str
) -> None:
    with pytest.raises(ValueError, match=argument):
        accrued_penalty(principal, daily_rate, days)  # type: ignore[arg-type]
