"""Payment orders: money entering (recharge) or leaving (withdraw) through the depository."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.types import Identifier, Money, UtcDateTime, utcnow

ORDER_TYPES: tuple[str, ...] = ("RECHARGE", "WITHDRAW")
#: PENDING until the depository answers; then SUCCESS or FAILED, never changed again, except
#: that a withdrawal's SUCCESS becomes REVERSED when the receiving bank returns the money (退单).
ORDER_STATUSES: tuple[str, ...] = ("PENDING", "SUCCESS", "FAILED", "REVERSED")


class PaymentOrderEntity(Base):
    __tablename__ = "payment_order"
    __table_args__ = (
        UniqueConstraint("order_no"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(sql_in("type", ORDER_TYPES), name="type"),
        CheckConstraint(sql_in("status", ORDER_STATUSES), name="status"),
        Index("ix_payment_order_member_id_id", "member_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_no: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    type: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    request_no: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    gateway_ref: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The bound card a withdrawal pays out to; NULL for recharges.
    card_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("bank_card.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class PaymentOrderRepository:
    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: PaymentOrderEntity) -> PaymentOrderEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def get(self, order_id: int) -> PaymentOrderEntity | None:
        return self._session().get(PaymentOrderEntity, order_id)

    def by_order_no(self, order_no: str) -> PaymentOrderEntity | None:
        stmt = select(PaymentOrderEntity).where(PaymentOrderEntity.order_no == order_no)
        return self._session().scalars(stmt).one_or_none()

    def pending_to_card(self, card_id: int) -> bool:
        """Whether a PENDING order (a withdrawal the depository has not finished) names the
        card."""
        stmt = select(PaymentOrderEntity.id).where(
            PaymentOrderEntity.card_id == card_id, PaymentOrderEntity.status == "PENDING"
        )
        return self._session().scalars(stmt.limit(1)).first() is not None

    def of_member(
        self, member_id: int, *, offset: int, limit: int
    ) -> tuple[list[PaymentOrderEntity], int]:
        """One page of a member's orders, newest first, and the total."""
        session = self._session()
        where = PaymentOrderEntity.member_id == member_id
        total = session.scalar(select(func.count()).select_from(PaymentOrderEntity).where(where))
        rows = session.scalars(
            select(PaymentOrderEntity)
            .where(where)
            .order_by(PaymentOrderEntity.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total or 0)
