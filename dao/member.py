"""Member table (investors, borrowers, operators) and its repository."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, bindparam, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, row_count, sql_in
from dao.types import Identifier, UtcDateTime, utcnow

MEMBER_ROLES: tuple[str, ...] = ("INVESTOR", "BORROWER", "OPERATOR")
MEMBER_STATUSES: tuple[str, ...] = ("ACTIVE", "DISABLED")


class MemberEntity(Base):
    """One registered member; ``mobile`` is the login name and unique."""

    __tablename__ = "member"
    __table_args__ = (
        CheckConstraint(sql_in("role", MEMBER_ROLES), name="role"),
        CheckConstraint(sql_in("status", MEMBER_STATUSES), name="status"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    mobile: Mapped[str] = mapped_column(Identifier(20), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(Identifier(255), nullable=False)
    role: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    status: Mapped[str] = mapped_column(
        Identifier(16), nullable=False, default="ACTIVE", server_default="ACTIVE"
    )
    # The SOAP API secret (WS-Security PasswordDigest), sealed with security.secret_key
    # (service/wsse.py); NULL = none issued.
    api_secret_sealed: Mapped[str | None] = mapped_column(Identifier(255), nullable=True)
    # Promotion: the code others register with, and who invited this member.
    invite_code: Mapped[str | None] = mapped_column(Identifier(8), unique=True, nullable=True)
    referrer_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("member.id"), index=True, nullable=True
    )
    # Real-name identity (service/pii.py): the name and ID number sealed for display, the ID
    # number's keyed hash for uniqueness; NULL until verified.
    real_name_sealed: Mapped[str | None] = mapped_column(Identifier(255), nullable=True)
    id_number_hash: Mapped[str | None] = mapped_column(Identifier(64), unique=True, nullable=True)
    id_number_sealed: Mapped[str | None] = mapped_column(Identifier(255), nullable=True)
    identity_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The member's account at the depository bank; NULL until opened.
    fund_account_no: Mapped[str | None] = mapped_column(Identifier(64), unique=True, nullable=True)
    fund_account_opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )

    def __repr__(self) -> str:
        return f"MemberEntity(id={self.id!r}, role={self.role!r}, status={self.status!r})"


#: Members by id, many at once (``ids``: a list), built once rather than for every call.
_MANY = select(MemberEntity).where(MemberEntity.id.in_(bindparam("ids", expanding=True)))

_REPLACE_PASSWORD_HASH = (
    update(MemberEntity)
    .where(MemberEntity.id == bindparam("member_id"))
    .where(MemberEntity.password_hash == bindparam("old"))
    .values(password_hash=bindparam("new"))
    .execution_options(synchronize_session=False)
)


class MemberRepository:
    """Member queries on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity: MemberEntity) -> MemberEntity:
        """Stage a new member and flush, so ``entity.id`` is set (and UNIQUE checked)."""
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    def get(self, member_id: int) -> MemberEntity | None:
        return self._session().get(MemberEntity, member_id)

    def many(self, member_ids: Collection[int]) -> dict[int, MemberEntity]:
        """Member id -> member of those of ``member_ids`` that exist, in one query."""
        found = self._session().scalars(_MANY, {"ids": list(member_ids)})
        return {m.id: m for m in found}

    def lock(self, member_id: int) -> MemberEntity | None:
        """The member, its row locked until the transaction ends (SELECT ... FOR UPDATE)."""
        stmt = select(MemberEntity).where(MemberEntity.id == member_id).with_for_update()
        return self._session().scalars(stmt).one_or_none()

    def replace_password_hash(self, member_id: int, old: str, new: str) -> bool:
        """Set the member's password hash to ``new`` if it is still ``old``, in one
        conditional UPDATE; False when it changed meanwhile (then it is kept)."""
        params = {"member_id": member_id, "old": old, "new": new}
        return row_count(self._session(), _REPLACE_PASSWORD_HASH, params) == 1

    def find_by_mobile(self, mobile: str) -> MemberEntity | None:
        stmt = select(MemberEntity).where(MemberEntity.mobile == mobile)
        return self._session().scalars(stmt).one_or_none()

    def find_by_invite_code(self, invite_code: str) -> MemberEntity | None:
        stmt = select(MemberEntity).where(MemberEntity.invite_code == invite_code)
        return self._session().scalars(stmt).one_or_none()

    def find_by_id_number_hash(self, id_number_hash: str) -> MemberEntity | None:
        stmt = select(MemberEntity).where(MemberEntity.id_number_hash == id_number_hash)
        return self._session().scalars(stmt).one_or_none()

    def count_invitees(self, referrer_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(MemberEntity)
            .where(MemberEntity.referrer_id == referrer_id)
        )
        return self._session().scalar(stmt) or 0

    def invitees(
        self, referrer_id: int, *, offset: int, limit: int
    ) -> tuple[list[MemberEntity], int]:
        """The members `referrer_id` invited, newest first, and how many there are."""
        stmt = (
            select(MemberEntity)
            .where(MemberEntity.referrer_id == referrer_id)
            .order_by(MemberEntity.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(self._session().scalars(stmt)), self.count_invitees(referrer_id)
