"""Investments (投资): an investor's share of a listing, frozen until disbursement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, row_count, sql_in
from dao.types import Identifier, Money, UtcDateTime, utcnow

#: FROZEN while the listing raises; ACTIVE once disbursed (earning); RELEASED when the listing
#: failed or was cancelled (funds returned); SETTLED when the listing is repaid in full. With
#: the depository bank (payment.gateway BANK): PENDING until the bank has frozen the funds,
#: FAILED when it did not, RELEASING until it has released them.
INVESTMENT_STATUSES: tuple[str, ...] = (
    "PENDING",
    "FROZEN",
    "ACTIVE",
    "RELEASED",
    "SETTLED",
    "RELEASING",
    "FAILED",
)
#: Investments that hold none of the listing's amount (raised leaves them out).
NOT_RAISED: tuple[str, ...] = ("RELEASING", "RELEASED", "FAILED")


class InvestmentEntity(Base):
    __tablename__ = "investment"
    __table_args__ = (
        UniqueConstraint("order_no"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(sql_in("status", INVESTMENT_STATUSES), name="status"),
        Index("ix_investment_loan_id_id", "loan_id", "id"),
        Index("ix_investment_investor_id_id", "investor_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # No foreign key: its shared lock on the listing's row would deadlock investing, whose
    # conditional UPDATE of that row checks the listing instead (migration 0023).
    loan_id: Mapped[int] = mapped_column(IdType, nullable=False)
    investor_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    request_no: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    # The FREEZE order's number at the bank (payment.gateway BANK); NULL with the sandbox.
    order_no: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    # Why the bank did not freeze it (FAILED), or why its release failed (still RELEASING).
    failure_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class InvestmentRepository:
    """Investment queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: InvestmentEntity) -> InvestmentEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def add_all(self, entities: Sequence[InvestmentEntity]) -> None:
        """New investments, inserted by one flush (a multi-row INSERT where the engine can
        return the new ids, as MariaDB and SQLite do)."""
        session = self._session()
        session.add_all(entities)
        session.flush()

    def get(self, investment_id: int) -> InvestmentEntity | None:
        return self._session().get(InvestmentEntity, investment_id)

    def of_loan(self, loan_id: int, status: str | None = None) -> list[InvestmentEntity]:
        """A listing's investments in the order they were made (id order)."""
        stmt = select(InvestmentEntity).where(InvestmentEntity.loan_id == loan_id)
        if status is not None:
            stmt = stmt.where(InvestmentEntity.status == status)
        return list(self._session().scalars(stmt.order_by(InvestmentEntity.id)))

    def settle_active(self, loan_id: int) -> int:
        """Every ACTIVE investment of ``loan_id`` SETTLED, in one UPDATE (a listing may have
        thousands); loaded ones are brought up to date; how many it settled."""
        i = InvestmentEntity
        stmt = (
            update(i)
            .where(i.loan_id == loan_id, i.status == "ACTIVE")
            .values(status="SETTLED", updated_at=utcnow())
            .execution_options(synchronize_session="evaluate")
        )
        return row_count(self._session(), stmt)

    def total_of_investor(self, loan_id: int, investor_id: int) -> Decimal:
        """What ``investor_id`` has in ``loan_id``, over every investment that counts in its
        raised amount (not RELEASING, RELEASED or FAILED)."""
        stmt = select(func.coalesce(func.sum(InvestmentEntity.amount), 0)).where(
            InvestmentEntity.loan_id == loan_id,
            InvestmentEntity.investor_id == investor_id,
            InvestmentEntity.status.not_in(NOT_RAISED),
        )
        return self._session().scalar(stmt)  # typed Money: Decimal yuan, 0.00 when none

    def count_of_loan(self, loan_id: int, statuses: tuple[str, ...]) -> int:
        """How many of ``loan_id``'s investments are in one of ``statuses``."""
        stmt = (
            select(func.count())
            .select_from(InvestmentEntity)
            .where(InvestmentEntity.loan_id == loan_id, InvestmentEntity.status.in_(statuses))
        )
        return self._session().scalar(stmt) or 0

    def page_of_investor(
        self, investor_id: int, *, loan_id: int | None = None, offset: int, limit: int
    ) -> tuple[list[InvestmentEntity], int]:
        """One page of an investor's investments (in one listing, when given), newest first,
        and the total."""
        conditions = [InvestmentEntity.investor_id == investor_id]
        if loan_id is not None:
            conditions.append(InvestmentEntity.loan_id == loan_id)
        session = self._session()
        total = session.scalar(
            select(func.count()).select_from(InvestmentEntity).where(*conditions)
        )
        rows = session.scalars(
            select(InvestmentEntity)
            .where(*conditions)
            .order_by(InvestmentEntity.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total or 0)
