"""Marketing's invariants, checked with the ledger's (service/audit.py, ``p2p check-ledger``):

1. every campaign's spend is the sum of its charges, within its budget (money and count);
2. every template's issued count is its coupons, within its total;
3. every coupon agrees with its investment: LOCKED only to one that holds money and is not
   lent yet, USED only on one that was lent;
4. coupons consumed equal payouts: each USED CASH coupon has exactly one reward, any other
   none;
5. every reward agrees with its transfer (PAID exactly when its transfer succeeded, with its
   amount and member), and every marketing transfer that succeeded pays exactly one reward:
   no reward, no coupon paid twice.
"""

from __future__ import annotations

from decimal import Decimal

from dao.marketing_audit import MarketingAuditQueries


def _yuan(fen: int) -> str:
    return str((Decimal(int(fen)) / 100).quantize(Decimal("0.01")))


def marketing_checks(tx, check) -> tuple:
    """The checks above, each made by ``check(name, problems)`` (service/audit.py's Check)."""
    q = MarketingAuditQueries(tx.session)
    return (
        check(
            "campaigns spend their charges within budget",
            tuple(
                f"campaign {c}: spent {_yuan(s)} (charges {_yuan(cs)}) of {_yuan(b)},"
                f" count {n} (charges {cn}) of {bn if bn is not None else 'unlimited'}"
                for c, s, cs, n, cn, b, bn in q.campaigns_off_their_charges()
            )
            + tuple(
                f"coupon template {t}: issued {n}, coupons {c}, total {total}"
                for t, n, c, total in q.templates_off_their_coupons()
            ),
        ),
        check(
            "coupons agree with their investments",
            tuple(
                f"coupon {c}: {status}, investment {i} {i_status}"
                for c, status, i, i_status in q.coupons_off_their_investments()
            ),
        ),
        check(
            "coupons consumed are paid once",
            tuple(
                f"CASH coupon {c}: {status}, {n} reward(s)"
                for c, status, n in q.cash_coupons_off_their_rewards()
            )
            + tuple(
                f"reward {r}: {status}, transfer {t} {t_status}"
                for r, status, t, t_status in q.rewards_off_their_transfers()
            )
            + tuple(
                f"marketing transfer {t}: the transfer of {n} paid or paying reward(s)"
                for t, n in q.marketing_transfers_paid_twice()
            ),
        ),
    )
