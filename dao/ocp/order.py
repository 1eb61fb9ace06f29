"""Bank orders: every operation the depository bank performs for the platform, under the
platform's immutable order number, and where it stands.

CREATED (written with the business change that needs it) -> SENT (committed just before the
bank is called) -> ACCEPTED (the bank took it and will notify) -> SUCCEEDED | FAILED; UNKNOWN
when the bank's answer was missing or could not be trusted, until a query settles it; and
SUCCEEDED -> REVERSED for a withdrawal the receiving bank returned (退单).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, row_count, sql_in
from dao.types import Identifier, Money, UtcDateTime, utcnow

#: The order types the platform sends; DISBURSE and REPAY are batch items (a bank_batch row
#: submits them; docs/depository-protocol.md), drawing a DISBURSE from an investment's FREEZE;
#: FUND and TRANSFER move money into and out of the platform's own account.
BANK_ORDER_TYPES: tuple[str, ...] = (
    "OPEN_ACCOUNT",
    "RECHARGE",
    "WITHDRAW",
    "FREEZE",
    "UNFREEZE",
    "DISBURSE",
    "REPAY",
    "FUND",
    "TRANSFER",
)
BANK_ORDER_STATUSES: tuple[str, ...] = (
    "CREATED",
    "SENT",
    "ACCEPTED",
    "SUCCEEDED",
    "FAILED",
    "UNKNOWN",
    "REVERSED",
)
#: Statuses the bank has finished with (REVERSED follows SUCCEEDED and is final too).
FINAL_STATUSES: tuple[str, ...] = ("SUCCEEDED", "FAILED", "REVERSED")
#: Statuses still waiting for the bank.
OPEN_STATUSES: tuple[str, ...] = ("CREATED", "SENT", "ACCEPTED", "UNKNOWN")
#: Open statuses a query may settle (CREATED was never sent).
QUERIED_STATUSES: tuple[str, ...] = ("SENT", "ACCEPTED", "UNKNOWN")
#: The order types an operator may re-issue once the bank FAILED them (a batch item whose
#: attempts are used up, a release): the business leg is still the platform's to finish.
REISSUABLE_TYPES: tuple[str, ...] = ("DISBURSE", "REPAY", "UNFREEZE")


class BankOrderEntity(Base):
    """One order at the bank for one business leg (``ref_type``, ``ref_id``: a payment order,
    a member's account opening, ...). ``order_no`` never changes: every retry sends it again."""

    __tablename__ = "bank_order"
    __table_args__ = (
        UniqueConstraint("order_no"),
        CheckConstraint(sql_in("order_type", BANK_ORDER_TYPES), name="order_type"),
        CheckConstraint(sql_in("status", BANK_ORDER_STATUSES), name="status"),
        CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        CheckConstraint("fee IS NULL OR fee >= 0", name="fee_not_negative"),
        CheckConstraint(
            f"({sql_in('status', FINAL_STATUSES)}) = (finished_at IS NOT NULL)",
            name="finished",
        ),
        CheckConstraint("query_count >= 0 AND send_count >= 0", name="counts"),
        CheckConstraint(
            "(batch_no IS NULL) OR (principal >= 0 AND interest >= 0 AND penalty >= 0"
            " AND service_fee >= 0 AND service_fee <= amount"
            " AND principal + interest + penalty = amount)",
            name="item_amounts",
        ),
        Index("ix_bank_order_batch_no", "batch_no"),
        Index("ix_bank_order_retry_of", "retry_of"),
        Index("ix_bank_order_ref", "ref_type", "ref_id"),
        Index("ix_bank_order_member_id_id", "member_id", "id"),
        # The query job's scan: open orders whose next query is due.
        Index("ix_bank_order_status_next_query_at", "status", "next_query_at"),
        Index("ix_bank_order_handed_to_reconciliation_at", "handed_to_reconciliation_at"),
        # Reconciliation's orders of a day (migration 0011).
        Index("ix_bank_order_finished_at", "finished_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # At most 32 of [A-Za-z0-9], unique at the bank forever (service/ocp/orders.py checks).
    order_no: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    order_type: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    ref_type: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    ref_id: Mapped[int] = mapped_column(IdType, nullable=False)
    # The member the order serves (a batch item's payer, a TRANSFER's payee); None for an order
    # of the platform's own account alone (FUND).
    member_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    # The member's account at the bank (the one the bank opened, for OPEN_ACCOUNT; a FUND's is
    # the platform's own).
    account_no: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    # The bound card the order names: a withdrawal pays out to it, an account opens with it.
    card_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("bank_card.id"), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    fee: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    bank_ref: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The bank's page where the member confirms a member-authorised order.
    authorize_url: Mapped[str | None] = mapped_column(Identifier(500), nullable=True)
    send_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    query_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_query_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_queried_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Since when no trustworthy answer is known (the first UNKNOWN).
    in_doubt_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # When it was still open after bank.doubt_age_seconds: reconciliation's and operators'.
    handed_to_reconciliation_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A batch item (DISBURSE, REPAY): its batch, the payee (``account_no`` is the payer), the
    # amount's breakdown (amount = principal + interest + penalty), the platform's service fee
    # the payee pays out of it, the FREEZE a DISBURSE draws from, and the FAILED item it
    # re-issues under this new number.
    batch_no: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    payee_account_no: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    principal: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    interest: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    penalty: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    service_fee: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    freeze_order_no: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    retry_of: Mapped[int | None] = mapped_column(IdType, ForeignKey("bank_order.id"), nullable=True)

    def __repr__(self) -> str:
        return f"BankOrderEntity(order_no={self.order_no!r}, status={self.status!r})"


class BankOrderRepository:
    """Bank order queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: BankOrderEntity) -> BankOrderEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def find(self, order_no: str) -> BankOrderEntity | None:
        return _exactly(order_no, self._session().scalars(_by_no(order_no)).one_or_none())

    def lock(self, order_no: str) -> BankOrderEntity | None:
        """The order, its row locked until the transaction ends (SELECT ... FOR UPDATE)."""
        stmt = _by_no(order_no).with_for_update()
        return _exactly(order_no, self._session().scalars(stmt).one_or_none())

    def latest_for(self, ref_type: str, ref_id: int) -> BankOrderEntity | None:
        """The newest order serving the business leg (``ref_type``, ``ref_id``)."""
        stmt = (
            select(BankOrderEntity)
            .where(BankOrderEntity.ref_type == ref_type, BankOrderEntity.ref_id == ref_id)
            .order_by(BankOrderEntity.id.desc())
            .limit(1)
        )
        return self._session().scalars(stmt).first()

    def due_for_query(self, now: datetime, limit: int) -> list[str]:
        """Numbers of open, sent orders whose next query is due, the longest waiting first."""
        stmt = (
            select(BankOrderEntity.order_no)
            .where(
                BankOrderEntity.status.in_(QUERIED_STATUSES),
                BankOrderEntity.next_query_at <= now,
            )
            .order_by(BankOrderEntity.next_query_at, BankOrderEntity.id)
            .limit(limit)
        )
        return list(self._session().scalars(stmt))

    def open_since(self, cutoff: datetime) -> list[BankOrderEntity]:
        """Open orders created at or before ``cutoff`` not yet handed to reconciliation."""
        stmt = select(BankOrderEntity).where(
            BankOrderEntity.status.in_(OPEN_STATUSES),
            BankOrderEntity.created_at <= cutoff,
            BankOrderEntity.handed_to_reconciliation_at.is_(None),
        )
        return list(self._session().scalars(stmt))

    def hand_to_reconciliation(self, order_id: int, now: datetime) -> bool:
        """Mark one order in doubt for reconciliation unless it finished or was marked
        meanwhile; whether it was marked."""
        stmt = (
            update(BankOrderEntity)
            .where(
                BankOrderEntity.id == order_id,
                BankOrderEntity.status.in_(OPEN_STATUSES),
                BankOrderEntity.handed_to_reconciliation_at.is_(None),
            )
            .values(handed_to_reconciliation_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return row_count(self._session(), stmt) == 1

    def reissue_of(self, order_id: int) -> BankOrderEntity | None:
        """The order that re-issues FAILED order ``order_id`` under a new number, if any."""
        stmt = select(BankOrderEntity).where(BankOrderEntity.retry_of == order_id)
        return self._session().scalars(stmt).first()

    def attempts(self, order: BankOrderEntity) -> int:
        """How many orders ``order`` and the ones it re-issues make (1 for a first one)."""
        count = 1
        while order.retry_of is not None:
            order = self._session().get(BankOrderEntity, order.retry_of)
            count += 1
        return count

    def leg_done(self, order: BankOrderEntity) -> BankOrderEntity | None:
        """The order of ``order``'s type that SUCCEEDED for its business leg, if one did."""
        stmt = select(BankOrderEntity).where(*_done_for(BankOrderEntity, order))
        return self._session().scalars(stmt).first()

    def count_in_doubt(self) -> int:
        """Open orders handed to reconciliation, and the orders waiting for a person
        (:func:`waits_for_a_person`): what operators must look at."""
        stmt = (
            select(func.count())
            .select_from(BankOrderEntity)
            .where(
                (
                    BankOrderEntity.handed_to_reconciliation_at.is_not(None)
                    & BankOrderEntity.status.in_(OPEN_STATUSES)
                )
                | waits_for_a_person()
            )
        )
        return int(self._session().scalar(stmt) or 0)


def waits_for_a_person():
    """The condition on BankOrderEntity of an order only a person can take further: one the
    bank FAILED, of a type an operator may re-issue (a batch item whose attempts are used up,
    so handed to reconciliation; a release), that no later order re-issues, for a business
    leg no order of its type has completed."""
    later, done = aliased(BankOrderEntity), aliased(BankOrderEntity)
    o = BankOrderEntity
    return (
        (o.status == "FAILED")
        & o.order_type.in_(REISSUABLE_TYPES)
        & (o.batch_no.is_(None) | o.handed_to_reconciliation_at.is_not(None))
        & ~exists().where(later.retry_of == o.id)
        & ~exists().where(*_done_for(done, o))
    )


def _done_for(done, order) -> tuple:
    """``done`` (BankOrderEntity or an alias) SUCCEEDED for ``order``'s business leg, in
    ``order``'s type (``order`` an entity, or the column's owner in a correlated query)."""
    return (
        done.order_type == order.order_type,
        done.ref_type == order.ref_type,
        done.ref_id == order.ref_id,
        done.status == "SUCCEEDED",
    )


def _by_no(order_no: str):
    return select(BankOrderEntity).where(BankOrderEntity.order_no == order_no)


def _exactly(order_no: str, found: BankOrderEntity | None) -> BankOrderEntity | None:
    """``found`` only when its number is ``order_no`` character for character: a collation
    that folds case would otherwise let "r1" find order "R1" (the bank's word for another
    order is never applied to ours)."""
    return found if found is not None and found.order_no == order_no else None
