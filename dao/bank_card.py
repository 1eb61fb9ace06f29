"""Bank cards members bind for withdrawals and for their depository account."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.types import Identifier, UtcDateTime, utcnow

CARD_STATUSES: tuple[str, ...] = ("BOUND", "UNBOUND")


class BankCardEntity(Base):
    """One card of one member. The number is kept as a keyed hash (unique among bound cards,
    NULL once unbound) and sealed for the depository (service/pii.py); ``last4`` is what
    responses show."""

    __tablename__ = "bank_card"
    __table_args__ = (
        CheckConstraint(sql_in("status", CARD_STATUSES), name="status"),
        CheckConstraint("(status = 'BOUND') = (card_hash IS NOT NULL)", name="hash_bound"),
        Index("ix_bank_card_member_id_status", "member_id", "status"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    card_hash: Mapped[str | None] = mapped_column(Identifier(64), unique=True, nullable=True)
    card_sealed: Mapped[str] = mapped_column(Identifier(255), nullable=False)
    last4: Mapped[str] = mapped_column(Identifier(4), nullable=False)
    bank_name: Mapped[str] = mapped_column(String(50), nullable=False)
    mobile_sealed: Mapped[str] = mapped_column(Identifier(255), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    unbound_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    def __repr__(self) -> str:  # never the number, not even sealed
        return f"BankCardEntity(id={self.id!r}, member_id={self.member_id!r}, {self.status})"


class BankCardRepository:
    """Bank card queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: BankCardEntity) -> BankCardEntity:
        """Stage a card and flush, so ``entity.id`` is set (and the UNIQUE hash checked)."""
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def get(self, card_id: int) -> BankCardEntity | None:
        return self._session().get(BankCardEntity, card_id)

    def lock(self, card_id: int) -> BankCardEntity | None:
        """The card with its row locked until the transaction ends (SELECT ... FOR UPDATE),
        re-read even when the session holds it, so the values are those under the lock."""
        return self._session().get(
            BankCardEntity, card_id, with_for_update=True, populate_existing=True
        )

    def bound_of(self, member_id: int) -> list[BankCardEntity]:
        """The member's bound cards, oldest first."""
        stmt = (
            select(BankCardEntity)
            .where(BankCardEntity.member_id == member_id, BankCardEntity.status == "BOUND")
            .order_by(BankCardEntity.id)
        )
        return list(self._session().scalars(stmt))

    def count_bound(self, member_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(BankCardEntity)
            .where(BankCardEntity.member_id == member_id, BankCardEntity.status == "BOUND")
        )
        return self._session().scalar(stmt) or 0

    def find_bound_by_hash(self, card_hash: str) -> BankCardEntity | None:
        stmt = select(BankCardEntity).where(BankCardEntity.card_hash == card_hash)
        return self._session().scalars(stmt).one_or_none()
