"""Loyalty's invariants for ``p2p check-ledger`` (service/audit.py):

- experience gold: each account's granted and invested sums equal its grants and its
  investments, invested never above granted, and nothing else moves it (it has no account in
  the ledger, so it is never withdrawn); a matured investment's interest is owed exactly once;
- the points ledger: what was taken (spent, taken back) is exactly what earning entries lost,
  and each check-in's points are its entry's;
- referral rewards: one per (investment, referrer) (a unique key), and a PAID one owed to its
  referrer exactly once with its amount, an ACCRUED or REVERSED one not at all.
"""

from __future__ import annotations

from decimal import Decimal

from dao.loyalty_audit import LoyaltyAuditQueries

CENT = Decimal("0.01")


def _yuan(fen: int) -> str:
    return str((Decimal(fen) * CENT).quantize(CENT))


def loyalty_checks(session, check) -> tuple:
    """The checks above, each built with ``check(name, problems)``."""
    q = LoyaltyAuditQueries(session)
    return (
        check(
            "experience gold agrees with its grants and investments",
            tuple(
                f"member {m}: granted {_yuan(g)} (grants {_yuan(sg)}), invested {_yuan(i)}"
                f" (investments {_yuan(si)})"
                for m, g, sg, i, si in q.experience_off_its_rows()
            )
            + tuple(
                f"experience investment {x}: {status}, interest {_yuan(due)}, owed {n} time(s)"
                f" for {_yuan(owed)}"
                for x, status, due, n, owed in q.experience_interest_off_its_rewards()
            ),
        ),
        check(
            "the points ledger is consistent",
            tuple(
                f"member {m}: earned less taken {p}, remaining {r}"
                for m, p, r in q.points_off_their_entries()
            )
            + tuple(
                f"check-in {c}: {p} points, its entry {e}"
                for c, p, e in q.checkins_off_their_points()
            ),
        ),
        check(
            "one referral reward per investment and referrer, owed once when paid",
            tuple(
                f"investment {i}, referrer {r}: {status}, owed {n} time(s)"
                for i, r, status, n in q.referral_rewards_off_their_payouts()
            ),
        ),
    )
