"""Daily check-in (签到) and points (积分).

**The business day** is the calendar day in Asia/Shanghai, whatever the server's zone: a
check-in at 23:59 and another at 00:01 Shanghai time are two days, two at 00:30 and 23:30 UTC
of one UTC date may be two Shanghai days, and the other way round.

**Check-in.** One a member and business day: the row's unique key (member, business_day)
decides between two workers checking in at once (the loser's transaction is retried and
answers ALREADY_CHECKED_IN). A check-in the day after the member's last one continues the
streak; any day missed starts it again at 1. Its points are ``loyalty.checkin_points`` at the
streak's day (the last value from then on).

**The points ledger** (dao/loyalty.py point_entry). Points are earned by checking in and by
investing (``loyalty.points_per_yuan`` of an investment frozen, rounded down) and expire
``loyalty.points_ttl_days`` after they were earned; the balance is what remains of unexpired
earning entries. Spending (redeemPoints) takes from the entries that expire first. An
investment whose money is given back (investment_released) takes its points back: what
remains of them first, then from the member's other points, expiring first, as far as the
balance goes (points already spent are not taken below zero).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy.exc import IntegrityError

from dao.loyalty import CheckinEntity, LoyaltyRepository, PointEntryEntity
from service import errors
from service.businessday import business_day
from service.errors import BusinessError


def streak_points(table: tuple[int, ...], streak: int) -> int:
    """The points of the ``streak``-th consecutive day (the table's last value from then on)."""
    return table[min(streak, len(table)) - 1]


def invest_points(amount: Decimal, per_yuan: Decimal) -> int:
    """Whole points for investing ``amount`` yuan, rounded down."""
    return int((amount * per_yuan).to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True)
class CheckInVo:
    business_day: dt.date
    streak: int
    points: int
    balance: int


@dataclass(frozen=True)
class PointsVo:
    balance: int
    #: When the member's next points expire and how many (None: nothing to expire).
    next_expiry: dt.datetime | None
    next_expiry_points: int


@dataclass(frozen=True)
class PointEntryVo:
    entry_id: int
    kind: str
    points: int
    remaining: int
    expires_at: dt.datetime | None
    created_at: dt.datetime


class PointsLedger:
    """Points earned, spent and taken back, in the caller's transaction."""

    def __init__(self, tx, settings, clock) -> None:
        self._settings = settings
        self._clock = clock
        self._repo = LoyaltyRepository(tx.session)

    def check_in(self, member_id: int) -> CheckInVo:
        """Check ``member_id`` in for the business day under way (ALREADY_CHECKED_IN once
        done); the points it earned."""
        now = self._clock()
        today = business_day(now)
        if self._repo.checkin(member_id, today) is not None:
            raise already_checked_in(today)
        yesterday = self._repo.checkin(member_id, today - dt.timedelta(days=1))
        streak = yesterday.streak + 1 if yesterday is not None else 1
        points = streak_points(self._settings.loyalty.checkin_points, streak)
        try:
            row = self._repo.add(
                CheckinEntity(
                    member_id=member_id,
                    business_day=today,
                    streak=streak,
                    points=points,
                    checked_at=now,
                )
            )
        except IntegrityError:  # the same member at this very moment: that one counts
            raise already_checked_in(today) from None
        if points:
            self.earn(member_id, "CHECK_IN", row.id, points)
        return CheckInVo(today, streak, points, self.balance(member_id))

    def earn(self, member_id: int, kind: str, ref_id: int, points: int) -> None:
        """An earning entry (CHECK_IN, INVEST), once per (kind, reference)."""
        self.earn_all(kind, [(member_id, ref_id, points)])

    def earn_all(self, kind: str, earnings: Sequence[tuple[int, int, int]]) -> None:
        """``earn`` for each (member, reference, points) of ``earnings``: one query for
        those earned already, one INSERT for the others."""
        if not earnings:
            return
        earned = self._repo.entries_of(kind, [ref_id for _, ref_id, _ in earnings])
        now = self._clock()
        expires_at = now + dt.timedelta(days=self._settings.loyalty.points_ttl_days)
        rows = [
            {
                "member_id": member_id,
                "kind": kind,
                "ref_id": ref_id,
                "points": points,
                "remaining": points,
                "expires_at": expires_at,
                "created_at": now,
            }
            for member_id, ref_id, points in earnings
            if ref_id not in earned
        ]
        if rows:
            self._repo.insert_entries(rows)

    def spend(self, member_id: int, points: int, kind: str, ref_id: int) -> None:
        """Take ``points`` from the member's unexpired points, those expiring first first;
        POINTS_INSUFFICIENT, taking nothing, when the balance is lower."""
        now = self._clock()
        sources = self._repo.spendable(member_id, now)
        if sum(e.remaining for e in sources) < points:
            raise BusinessError(
                errors.POINTS_INSUFFICIENT,
                f"{points} points needed, {sum(e.remaining for e in sources)} available",
            )
        self._take(sources, points)
        self._taking(member_id, kind, ref_id, points, now)

    def take_back(self, member_id: int, kind: str, ref_id: int) -> int:
        """The investment ``ref_id`` no longer earns its points: take back what remains of
        them, then from the member's other points as far as the balance goes; how many were
        taken back (once: a second call takes nothing)."""
        earned = self._repo.entry(kind, ref_id)
        if earned is None or self._repo.entry("INVEST_REVERSAL", ref_id) is not None:
            return 0
        now = self._clock()
        own = min(earned.remaining, earned.points)
        earned.remaining -= own
        others = [e for e in self._repo.spendable(member_id, now) if e.id != earned.id]
        more = min(earned.points - own, sum(e.remaining for e in others))
        self._take(others, more)
        if own + more:
            self._taking(member_id, "INVEST_REVERSAL", ref_id, own + more, now)
        return own + more

    def balance(self, member_id: int) -> int:
        return self._repo.balance(member_id, self._clock())

    def points(self, member_id: int) -> PointsVo:
        now = self._clock()
        expiry = self._repo.next_expiry(member_id, now)
        return PointsVo(
            balance=self._repo.balance(member_id, now),
            next_expiry=expiry[0] if expiry else None,
            next_expiry_points=expiry[1] if expiry else 0,
        )

    @staticmethod
    def _take(sources: list[PointEntryEntity], points: int) -> None:
        for entry in sources:
            if points == 0:
                break
            taken = min(entry.remaining, points)
            entry.remaining -= taken
            points -= taken

    def _taking(self, member_id: int, kind: str, ref_id: int, points: int, now) -> None:
        self._repo.add(
            PointEntryEntity(
                member_id=member_id,
                kind=kind,
                ref_id=ref_id,
                points=-points,
                remaining=0,
                expires_at=None,
                created_at=now,
            )
        )


def already_checked_in(day: dt.date) -> BusinessError:
    return BusinessError(errors.ALREADY_CHECKED_IN, f"already checked in on {day.isoformat()}")
