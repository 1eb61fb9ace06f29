"""Request records: a caller's request number, claimed once, with what it produced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType
from dao.types import Identifier, UtcDateTime, utcnow


class RequestRecordEntity(Base):
    """``request_no`` is unique per ``scope`` (the caller); ``fingerprint`` is a hash of the
    request's content, so a repeat with other content can be refused; ``ref_type``/``ref_id``
    name the outcome (an investment, an order, ...), filled in by the same transaction."""

    __tablename__ = "request_record"
    __table_args__ = (UniqueConstraint("scope", "request_no"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    request_no: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    operation: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    fingerprint: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    ref_type: Mapped[str | None] = mapped_column(Identifier(24), nullable=True)
    ref_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)


class RequestRecordRepository:
    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def find(self, scope: str, request_no: str) -> RequestRecordEntity | None:
        stmt = select(RequestRecordEntity).where(
            RequestRecordEntity.scope == scope, RequestRecordEntity.request_no == request_no
        )
        return self._session().scalars(stmt).one_or_none()

    def add(self, entity: RequestRecordEntity) -> RequestRecordEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity
