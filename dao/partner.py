"""Partner apps (渠道: the companies whose servers call the partner open API), their keys, and
the audit trail of every change an operator made to them.

``partner_app`` has one row per app: its public ``app_id`` (what a partner sends with every
call; the surrogate ``id`` never leaves the platform), a unique name, the partner's contact,
the callback URL and the callback events it subscribed to, the scopes granted
(space-separated, sorted), its rate limit (a token bucket: ``rate_per_minute`` tokens a
minute, at most ``burst`` at once) and its status (ACTIVE or SUSPENDED).

``partner_key`` has one row per key an app signs with, ``key_id`` unique within the app, so
several can be active at once and a partner rotates without a refused request. An RSA key
holds the partner's public key (PEM); an HMAC key holds its secret sealed
(service/secretbox.py), bound to the app and the key id. A revoked key stays, with who revoked
it and when, so what it signed stays attributable.

``partner_app_event`` is the audit trail: one row per change (REGISTER, SUSPEND, RESUME,
ISSUE_KEY, REVOKE_KEY, SET_CALLBACKS), with the operator, the time, the key it concerned,
the operator's reason and what the change set (JSON, never a secret).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.types import Identifier, UtcDateTime

APP_STATUSES: tuple[str, ...] = ("ACTIVE", "SUSPENDED")
KEY_ALGORITHMS: tuple[str, ...] = ("RSA_SHA256", "HMAC_SHA256")
KEY_STATUSES: tuple[str, ...] = ("ACTIVE", "REVOKED")
EVENT_ACTIONS: tuple[str, ...] = (
    "REGISTER",
    "SUSPEND",
    "RESUME",
    "ISSUE_KEY",
    "REVOKE_KEY",
    "SET_CALLBACKS",
)
#: Column widths the service checks before writing.
MAX_NAME = 100
MAX_CONTACT = 200
MAX_CALLBACK_URL = 500
MAX_SCOPES = 500
MAX_CALLBACK_EVENTS = 200
MAX_REASON = 2000
MAX_PUBLIC_KEY = 4000


class PartnerAppEntity(Base):
    """A partner app registered by an operator."""

    __tablename__ = "partner_app"
    __table_args__ = (
        UniqueConstraint("app_id"),
        UniqueConstraint("name"),
        CheckConstraint(sql_in("status", APP_STATUSES), name="status"),
        CheckConstraint("rate_per_minute >= 1 AND burst >= 1", name="rate"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    name: Mapped[str] = mapped_column(Identifier(MAX_NAME), nullable=False)
    contact: Mapped[str] = mapped_column(String(MAX_CONTACT), nullable=False)
    callback_url: Mapped[str | None] = mapped_column(String(MAX_CALLBACK_URL), nullable=True)
    #: The callback event types the app subscribed to (space-separated, sorted; "" none).
    callback_events: Mapped[str] = mapped_column(
        Identifier(MAX_CALLBACK_EVENTS), nullable=False, default=""
    )
    scopes: Mapped[str] = mapped_column(Identifier(MAX_SCOPES), nullable=False)
    rate_per_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    burst: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    created_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class PartnerKeyEntity(Base):
    """A key an app signs its requests with: an RSA public key or a sealed HMAC secret."""

    __tablename__ = "partner_key"
    __table_args__ = (
        UniqueConstraint("app_id", "key_id"),
        CheckConstraint(sql_in("algorithm", KEY_ALGORITHMS), name="algorithm"),
        CheckConstraint(sql_in("status", KEY_STATUSES), name="status"),
        CheckConstraint(
            "(algorithm = 'RSA_SHA256' AND public_key IS NOT NULL AND secret_sealed IS NULL)"
            " OR (algorithm = 'HMAC_SHA256' AND public_key IS NULL AND secret_sealed IS NOT NULL)",
            name="material",
        ),
        CheckConstraint(
            "(status = 'REVOKED') = (revoked_at IS NOT NULL AND revoked_by IS NOT NULL)",
            name="revoked",
        ),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(IdType, ForeignKey("partner_app.id"), nullable=False)
    key_id: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    algorithm: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_sealed: Mapped[str | None] = mapped_column(Identifier(255), nullable=True)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    created_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    revoked_by: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class PartnerAppEventEntity(Base):
    """One change an operator made to an app or its keys."""

    __tablename__ = "partner_app_event"
    __table_args__ = (
        CheckConstraint(sql_in("action", EVENT_ACTIONS), name="action"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("partner_app.id"), nullable=False, index=True
    )
    action: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    key_id: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    operator_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(MAX_REASON), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class PartnerRepository:
    """Apps, keys and events on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity):
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def app(self, app_id: str, *, lock: bool = False) -> PartnerAppEntity | None:
        stmt = select(PartnerAppEntity).where(PartnerAppEntity.app_id == app_id)
        if lock:
            stmt = stmt.with_for_update()
        return self._session().scalars(stmt).one_or_none()

    def by_pk(self, pk: int) -> PartnerAppEntity:
        """The app of a row that refers to it by its surrogate id."""
        return self._session().get(PartnerAppEntity, pk)

    def active_apps(self) -> list[PartnerAppEntity]:
        stmt = select(PartnerAppEntity).where(PartnerAppEntity.status == "ACTIVE")
        return list(self._session().scalars(stmt.order_by(PartnerAppEntity.id)))

    def app_named(self, name: str) -> PartnerAppEntity | None:
        stmt = select(PartnerAppEntity).where(PartnerAppEntity.name == name)
        return self._session().scalars(stmt).one_or_none()

    def apps(
        self, status: str | None, *, offset: int, limit: int
    ) -> tuple[list[PartnerAppEntity], int]:
        stmt = select(PartnerAppEntity)
        if status is not None:
            stmt = stmt.where(PartnerAppEntity.status == status)
        return _page(self._session(), stmt, (PartnerAppEntity.id,), offset, limit)

    def keys(self, app: PartnerAppEntity) -> list[PartnerKeyEntity]:
        stmt = (
            select(PartnerKeyEntity)
            .where(PartnerKeyEntity.app_id == app.id)
            .order_by(PartnerKeyEntity.id)
        )
        return list(self._session().scalars(stmt))

    def key(self, app: PartnerAppEntity, key_id: str) -> PartnerKeyEntity | None:
        stmt = select(PartnerKeyEntity).where(
            PartnerKeyEntity.app_id == app.id, PartnerKeyEntity.key_id == key_id
        )
        return self._session().scalars(stmt).one_or_none()

    def events(
        self, app: PartnerAppEntity, *, offset: int, limit: int
    ) -> tuple[list[PartnerAppEventEntity], int]:
        stmt = select(PartnerAppEventEntity).where(PartnerAppEventEntity.app_id == app.id)
        return _page(self._session(), stmt, (PartnerAppEventEntity.id.desc(),), offset, limit)


def _page(session: Session, stmt, order_by, offset: int, limit: int):
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(*order_by).offset(offset).limit(limit)).all()
    return list(rows), int(total or 0)
