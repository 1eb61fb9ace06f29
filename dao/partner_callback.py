"""Callbacks to partner apps (signed webhooks) and every attempt to deliver them.

``partner_callback`` has one row per delivery: the event it tells (``event_id``, the same
for a replay, which is a new delivery of the same event), the app, the event type, the JSON
body exactly as sent (fixed when the event happened), its status (PENDING until the app
acknowledges it with a 2xx: ACKED; EXPIRED once the published schedule is spent), the
attempts made and when the next is due. ``partner_callback_attempt`` records each attempt:
when, the HTTP status (none after a timeout or a refused connection) and its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    Text,
    UniqueConstraint,
    delete,
    exists,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.types import Identifier, UtcDateTime

STATUSES: tuple[str, ...] = ("PENDING", "ACKED", "EXPIRED")
EVENT_TYPES: tuple[str, ...] = (
    "MEMBER_REGISTERED",
    "INVESTMENT_CONFIRMED",
    "LISTING_FULL",
    "REPAYMENT_PAID",
)


class PartnerCallbackEntity(Base):
    """One delivery of one event to one app."""

    __tablename__ = "partner_callback"
    __table_args__ = (
        CheckConstraint(sql_in("status", STATUSES), name="status"),
        CheckConstraint(sql_in("event_type", EVENT_TYPES), name="event_type"),
        CheckConstraint("attempts >= 0", name="attempts"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(Identifier(32), nullable=False, index=True)
    app_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("partner_app.id"), nullable=False, index=True
    )
    event_type: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    replay_of: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("partner_callback.id"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class PartnerCallbackAttemptEntity(Base):
    """One attempt to deliver a callback."""

    __tablename__ = "partner_callback_attempt"
    __table_args__ = (UniqueConstraint("callback_id", "number"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    callback_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("partner_callback.id"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str] = mapped_column(Identifier(32), nullable=False)


class PartnerCallbackRepository:
    """Callbacks and their attempts on the current transaction's session."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity):
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def get(self, callback_id: int, *, lock: bool = False) -> PartnerCallbackEntity | None:
        stmt = select(PartnerCallbackEntity).where(PartnerCallbackEntity.id == callback_id)
        if lock:
            stmt = stmt.with_for_update()
        return self._session().scalars(stmt).one_or_none()

    def of_app(
        self, app_pk: int, status: str | None, *, offset: int, limit: int
    ) -> tuple[list[PartnerCallbackEntity], int]:
        stmt = select(PartnerCallbackEntity).where(PartnerCallbackEntity.app_id == app_pk)
        if status is not None:
            stmt = stmt.where(PartnerCallbackEntity.status == status)
        session = self._session()
        total = session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = session.scalars(
            stmt.order_by(PartnerCallbackEntity.id.desc()).offset(offset).limit(limit)
        ).all()
        return list(rows), int(total or 0)

    def attempts(self, callback_ids: list[int]) -> list[PartnerCallbackAttemptEntity]:
        if not callback_ids:
            return []
        stmt = (
            select(PartnerCallbackAttemptEntity)
            .where(PartnerCallbackAttemptEntity.callback_id.in_(callback_ids))
            .order_by(PartnerCallbackAttemptEntity.callback_id, PartnerCallbackAttemptEntity.number)
        )
        return list(self._session().scalars(stmt))

    def purge_finished(self, statuses: tuple[str, ...], before: datetime, limit: int) -> int:
        """Delete up to ``limit`` callbacks in ``statuses`` finished before ``before``, oldest
        first, with their attempts and their replays (a replay names the first delivery, so
        it goes with it; one still to finish, or finished later, keeps it); how many."""
        replay = aliased(PartnerCallbackEntity)
        done = PartnerCallbackEntity.status.in_(statuses) & (
            PartnerCallbackEntity.finished_at < before
        )
        kept_replay = exists().where(
            replay.replay_of == PartnerCallbackEntity.id,
            ~(replay.status.in_(statuses) & (replay.finished_at < before)),
        )
        session = self._session()
        ids = list(
            session.scalars(
                select(PartnerCallbackEntity.id)
                .where(done, ~kept_replay)
                .order_by(PartnerCallbackEntity.id)
                .limit(limit)
            )
        )
        if not ids:
            return 0
        replays = list(
            session.scalars(
                select(PartnerCallbackEntity.id).where(
                    PartnerCallbackEntity.replay_of.in_(ids),
                    PartnerCallbackEntity.id.not_in(ids),
                )
            )
        )
        gone = ids + replays
        session.execute(
            delete(PartnerCallbackAttemptEntity).where(
                PartnerCallbackAttemptEntity.callback_id.in_(gone)
            )
        )
        # Replays first: each names the delivery it repeats.
        session.execute(
            delete(PartnerCallbackEntity).where(
                PartnerCallbackEntity.id.in_(gone), PartnerCallbackEntity.replay_of.is_not(None)
            )
        )
        session.execute(delete(PartnerCallbackEntity).where(PartnerCallbackEntity.id.in_(gone)))
        return len(gone)
