"""The loyalty module's tables.

``member_level`` has one row per member whose level was evaluated: the level, the amount it
was evaluated on (what the member had invested, by the configured basis) and when it was
evaluated and last changed. A member without a row is at the lowest level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, func, select, union
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType
from dao.p2p.investment import InvestmentEntity
from dao.types import Identifier, Money, UtcDateTime

#: Investments whose money is the member's stake in a listing: frozen for it, lent, or repaid.
INVESTED: tuple[str, ...] = ("FROZEN", "ACTIVE", "SETTLED")


class MemberLevelEntity(Base):
    """A member's level as last evaluated."""

    __tablename__ = "member_level"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), primary_key=True)
    level: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    invested: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class LevelRepository:
    """Levels on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def get(self, member_id: int, *, lock: bool = False) -> MemberLevelEntity | None:
        return self._session().get(MemberLevelEntity, member_id, with_for_update=lock)

    def add(self, entity: MemberLevelEntity) -> MemberLevelEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def invested(self, member_id: int, since: datetime | None) -> Decimal:
        """What ``member_id`` has invested (INVESTED investments), made at or after ``since``
        when given."""
        stmt = select(func.coalesce(func.sum(InvestmentEntity.amount), 0)).where(
            InvestmentEntity.investor_id == member_id,
            InvestmentEntity.status.in_(INVESTED),
        )
        if since is not None:
            stmt = stmt.where(InvestmentEntity.created_at >= since)
        return self._session().scalar(stmt)  # typed Money: Decimal yuan, 0.00 when none

    def members_to_evaluate(self, after: int, limit: int) -> Sequence[int]:
        """Members with a level or an investment, by id after ``after``, ``limit`` at most."""
        ids = union(
            select(MemberLevelEntity.member_id.label("id")),
            select(InvestmentEntity.investor_id.label("id")),
        ).subquery()
        stmt = select(ids.c.id).where(ids.c.id > after).order_by(ids.c.id).limit(limit)
        return list(self._session().scalars(stmt))
