"""Member messages (会员消息): what the platform tells a member, and whether they read it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, func, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, inserted_id, row_count, sql_in, table_of
from dao.types import Identifier, UtcDateTime, utcnow

#: What a message is about: money invested, lent out, repaid, recharged or withdrawn (PAYMENT),
#: or the platform itself.
MESSAGE_CATEGORIES: tuple[str, ...] = (
    "INVESTMENT",
    "DISBURSEMENT",
    "REPAYMENT",
    "SYSTEM",
    "PAYMENT",
)


class MessageEntity(Base):
    """One message to one member; ``read_at`` is NULL until the member reads it."""

    __tablename__ = "member_message"
    __table_args__ = (
        CheckConstraint(sql_in("category", MESSAGE_CATEGORIES), name="category"),
        # A member's messages newest first (paging), and their unread ones (the count).
        Index("ix_member_message_member_id_id", "member_id", "id"),
        Index("ix_member_message_member_id_read_at", "member_id", "read_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    category: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    # In Chinese; in English too (NULL in messages written before there was English).
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    body: Mapped[str] = mapped_column(String(1000), nullable=False)
    title_en: Mapped[str | None] = mapped_column(String(100), nullable=True)
    body_en: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # What the message is about (e.g. "investment", 42); NULL for a message about nothing.
    ref_type: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    ref_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)


_INSERT = insert(table_of(MessageEntity))


class MessageRepository:
    """Message queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def insert(self, row: dict[str, Any]) -> int:
        """One message (column name -> value) by a Core INSERT, not loaded: no unit of work to
        flush for a row nobody reads back in the transaction that writes it; its id."""
        return inserted_id(self._session(), _INSERT, row)

    def insert_all(self, rows: list[dict[str, Any]]) -> None:
        """Messages (column name -> value each) in one multi-row INSERT, not loaded."""
        self._session().execute(insert(MessageEntity), rows)

    def get(self, message_id: int) -> MessageEntity | None:
        return self._session().get(MessageEntity, message_id)

    def page_of_member(
        self, member_id: int, *, unread_only: bool, offset: int, limit: int
    ) -> tuple[list[MessageEntity], int]:
        """One page of a member's messages (only the unread ones, when asked), newest first,
        and the total."""
        conditions = [MessageEntity.member_id == member_id]
        if unread_only:
            conditions.append(MessageEntity.read_at.is_(None))
        session = self._session()
        total = session.scalar(select(func.count()).select_from(MessageEntity).where(*conditions))
        rows = session.scalars(
            select(MessageEntity)
            .where(*conditions)
            .order_by(MessageEntity.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total or 0)

    def unread_count(self, member_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(MessageEntity)
            .where(MessageEntity.member_id == member_id, MessageEntity.read_at.is_(None))
        )
        return int(self._session().scalar(stmt) or 0)

    def mark_all_read(self, member_id: int, now: datetime) -> int:
        """Mark every unread message of ``member_id`` read at ``now``; how many it marked."""
        stmt = (
            update(MessageEntity)
            .where(MessageEntity.member_id == member_id, MessageEntity.read_at.is_(None))
            .values(read_at=now)
            .execution_options(synchronize_session="fetch")
        )
        return row_count(self._session(), stmt)
