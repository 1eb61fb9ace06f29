"""The platform's business clock: the time every service reads (the ``clock`` constructor
parameter, a callable answering an aware UTC datetime).

In production it is the wall clock. Elsewhere (``clock.adjustable``) it is the wall clock
plus an offset kept in the database (dao/clock.py), so ``p2p clock set|advance|reset`` moves
it at once for every web worker, job worker and command on that database: a walkthrough or a
test can let an installment fall due, a listing's raising period end, a penalty accrue. The
clock keeps running from where it was set.

Only business time moves. What the wall clock must time stays on it: the depository bank's
signatures and timestamp windows, WS-Security, verification codes, tokens, the outbox and
its retries.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from dao.clock import ClockRepository
from service.transaction import Propagation

_MICROSECOND = dt.timedelta(microseconds=1)
_DURATION = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ClockNotAdjustable(Exception):
    """The clock is the wall clock here (clock.adjustable is false: production)."""


class PlatformClock:
    """Callable: the business time now. ``set``, ``advance`` and ``reset`` move it for every
    process on the same database, when ``adjustable``."""

    def __init__(
        self, tx, *, adjustable: bool, wall: Callable[[], dt.datetime] = wall_clock
    ) -> None:
        self._tx = tx
        self.adjustable = adjustable
        self._wall = wall

    def __call__(self) -> dt.datetime:
        now = self._wall()
        return now + self.offset() if self.adjustable else now

    def offset(self) -> dt.timedelta:
        """How far the business clock is from the wall clock (zero when not moved)."""
        if not self.adjustable:
            return dt.timedelta(0)
        # Inside a caller's transaction on its session; otherwise in a read of its own.
        offset_us = self._tx.run(self._read, propagation=Propagation.SUPPORTS, read_only=True)
        return offset_us * _MICROSECOND

    def set(self, at: dt.datetime) -> dt.datetime:
        """Make it ``at`` now (an aware datetime); it runs on from there. The time set."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("a time with its zone, e.g. 2027-01-05T10:00:00Z")
        self._check()
        wall = self._wall()
        offset_us = (at - wall) // _MICROSECOND
        self._tx.run(lambda: ClockRepository(self._tx.session()).set_offset_us(offset_us, wall))
        return wall + offset_us * _MICROSECOND

    def advance(self, by: dt.timedelta) -> dt.datetime:
        """Move it on by ``by``. The business time after the move."""
        self._check()
        wall = self._wall()
        offset_us = self._tx.run(
            lambda: ClockRepository(self._tx.session()).add_offset_us(by // _MICROSECOND, wall)
        )
        return wall + offset_us * _MICROSECOND

    def reset(self) -> dt.datetime:
        """Back to the wall clock; the time now."""
        self._check()
        wall = self._wall()
        self._tx.run(lambda: ClockRepository(self._tx.session()).set_offset_us(0, wall))
        return wall

    def _check(self) -> None:
        if not self.adjustable:
            raise ClockNotAdjustable(
                "the business clock is the wall clock here (clock.adjustable is false)"
            )

    def _read(self) -> int:
        return ClockRepository(self._tx.session()).offset_us()


def fixed_clock(at: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock that always answers ``at`` (a command's --as-of)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a time with its zone, e.g. 2027-01-05T10:00:00Z")
    moment = at.astimezone(dt.UTC)
    return lambda: moment


def parse_duration(text: str) -> dt.timedelta:
    """``40d``, ``12h``, ``1d12h``, ``90m``, ``30s``: days, hours, minutes, seconds forward
    (to go back, set the time). ValueError for anything else."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + unit for n, unit in parts) != text.strip():
        raise ValueError(f"not a duration such as 40d, 12h, 90m or 1d12h: {text!r}")
    return sum((dt.timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), dt.timedelta(0))


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 time with its zone (``2027-01-05T10:00:00Z``, ``...+08:00``); a date alone
    is its midnight UTC. ValueError for a time without a zone."""
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"a time needs its zone (Z or +08:00): {text!r}")
    return at.astimezone(dt.UTC)
