"""A rate-boost coupon's (加息券) extra interest, period by period. Pure functions over Decimal
and int: no I/O, no float.

The boost of a period is the investment's principal outstanding at the start of the period
times the extra yearly rate / 12: the principal outstanding is the investment's own schedule's
(service/schedule.py ``schedule(amount, listing's rate, term, method)``: the whole amount in the
first period, then each row's ``remaining``). BULLET has one row, at maturity: the whole amount
outstanding for every boosted month, paid with it. A coupon boosts the first ``periods`` months
(all of them when None).

Rounding: the total is computed once, from the exact sum over the boosted periods, rounded half
up to the fen; each period but the last boosted one is its exact amount rounded down to the fen,
and the last boosted period takes the remainder (total minus the others), so the periods add up
to the total exactly and none is negative (rounding the others down leaves the last at least
its own exact amount less half a fen).
"""

from __future__ import annotations

from decimal import Decimal

from service.schedule import BULLET, schedule

_FEN = Decimal("0.01")
#: extra_rate R percent a year, in units of 10**-4 percent: R*10**4 / 10**4 / 100 / 12 a month.
_RATE_UNITS = 10**4
_RATE_DEN = _RATE_UNITS * 100 * 12


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def boosts(
    amount: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    extra_rate: Decimal,
    periods: int | None = None,
) -> dict[int, Decimal]:
    """Period number -> the extra interest paid with that period's repayment (the periods
    with none left out), adding up exactly to :func:`total_boost`."""
    rows = schedule(amount, annual_rate, term_months, method)
    units = int(extra_rate * _RATE_UNITS)
    if units != extra_rate * _RATE_UNITS or units <= 0:
        raise ValueError("extra_rate must be above 0 with at most 4 places")
    months = term_months if periods is None else min(periods, term_months)
    if months <= 0:
        return {}
    principal = int(amount / _FEN)
    if method == BULLET:
        exact = {rows[0].period: principal * units * months}
    else:
        outstanding = [principal] + [int(r.remaining / _FEN) for r in rows[:-1]]
        exact = {rows[k].period: outstanding[k] * units for k in range(months)}
    total = _half_up(sum(exact.values()), _RATE_DEN)
    *firsts, last = sorted(exact)
    fen = {p: exact[p] // _RATE_DEN for p in firsts}
    fen[last] = total - sum(fen.values())
    return {p: Decimal(f) * _FEN for p, f in fen.items() if f}


def total_boost(
    amount: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    extra_rate: Decimal,
    periods: int | None = None,
) -> Decimal:
    """What a rate boost pays over the whole term: the exact sum rounded half up, once."""
    return sum(
        boosts(amount, annual_rate, term_months, method, extra_rate, periods).values(),
        Decimal("0.00"),
    )
