"""The loyalty module's invariants as plain SQL over the whole database (service/audit.py runs
them through service/loyalty/audit.py); amounts in fen."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session


class LoyaltyAuditQueries:
    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def _rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self._session().execute(text(sql))]

    def experience_off_its_rows(self) -> list[tuple]:
        """(member, granted, sum of grants, invested, sum of investments) of experience
        accounts that disagree with their grants and investments."""
        return self._rows(
            "SELECT a.member_id, a.granted, COALESCE(g.total, 0), a.invested,"
            " COALESCE(i.total, 0) FROM experience_account a"
            " LEFT JOIN (SELECT member_id, SUM(amount) AS total FROM experience_grant"
            " GROUP BY member_id) g ON g.member_id = a.member_id"
            " LEFT JOIN (SELECT member_id, SUM(amount) AS total FROM experience_investment"
            " GROUP BY member_id) i ON i.member_id = a.member_id"
            " WHERE a.granted <> COALESCE(g.total, 0) OR a.invested <> COALESCE(i.total, 0)"
            " OR a.invested > a.granted"
        )

    def experience_interest_off_its_rewards(self) -> list[tuple]:
        """(experience investment, status, interest, rewards owed for it, their amount) where
        a PAID one with interest is not owed exactly once for its interest, or a RUNNING one
        is owed anything."""
        return self._rows(
            "SELECT x.id, x.status, x.interest, COUNT(r.id), COALESCE(SUM(r.amount), 0)"
            " FROM experience_investment x LEFT JOIN marketing_reward r"
            " ON r.kind = 'EXPERIENCE_INTEREST' AND r.source_type = 'experience_investment'"
            " AND r.source_id = x.id AND r.member_id = x.member_id"
            " GROUP BY x.id, x.status, x.interest"
            " HAVING (x.status = 'PAID' AND x.interest > 0"
            " AND (COUNT(r.id) <> 1 OR COALESCE(SUM(r.amount), 0) <> x.interest))"
            " OR (x.status = 'RUNNING' AND COUNT(r.id) > 0)"
        )

    def points_off_their_entries(self) -> list[tuple]:
        """(member, points earned less taken, points remaining) where what was taken is not
        exactly what the earning entries lost."""
        return self._rows(
            "SELECT member_id, SUM(points), SUM(remaining) FROM point_entry"
            " GROUP BY member_id HAVING SUM(points) <> SUM(remaining)"
        )

    def checkins_off_their_points(self) -> list[tuple]:
        """(check-in, its points, the points its entry earned) where they differ."""
        return self._rows(
            "SELECT c.id, c.points, COALESCE(e.points, 0) FROM checkin c"
            " LEFT JOIN point_entry e ON e.kind = 'CHECK_IN' AND e.ref_id = c.id"
            " WHERE c.points <> COALESCE(e.points, 0)"
        )

    def referral_rewards_off_their_payouts(self) -> list[tuple]:
        """(investment, referrer, status, rewards owed for it) where a PAID referral reward is
        not owed exactly once with its amount, or an ACCRUED or REVERSED one is owed."""
        return self._rows(
            "SELECT f.investment_id, f.referrer_id, f.status, COUNT(r.id)"
            " FROM referral_reward f LEFT JOIN marketing_reward r"
            " ON r.kind = 'REFERRAL' AND r.source_type = 'investment'"
            " AND r.source_id = f.investment_id AND r.member_id = f.referrer_id"
            " AND r.status <> 'CANCELLED'"
            " GROUP BY f.id, f.investment_id, f.referrer_id, f.status, f.amount"
            " HAVING (f.status = 'PAID' AND (COUNT(r.id) <> 1"
            " OR COALESCE(SUM(r.amount), 0) <> f.amount))"
            " OR (f.status <> 'PAID' AND COUNT(r.id) > 0)"
        )
