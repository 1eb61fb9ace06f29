"""The daily reconciliation with the depository bank: one run a business day, and what it found.

``reconciliation_run`` has one row per business day (unique ``business_date``): its status
(RUNNING, SUCCEEDED, FAILED), the reason of a failure, how many attempts there were and how
many failed, and the figures of the last successful attempt (counts per category, totals of
both sides). A run is claimed by locking that row and moving it to RUNNING with a new attempt
number, and recorded under the same lock only by the attempt that holds that number: two runs
of one day cannot both record.

``reconciliation_discrepancy`` has one row per (business day, category, subject): the subject
is the order number, or the account number for a balance. Both sides' values are kept as found;
``status`` is OPEN until an operator resolves it (APPLY or EXPLAIN, with who, when, why and the
request number) or a later run of the same day no longer finds it (CLEARED, by nobody).

``bank_order_reissue`` has one row per bank order an operator re-issued: the FAILED order, the
new one that re-issues it (its ``retry_of``), who, when, why and the request number; at most
one a FAILED order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.ocp import OPEN_STATUSES, BankOrderEntity
from dao.ocp.order import waits_for_a_person
from dao.types import Identifier, Money, UtcDateTime, utcnow

RUN_STATUSES: tuple[str, ...] = ("RUNNING", "SUCCEEDED", "FAILED")
#: BANK_ONLY: a line of the bank's file with no platform order of that number and type;
#: PLATFORM_ONLY: a platform order of the day the bank's file does not list; AMOUNT, STATUS,
#: FEE: an order both sides have, differing; BALANCE: a sub-account's total at the end of the
#: day differing from the platform's ledger.
CATEGORIES: tuple[str, ...] = (
    "BANK_ONLY",
    "PLATFORM_ONLY",
    "AMOUNT",
    "STATUS",
    "FEE",
    "BALANCE",
)
DISCREPANCY_STATUSES: tuple[str, ...] = ("OPEN", "RESOLVED")
RESOLUTIONS: tuple[str, ...] = ("APPLY", "EXPLAIN", "CLEARED")
#: reconciliation_discrepancy.reason's width (an operator's explanation).
MAX_REASON = 2000


class ReconciliationRunEntity(Base):
    """The reconciliation of one business day (Asia/Shanghai) and its latest outcome."""

    __tablename__ = "reconciliation_run"
    __table_args__ = (
        UniqueConstraint("business_date"),
        CheckConstraint(sql_in("status", RUN_STATUSES), name="status"),
        CheckConstraint("attempts >= 1 AND failed_attempts >= 0", name="attempts"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    business_date: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    # Why the last attempt failed (FILE_NOT_READY, SIGNATURE_INVALID, FILE_HEADER_MISMATCH,
    # FILE_MALFORMED, BANK_UNAVAILABLE, ERROR) and the file that failed it.
    reason: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    failed_file: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    succeeded_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # What the last successful attempt found, per category.
    bank_only: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    platform_only: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    amount_mismatches: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status_mismatches: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    fee_mismatches: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    balance_mismatches: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Both sides' totals: the bank's order lines and their sums, the platform's orders of the
    # day and theirs, and the members' sub-account totals on either side.
    bank_lines: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    bank_amount: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    bank_fee: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    platform_orders: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    platform_amount: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    platform_fee: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    bank_balance: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    platform_balance: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class DiscrepancyEntity(Base):
    """One difference between the bank's files and the platform's books for one day."""

    __tablename__ = "reconciliation_discrepancy"
    __table_args__ = (
        UniqueConstraint("business_date", "category", "subject"),
        CheckConstraint(sql_in("category", CATEGORIES), name="category"),
        CheckConstraint(sql_in("status", DISCREPANCY_STATUSES), name="status"),
        CheckConstraint(
            f"resolution IS NULL OR {sql_in('resolution', RESOLUTIONS)}", name="resolution"
        ),
        CheckConstraint(
            "(status = 'OPEN') = (resolution IS NULL AND resolved_at IS NULL)", name="resolved"
        ),
        CheckConstraint("resolution <> 'EXPLAIN' OR reason IS NOT NULL", name="explained"),
        Index("ix_reconciliation_discrepancy_status_category", "status", "category"),
        Index("ix_reconciliation_discrepancy_run_id_id", "run_id", "id"),
        UniqueConstraint("request_scope", "request_no"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(IdType, ForeignKey("reconciliation_run.id"), nullable=False)
    business_date: Mapped[date] = mapped_column(Date, nullable=False)
    category: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    # The order number, or the sub-account's number for a balance.
    subject: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    order_type: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    member_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    bank_status: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    platform_status: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    bank_amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    platform_amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    bank_fee: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    platform_fee: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    bank_ref: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    bank_account_no: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    bank_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    resolution: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(MAX_REASON), nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The operator's request number (scope: the operator), so a repeat changes nothing.
    request_scope: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    request_no: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    found_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class BankOrderReissueEntity(Base):
    """An operator's re-issue of a bank order the bank FAILED, under a new order number."""

    __tablename__ = "bank_order_reissue"
    __table_args__ = (
        UniqueConstraint("order_id"),
        UniqueConstraint("new_order_id"),
        UniqueConstraint("request_scope", "request_no"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(IdType, ForeignKey("bank_order.id"), nullable=False)
    new_order_id: Mapped[int] = mapped_column(IdType, ForeignKey("bank_order.id"), nullable=False)
    reason: Mapped[str] = mapped_column(String(MAX_REASON), nullable=False)
    reissued_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    reissued_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    # The operator's request number (scope: the operator), so a repeat changes nothing.
    request_scope: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    request_no: Mapped[str] = mapped_column(Identifier(64), nullable=False)


class ReconciliationRepository:
    """Runs and discrepancies on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity):
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def run(self, business_date: date) -> ReconciliationRunEntity | None:
        return self._session().scalars(_run_of(business_date)).one_or_none()

    def lock_run(self, business_date: date) -> ReconciliationRunEntity | None:
        """The day's run, its row locked until the transaction ends."""
        return self._session().scalars(_run_of(business_date).with_for_update()).one_or_none()

    def succeeded_dates(self, since: date) -> set[date]:
        stmt = select(ReconciliationRunEntity.business_date).where(
            ReconciliationRunEntity.business_date >= since,
            ReconciliationRunEntity.status == "SUCCEEDED",
        )
        return set(self._session().scalars(stmt))

    def dates_with_open(self, since: date) -> set[date]:
        stmt = (
            select(DiscrepancyEntity.business_date)
            .where(DiscrepancyEntity.business_date >= since, DiscrepancyEntity.status == "OPEN")
            .distinct()
        )
        return set(self._session().scalars(stmt))

    def runs(
        self, since: date | None, until: date | None, *, offset: int, limit: int
    ) -> tuple[list[ReconciliationRunEntity], int]:
        """One page of runs, the latest day first, and the total."""
        conditions = []
        if since is not None:
            conditions.append(ReconciliationRunEntity.business_date >= since)
        if until is not None:
            conditions.append(ReconciliationRunEntity.business_date <= until)
        return _page(
            self._session(),
            select(ReconciliationRunEntity).where(*conditions),
            (ReconciliationRunEntity.business_date.desc(),),
            offset,
            limit,
        )

    def discrepancies_of(self, business_date: date) -> dict[tuple[str, str], DiscrepancyEntity]:
        """Every discrepancy recorded for the day, by (category, subject)."""
        stmt = select(DiscrepancyEntity).where(DiscrepancyEntity.business_date == business_date)
        return {(d.category, d.subject): d for d in self._session().scalars(stmt)}

    def discrepancy(self, discrepancy_id: int, *, lock: bool = False) -> DiscrepancyEntity | None:
        stmt = select(DiscrepancyEntity).where(DiscrepancyEntity.id == discrepancy_id)
        if lock:
            stmt = stmt.with_for_update()
        return self._session().scalars(stmt).one_or_none()

    def by_request(self, scope: str, request_no: str) -> DiscrepancyEntity | None:
        stmt = select(DiscrepancyEntity).where(
            DiscrepancyEntity.request_scope == scope, DiscrepancyEntity.request_no == request_no
        )
        found = self._session().scalars(stmt).one_or_none()
        return found if found is not None and found.request_no == request_no else None

    def discrepancies(
        self,
        business_date: date | None,
        category: str | None,
        status: str | None,
        *,
        offset: int,
        limit: int,
    ) -> tuple[list[DiscrepancyEntity], int]:
        """One page of discrepancies, the latest day first, and the total."""
        conditions = []
        if business_date is not None:
            conditions.append(DiscrepancyEntity.business_date == business_date)
        if category is not None:
            conditions.append(DiscrepancyEntity.category == category)
        if status is not None:
            conditions.append(DiscrepancyEntity.status == status)
        return _page(
            self._session(),
            select(DiscrepancyEntity).where(*conditions),
            (DiscrepancyEntity.business_date.desc(), DiscrepancyEntity.id),
            offset,
            limit,
        )

    def open_by_category(self) -> dict[str, int]:
        stmt = (
            select(DiscrepancyEntity.category, func.count())
            .where(DiscrepancyEntity.status == "OPEN")
            .group_by(DiscrepancyEntity.category)
        )
        counts = dict.fromkeys(CATEGORIES, 0)
        counts.update({category: int(n) for category, n in self._session().execute(stmt)})
        return counts

    def run_figures(self) -> tuple[int, int, date | None]:
        """Attempts that succeeded and that failed, over every day, and the latest day whose
        run succeeded."""
        run = ReconciliationRunEntity
        attempts, failed = (
            self._session()
            .execute(select(func.sum(run.attempts), func.sum(run.failed_attempts)))
            .one()
        )
        running = self._session().scalar(
            select(func.count()).select_from(run).where(run.status == "RUNNING")
        )
        last = self._session().scalar(
            select(func.max(run.business_date)).where(run.status == "SUCCEEDED")
        )
        failed = int(failed or 0)
        return int(attempts or 0) - failed - int(running or 0), failed, last

    def in_doubt(self, *, offset: int, limit: int) -> tuple[list[BankOrderEntity], int]:
        """One page of the bank orders handed to reconciliation and still open, the oldest
        first."""
        stmt = select(BankOrderEntity).where(
            BankOrderEntity.handed_to_reconciliation_at.is_not(None),
            BankOrderEntity.status.in_(OPEN_STATUSES),
        )
        return _page(
            self._session(), stmt, (BankOrderEntity.created_at, BankOrderEntity.id), offset, limit
        )

    def waiting(self, *, offset: int, limit: int) -> tuple[list[BankOrderEntity], int]:
        """One page of the bank orders waiting for a person (dao.ocp.order.waits_for_a_person),
        the oldest failure first."""
        stmt = select(BankOrderEntity).where(waits_for_a_person())
        return _page(
            self._session(), stmt, (BankOrderEntity.finished_at, BankOrderEntity.id), offset, limit
        )

    def reissue_by_request(self, scope: str, request_no: str) -> BankOrderReissueEntity | None:
        stmt = select(BankOrderReissueEntity).where(
            BankOrderReissueEntity.request_scope == scope,
            BankOrderReissueEntity.request_no == request_no,
        )
        found = self._session().scalars(stmt).one_or_none()
        return found if found is not None and found.request_no == request_no else None


def _run_of(business_date: date):
    return select(ReconciliationRunEntity).where(
        ReconciliationRunEntity.business_date == business_date
    )


def _page(session: Session, stmt, order_by, offset: int, limit: int):
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(*order_by).offset(offset).limit(limit)).all()
    return list(rows), int(total or 0)
