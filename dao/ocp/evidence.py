"""Evidence of every exchange with the depository bank, and the notifications it sent.

Evidence is kept as it happened, first write wins: one row per (order, kind, attempt key),
the attempt key being the send or query attempt's number or the notification's notifyId, so
a job that runs twice or a notification delivered again never replaces what was recorded.
Bodies are the exact text exchanged, except that personal data in them (names, ID, card and
mobile numbers) is masked; the exact bytes of such a message are kept sealed beside it
(service/ocp/evidence.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, sql_in
from dao.types import Identifier, Money, UtcDateTime, utcnow

#: REQUEST/RESPONSE: an order submitted and the bank's answer; QUERY/QUERY_RESULT: a status
#: query and its answer; NOTIFICATION: what the bank notified; ACK: the platform's answer.
EVIDENCE_KINDS: tuple[str, ...] = (
    "REQUEST",
    "RESPONSE",
    "NOTIFICATION",
    "QUERY",
    "QUERY_RESULT",
    "ACK",
)
#: What the platform made of a notification the first time it arrived: APPLIED (it moved the
#: order), CONFIRMED (it agreed with what was applied already), CONFLICT (it disagreed: kept,
#: alerted, acknowledged, nothing changed), REFUSED (never acknowledged: another amount or type).
NOTIFICATION_OUTCOMES: tuple[str, ...] = ("APPLIED", "CONFIRMED", "CONFLICT", "REFUSED")
SIGNATURE_STATUSES: tuple[str, ...] = ("VALID", "INVALID", "MISSING", "UNKNOWN_KEY")


class BankEvidenceEntity(Base):
    __tablename__ = "bank_evidence"
    __table_args__ = (
        UniqueConstraint("order_id", "kind", "attempt_key"),
        CheckConstraint(sql_in("kind", EVIDENCE_KINDS), name="kind"),
        CheckConstraint(
            f"signature IS NULL OR {sql_in('signature', SIGNATURE_STATUSES)}", name="signature"
        ),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(IdType, ForeignKey("bank_order.id"), nullable=False)
    kind: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    # The send or query attempt ("1", "2", ...) or the notification's notifyId.
    attempt_key: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    # The message as text (UTF-8), personal data masked; NULL when nothing was received.
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The exact bytes of a message that carried personal data, sealed (AES-256-GCM).
    body_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The signature's check on what was received; NULL for what the platform sent.
    signature: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    key_id: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    # What went wrong (timeout, connection, HTTP 5xx, unreadable): never personal data.
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # When it was sent or received.
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)


class BankNotificationEntity(Base):
    """A notification event, by the bank's notifyId: accepted once."""

    __tablename__ = "bank_notification"
    __table_args__ = (
        UniqueConstraint("notify_id"),
        CheckConstraint(sql_in("outcome", NOTIFICATION_OUTCOMES), name="outcome"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    notify_id: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    order_id: Mapped[int] = mapped_column(IdType, ForeignKey("bank_order.id"), nullable=False)
    # What the bank said: SUCCEEDED, FAILED or REVERSED (as it said it), and the amount.
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    # SHA-256 of the event's content without its timestamp: a retry of the event must match.
    digest: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    outcome: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class EvidenceRepository:
    """Evidence and notifications on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add_once(self, entity: BankEvidenceEntity) -> bool:
        """Record ``entity`` unless the order already has evidence of that kind and key (the
        first write wins); whether it was recorded. Callers hold the order's row lock, so no
        two transactions add the same key at once."""
        exists = select(BankEvidenceEntity.id).where(
            BankEvidenceEntity.order_id == entity.order_id,
            BankEvidenceEntity.kind == entity.kind,
            BankEvidenceEntity.attempt_key == entity.attempt_key,
        )
        session = self._session()
        if session.scalars(exists).first() is not None:
            return False
        session.add(entity)
        session.flush()
        return True

    def of_order(self, order_id: int) -> list[BankEvidenceEntity]:
        stmt = (
            select(BankEvidenceEntity)
            .where(BankEvidenceEntity.order_id == order_id)
            .order_by(BankEvidenceEntity.id)
        )
        return list(self._session().scalars(stmt))

    def notification(self, notify_id: str) -> BankNotificationEntity | None:
        stmt = select(BankNotificationEntity).where(BankNotificationEntity.notify_id == notify_id)
        found = self._session().scalars(stmt).one_or_none()
        return found if found is not None and found.notify_id == notify_id else None

    def add_notification(self, entity: BankNotificationEntity) -> BankNotificationEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity
