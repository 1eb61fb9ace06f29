"""Batch orders at the depository bank: one submission of DISBURSE or REPAY items.

A batch is what the platform submits in one request (docs/depository-protocol.md); its number
is that submission's idempotency key, unique at the bank forever like an order number. Each
item is a bank_order row of its own (``batch_no``), settled on its own. The batch keeps only
what sending needs: the items' business leg (``ref_type``, ``ref_id``: the installment repaid,
the listing settled or disbursed), and the state of the submission's answer: CREATED (written
with the business change) -> SENT (committed just before the bank is called) -> ACCEPTED |
REFUSED (no item taken) | UNKNOWN (no trustworthy answer; the items are queried).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.ocp.order import BankOrderEntity
from dao.types import Identifier, UtcDateTime, utcnow

BATCH_TYPES: tuple[str, ...] = ("DISBURSE", "REPAY")
BATCH_STATUSES: tuple[str, ...] = ("CREATED", "SENT", "ACCEPTED", "REFUSED", "UNKNOWN")


class BankBatchEntity(Base):
    __tablename__ = "bank_batch"
    __table_args__ = (
        UniqueConstraint("batch_no"),
        CheckConstraint(sql_in("order_type", BATCH_TYPES), name="order_type"),
        CheckConstraint(sql_in("status", BATCH_STATUSES), name="status"),
        CheckConstraint("send_count >= 0", name="send_count"),
        Index("ix_bank_batch_loan_id", "loan_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    batch_no: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    order_type: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    loan_id: Mapped[int] = mapped_column(IdType, ForeignKey("loan.id"), nullable=False)
    ref_type: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    ref_id: Mapped[int] = mapped_column(IdType, nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    send_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )

    def __repr__(self) -> str:
        return f"BankBatchEntity(batch_no={self.batch_no!r}, status={self.status!r})"


class BankBatchRepository:
    """Batch queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: BankBatchEntity) -> BankBatchEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def find(self, batch_no: str) -> BankBatchEntity | None:
        stmt = select(BankBatchEntity).where(BankBatchEntity.batch_no == batch_no)
        found = self._session().scalars(stmt).one_or_none()
        return found if found is not None and found.batch_no == batch_no else None

    def lock(self, batch_no: str) -> BankBatchEntity | None:
        """The batch, its row locked until the transaction ends; a sender locks it before its
        items, and nothing else locks it."""
        stmt = select(BankBatchEntity).where(BankBatchEntity.batch_no == batch_no)
        found = self._session().scalars(stmt.with_for_update()).one_or_none()
        return found if found is not None and found.batch_no == batch_no else None

    def items(self, batch_no: str, *, lock: bool = False) -> list[BankOrderEntity]:
        """The batch's items in the order they were written (locked, in id order, if asked)."""
        stmt = (
            select(BankOrderEntity)
            .where(BankOrderEntity.batch_no == batch_no)
            .order_by(BankOrderEntity.id)
        )
        if lock:
            stmt = stmt.with_for_update()
        return [i for i in self._session().scalars(stmt) if i.batch_no == batch_no]

    def items_of_ref(self, ref_type: str, ref_ids: list[int], order_type: str):
        """Every item serving these business legs, oldest first."""
        stmt = (
            select(BankOrderEntity)
            .where(
                BankOrderEntity.order_type == order_type,
                BankOrderEntity.ref_type == ref_type,
                BankOrderEntity.ref_id.in_(ref_ids),
            )
            .order_by(BankOrderEntity.id)
        )
        return list(self._session().scalars(stmt))
