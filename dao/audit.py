"""Aggregate queries over the whole ledger, for the invariant check (read-only).

Each returns the rows that break an invariant (empty when it holds), in integer fen, computed
by the database from the raw entries: never from the code that wrote them.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session

_SIGNED = "CASE WHEN e.direction = a.normal_side THEN e.amount ELSE -e.amount END"


class AuditQueries:
    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def _rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self._session().execute(text(sql))]

    def _one(self, sql: str) -> int:
        return int(self._session().execute(text(sql)).scalar() or 0)

    def counts(self) -> dict[str, int]:
        return {
            table: self._one(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - fixed table names
            for table in ("account", "posting", "posting_entry", "loan", "investment")
        }

    def unbalanced_postings(self) -> list[tuple]:
        """(posting id, debits, credits, entries) of postings whose sides differ or that have
        fewer than two entries."""
        return self._rows(
            "SELECT p.id,"
            " COALESCE(SUM(CASE WHEN e.direction = 'D' THEN e.amount END), 0),"
            " COALESCE(SUM(CASE WHEN e.direction = 'C' THEN e.amount END), 0),"
            " COUNT(e.id)"
            " FROM posting p LEFT JOIN posting_entry e ON e.posting_id = p.id"
            " GROUP BY p.id"
            " HAVING COUNT(e.id) < 2 OR"
            " COALESCE(SUM(CASE WHEN e.direction = 'D' THEN e.amount END), 0) <>"
            " COALESCE(SUM(CASE WHEN e.direction = 'C' THEN e.amount END), 0)"
            " ORDER BY p.id"
        )

    def balances_off_their_entries(self) -> list[tuple]:
        """(account id, stored available, entries' available, stored frozen, entries' frozen)
        where a stored balance differs from the sum of its entries."""
        return self._rows(
            "SELECT a.id, a.available, s.available, a.frozen, s.frozen FROM account a"
            " JOIN (SELECT a2.id,"
            "  COALESCE(SUM(CASE WHEN e.bucket = 'AVAILABLE' THEN"
            "   CASE WHEN e.direction = a2.normal_side THEN e.amount ELSE -e.amount END END), 0)"
            "   AS available,"
            "  COALESCE(SUM(CASE WHEN e.bucket = 'FROZEN' THEN"
            "   CASE WHEN e.direction = a2.normal_side THEN e.amount ELSE -e.amount END END), 0)"
            "   AS frozen"
            "  FROM account a2 LEFT JOIN posting_entry e ON e.account_id = a2.id"
            "  GROUP BY a2.id) s ON s.id = a.id"
            " WHERE a.available <> s.available OR a.frozen <> s.frozen"
            " ORDER BY a.id"
        )

    def negative_balances(self) -> list[tuple]:
        return self._rows(
            "SELECT id, available, frozen FROM account WHERE available < 0 OR frozen < 0"
        )

    def side_totals(self) -> tuple[int, int]:
        """(sum of debit-normal balances, sum of credit-normal balances)."""
        row = (
            self._session()
            .execute(
                text(
                    "SELECT"
                    " COALESCE(SUM(CASE WHEN normal_side = 'D' THEN available + frozen END), 0),"
                    " COALESCE(SUM(CASE WHEN normal_side = 'C' THEN available + frozen END), 0)"
                    " FROM account"
                )
            )
            .one()
        )
        return int(row[0]), int(row[1])

    def platform_balance(self, code: str) -> int:
        """The total (available + frozen) of the platform's account ``code``."""
        row = self._session().execute(
            text("SELECT available + frozen FROM account WHERE code = :code"), {"code": code}
        )
        return int(row.scalar() or 0)

    def members_total(self) -> int:
        """What every member's account holds, available and frozen."""
        return self._one(
            "SELECT COALESCE(SUM(available + frozen), 0) FROM account WHERE member_id IS NOT NULL"
        )

    def net_inflow(self) -> int:
        """What entered through successful recharges minus what left through withdrawals
        (a REVERSED withdrawal's money came back: neither)."""
        return self._one(
            "SELECT COALESCE(SUM(CASE type WHEN 'RECHARGE' THEN amount ELSE -amount END), 0)"
            " FROM payment_order WHERE status = 'SUCCESS'"
        )

    def bank_fees(self) -> int:
        """The fees the bank took: those of its orders that succeeded (a REVERSED withdrawal
        succeeded first; the bank refunds no fee). A failed order's fee was released."""
        return self._one(
            "SELECT COALESCE(SUM(fee), 0) FROM bank_order WHERE status IN ('SUCCEEDED', 'REVERSED')"
        )

    def payment_orders_off_their_bank_orders(self) -> list[tuple]:
        """(order no, payment order status, bank order status) where a payment order's status
        is not the one its bank order's implies (a settled bank order whose business effect
        is missing, or the other way round)."""
        return self._rows(
            "SELECT p.order_no, p.status, b.status FROM payment_order p JOIN bank_order b"
            " ON b.ref_type = 'PAYMENT_ORDER' AND b.ref_id = p.id"
            " WHERE p.status <> CASE b.status WHEN 'SUCCEEDED' THEN 'SUCCESS'"
            " WHEN 'FAILED' THEN 'FAILED' WHEN 'REVERSED' THEN 'REVERSED' ELSE 'PENDING' END"
            " ORDER BY p.id"
        )

    def loans_off_their_investments(self) -> list[tuple]:
        """(loan id, raised, sum of its investments that count in it) where the two differ:
        PENDING ones count (capacity reserved while the bank freezes), RELEASING, RELEASED and
        FAILED ones do not."""
        return self._rows(
            "SELECT l.id, l.raised, COALESCE(SUM(i.amount), 0)"
            " FROM loan l LEFT JOIN investment i"
            " ON i.loan_id = l.id AND i.status NOT IN ('RELEASING', 'RELEASED', 'FAILED')"
            " GROUP BY l.id, l.raised"
            " HAVING l.raised <> COALESCE(SUM(i.amount), 0)"
        )

    def frozen_not_accounted_for(self) -> list[tuple]:
        """(member id, frozen balance, what it is held for) that differ: FROZEN investments
        and RELEASING ones (still frozen until the bank releases them; a PENDING one is not
        frozen yet, a FAILED one never was), pending withdrawals, and a borrower's repayments
        being paid at the bank (every REPAY item not SUCCEEDED that no later item re-issues:
        one in flight, or one whose attempts are used up, its money still frozen for it)."""
        return self._rows(
            "SELECT h.member_id, h.frozen, h.held FROM (SELECT a.member_id, a.frozen,"
            " (SELECT COALESCE(SUM(i.amount), 0) FROM investment i"
            "  WHERE i.investor_id = a.member_id AND i.status IN ('FROZEN', 'RELEASING')) +"
            " (SELECT COALESCE(SUM(o.amount), 0) FROM payment_order o"
            "  WHERE o.member_id = a.member_id AND o.type = 'WITHDRAW'"
            "  AND o.status = 'PENDING') +"
            " (SELECT COALESCE(SUM(b.amount), 0) FROM bank_order b"
            "  WHERE b.member_id = a.member_id AND b.order_type = 'REPAY'"
            "  AND b.status <> 'SUCCEEDED'"
            "  AND NOT EXISTS (SELECT 1 FROM bank_order r WHERE r.retry_of = b.id)) AS held"
            " FROM account a WHERE a.member_id IS NOT NULL) h"
            " WHERE h.frozen <> h.held"
        )

    def platform_frozen_not_accounted_for(self) -> list[tuple]:
        """(frozen, held for transfers) of the platform's own account when they differ: what
        PLATFORM_FUNDS holds frozen is the PENDING transfers from it to members."""
        return self._rows(
            "SELECT a.frozen, (SELECT COALESCE(SUM(t.amount), 0) FROM platform_transfer t"
            "  WHERE t.kind = 'TRANSFER' AND t.status = 'PENDING') AS held"
            " FROM account a WHERE a.code = 'PLATFORM_FUNDS'"
            " AND a.frozen <> (SELECT COALESCE(SUM(t.amount), 0) FROM platform_transfer t"
            "  WHERE t.kind = 'TRANSFER' AND t.status = 'PENDING')"
        )

    def receipts_off_their_bank_items(self) -> list[tuple]:
        """(receipt id, status, SUCCEEDED REPAY items) for receipts paid at the bank whose
        status is not the one their items imply: RECEIVED after exactly one SUCCEEDED item,
        PENDING before any (two would be a receipt paid twice)."""
        return self._legs_off_their_items("receipt", "REPAY", "'RECEIVED'", "'PENDING'")

    def receipt_fees_off_their_bank_items(self) -> list[tuple]:
        """(receipt id, its fee, REPAY item, the item's service fee) for items paying a
        receipt whose service fee is not the receipt's interest service fee."""
        return self._rows(
            "SELECT r.id, r.fee, b.order_no, b.service_fee FROM receipt r"
            " JOIN bank_order b ON b.ref_type = 'receipt' AND b.ref_id = r.id"
            " WHERE b.order_type = 'REPAY' AND b.service_fee <> r.fee ORDER BY r.id, b.id"
        )

    def investments_off_their_bank_items(self) -> list[tuple]:
        """(investment id, status, SUCCEEDED DISBURSE items) for investments lent at the bank
        whose status is not the one their items imply: ACTIVE (or SETTLED since) after exactly
        one SUCCEEDED item, FROZEN before any."""
        return self._legs_off_their_items(
            "investment", "DISBURSE", "'ACTIVE','SETTLED'", "'FROZEN'"
        )

    def _legs_off_their_items(self, leg: str, order_type: str, paid: str, unpaid: str):
        # Fixed table, type and status names from the two callers above, never input.
        items = (
            f"FROM bank_order b WHERE b.order_type = '{order_type}'"
            f" AND b.ref_type = '{leg}' AND b.ref_id = r.id"
        )
        succeeded = f"(SELECT COUNT(*) {items} AND b.status = 'SUCCEEDED')"
        return self._rows(
            f"SELECT r.id, r.status, {succeeded} FROM {leg} r"  # noqa: S608
            f" WHERE EXISTS (SELECT 1 {items})"
            f" AND NOT ((r.status IN ({paid}) AND {succeeded} = 1)"
            f" OR (r.status IN ({unpaid}) AND {succeeded} = 0))"
            " ORDER BY r.id"
        )

    def releases_the_bank_failed(self) -> list[tuple]:
        """(investment id, investor id, why) of investments still frozen because the bank
        failed their release (UNFREEZE): a person must look."""
        return self._rows(
            "SELECT id, investor_id, failure_reason FROM investment"
            " WHERE status = 'RELEASING' AND failure_reason IS NOT NULL ORDER BY id"
        )

    def receipts_off_their_installments(self) -> list[tuple]:
        """(installment id, principal, interest, receipts' principal, receipts' interest) for
        installments whose investors' receipts do not add up to them."""
        return self._rows(
            "SELECT s.id, s.principal, s.interest,"
            " COALESCE(SUM(r.principal), 0), COALESCE(SUM(r.interest), 0)"
            " FROM installment s LEFT JOIN receipt r ON r.installment_id = s.id"
            " GROUP BY s.id, s.principal, s.interest"
            " HAVING s.principal <> COALESCE(SUM(r.principal), 0)"
            " OR s.interest <> COALESCE(SUM(r.interest), 0)"
        )
