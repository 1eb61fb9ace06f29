"""Repayment plans: the borrower's installments and each investor's receipts."""

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
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from dao.base import (
    MYSQL_TABLE_ARGS,
    Base,
    IdType,
    row_count,
    sql_in,
)
from dao.bulk import CHUNK, case_on_id, driver_form, placeholders, run_sql
from dao.ledger import AccountEntity
from dao.p2p.loan import LoanEntity
from dao.types import Identifier, Money, UtcDateTime, utcnow

#: PENDING until due; OVERDUE once past its due date unpaid; PAID when repaid (penalty
#: included); SETTLED_EARLY when the borrower settled the whole listing before it fell due;
#: PAYING while its repayment (or the settlement) is being paid at the depository bank.
INSTALLMENT_STATUSES: tuple[str, ...] = (
    "PENDING",
    "OVERDUE",
    "PAID",
    "SETTLED_EARLY",
    "PAYING",
)
RECEIPT_STATUSES: tuple[str, ...] = ("PENDING", "RECEIVED")

_AMOUNTS = "principal >= 0 AND interest >= 0 AND penalty >= 0"


class InstallmentEntity(Base):
    """Period ``period`` of a listing's repayment plan, as the borrower owes it."""

    __tablename__ = "installment"
    __table_args__ = (
        UniqueConstraint("loan_id", "period"),
        CheckConstraint("period >= 1", name="period_positive"),
        CheckConstraint(_AMOUNTS, name="amounts_not_negative"),
        CheckConstraint(sql_in("status", INSTALLMENT_STATUSES), name="status"),
        Index("ix_installment_status_due_date", "status", "due_date"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(IdType, ForeignKey("loan.id"), nullable=False)
    period: Mapped[int] = mapped_column(Integer, nullable=False)
    due_date: Mapped[date] = mapped_column(Date, nullable=False)
    principal: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    interest: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    penalty: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    remaining: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class ReceiptEntity(Base):
    """An investor's share of one installment: what they receive for it, split exactly, and the
    interest service fee kept of it."""

    __tablename__ = "receipt"
    __table_args__ = (
        UniqueConstraint("installment_id", "investment_id"),
        CheckConstraint(_AMOUNTS, name="amounts_not_negative"),
        CheckConstraint(sql_in("status", RECEIPT_STATUSES), name="status"),
        CheckConstraint("fee >= 0 AND fee <= interest", name="fee_within_interest"),
        Index("ix_receipt_investor_id_id", "investor_id", "id"),
        Index("ix_receipt_investment_id_period", "investment_id", "period"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    installment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("installment.id"), nullable=False
    )
    investment_id: Mapped[int] = mapped_column(IdType, ForeignKey("investment.id"), nullable=False)
    loan_id: Mapped[int] = mapped_column(IdType, ForeignKey("loan.id"), nullable=False)
    investor_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    period: Mapped[int] = mapped_column(Integer, nullable=False)
    principal: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    interest: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    penalty: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    #: The interest service fee the platform kept of ``interest`` when it was paid
    #: (service/p2p/fees.py): the investor received principal + interest + penalty - fee.
    fee: Mapped[Decimal] = mapped_column(
        Money(), nullable=False, default=Decimal(0), server_default="0"
    )
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class PlanRepository:
    """Installment and receipt queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add_all(self, entities: list) -> None:
        session = self._session()
        session.add_all(entities)
        session.flush()

    def installments(self, loan_id: int) -> list[InstallmentEntity]:
        stmt = (
            select(InstallmentEntity)
            .where(InstallmentEntity.loan_id == loan_id)
            .order_by(InstallmentEntity.period)
        )
        return list(self._session().scalars(stmt))

    def receipts_of_installment(self, installment_id: int) -> list[ReceiptEntity]:
        stmt = (
            select(ReceiptEntity)
            .where(ReceiptEntity.installment_id == installment_id)
            .order_by(ReceiptEntity.investment_id)
        )
        return list(self._session().scalars(stmt))

    def unpaid_installments(self, loan_id: int) -> list[InstallmentEntity]:
        """The listing's PENDING and OVERDUE installments, in period order."""
        stmt = (
            select(InstallmentEntity)
            .where(
                InstallmentEntity.loan_id == loan_id,
                InstallmentEntity.status.in_(("PENDING", "OVERDUE")),
            )
            .order_by(InstallmentEntity.period)
        )
        return list(self._session().scalars(stmt))

    def receipts_of_installments(self, installment_ids: list[int]) -> list[ReceiptEntity]:
        """The receipts of these installments, by installment then investment id."""
        stmt = (
            select(ReceiptEntity)
            .where(ReceiptEntity.installment_id.in_(installment_ids))
            .order_by(ReceiptEntity.installment_id, ReceiptEntity.investment_id)
        )
        return list(self._session().scalars(stmt))

    def unreceived(self, installment_ids: list[int]) -> dict[int, int]:
        """Installment id -> how many of its receipts are not RECEIVED, for those of
        ``installment_ids`` that have any: one grouped COUNT, no receipt loaded."""
        r = ReceiptEntity
        stmt = (
            select(r.installment_id, func.count())
            .where(r.installment_id.in_(installment_ids), r.status != "RECEIVED")
            .group_by(r.installment_id)
        )
        return {i: n for i, n in self._session().execute(stmt)}

    def receive(
        self,
        receipts: list[ReceiptEntity],
        paid: list[tuple[Decimal, Decimal, Decimal]],
        now: datetime,
    ) -> None:
        """Each receipt RECEIVED at ``now`` with what it was paid, ``paid[k]`` (interest,
        penalty, interest service fee) for ``receipts[k]``: one UPDATE per ``CHUNK`` receipts
        (a CASE on the id for each of the three; the fee only where there is one: a receipt
        not yet paid has none), not one a row. The loaded receipts get the same values as
        unchanged (committed) state, so the session neither flushes them again nor holds stale
        ones."""
        session, r = self._session(), ReceiptEntity
        money, stamp = driver_form(session, r.penalty), driver_form(session, r.received_at)
        pairs = list(zip(receipts, paid, strict=True))
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start : start + CHUNK]
            columns, params = [], ["RECEIVED", stamp(now)]
            charged = any(fee for _, (_, _, fee) in chunk)
            for k, name in enumerate(("interest", "penalty", "fee")[: 3 if charged else 2]):
                case, case_params = case_on_id({row.id: money(v[k]) for row, v in chunk})
                columns.append(f"{name} = {case}")
                params += case_params
            sql = (  # names and placeholders only in the text; every value is a parameter
                "UPDATE receipt SET status = ?, received_at = ?, "  # noqa: S608
                f"{', '.join(columns)} WHERE id IN ({placeholders(len(chunk))})"
            )
            run_sql(session, sql, [*params, *(row.id for row, _ in chunk)])
        for row, (i, p, fee) in pairs:
            values = {
                "status": "RECEIVED",
                "received_at": now,
                "interest": i,
                "penalty": p,
                "fee": fee,
            }
            for key, value in values.items():
                set_committed_value(row, key, value)

    def investor_accounts(self, loan_id: int) -> dict[int, AccountEntity]:
        """Member id -> ledger account of every investor with a receipt in the listing, in one
        query (a listing may have thousands of investors)."""
        investors = select(ReceiptEntity.investor_id).where(ReceiptEntity.loan_id == loan_id)
        stmt = select(AccountEntity).where(AccountEntity.member_id.in_(investors))
        return {a.member_id: a for a in self._session().scalars(stmt)}

    def mark_overdue(self, today: date) -> int:
        """PENDING installments due before ``today`` become OVERDUE; how many did."""
        stmt = (
            update(InstallmentEntity)
            .where(InstallmentEntity.status == "PENDING", InstallmentEntity.due_date < today)
            .values(status="OVERDUE", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return row_count(self._session(), stmt)

    def receipts_of_investor(
        self, investor_id: int, loan_id: int | None, *, offset: int, limit: int
    ) -> tuple[list[tuple[ReceiptEntity, date]], int]:
        """One page of an investor's receipts with their due dates, newest listing first then
        period, and the total."""
        conditions = [ReceiptEntity.investor_id == investor_id]
        if loan_id is not None:
            conditions.append(ReceiptEntity.loan_id == loan_id)
        session = self._session()
        total = session.scalar(select(func.count()).select_from(ReceiptEntity).where(*conditions))
        rows = session.execute(
            select(ReceiptEntity, InstallmentEntity.due_date)
            .join(InstallmentEntity, InstallmentEntity.id == ReceiptEntity.installment_id)
            .where(*conditions)
            .order_by(
                ReceiptEntity.loan_id.desc(), ReceiptEntity.period, ReceiptEntity.investment_id
            )
            .offset(offset)
            .limit(limit)
        ).all()
        return [(r, d) for r, d in rows], int(total or 0)

    def next_due_of_borrower(
        self, borrower_id: int, *, offset: int, limit: int
    ) -> tuple[list[InstallmentEntity], int]:
        """One page of the next unpaid installment of each of the borrower's REPAYING
        listings, by listing, and how many listings have one."""
        first = (
            select(InstallmentEntity.loan_id, func.min(InstallmentEntity.period).label("period"))
            .join(LoanEntity, LoanEntity.id == InstallmentEntity.loan_id)
            .where(
                LoanEntity.borrower_id == borrower_id,
                LoanEntity.status == "REPAYING",
                InstallmentEntity.status.in_(("PENDING", "OVERDUE")),
            )
            .group_by(InstallmentEntity.loan_id)
            .subquery()
        )
        stmt = (
            select(InstallmentEntity)
            .join(
                first,
                (first.c.loan_id == InstallmentEntity.loan_id)
                & (first.c.period == InstallmentEntity.period),
            )
            .order_by(InstallmentEntity.loan_id)
            .offset(offset)
            .limit(limit)
        )
        session = self._session()
        total = session.scalar(select(func.count()).select_from(first))
        return list(session.scalars(stmt)), total
