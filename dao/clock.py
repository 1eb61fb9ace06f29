"""The development clock's one row: how far the platform's business clock is set from the
wall clock (service/clock.py). Every web worker, job worker and command reads this row, so
moving the clock once moves it for all of them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base
from dao.types import UtcDateTime

#: The one row's id: the migration writes it, nothing inserts or deletes another.
ROW_ID = 1


class ClockEntity(Base):
    """``offset_us``: microseconds the business clock is ahead of the wall clock (negative:
    behind); 0 is the wall clock. ``changed_at``: when it was last set (wall clock)."""

    __tablename__ = "platform_clock"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    offset_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class ClockRepository:
    def __init__(self, session: Session):
        self.session = session

    def offset_us(self) -> int:
        found = self.session.scalar(select(ClockEntity.offset_us).where(ClockEntity.id == ROW_ID))
        return found or 0

    def set_offset_us(self, offset_us: int, now: datetime) -> None:
        self.session.execute(
            update(ClockEntity)
            .where(ClockEntity.id == ROW_ID)
            .values(offset_us=offset_us, changed_at=now)
        )

    def add_offset_us(self, delta_us: int, now: datetime) -> int:
        """Move the offset by ``delta_us`` in one statement (two commands at once add up);
        the offset after it."""
        self.session.execute(
            update(ClockEntity)
            .where(ClockEntity.id == ROW_ID)
            .values(offset_us=ClockEntity.offset_us + delta_us, changed_at=now)
        )
        return self.offset_us()
