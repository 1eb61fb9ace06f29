"""Marketing's invariants over the whole database, for ``p2p check-ledger`` (read-only): each
query returns the rows that break one (empty when it holds), amounts in integer fen, computed
by the database from the rows themselves."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session


class MarketingAuditQueries:
    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def _rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self._session().execute(text(sql))]

    def campaigns_off_their_charges(self) -> list[tuple]:
        """(campaign, spent amount, charges' amount, spent count, charges' count, budget
        amount, budget count) for campaigns whose spend is not the sum of their charges, or
        beyond their budget."""
        return self._rows(
            "SELECT c.id, c.spent_amount, COALESCE(SUM(ch.amount), 0), c.spent_count,"
            " COALESCE(SUM(ch.count), 0), c.budget_amount, c.budget_count"
            " FROM campaign c LEFT JOIN campaign_charge ch ON ch.campaign_id = c.id"
            " GROUP BY c.id, c.spent_amount, c.spent_count, c.budget_amount, c.budget_count"
            " HAVING c.spent_amount <> COALESCE(SUM(ch.amount), 0)"
            " OR c.spent_count <> COALESCE(SUM(ch.count), 0)"
            " OR c.spent_amount > c.budget_amount OR c.spent_amount < 0"
            " OR (c.budget_count IS NOT NULL AND c.spent_count > c.budget_count)"
        )

    def templates_off_their_coupons(self) -> list[tuple]:
        """(template, issued_count, coupons, total_count) where the count is not its coupons
        or passes its total."""
        return self._rows(
            "SELECT t.id, t.issued_count, COUNT(c.id), t.total_count FROM coupon_template t"
            " LEFT JOIN coupon c ON c.template_id = t.id"
            " GROUP BY t.id, t.issued_count, t.total_count"
            " HAVING t.issued_count <> COUNT(c.id)"
            " OR (t.total_count IS NOT NULL AND COUNT(c.id) > t.total_count)"
        )

    def coupons_off_their_investments(self) -> list[tuple]:
        """(coupon, status, investment, its status) for coupons whose state contradicts their
        investment's: LOCKED to one that no longer holds money (released, failed) or already
        lent (but for a listing still DISBURSING at the bank, lent item by item), USED on one
        that was never lent."""
        return self._rows(
            "SELECT c.id, c.status, i.id, i.status FROM coupon c"
            " JOIN investment i ON i.id = c.investment_id JOIN loan l ON l.id = i.loan_id"
            " WHERE (c.status = 'LOCKED' AND i.status NOT IN ('PENDING', 'FROZEN', 'RELEASING')"
            "  AND NOT (i.status = 'ACTIVE' AND l.status = 'DISBURSING'))"
            " OR (c.status = 'USED' AND i.status NOT IN ('ACTIVE', 'SETTLED'))"
        )

    def cash_coupons_off_their_rewards(self) -> list[tuple]:
        """(coupon, status, CASH_COUPON rewards) for CASH coupons not rewarded exactly as
        consumed: one reward once USED, none before."""
        return self._rows(
            "SELECT c.id, c.status, COUNT(r.id) FROM coupon c LEFT JOIN marketing_reward r"
            " ON r.kind = 'CASH_COUPON' AND r.source_type = 'coupon' AND r.source_id = c.id"
            " WHERE c.kind = 'CASH' GROUP BY c.id, c.status"
            " HAVING COUNT(r.id) <> CASE WHEN c.status = 'USED' THEN 1 ELSE 0 END"
        )

    def rewards_off_their_transfers(self) -> list[tuple]:
        """(reward, status, transfer, its status) for rewards whose state contradicts their
        transfer: PAID without a SUCCESS transfer of its amount to its member, PAYING without
        a transfer, PENDING or CANCELLED with a SUCCESS one."""
        return self._rows(
            "SELECT r.id, r.status, t.id, t.status FROM marketing_reward r"
            " LEFT JOIN platform_transfer t ON t.id = r.transfer_id"
            " WHERE (r.status = 'PAID' AND (t.id IS NULL OR t.status <> 'SUCCESS'"
            "  OR t.amount <> r.amount OR t.member_id <> r.member_id))"
            " OR (r.status = 'PAYING' AND t.id IS NULL)"
            " OR (r.status IN ('PENDING', 'CANCELLED') AND t.status = 'SUCCESS')"
        )

    def marketing_transfers_paid_twice(self) -> list[tuple]:
        """(transfer, rewards naming it) for the successful transfers that paid a reward (their
        posting's business type MKT_...) that are not the transfer of exactly one reward PAID,
        or PAYING (with the bank, a reward learns of its transfer's success at the next
        marketing.pay_due): a reward paid twice, or money paid for none."""
        return self._rows(
            "SELECT t.id, COUNT(r.id) FROM platform_transfer t LEFT JOIN marketing_reward r"
            " ON r.transfer_id = t.id AND r.status IN ('PAID', 'PAYING')"
            " WHERE t.business_type LIKE 'MKT%' AND t.status = 'SUCCESS'"
            " GROUP BY t.id HAVING COUNT(r.id) <> 1"
        )
