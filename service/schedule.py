"""Repayment schedules, exact pro-rata splitting, due dates and overdue penalties.

Pure functions over Decimal and int: no I/O, no database, no float. Every amount is computed
in integer fen (or integer ratios) and rounded once, ROUND_HALF_UP to the fen, so results are
exact and do not depend on any Decimal context.
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from service.text import shown

EQUAL_INSTALLMENT = "EQUAL_INSTALLMENT"
"""等额本息: equal payments; interest on the remaining principal, the rest repays principal."""
EQUAL_PRINCIPAL = "EQUAL_PRINCIPAL"
"""等额本金: equal principal each period plus interest on the principal still owed."""
MONTHLY_INTEREST = "MONTHLY_INTEREST"
"""先息后本: interest each period, all principal in the last period."""
BULLET = "BULLET"
"""到期还本付息: principal and all interest in one payment at maturity."""
METHODS: tuple[str, ...] = (EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, MONTHLY_INTEREST, BULLET)

MAX_ANNUAL_RATE = Decimal(36)
MAX_TERM_MONTHS = 60

_MONEY_PLACES = 2
_RATE_PLACES = 4
_DAILY_RATE_PLACES = 8
# Inputs beyond any real loan are refused before they reach exact integer arithmetic.
_MAX_INTEGER_DIGITS = 15
# annual_rate = R / 10**4 percent, so the monthly rate is r = R / 10**4 / 100 / 12 = R / _RATE_DEN.
_RATE_DEN = 10**_RATE_PLACES * 100 * 12


@dataclass(frozen=True)
class Installment:
    """One period of a repayment schedule; amounts are Decimal yuan with 2 places."""

    period: int  # 1..term_months
    principal: Decimal
    interest: Decimal
    payment: Decimal  # principal + interest
    remaining: Decimal  # principal still owed after this period


def schedule(
    principal: Decimal, annual_rate: Decimal, term_months: int, method: str
) -> tuple[Installment, ...]:
    """The repayment schedule of ``principal`` yuan at ``annual_rate`` percent a year over
    ``term_months`` months, repaid by ``method`` (one of ``METHODS``).

    BULLET has a single row numbered ``term_months`` so that ``due_dates(...)[period - 1]``
    is the maturity date; the other methods have rows 1..term_months. Raises ValueError
    naming the argument when an input is out of range.
    """
    p = _units(principal, "principal", _MONEY_PLACES)
    if p <= 0:
        raise ValueError(f"principal must be > 0, got {shown(principal)}")
    rate = _units(annual_rate, "annual_rate", _RATE_PLACES)
    if not 0 <= rate <= MAX_ANNUAL_RATE.scaleb(_RATE_PLACES):
        raise ValueError(
            f"annual_rate must be between 0 and {MAX_ANNUAL_RATE}, got {shown(annual_rate)}"
        )
    n = _term(term_months)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {shown(method)}")

    if method == BULLET:
        interest = _div_half_up(p * rate * n, _RATE_DEN)
        return (_row(n, p, interest, 0),)
    if method == MONTHLY_INTEREST:
        interest = _div_half_up(p * rate, _RATE_DEN)
        return tuple(
            _row(k, p if k == n else 0, interest, 0 if k == n else p) for k in range(1, n + 1)
        )
    if method == EQUAL_PRINCIPAL:
        part = _div_half_up(p, n)
        return _amortize(p, rate, n, lambda remaining: part)
    if rate == 0:
        payment = _div_half_up(p, n)
    else:
        growth, base = (_RATE_DEN + rate) ** n, _RATE_DEN**n
        payment = _div_half_up(p * rate * growth, _RATE_DEN * (growth - base))
    return _amortize(
        p, rate, n, lambda remaining: payment - _div_half_up(remaining * rate, _RATE_DEN)
    )


def _amortize(
    p: int, rate: int, n: int, principal_part: Callable[[int], int]
) -> tuple[Installment, ...]:
    """Rows 1..n where period k repays ``principal_part(remaining)`` fen, at most what is
    still owed, and the last period repays whatever is left; interest is on the remaining
    principal before the period."""
    rows = []
    remaining = p
    for k in range(1, n + 1):
        interest = _div_half_up(remaining * rate, _RATE_DEN)
        # Only a principal of a few fen per period can make the rounded part exceed the debt.
        part = remaining if k == n else min(principal_part(remaining), remaining)
        remaining -= part
        rows.append(_row(k, part, interest, remaining))
    return tuple(rows)


def split(total: Decimal, weights: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """Split ``total`` yuan among holders in proportion to ``weights`` (their holdings), by the
    largest-remainder rule: each share rounded down to the fen, then the leftover fen one at a
    time to the largest remainders, ties to the earlier holder. Sums exactly to ``total``."""
    t = _units(total, "total", _MONEY_PLACES)
    if t < 0:
        raise ValueError(f"total must be >= 0, got {shown(total)}")
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
        raise ValueError(f"weights must be a sequence of amounts, got {type(weights).__name__}")
    if not weights:
        raise ValueError("weights must not be empty")
    w = [_units(weight, "weights", _MONEY_PLACES) for weight in weights]
    if any(x <= 0 for x in w):
        raise ValueError(f"weights must each be > 0, got {', '.join(map(shown, weights))}")
    whole = sum(w)
    quotients, remainders = zip(*(divmod(t * x, whole) for x in w), strict=True)
    shares = list(quotients)
    leftover = t - sum(shares)  # < len(w), since every remainder is < whole
    for i in sorted(range(len(w)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[i] += 1
    return tuple(_yuan(s) for s in shares)


def due_dates(start: datetime.date, term_months: int) -> tuple[datetime.date, ...]:
    """Due dates of periods 1..term_months: k months after ``start`` on the same day of the
    month, or the month's last day when it is shorter. Each is computed from ``start``, so a
    clamp does not drift (Jan 31 -> Feb 28, Mar 31, Apr 30)."""
    if not isinstance(start, datetime.date) or isinstance(start, datetime.datetime):
        raise ValueError(f"start must be a date (not a datetime), got {type(start).__name__}")
    n = _term(term_months)
    dates = []
    for k in range(1, n + 1):
        years, month0 = divmod(start.month - 1 + k, 12)
        year, month = start.year + years, month0 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        dates.append(datetime.date(year, month, day))
    return tuple(dates)


def accrued_penalty(overdue_principal: Decimal, daily_rate: Decimal, days: int) -> Decimal:
    """Penalty on ``overdue_principal`` yuan over ``days`` days: principal * daily_rate * days,
    rounded half up to the fen. ``daily_rate`` is a fraction per day, not a percentage
    (Decimal("0.0005") is 0.05% a day), with at most 8 places and below 1."""
    p = _units(overdue_principal, "overdue_principal", _MONEY_PLACES)
    if p < 0:
        raise ValueError(f"overdue_principal must be >= 0, got {shown(overdue_principal)}")
    rate = _units(daily_rate, "daily_rate", _DAILY_RATE_PLACES)
    if not 0 <= rate < 10**_DAILY_RATE_PLACES:
        raise ValueError(f"daily_rate must be >= 0 and < 1, got {shown(daily_rate)}")
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise ValueError(f"days must be an int >= 0, got {shown(days)}")
    return _yuan(_div_half_up(p * rate * days, 10**_DAILY_RATE_PLACES))


def _units(value: Decimal, name: str, places: int) -> int:
    """``value`` * 10**places as an exact int; ValueError naming ``name`` unless ``value`` is a
    finite Decimal or int below 10**15 in size with at most ``places`` decimal places
    (trailing zeros allowed)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"{name} must be a Decimal, got {type(value).__name__}")
    if isinstance(value, int):
        value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {shown(value)}")
    sign, digit_tuple, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # "n", "N" or "F": not finite, refused above
        raise ValueError(f"{name} must be finite, got {shown(value)}")
    digits = list(digit_tuple)
    while exponent < -places and digits and digits[-1] == 0:
        digits.pop()
        exponent += 1
    if exponent < -places:
        raise ValueError(f"{name} must have at most {places} decimal places, got {shown(value)}")
    if len(digits) + exponent > _MAX_INTEGER_DIGITS:
        raise ValueError(f"{name} must be below 10**{_MAX_INTEGER_DIGITS}, got {shown(value)}")
    units = int("".join(map(str, digits)) or "0") * 10 ** (exponent + places)
    return -units if sign else units


def _term(term_months: int) -> int:
    if not isinstance(term_months, int) or isinstance(term_months, bool):
        raise ValueError(f"term_months must be an int, got {type(term_months).__name__}")
    if not 1 <= term_months <= MAX_TERM_MONTHS:
        raise ValueError(f"term_months must be between 1 and {MAX_TERM_MONTHS}, got {term_months}")
    return term_months


def _div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for numerator >= 0 and denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def _row(period: int, principal: int, interest: int, remaining: int) -> Installment:
    return Installment(
        period, _yuan(principal), _yuan(interest), _yuan(principal + interest), _yuan(remaining)
    )


def _yuan(fen: int) -> Decimal:
    """``fen`` as Decimal yuan with exactly 2 places, built without a context (no rounding)."""
    sign, digits, _ = Decimal(fen).as_tuple()
    return Decimal((sign, digits, -_MONEY_PLACES))
