"""The transactional outbox: jobs written in the same transaction as the change they follow,
handed to the job engine after the commit (service/jobs.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, case, delete, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, row_count
from dao.types import Identifier, UtcDateTime

#: The longest last_error kept (the exception's type and a short reason; never a payload).
ERROR_LENGTH = 255


class OutboxEntity(Base):
    """One job to hand over: ``payload`` is the job's keyword arguments as JSON. It is due at
    ``available_at``; ``dispatched_at`` is set once the engine has it. ``attempts`` counts
    hand-overs tried, ``last_error`` says why the last one failed, and ``failed_at`` is set
    when the sweeper gave up on it (operators look there)."""

    __tablename__ = "job_outbox"
    __table_args__ = (
        # The sweeper's question: rows not handed over, oldest due first.
        Index("ix_job_outbox_dispatched_at_available_at", "dispatched_at", "available_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OutboxRepository:
    """Outbox rows on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: OutboxEntity) -> OutboxEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def get(self, row_id: int) -> OutboxEntity | None:
        return self._session().get(OutboxEntity, row_id)

    def due(self, now: datetime, created_before: datetime, limit: int) -> list[OutboxEntity]:
        """Rows not handed over nor given up on, due by `now` and created before
        `created_before`, the oldest due first."""
        stmt = (
            select(OutboxEntity)
            .where(
                OutboxEntity.dispatched_at.is_(None),
                OutboxEntity.failed_at.is_(None),
                OutboxEntity.available_at <= now,
                OutboxEntity.created_at < created_before,
            )
            .order_by(OutboxEntity.available_at, OutboxEntity.id)
            .limit(limit)
        )
        return list(self._session().scalars(stmt))

    def mark_dispatched(self, row_id: int, now: datetime) -> bool:
        """Record a hand-over; False when the row was already marked (or is gone)."""
        statement = (
            update(OutboxEntity)
            .where(OutboxEntity.id == row_id, OutboxEntity.dispatched_at.is_(None))
            .values(dispatched_at=now, attempts=OutboxEntity.attempts + 1, last_error=None)
        )
        return row_count(self._session(), statement) == 1

    def record_failure(self, row_id: int, error: str, now: datetime, max_attempts: int) -> int:
        """Count a failed hand-over; once `max_attempts` are used up the row is given up on
        (failed_at). Returns the attempts made so far (0 when the row is gone or dispatched)."""
        row = self._session().get(OutboxEntity, row_id, with_for_update=True)
        if row is None or row.dispatched_at is not None:
            return 0
        row.attempts += 1
        row.last_error = error[:ERROR_LENGTH]
        if row.attempts >= max_attempts:
            row.failed_at = now
        self._session().flush()
        return row.attempts

    def failed(self, limit: int) -> list[OutboxEntity]:
        """Rows the sweeper gave up on, the oldest first."""
        stmt = (
            select(OutboxEntity)
            .where(OutboxEntity.failed_at.is_not(None), OutboxEntity.dispatched_at.is_(None))
            .order_by(OutboxEntity.id)
            .limit(limit)
        )
        return list(self._session().scalars(stmt))

    def count_waiting(self) -> int:
        """Rows not handed over yet and not given up on (due or not)."""
        stmt = select(func.count()).where(
            OutboxEntity.dispatched_at.is_(None), OutboxEntity.failed_at.is_(None)
        )
        return self._session().scalar(stmt.select_from(OutboxEntity)) or 0

    def backlog(self) -> tuple[int, datetime | None, int]:
        """(rows waiting to be handed over, the earliest due time among them, rows given up
        on), in one query over the rows not handed over (the index's first column): the
        metrics' question at every scrape."""
        waiting = OutboxEntity.failed_at.is_(None)
        stmt = select(
            func.count(case((waiting, 1))),
            func.min(case((waiting, OutboxEntity.available_at))),
            func.count(case((OutboxEntity.failed_at.is_not(None), 1))),
        ).where(OutboxEntity.dispatched_at.is_(None))
        count, oldest, given_up = self._session().execute(stmt).one()
        return int(count or 0), oldest, int(given_up or 0)

    def retry_failed(self) -> int:
        """Give every given-up row a fresh set of attempts; how many."""
        statement = (
            update(OutboxEntity)
            .where(OutboxEntity.failed_at.is_not(None), OutboxEntity.dispatched_at.is_(None))
            .values(failed_at=None, attempts=0)
        )
        return row_count(self._session(), statement)

    def purge_dispatched(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` rows handed over before `before`; how many."""
        ids = list(
            self._session().scalars(
                select(OutboxEntity.id)
                .where(OutboxEntity.dispatched_at < before)
                .order_by(OutboxEntity.id)
                .limit(limit)
            )
        )
        if not ids:
            return 0
        self._session().execute(delete(OutboxEntity).where(OutboxEntity.id.in_(ids)))
        return len(ids)
