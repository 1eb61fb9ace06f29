"""Loan table and its repository (the p2p business module's data)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Connection,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Text,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, row_count, sql_in, table_of
from dao.types import FixedPoint, Identifier, Money, UtcDateTime, utcnow

REPAYMENT_METHODS: tuple[str, ...] = (
    "EQUAL_INSTALLMENT",
    "EQUAL_PRINCIPAL",
    "MONTHLY_INTEREST",
    "BULLET",
)
LOAN_STATUSES: tuple[str, ...] = (
    "PENDING_AUDIT",
    "REJECTED",
    "RAISING",
    "FULL",
    "REPAYING",
    "SETTLED",
    "FAILED",
    "CANCELLED",
    "DISBURSING",
)
RATE_SCALE = 4
"""annual_rate is a yearly percentage with 4 places: 12.5 (%) is stored as 125000."""
MAX_ANNUAL_RATE = Decimal("36.0000")

_MAX_RATE_UNITS = int(MAX_ANNUAL_RATE.scaleb(RATE_SCALE))


class LoanEntity(Base):
    """A loan listing from publication through audit, raising and repayment.

    Amounts are Decimal yuan (stored as integer fen); ``version`` is the
    optimistic-lock counter that SQLAlchemy checks on every UPDATE.
    """

    __tablename__ = "loan"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            f"annual_rate > 0 AND annual_rate <= {_MAX_RATE_UNITS}", name="annual_rate_range"
        ),
        CheckConstraint("term_months >= 1 AND term_months <= 60", name="term_months_range"),
        CheckConstraint(sql_in("repayment_method", REPAYMENT_METHODS), name="repayment_method"),
        CheckConstraint("min_invest > 0 AND min_invest <= amount", name="min_invest_range"),
        CheckConstraint(
            "max_invest_per_investor IS NULL OR "
            "(max_invest_per_investor >= min_invest AND max_invest_per_investor <= amount)",
            name="max_invest_range",
        ),
        CheckConstraint("raise_days >= 1 AND raise_days <= 365", name="raise_days_range"),
        CheckConstraint("raised >= 0 AND raised <= amount", name="raised_range"),
        CheckConstraint("fee IS NULL OR (fee >= 0 AND fee <= amount)", name="fee_range"),
        CheckConstraint(sql_in("status", LOAN_STATUSES), name="status"),
        Index("ix_loan_status_id", "status", "id"),
        Index("ix_loan_borrower_id", "borrower_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    borrower_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    annual_rate: Mapped[Decimal] = mapped_column(FixedPoint(RATE_SCALE), nullable=False)
    term_months: Mapped[int] = mapped_column(Integer, nullable=False)
    repayment_method: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    min_invest: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    max_invest_per_investor: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    raise_days: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    reject_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    raise_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    published_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    audited_by: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    audited_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    raised: Mapped[Decimal] = mapped_column(
        Money(), nullable=False, default=Decimal(0), server_default=text("0")
    )
    fee: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    disbursed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (declared by SQLAlchemy)

    def __repr__(self) -> str:
        return f"LoanEntity(id={self.id!r}, status={self.status!r}, version={self.version!r})"


_LOANS = table_of(LoanEntity)
_AMOUNT = bindparam("taken", type_=Money())
_NOW = bindparam("now", type_=UtcDateTime())
#: LoanRepository.take_raised's UPDATE, built once (every investment runs it), on the table:
#: no ORM object is synchronised with it.
_TAKE_RAISED = (
    update(_LOANS)
    .where(
        _LOANS.c.id == bindparam("loan_id"),
        _LOANS.c.status == "RAISING",
        _LOANS.c.raised + _AMOUNT < _LOANS.c.amount,
        _LOANS.c.min_invest <= _AMOUNT,
        or_(_LOANS.c.raise_deadline.is_(None), _LOANS.c.raise_deadline > _NOW),
    )
    .values(
        {
            _LOANS.c.raised: _LOANS.c.raised + _AMOUNT,
            _LOANS.c.version: _LOANS.c.version + 1,
            _LOANS.c.updated_at: _NOW,
        }
    )
    .with_hint("FORCE INDEX (PRIMARY)", _LOANS, "mysql")
)
#: One loan's row by id, every column (service/transaction.py TransactionManager.read).
_ROW = select(_LOANS).where(_LOANS.c.id == bindparam("id"))
_ROWS = select(_LOANS).where(_LOANS.c.id.in_(bindparam("ids", expanding=True)))


class LoanRepository:
    """Loan queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def row(self, connection: Connection, loan_id: int) -> Row | None:
        """The loan's row on `connection` (Core, no entity): its columns by the entity's
        attribute names, typed as the entity's (Decimal yuan, UTC datetimes); None when
        there is none."""
        return connection.execute(_ROW, {"id": loan_id}).first()

    def add(self, entity: LoanEntity) -> LoanEntity:
        """Stage a new loan and flush, so ``entity.id`` and ``entity.version`` are set."""
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def get(self, loan_id: int) -> LoanEntity | None:
        return self._session().get(LoanEntity, loan_id)

    def get_for_update(self, loan_id: int) -> LoanEntity | None:
        """Load the loan with a row lock (SELECT ... FOR UPDATE; a no-op on SQLite).

        The row is re-read even if the session already holds the object, so the
        caller sees the values as of the lock, not a stale copy.
        """
        stmt = (
            select(LoanEntity)
            .where(LoanEntity.id == loan_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self._session().scalars(stmt).one_or_none()

    def take_raised(self, loan_id: int, amount: Decimal, now: datetime) -> bool:
        """Add ``amount`` to a RAISING listing's ``raised`` in one conditional UPDATE, the
        only statement an investment runs on the listing's row (so its row lock is held for
        that statement and the commit, service/p2p/investing.py); False, and nothing
        changed, unless the listing raises still (RAISING, before its deadline), ``amount``
        is at least its minimum and some of the amount remains after it. Taking the last fen
        is not done here: it is the caller's, under the row lock, with the listing's move to
        FULL. ``version`` is bumped as the ORM's optimistic lock would.

        On MariaDB the row is found by its primary key (FORCE INDEX): left to itself the
        optimizer reads it through ix_loan_status_id, locking that index's entry before the
        row, the reverse of a transaction that locks the row (SELECT ... FOR UPDATE) and then
        changes its status, so the two could deadlock."""
        params = {"loan_id": loan_id, "taken": amount, "now": now}
        return row_count(self._session(), _TAKE_RAISED, params) == 1

    def expired_raising(self, now: datetime) -> list[int]:
        """Ids of the RAISING listings whose raise deadline is at or before ``now``, in id
        order (read without locks: the caller locks and re-checks each)."""
        stmt = (
            select(LoanEntity.id)
            .where(LoanEntity.status == "RAISING", LoanEntity.raise_deadline <= now)
            .order_by(LoanEntity.id)
        )
        return list(self._session().scalars(stmt))

    def search(self, **filters: Any) -> tuple[list[LoanEntity], int]:
        """One page of loans matching every given filter (:func:`_search`'s), newest id
        first, and the total."""
        count, page, params = _search(LoanEntity, **filters)
        session = self._session()
        total = session.scalar(count, params)
        return list(session.scalars(page, params).all()), int(total or 0)

    def rows(self, connection: Connection, loan_ids: Collection[int]) -> list[Row]:
        """The rows of those of `loan_ids` that exist, as :meth:`row` reads one, in no
        particular order."""
        if not loan_ids:
            return []
        return list(connection.execute(_ROWS, {"ids": list(loan_ids)}).all())

    def search_rows(self, connection: Connection, **filters: Any) -> tuple[list[Row], int]:
        """:meth:`search` on `connection` (service/transaction.py TransactionManager.read):
        the page's rows as :meth:`row` reads one, and the total."""
        count, page, params = _search(_LOANS, **filters)
        total = connection.scalar(count, params)
        return list(connection.execute(page, params).all()), int(total or 0)

    def search_ids(self, connection: Connection, **filters: Any) -> tuple[list[int], int]:
        """:meth:`search` on `connection` (service/transaction.py TransactionManager.read):
        the ids of the page's loans, in its order, and the total."""
        count, page, params = _search(_LOANS.c.id, **filters)
        total = connection.scalar(count, params)
        return list(connection.scalars(page, params).all()), int(total or 0)


#: The filters of a search, each compared with its column: (filter, column, comparison).
_FILTERS: tuple[tuple[str, Any, Callable[[Any, Any], ColumnElement[bool]]], ...] = (
    ("status", LoanEntity.status, operator.eq),
    ("repayment_method", LoanEntity.repayment_method, operator.eq),
    ("min_rate", LoanEntity.annual_rate, operator.ge),
    ("max_rate", LoanEntity.annual_rate, operator.le),
    ("min_term", LoanEntity.term_months, operator.ge),
    ("max_term", LoanEntity.term_months, operator.le),
)


def _search(
    what: Any,
    *,
    visible: Collection[str] | None = None,
    or_borrower: int | None = None,
    status: str | None = None,
    repayment_method: str | None = None,
    min_rate: Decimal | None = None,
    max_rate: Decimal | None = None,
    min_term: int | None = None,
    max_term: int | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[Select, Select, dict[str, Any]]:
    """The count and the page of a search (LoanRepository.search) over `what`, the entity,
    its table for rows, or the id column for the ids alone, and the values of their bound
    parameters.

    ``visible`` limits the loans to these statuses, or (with ``or_borrower``) to those and that
    borrower's own; None: every loan. Rate bounds are inclusive Decimal percentages (12.5
    means 12.5%)."""
    if offset < 0:
        raise ValueError("offset must be >= 0")
    if limit < 1:
        raise ValueError("limit must be >= 1")
    given = {
        "status": status,
        "repayment_method": repayment_method,
        "min_rate": min_rate,
        "max_rate": max_rate,
        "min_term": min_term,
        "max_term": max_term,
    }
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if visible is not None:
        params["visible"] = list(visible)
        if or_borrower is not None:
            params["or_borrower"] = or_borrower
    count, page = _statements(what, visible is not None, "or_borrower" in params, tuple(params))
    return count, page, params | {"offset": offset, "limit": limit}


@functools.cache  # at most 3 targets x 2 x 2 x 2**6 filter shapes
def _statements(
    what: Any, limited: bool, or_borrower: bool, filters: tuple[str, ...]
) -> tuple[Select, Select]:
    """The count and the page of a search of this shape, built once: every value a bound
    parameter (``visible`` expanding), so SQLAlchemy finds the statement compiled already."""
    conditions: list[ColumnElement[bool]] = []
    if limited:
        shown: ColumnElement[bool] = LoanEntity.status.in_(bindparam("visible", expanding=True))
        if or_borrower:
            shown = or_(shown, LoanEntity.borrower_id == bindparam("or_borrower"))
        conditions.append(shown)
    conditions += [
        compare(column, bindparam(name)) for name, column, compare in _FILTERS if name in filters
    ]
    count = select(func.count()).select_from(LoanEntity).where(*conditions)
    page = select(what).where(*conditions).order_by(LoanEntity.id.desc())
    return count, page.offset(bindparam("offset")).limit(bindparam("limit"))
