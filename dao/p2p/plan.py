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
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.types import Money, UtcDateTime, utcnow

#: PENDING until due; OVERDUE once past its due date unpaid; PAID when repaid (penalty
#: included); SETTLED_EARLY when the borrower settled the whole listing before it fell due.
INSTALLMENT_STATUSES: tuple[str, ...] = ("PENDING", "OVERDUE", "PAID", "SETTLED_EARLY")
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
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class ReceiptEntity(Base):
    """An investor's share of one installment: what they receive for it, split exactly."""

    __tablename__ = "receipt"
    __table_args__ = (
        UniqueConstraint("installment_id", "investment_id"),
        CheckConstraint(_AMOUNTS, name="amounts_not_negative"),
        CheckConstraint(sql_in("status", RECEIPT_STATUSES), name="status"),
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
    status: Mapped[str] = mapped_column(String(16), nullable=False)
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
