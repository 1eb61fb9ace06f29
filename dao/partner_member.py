"""Members a partner app brought, and the partner's idempotency keys.

``partner_member`` has one row per member registered through a partner app (joint
registration): the member is attributed to that app for good (the attribution report counts
them), and the same row authorises the app to read the member's investments and receipts
until the member revokes it (``revoked_at``). A member is attributed to one app at most.

``partner_request`` keeps each Idempotency-Key a partner app sent with a call that writes:
unique per (app, key), with the operation, the SHA-256 of the signed request (method, path,
query and body digest) and the first answer (JSON), written in the transaction of the write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Text, UniqueConstraint, bindparam, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, table_of
from dao.p2p import InvestmentEntity
from dao.types import Identifier, UtcDateTime


class PartnerMemberEntity(Base):
    """A member a partner app registered; authorises the app while ``revoked_at`` is NULL."""

    __tablename__ = "partner_member"
    __table_args__ = (UniqueConstraint("member_id"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("partner_app.id"), nullable=False, index=True
    )
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class PartnerRequestEntity(Base):
    """An Idempotency-Key an app sent with a call that writes, and the call's first answer."""

    __tablename__ = "partner_request"
    __table_args__ = (UniqueConstraint("app_id", "idempotency_key"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(IdType, ForeignKey("partner_app.id"), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    operation: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    request_sha256: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    answer: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


#: PartnerMemberRepository.authorising's query, built once: every investment runs it.
_MEMBERS = table_of(PartnerMemberEntity)
_AUTHORISING = select(_MEMBERS.c.member_id, _MEMBERS.c.app_id).where(
    _MEMBERS.c.member_id.in_(bindparam("member_ids", expanding=True)),
    _MEMBERS.c.revoked_at.is_(None),
)


class PartnerMemberRepository:
    """Attributions and idempotency keys on the current transaction's session."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity):
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def of_member(self, member_id: int, *, lock: bool = False) -> PartnerMemberEntity | None:
        stmt = select(PartnerMemberEntity).where(PartnerMemberEntity.member_id == member_id)
        if lock:
            stmt = stmt.with_for_update()
        return self._session().scalars(stmt).one_or_none()

    def authorised(self, app_pk: int, member_id: int) -> bool:
        row = self.of_member(member_id)
        return row is not None and row.app_id == app_pk and row.revoked_at is None

    def authorising(self, member_ids: list[int]) -> dict[int, int]:
        """member id -> the app (surrogate id) each of ``member_ids`` authorises, if any."""
        if not member_ids:
            return {}
        rows = self._session().execute(_AUTHORISING, {"member_ids": member_ids})
        return {member: app for member, app in rows}

    def registered_between(self, app_pk: int, start: datetime, end: datetime) -> list[datetime]:
        """When each member the app registered in [start, end) was registered."""
        stmt = select(PartnerMemberEntity.created_at).where(
            PartnerMemberEntity.app_id == app_pk,
            PartnerMemberEntity.created_at >= start,
            PartnerMemberEntity.created_at < end,
        )
        return list(self._session().scalars(stmt))

    def investments_between(
        self, app_pk: int, statuses: tuple[str, ...], start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """When and how much each investment in ``statuses`` made in [start, end) by a
        member the app registered (revoked or not: attribution is for good)."""
        stmt = (
            select(InvestmentEntity.created_at, InvestmentEntity.amount)
            .join(
                PartnerMemberEntity, PartnerMemberEntity.member_id == InvestmentEntity.investor_id
            )
            .where(
                PartnerMemberEntity.app_id == app_pk,
                InvestmentEntity.status.in_(statuses),
                InvestmentEntity.created_at >= start,
                InvestmentEntity.created_at < end,
            )
        )
        return [(at, amount) for at, amount in self._session().execute(stmt)]

    def request(self, app_pk: int, key: str) -> PartnerRequestEntity | None:
        stmt = select(PartnerRequestEntity).where(
            PartnerRequestEntity.app_id == app_pk, PartnerRequestEntity.idempotency_key == key
        )
        return self._session().scalars(stmt).one_or_none()

    def purge_requests(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` Idempotency-Keys stored before ``before``, oldest first;
        how many."""
        session = self._session()
        ids = list(
            session.scalars(
                select(PartnerRequestEntity.id)
                .where(PartnerRequestEntity.created_at < before)
                .order_by(PartnerRequestEntity.id)
                .limit(limit)
            )
        )
        if ids:
            session.execute(delete(PartnerRequestEntity).where(PartnerRequestEntity.id.in_(ids)))
        return len(ids)
