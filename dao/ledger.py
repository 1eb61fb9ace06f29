"""Accounts and the double-entry ledger: postings and their entries.

Every account has two buckets, AVAILABLE and FROZEN, each a balance in integer fen. An entry
debits (D) or credits (C) one bucket of one account; a posting's entries balance (debits equal
credits). An account's normal side says which direction increases it, so every balance stays
>= 0: members' accounts, fee income and the owners' funding are credit-normal (the platform
owes them, or they paid in); the two mirrors of the money held at the depository bank (CLEARING
for the members' sub-accounts, PLATFORM_FUNDS for the platform's own account there), marketing
and compensation expense and the bank's fees are debit-normal.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.util import identity_key

from dao.base import (
    MYSQL_TABLE_ARGS,
    Base,
    IdType,
    inserted_id,
    sql_in,
    table_of,
)
from dao.bulk import CHUNK, case_on_id, driver_form, placeholders, run_sql
from dao.types import Identifier, Money, UtcDateTime, utcnow

BUCKETS: tuple[str, ...] = ("AVAILABLE", "FROZEN")
DIRECTIONS: tuple[str, ...] = ("D", "C")
#: The platform's own accounts and their normal sides (created by migrations 0003, 0014 and
#: 0016).
PLATFORM_ACCOUNTS: dict[str, str] = {
    "CLEARING": "D",
    "FEE_INCOME": "C",
    "MARKETING_EXPENSE": "D",
    "BANK_FEES": "D",
    "PLATFORM_FUNDS": "D",
    "OWNER_FUNDING": "C",
    "COMPENSATION_EXPENSE": "D",
}


class AccountEntity(Base):
    """A member's account (one a member) or one of the platform's own accounts."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("available >= 0 AND frozen >= 0", name="balances_not_negative"),
        CheckConstraint(sql_in("normal_side", DIRECTIONS), name="normal_side"),
        CheckConstraint(
            "(member_id IS NOT NULL AND code IS NULL) OR (member_id IS NULL AND code IS NOT NULL)",
            name="owner",
        ),
        UniqueConstraint("member_id"),
        UniqueConstraint("code"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    code: Mapped[str | None] = mapped_column(Identifier(32), nullable=True)
    normal_side: Mapped[str] = mapped_column(Identifier(1), nullable=False)
    available: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    frozen: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class PostingEntity(Base):
    """One money movement: why (business type, what caused it) and who asked (request no)."""

    __tablename__ = "posting"
    __table_args__ = (
        Index("ix_posting_ref", "ref_type", "ref_id"),
        # Reconciliation reads the postings made since a day ended (service/reconciliation).
        Index("ix_posting_created_at", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    business_type: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    ref_type: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    ref_id: Mapped[int] = mapped_column(IdType, nullable=False)
    request_no: Mapped[str | None] = mapped_column(Identifier(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)


class EntryEntity(Base):
    """One side of a posting on one bucket of one account; amount is always positive."""

    __tablename__ = "posting_entry"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(sql_in("bucket", BUCKETS), name="bucket"),
        CheckConstraint(sql_in("direction", DIRECTIONS), name="direction"),
        Index("ix_posting_entry_account_id_id", "account_id", "id"),
        Index("ix_posting_entry_posting_id", "posting_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    posting_id: Mapped[int] = mapped_column(IdType, ForeignKey("posting.id"), nullable=False)
    account_id: Mapped[int] = mapped_column(IdType, ForeignKey("account.id"), nullable=False)
    bucket: Mapped[str] = mapped_column(Identifier(9), nullable=False)
    direction: Mapped[str] = mapped_column(Identifier(1), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)


# Built once: every money movement runs them.
_INSERT_POSTING = insert(table_of(PostingEntity))
_INSERT_POSTINGS = _INSERT_POSTING.returning(
    table_of(PostingEntity).c.id, sort_by_parameter_order=True
)
_INSERT_ENTRY = insert(table_of(EntryEntity))
_MEMBER_ACCOUNTS = select(AccountEntity)
_MEMBER_ACCOUNT = _MEMBER_ACCOUNTS.where(AccountEntity.member_id == bindparam("member_id"))
_MEMBER_ACCOUNT_LOCKED = _MEMBER_ACCOUNT.with_for_update().execution_options(populate_existing=True)
# Many at once, built once (``members``, ``ids``: lists), not for every posting: locked in
# account-id order.
_MEMBERS_ACCOUNTS_LOCKED = (
    _MEMBER_ACCOUNTS.where(AccountEntity.member_id.in_(bindparam("members", expanding=True)))
    .order_by(AccountEntity.id)
    .with_for_update()
    .execution_options(populate_existing=True)
)
_BALANCES_LOCKED = (
    select(AccountEntity.id, AccountEntity.available, AccountEntity.frozen)
    .where(AccountEntity.id.in_(bindparam("ids", expanding=True)))
    .order_by(AccountEntity.id)
    .with_for_update()
)


class LedgerRepository:
    """Ledger reads and writes on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add_account(self, entity: AccountEntity) -> AccountEntity:
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def account(self, account_id: int) -> AccountEntity | None:
        return self._session().get(AccountEntity, account_id)

    def account_of_member(self, member_id: int, *, lock: bool = False) -> AccountEntity | None:
        """The member's account; with ``lock``, its row locked (SELECT ... FOR UPDATE; a no-op
        on SQLite, whose writers are serialised) until the transaction ends."""
        stmt = _MEMBER_ACCOUNT_LOCKED if lock else _MEMBER_ACCOUNT
        return self._session().scalars(stmt, {"member_id": member_id}).one_or_none()

    def accounts_of_members(self, member_ids: Collection[int]) -> dict[int, AccountEntity]:
        """Member id -> account of ``member_ids``, their rows locked in account-id order (one
        SELECT ... FOR UPDATE) until the transaction ends, their balances read as locked."""
        members = {"members": list(member_ids)}
        return {a.member_id: a for a in self._session().scalars(_MEMBERS_ACCOUNTS_LOCKED, members)}

    def platform_account(self, code: str) -> AccountEntity:
        stmt = select(AccountEntity).where(AccountEntity.code == code)
        return self._session().scalars(stmt).one()

    def balances_for_update(self, account_ids: list[int]) -> dict[int, tuple[Decimal, Decimal]]:
        """Account id -> (available, frozen) of ``account_ids`` (sorted), their rows locked in
        id order: ``CHUNK`` ids per SELECT ... FOR UPDATE, chunks in ascending order."""
        session = self._session()
        balances: dict[int, tuple[Decimal, Decimal]] = {}
        for start in range(0, len(account_ids), CHUNK):
            chunk = {"ids": list(account_ids[start : start + CHUNK])}
            balances.update(
                (i, (available, frozen))
                for i, available, frozen in session.execute(_BALANCES_LOCKED, chunk)
            )
        return balances

    def change_balances(self, deltas: dict[int, dict[str, Decimal]]) -> bool:
        """Add to each account's buckets its deltas (account id -> bucket -> delta), in
        account-id order, ``CHUNK`` accounts per UPDATE (a CASE on the id per bucket changed).
        Each UPDATE is conditional: it changes a row only if no bucket of it goes below zero;
        False when an UPDATE matched fewer rows than it named (what it and any earlier one
        changed stays in the transaction: the caller refuses the whole). Loaded accounts'
        balances are expired, so a later read loads them again."""
        session, a = self._session(), AccountEntity
        money, stamp = driver_form(session, a.available), driver_form(session, a.updated_at)
        now = stamp(utcnow())
        account_ids = sorted(deltas)
        for start in range(0, len(account_ids), CHUNK):
            ids = account_ids[start : start + CHUNK]
            changes, params, guards, guard_params = ["updated_at = ?"], [now], [], []
            for bucket, column in (("AVAILABLE", "available"), ("FROZEN", "frozen")):
                moved = {i: deltas[i][bucket] for i in ids if deltas[i].get(bucket)}
                if not moved:
                    continue
                cased, cased_params = case_on_id({i: money(d) for i, d in moved.items()}, "0")
                changes.append(f"{column} = {column} + {cased}")
                params += cased_params
                if any(d < 0 for d in moved.values()):
                    guards.append(f" AND {column} + {cased} >= 0")
                    guard_params += cased_params
            sql = (  # names and placeholders only in the text; every value is a parameter
                f"UPDATE account SET {', '.join(changes)} "  # noqa: S608
                f"WHERE id IN ({placeholders(len(ids))}){''.join(guards)}"
            )
            if run_sql(session, sql, [*params, *ids, *guard_params]) != len(ids):
                return False
        for i in account_ids:
            loaded = session.identity_map.get(identity_key(a, i))
            if loaded is not None:
                session.expire(loaded, ["available", "frozen", "updated_at"])
        return True

    def add_postings(self, postings: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        """Postings and their entries (column name -> value each, the entries without
        ``posting_id``) by Core INSERTs, not loaded into the session: the postings by one
        INSERT returning their ids in order (one row per statement where the engine cannot
        return them from a multi-row INSERT), the entries of all in one multi-row INSERT."""
        session = self._session()
        if len(postings) == 1:
            ids = [inserted_id(session, _INSERT_POSTING, postings[0][0])]
        else:
            ids = list(session.scalars(_INSERT_POSTINGS, [p for p, _ in postings]))
        session.execute(
            _INSERT_ENTRY,
            [
                {**e, "posting_id": posting_id}
                for posting_id, (_, entries) in zip(ids, postings, strict=True)
                for e in entries
            ],
        )

    def entries_of_account(
        self, account_id: int, *, offset: int, limit: int
    ) -> tuple[list[tuple[EntryEntity, PostingEntity]], int]:
        """One page of an account's entries with their postings, newest first, and the total."""
        session = self._session()
        total = session.scalar(
            select(func.count())
            .select_from(EntryEntity)
            .where(EntryEntity.account_id == account_id)
        )
        rows = session.execute(
            select(EntryEntity, PostingEntity)
            .join(PostingEntity, PostingEntity.id == EntryEntity.posting_id)
            .where(EntryEntity.account_id == account_id)
            .order_by(EntryEntity.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        return [(e, p) for e, p in rows], int(total or 0)
