"""The platform's figure for each member's sub-account, and for its own account, at the end of a
business day, to compare with the bank's BALANCE file.

The rule. The bank moves a member's money when it finishes an order (its finishedAt); the
platform posts the same movement when it learns of it (a notification, a query answer, an
applied reconciliation), which may be after midnight for an order the bank finished before,
or, for a refusal timed by the platform's own clock, on the other side of midnight from the
bank. So each posting is dated by the bank's time of the event it applies, and by when it was
made otherwise:

* a posting of a business leg served by bank orders (the posting's ref_type and ref_id are the
  orders' ref_type and ref_id: a payment order, a platform transfer, ...) is dated by the bank's
  finish of those orders (the last of them, for a leg several orders serve), once all are
  final; a bank fee's posting (BANK_FEE, its ref ("BANK_ORDER", the order's id)) by its
  order's finish;
* a withdrawal's return (REVERSED) is an event of its own, later than the payout: its
  posting, the last of its leg, is dated by the REVERSED line's finishedAt when the day's file
  lists the return, and by when the platform applied it (the order's updated_at) otherwise;
* every other posting (a leg whose order is still open, a movement with no bank order, such as
  investing before it goes through the bank) is dated by when it was made.

The figure at the end of the day is the member's total now (available + frozen in the account
table) minus every posting dated at or after the end of the day. Only the postings that can be
so dated are read: those made since the day ended, and those of legs (or fees) whose orders the
bank finished after it; a run soon after the day reads a few hours of postings, whatever the
ledger's size. Freezes move money between a member's two buckets and do not change the total.

The platform's own account at the bank (the line with an empty memberId) is figured the same
way from PLATFORM_FUNDS, its mirror: the owners' funding (FUND), the income the bank moved in
from members (a DISBURSE or REPAY item's service fee, a penalty the platform keeps), the bank's
fees and the payments to members (TRANSFER) each dated by the bank's finish of its order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import and_, select, union
from sqlalchemy.orm import Session

from dao.ledger import AccountEntity, EntryEntity, PostingEntity
from dao.member import MemberEntity
from dao.ocp import FINAL_STATUSES, BankOrderEntity

REVERSED = "REVERSED"
PLATFORM_FUNDS = "PLATFORM_FUNDS"
#: A bank fee's posting refers to its order by id (service/ocp/machine.py).
BANK_ORDER = "BANK_ORDER"
_CHUNK = 500

Leg = tuple[str, int]


class Posting(NamedTuple):
    """A posting's effect on one holder's total (positive: it raised it): a member, by member
    id, or the platform's own account, by account id."""

    posting_id: int
    leg: Leg
    created_at: datetime
    holder: int
    effect: Decimal


class LegTimes(NamedTuple):
    """When the bank finished the orders of one business leg: ``finished_at`` is None while any
    is open; ``reversal_posting`` is the posting of a return, dated ``reversed_at``."""

    finished_at: datetime | None
    reversal_posting: int | None = None
    reversed_at: datetime | None = None


def dated(posting: Posting, legs: Mapping[Leg, LegTimes]) -> datetime:
    """When ``posting`` counts for the bank's books (see the module's docstring)."""
    leg = legs.get(posting.leg)
    if leg is None or leg.finished_at is None:
        return posting.created_at
    if leg.reversal_posting == posting.posting_id:
        return leg.reversed_at
    return leg.finished_at


def figures_at(
    end: datetime,
    totals: Mapping[int, Decimal],
    postings: Iterable[Posting],
    legs: Mapping[Leg, LegTimes],
) -> dict[int, Decimal]:
    """Each holder's figure at ``end``: the total now less the postings dated at or after it.
    ``postings`` must include every posting that may be so dated (more does no harm)."""
    figures = dict(totals)
    for posting in postings:
        if posting.holder in figures and dated(posting, legs) >= end:
            figures[posting.holder] -= posting.effect
    return figures


class LedgerFigures:
    """Reads what figures_at needs, on the caller's session and transaction (one snapshot)."""

    def __init__(self, session: Session):
        self._session = session

    def members_at(
        self, end: datetime, reversed_at: Mapping[str, datetime]
    ) -> dict[str, tuple[int, Decimal]]:
        """By fund account number, the member and the platform's figure at ``end``;
        ``reversed_at`` gives the day's returns' times by order number (from the file)."""
        session = self._session
        accounts = {
            member_id: (account_no, available + frozen)
            for account_no, member_id, available, frozen in session.execute(
                select(
                    MemberEntity.fund_account_no,
                    AccountEntity.member_id,
                    AccountEntity.available,
                    AccountEntity.frozen,
                )
                .join(MemberEntity, MemberEntity.id == AccountEntity.member_id)
                .where(MemberEntity.fund_account_no.is_not(None))
            )
        }
        postings = self._postings_since(end, AccountEntity.member_id)
        legs = self._legs({p.leg for p in postings}, reversed_at)
        totals = {member_id: total for member_id, (_, total) in accounts.items()}
        figures = figures_at(end, totals, postings, legs)
        return {accounts[m][0]: (m, figure) for m, figure in figures.items()}

    def platform_at(self, end: datetime, reversed_at: Mapping[str, datetime]) -> Decimal:
        """The platform's figure for its own account at the bank at ``end`` (PLATFORM_FUNDS)."""
        a = AccountEntity
        account_id, available, frozen = self._session.execute(
            select(a.id, a.available, a.frozen).where(a.code == PLATFORM_FUNDS)
        ).one()
        postings = self._postings_since(end, a.id, a.id == account_id)
        legs = self._legs({p.leg for p in postings}, reversed_at)
        return figures_at(end, {account_id: available + frozen}, postings, legs)[account_id]

    def _postings_since(self, end: datetime, holder, *which) -> list[Posting]:
        """The postings that may be dated at or after ``end``, as their effects on each
        ``holder`` (a column of the account: the member's id, or the account's own) of the
        accounts ``which`` selects (every member's by default)."""
        p, e, a, o = PostingEntity, EntryEntity, AccountEntity, BankOrderEntity
        recent = select(p.id).where(p.created_at >= end)
        late = (
            select(p.id)
            .join(o, and_(o.ref_type == p.ref_type, o.ref_id == p.ref_id))
            .where(o.finished_at >= end)
        )
        late_fees = (
            select(p.id)
            .join(o, and_(p.ref_type == BANK_ORDER, o.id == p.ref_id))
            .where(o.finished_at >= end)
        )
        ids = union(recent, late, late_fees).subquery()
        effects: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
        meta: dict[int, tuple[Leg, datetime]] = {}
        rows = self._session.execute(
            select(
                p.id,
                p.ref_type,
                p.ref_id,
                p.created_at,
                holder,
                a.normal_side,
                e.direction,
                e.amount,
            )
            .join(e, e.posting_id == p.id)
            .join(a, a.id == e.account_id)
            .where(p.id.in_(select(ids.c.id)), *(which or (a.member_id.is_not(None),)))
        )
        for posting_id, ref_type, ref_id, created_at, owner, side, direction, amount in rows:
            meta[posting_id] = ((ref_type, ref_id), created_at)
            effects[(posting_id, owner)] += amount if direction == side else -amount
        return [
            Posting(posting_id, *meta[posting_id], owner, effect)
            for (posting_id, owner), effect in effects.items()
            if effect
        ]

    def _legs(self, legs: set[Leg], reversed_at: Mapping[str, datetime]) -> dict[Leg, LegTimes]:
        o, p = BankOrderEntity, PostingEntity
        orders: dict[Leg, list[tuple[str, str, datetime | None, datetime]]] = defaultdict(list)
        by_type: dict[str, list[int]] = defaultdict(list)
        for ref_type, ref_id in legs:
            by_type[ref_type].append(ref_id)
        for ref_type, ids in by_type.items():
            # A fee's posting names its order itself; a business leg, the orders serving it.
            key, where = (
                (o.id, ()) if ref_type == BANK_ORDER else (o.ref_id, (o.ref_type == ref_type,))
            )
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                for row in self._session.execute(
                    select(key, o.order_no, o.status, o.finished_at, o.updated_at).where(
                        *where, key.in_(chunk)
                    )
                ):
                    orders[(ref_type, row[0])].append(
                        (row.order_no, row.status, row.finished_at, row.updated_at)
                    )
        times = {}
        for leg, served in orders.items():
            if any(status not in FINAL_STATUSES for _, status, _, _ in served):
                times[leg] = LegTimes(None)
                continue
            finished = max(finished_at for _, _, finished_at, _ in served)
            returned = [(no, updated) for no, status, _, updated in served if status == REVERSED]
            if not returned or leg[0] == BANK_ORDER:  # a return refunds no fee
                times[leg] = LegTimes(finished)
                continue
            order_no, updated_at = returned[0]
            last = self._session.scalar(
                select(p.id)
                .where(p.ref_type == leg[0], p.ref_id == leg[1])
                .order_by(p.id.desc())
                .limit(1)
            )
            times[leg] = LegTimes(finished, last, reversed_at.get(order_no, updated_at))
        return times
