"""The platform's own account at the bank: what moved money into it (FUND, the owners' funding)
and out of it to a member (TRANSFER), one row each, with the bank order that carries it.

PENDING until the depository says, then SUCCESS or FAILED, never changed again. A TRANSFER
names the member paid and why (MARKETING or COMPENSATION); a FUND names neither. The request
number is unique per scope (the caller), so a repeat finds the first row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.types import Identifier, Money, UtcDateTime, utcnow

TRANSFER_KINDS: tuple[str, ...] = ("FUND", "TRANSFER")
TRANSFER_STATUSES: tuple[str, ...] = ("PENDING", "SUCCESS", "FAILED")
#: Why the platform pays a member; each purpose is an expense account of its own.
TRANSFER_PURPOSES: tuple[str, ...] = ("MARKETING", "COMPENSATION")
#: platform_transfer.memo's and failure_reason's widths.
MAX_MEMO = 200
MAX_REASON = 200


class PlatformTransferEntity(Base):
    __tablename__ = "platform_transfer"
    __table_args__ = (
        UniqueConstraint("order_no"),
        UniqueConstraint("request_scope", "request_no"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(sql_in("kind", TRANSFER_KINDS), name="kind"),
        CheckConstraint(sql_in("status", TRANSFER_STATUSES), name="status"),
        CheckConstraint(
            f"purpose IS NULL OR {sql_in('purpose', TRANSFER_PURPOSES)}", name="purpose"
        ),
        # A TRANSFER pays a member for a purpose; a FUND is the platform's own.
        CheckConstraint(
            "(kind = 'TRANSFER') = (member_id IS NOT NULL AND purpose IS NOT NULL)", name="payee"
        ),
        CheckConstraint("(status = 'PENDING') = (finished_at IS NULL)", name="finished"),
        Index("ix_platform_transfer_member_id_id", "member_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # The bank order's number too: F… for a FUND, T… for a TRANSFER.
    order_no: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    kind: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    member_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    purpose: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    # Why, in the words the member is told (a TRANSFER's message) and operators read.
    memo: Mapped[str | None] = mapped_column(String(MAX_MEMO), nullable=True)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    failure_reason: Mapped[str | None] = mapped_column(String(MAX_REASON), nullable=True)
    gateway_ref: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    request_scope: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    request_no: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    # The operator who asked; None when a service of the platform did (marketing).
    requested_by: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The business type of a TRANSFER's posting at success, when the paying service names
    # one of its own (marketing's MKT_...); None: PLATFORM_TRANSFER.
    business_type: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)


class PlatformTransferRepository:
    """Platform transfers on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: PlatformTransferEntity) -> PlatformTransferEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def get(self, transfer_id: int) -> PlatformTransferEntity | None:
        return self._session().get(PlatformTransferEntity, transfer_id)

    def page(
        self,
        kind: str | None,
        status: str | None,
        member_id: int | None,
        *,
        offset: int,
        limit: int,
    ) -> tuple[list[PlatformTransferEntity], int]:
        """One page of transfers, newest first, and the total."""
        t = PlatformTransferEntity
        conditions = [
            column == value
            for column, value in ((t.kind, kind), (t.status, status), (t.member_id, member_id))
            if value is not None
        ]
        session = self._session()
        total = session.scalar(select(func.count()).select_from(t).where(*conditions))
        rows = session.scalars(
            select(t).where(*conditions).order_by(t.id.desc()).offset(offset).limit(limit)
        ).all()
        return list(rows), int(total or 0)
