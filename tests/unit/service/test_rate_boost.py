"""A rate-boost coupon's extra interest (service/marketing/boost.py) against a table computed
here independently, with exact fractions and Decimal's own rounding, for every repayment
method: each period the principal outstanding times the extra yearly rate / 12, the total
rounded half up once, every period but the last rounded down, the last the remainder."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.marketing.boost import boosts, total_boost
from service.schedule import BULLET, EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, METHODS, schedule

D = Decimal
FEN = D("0.01")


def half_up(value: Fraction) -> Decimal:
    return (D(value.numerator) / D(value.denominator)).quantize(FEN, rounding=ROUND_HALF_UP)


def down(value: Fraction) -> Decimal:
    return (D(value.numerator) / D(value.denominator)).quantize(FEN, rounding=ROUND_DOWN)


def outstanding(amount: Decimal, rate: Decimal, term: int, method: str) -> list[Fraction]:
    """The principal owed at the start of each period, worked out here: all of it for
    MONTHLY_INTEREST and BULLET, less an equal part (rounded half up to the fen, the last
    part the rest) each period for EQUAL_PRINCIPAL; for EQUAL_INSTALLMENT the schedule's own
    ``remaining`` (its payment rounding is the schedule's definition, not the boost's)."""
    p = Fraction(amount)
    if method == EQUAL_PRINCIPAL:
        part = Fraction(half_up(p / term))
        return [p - part * k for k in range(term)]
    if method == EQUAL_INSTALLMENT:
        rows = schedule(amount, rate, term, method)
        return [p] + [Fraction(r.remaining) for r in rows[:-1]]
    return [p] * term


def expected(amount, rate, term, method, extra, periods) -> dict[int, Decimal]:
    months = term if periods is None else min(periods, term)
    monthly = Fraction(extra) / 100 / 12
    owed = outstanding(amount, rate, term, method)
    if method == BULLET:
        exact = {term: owed[0] * monthly * months}
    else:
        exact = {k + 1: owed[k] * monthly for k in range(months)}
    total = half_up(sum(exact.values()))
    *firsts, last = sorted(exact)
    table = {k: down(exact[k]) for k in firsts}
    table[last] = total - sum(table.values(), D(0))
    return {k: v for k, v in table.items() if v}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "amount, rate, term, extra, periods",
    [
        ("10000.00", "12", 12, "1.5", None),
        ("3333.33", "12.5", 6, "2.4", 5),
        ("100.01", "8.88", 36, "0.3333", 7),
        ("987654.32", "24", 24, "10", 1),
        ("0.50", "5", 3, "1", None),
    ],
)
def test_the_boost_of_each_period_is_the_independent_table(
    method, amount, rate, term, extra, periods
):
    args = (D(amount), D(rate), term, method, D(extra), periods)
    table = expected(*args)
    assert boosts(*args) == table
    assert total_boost(*args) == sum(table.values(), D("0.00"))


def test_known_amounts():
    """10 000 yuan at 1.5 % a year more: 12.50 a month on the whole amount; a year's BULLET
    150.00 at maturity; three boosted months of a 12-month EQUAL_PRINCIPAL loan (10 000,
    9 166.67 and 8 333.34 outstanding: 12.50, 11.4583375 and 10.416675, 34.38 in all) 12.50,
    11.45 and the remainder 10.43."""
    amount, rate, extra = D("10000.00"), D("12"), D("1.5")
    assert set(boosts(amount, rate, 12, "MONTHLY_INTEREST", extra).values()) == {D("12.50")}
    assert boosts(amount, rate, 12, BULLET, extra) == {12: D("150.00")}
    assert boosts(amount, rate, 12, EQUAL_PRINCIPAL, extra, 3) == {
        1: D("12.50"),
        2: D("11.45"),
        3: D("10.43"),
    }


@settings(max_examples=200, deadline=None)
@given(
    fen=st.integers(min_value=1, max_value=10**10),
    rate_units=st.integers(min_value=1, max_value=360_000),
    term=st.integers(min_value=1, max_value=60),
    method=st.sampled_from(METHODS),
    extra_units=st.integers(min_value=1, max_value=100_000),
    periods=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
)
def test_every_period_is_the_table_and_none_is_negative(
    fen, rate_units, term, method, extra_units, periods
):
    args = (D(fen) * FEN, D(rate_units).scaleb(-4), term, method, D(extra_units).scaleb(-4))
    table = boosts(*args, periods)
    assert table == expected(*args, periods)
    assert all(v > 0 for v in table.values())
