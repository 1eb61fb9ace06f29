"""Request records: a caller's request number, claimed once, with what it produced."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from sqlalchemy import Row, UniqueConstraint, bindparam, insert, select, tuple_, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, inserted_id, table_of
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


#: The statements of a claim, built once: every money-moving call runs them.
_RECORDS = table_of(RequestRecordEntity)
_FIND = select(
    _RECORDS.c.id, _RECORDS.c.operation, _RECORDS.c.fingerprint, _RECORDS.c.ref_id
).where(_RECORDS.c.scope == bindparam("scope"), _RECORDS.c.request_no == bindparam("request_no"))
#: The same for many (scope, request number) pairs at once (``keys``: a list of pairs).
_FIND_MANY = select(
    _RECORDS.c.scope,
    _RECORDS.c.request_no,
    _RECORDS.c.id,
    _RECORDS.c.operation,
    _RECORDS.c.fingerprint,
    _RECORDS.c.ref_id,
).where(tuple_(_RECORDS.c.scope, _RECORDS.c.request_no).in_(bindparam("keys", expanding=True)))
_INSERT = insert(_RECORDS)
_SET_REF = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("record_id"))
    .values(ref_type=bindparam("ref_type"), ref_id=bindparam("ref_id"))
)


class RequestRecordRepository:
    """Request records by Core statements on the transaction's session: a record is written
    and completed in the same transaction, never loaded as an entity there."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def find(self, scope: str, request_no: str) -> Row | None:
        """The record's id, operation, fingerprint and ref_id, if the scope has the number."""
        params = {"scope": scope, "request_no": request_no}
        return self._session().execute(_FIND, params).one_or_none()

    def find_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Row]:
        """(scope, request number) -> the record's id, operation, fingerprint and ref_id, of
        those of ``keys`` that have one, in one query."""
        found = self._session().execute(_FIND_MANY, {"keys": list(keys)})
        return {(row.scope, row.request_no): row for row in found}

    def insert_done(self, rows: Sequence[dict]) -> None:
        """New records that have their outcome already (scope, request_no, operation,
        fingerprint, ref_type, ref_id each), in one multi-row INSERT. IntegrityError when a
        scope has one of the numbers already."""
        self._session().execute(_INSERT, list(rows))

    def insert(self, scope: str, request_no: str, operation: str, fingerprint: str) -> int:
        """A new record without an outcome yet; its id. IntegrityError when the scope has the
        request number already (the unique key, held until the transaction ends)."""
        row = {
            "scope": scope,
            "request_no": request_no,
            "operation": operation,
            "fingerprint": fingerprint,
        }
        return inserted_id(self._session(), _INSERT, row)

    def set_ref(self, record_id: int, ref_type: str, ref_id: int) -> None:
        params = {"record_id": record_id, "ref_type": ref_type, "ref_id": ref_id}
        self._session().execute(_SET_REF, params)
