"""The loyalty module's tables.

``member_level`` has one row per member whose level was evaluated: the level, the amount it
was evaluated on (what the member had invested, by the configured basis) and when it was
evaluated and last changed. A member without a row is at the lowest level.

``checkin`` has one row per member and business day (Asia/Shanghai), unique, so two check-ins
of one day count once whatever the workers: the streak it continues and the points it earned.

``point_entry`` is the points ledger: an entry earning points (CHECK_IN, INVEST) holds what of
them is still unspent (``remaining``) and when they expire; an entry taking points (REDEEM,
INVEST_REVERSAL) holds a negative number and nothing remaining. Spending takes from the earning
entries that expire first. Each (kind, reference) is written once. ``point_redemption`` is
what a member bought with points, one row per member and request number.

``experience_account`` is a member's experience gold (体验金): virtual money granted (one
``experience_grant`` row per source and reference) and invested in the experience product (one
``experience_investment`` row each, its interest paid as real money at maturity). It has no
link to any real account: nothing here is ever withdrawn, and invested never exceeds granted.

``referral_reward`` is what a referrer earns for an invitee's investment, unique per
(investment, referrer): ACCRUED when the investment is frozen, PAID when it is lent, REVERSED
when its money is given back before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    union,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.util import identity_key

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, row_count, sql_in, table_of
from dao.bulk import CHUNK, case_on_id, driver_form, placeholders, run_sql
from dao.p2p.investment import InvestmentEntity
from dao.types import FixedPoint, Identifier, Money, UtcDateTime

#: Investments whose money is the member's stake in a listing: frozen for it, lent, or repaid.
INVESTED: tuple[str, ...] = ("FROZEN", "ACTIVE", "SETTLED")
#: Points ledger entries: those earning points, and those taking them.
EARNING: tuple[str, ...] = ("CHECK_IN", "INVEST")
TAKING: tuple[str, ...] = ("REDEEM", "INVEST_REVERSAL")
GRANT_SOURCES: tuple[str, ...] = ("REGISTRATION", "COUPON")
EXPERIENCE_STATUSES: tuple[str, ...] = ("RUNNING", "PAID")
REWARD_STATUSES: tuple[str, ...] = ("ACCRUED", "PAID", "REVERSED")
#: The experience product's rate: a fraction with 4 places (0.0800 is 8% a year).
RATE_PLACES = 4


class MemberLevelEntity(Base):
    """A member's level as last evaluated."""

    __tablename__ = "member_level"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), primary_key=True)
    level: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    invested: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class CheckinEntity(Base):
    """One check-in: a member's business day, the streak it makes and the points it earned."""

    __tablename__ = "checkin"
    __table_args__ = (
        UniqueConstraint("member_id", "business_day"),
        CheckConstraint("streak >= 1 AND points >= 0", name="positive"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    business_day: Mapped[date] = mapped_column(Date, nullable=False)
    streak: Mapped[int] = mapped_column(Integer, nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class PointEntryEntity(Base):
    """One entry of a member's points ledger."""

    __tablename__ = "point_entry"
    __table_args__ = (
        UniqueConstraint("kind", "ref_id"),
        CheckConstraint(sql_in("kind", EARNING + TAKING), name="kind"),
        CheckConstraint(
            f"({sql_in('kind', EARNING)} AND points > 0 AND remaining >= 0"
            " AND remaining <= points AND expires_at IS NOT NULL)"
            f" OR ({sql_in('kind', TAKING)} AND points < 0 AND remaining = 0)",
            name="sign",
        ),
        Index("ix_point_entry_member_id_expires_at", "member_id", "expires_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    kind: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    #: What the entry is for: the check-in's, investment's or redemption's id.
    ref_id: Mapped[int] = mapped_column(IdType, nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    remaining: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class PointRedemptionEntity(Base):
    """Points a member spent on an item of the catalogue."""

    __tablename__ = "point_redemption"
    __table_args__ = (
        UniqueConstraint("member_id", "request_no"),
        CheckConstraint("points > 0", name="points"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    request_no: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    item: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    #: Marketing's coupon template the item issues.
    template_id: Mapped[int] = mapped_column(IdType, nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The coupon marketing issued for it.
    coupon_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class ExperienceAccountEntity(Base):
    """A member's experience gold: granted in all, and invested in all."""

    __tablename__ = "experience_account"
    __table_args__ = (
        CheckConstraint("invested >= 0 AND invested <= granted", name="within"),
        MYSQL_TABLE_ARGS,
    )

    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), primary_key=True)
    granted: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    invested: Mapped[Decimal] = mapped_column(Money(), nullable=False)


class ExperienceGrantEntity(Base):
    """Experience gold granted to a member, once per source and reference."""

    __tablename__ = "experience_grant"
    __table_args__ = (
        UniqueConstraint("source", "ref_id"),
        CheckConstraint(sql_in("source", GRANT_SOURCES), name="source"),
        CheckConstraint("amount > 0", name="amount"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    source: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    #: The registered member's id, or the EXPERIENCE coupon's.
    ref_id: Mapped[int] = mapped_column(IdType, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class ExperienceInvestmentEntity(Base):
    """Experience gold invested in the experience product; its interest is paid at maturity."""

    __tablename__ = "experience_investment"
    __table_args__ = (
        UniqueConstraint("member_id", "request_no"),
        CheckConstraint(sql_in("status", EXPERIENCE_STATUSES), name="status"),
        CheckConstraint("amount > 0 AND interest >= 0 AND term_days >= 1", name="amounts"),
        CheckConstraint("(status = 'PAID') = (paid_at IS NOT NULL)", name="paid"),
        Index("ix_experience_investment_status_matures_at", "status", "matures_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    request_no: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    annual_rate: Mapped[Decimal] = mapped_column(FixedPoint(RATE_PLACES), nullable=False)
    term_days: Mapped[int] = mapped_column(Integer, nullable=False)
    interest: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    matures_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ReferralRewardEntity(Base):
    """What a referrer earns for one investment of an invitee."""

    __tablename__ = "referral_reward"
    __table_args__ = (
        UniqueConstraint("investment_id", "referrer_id"),
        CheckConstraint(sql_in("status", REWARD_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_referral_reward_referrer_id_invitee_id", "referrer_id", "invitee_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    investment_id: Mapped[int] = mapped_column(IdType, ForeignKey("investment.id"), nullable=False)
    referrer_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    invitee_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


# The statements an investment runs (service/loyalty/): built once, bound per call.
_INVESTMENTS = table_of(InvestmentEntity)
_INVESTED = select(func.coalesce(func.sum(_INVESTMENTS.c.amount), 0)).where(
    _INVESTMENTS.c.investor_id == bindparam("member_id"),
    _INVESTMENTS.c.status.in_(INVESTED),
)
_INVESTED_SINCE = _INVESTED.where(_INVESTMENTS.c.created_at >= bindparam("since"))
# The same for many members at once (``members``: a list), built once rather than per call:
# every investment evaluates its investors' levels with them.
_INVESTED_BY = (
    select(_INVESTMENTS.c.investor_id, func.coalesce(func.sum(_INVESTMENTS.c.amount), 0))
    .where(
        _INVESTMENTS.c.investor_id.in_(bindparam("members", expanding=True)),
        _INVESTMENTS.c.status.in_(INVESTED),
    )
    .group_by(_INVESTMENTS.c.investor_id)
)
_INVESTED_BY_SINCE = _INVESTED_BY.where(_INVESTMENTS.c.created_at >= bindparam("since"))
_LEVELS = table_of(MemberLevelEntity)
_LEVEL_FOR_UPDATE = (
    select(_LEVELS.c.level).where(_LEVELS.c.member_id == bindparam("member_id")).with_for_update()
)
_LEVELS_FOR_UPDATE = (
    select(_LEVELS.c.member_id, _LEVELS.c.level)
    .where(_LEVELS.c.member_id.in_(bindparam("members", expanding=True)))
    .order_by(_LEVELS.c.member_id)
    .with_for_update()
)
_INSERT_LEVEL = insert(_LEVELS)
_RECORD_LEVEL = (
    update(_LEVELS)
    .where(_LEVELS.c.member_id == bindparam("of_member"))
    .values(invested=bindparam("total"), evaluated_at=bindparam("now"))
)
_CHANGE_LEVEL = _RECORD_LEVEL.values(level=bindparam("new_level"), changed_at=bindparam("now"))
_ENTRIES = table_of(PointEntryEntity)
_HAS_ENTRIES = select(_ENTRIES.c.ref_id).where(
    _ENTRIES.c.kind == bindparam("kind"),
    _ENTRIES.c.ref_id.in_(bindparam("ref_ids", expanding=True)),
)
_INSERT_ENTRY = insert(_ENTRIES)


class LevelRepository:
    """Levels on the current transaction's session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def get(self, member_id: int) -> MemberLevelEntity | None:
        return self._session().get(MemberLevelEntity, member_id)

    def level_for_update(self, member_id: int) -> str | None:
        """The member's recorded level, its row locked until the transaction ends; None when
        never evaluated."""
        return self._session().scalar(_LEVEL_FOR_UPDATE, {"member_id": member_id})

    def insert(self, member_id: int, level: str, invested: Decimal, now: datetime) -> None:
        """A first evaluation; IntegrityError when the member has one already."""
        row = {
            "member_id": member_id,
            "level": level,
            "invested": invested,
            "evaluated_at": now,
            "changed_at": now,
        }
        self._session().execute(_INSERT_LEVEL, row)

    def record(
        self, member_id: int, invested: Decimal, now: datetime, changed_to: str | None
    ) -> None:
        """An evaluation of a member who has a level row: ``invested`` and when, and the new
        level when it changed (``changed_at`` then). A copy loaded in the session is
        expired, so a later read loads it again."""
        session = self._session()
        params = {"of_member": member_id, "total": invested, "now": now}
        if changed_to is None:
            session.execute(_RECORD_LEVEL, params)
        else:
            session.execute(_CHANGE_LEVEL, {**params, "new_level": changed_to})
        loaded = session.identity_map.get(identity_key(MemberLevelEntity, member_id))
        if loaded is not None:
            session.expire(loaded)

    def levels_for_update(self, member_ids: Sequence[int]) -> dict[int, str]:
        """Member id -> recorded level of those of ``member_ids`` (sorted) that have one,
        their rows locked in member order until the transaction ends, ``CHUNK`` a query."""
        levels: dict[int, str] = {}
        for start in range(0, len(member_ids), CHUNK):
            chunk = {"members": list(member_ids[start : start + CHUNK])}
            rows = self._session().execute(_LEVELS_FOR_UPDATE, chunk)
            levels.update((m, level) for m, level in rows)
        return levels

    def record_all(self, invested: dict[int, Decimal], now: datetime) -> None:
        """``record`` without a change of level for each member of ``invested`` (member id
        -> what they invested), ``CHUNK`` members an UPDATE (a CASE on the member)."""
        session = self._session()
        money = driver_form(session, _LEVELS.c.invested)
        stamp = driver_form(session, _LEVELS.c.evaluated_at)(now)
        members = sorted(invested)
        for start in range(0, len(members), CHUNK):
            chunk = members[start : start + CHUNK]
            cased, params = case_on_id({m: money(invested[m]) for m in chunk}, column="member_id")
            sql = (  # names and placeholders only in the text; every value is a parameter
                f"UPDATE member_level SET invested = {cased}, evaluated_at = ? "  # noqa: S608
                f"WHERE member_id IN ({placeholders(len(chunk))})"
            )
            run_sql(session, sql, [*params, stamp, *chunk])
        for m in members:
            loaded = session.identity_map.get(identity_key(MemberLevelEntity, m))
            if loaded is not None:
                session.expire(loaded)

    def invested(self, member_id: int, since: datetime | None) -> Decimal:
        """What ``member_id`` has invested (INVESTED investments), made at or after ``since``
        when given."""
        if since is None:
            return self._session().scalar(_INVESTED, {"member_id": member_id})
        # typed Money: Decimal yuan, 0.00 when none
        return self._session().scalar(_INVESTED_SINCE, {"member_id": member_id, "since": since})

    def levels_of(self, member_ids: Collection[int]) -> dict[int, str]:
        """The recorded level of each of ``member_ids`` that has one."""
        stmt = select(MemberLevelEntity.member_id, MemberLevelEntity.level).where(
            MemberLevelEntity.member_id.in_(member_ids)
        )
        return {member_id: level for member_id, level in self._session().execute(stmt)}

    def invested_by(
        self, member_ids: Collection[int], since: datetime | None
    ) -> dict[int, Decimal]:
        """:meth:`invested` for each of ``member_ids`` in one query; 0.00 for one who has
        invested nothing."""
        params: dict[str, object] = {"members": list(member_ids)}
        stmt = _INVESTED_BY
        if since is not None:
            stmt, params["since"] = _INVESTED_BY_SINCE, since
        rows = self._session().execute(stmt, params)
        amounts = {m: amount for m, amount in rows}  # Decimal yuan
        return {m: amounts.get(m, Decimal("0.00")) for m in member_ids}

    def members_at(self, levels: Sequence[str], after: int, limit: int) -> list[tuple[int, str]]:
        """(member, level) of members at one of ``levels``, by id after ``after``."""
        stmt = (
            select(MemberLevelEntity.member_id, MemberLevelEntity.level)
            .where(MemberLevelEntity.level.in_(levels), MemberLevelEntity.member_id > after)
            .order_by(MemberLevelEntity.member_id)
            .limit(limit)
        )
        return [(member_id, level) for member_id, level in self._session().execute(stmt)]

    def members_to_evaluate(self, after: int, limit: int) -> Sequence[int]:
        """Members with a level or an investment, by id after ``after``, ``limit`` at most."""
        ids = union(
            select(MemberLevelEntity.member_id.label("id")),
            select(InvestmentEntity.investor_id.label("id")),
        ).subquery()
        stmt = select(ids.c.id).where(ids.c.id > after).order_by(ids.c.id).limit(limit)
        return list(self._session().scalars(stmt))


class LoyaltyRepository:
    """Check-ins, points, experience gold and referral rewards on the current transaction's
    session (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity):
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    # -- check-ins and points ----------------------------------------------------------
    def checkin(self, member_id: int, day: date) -> CheckinEntity | None:
        stmt = select(CheckinEntity).where(
            CheckinEntity.member_id == member_id, CheckinEntity.business_day == day
        )
        return self._session().scalars(stmt).one_or_none()

    def entry(self, kind: str, ref_id: int) -> PointEntryEntity | None:
        stmt = select(PointEntryEntity).where(
            PointEntryEntity.kind == kind, PointEntryEntity.ref_id == ref_id
        )
        return self._session().scalars(stmt).one_or_none()

    def entries_of(self, kind: str, ref_ids: Collection[int]) -> set[int]:
        """Which of ``ref_ids`` have an entry of ``kind``, in one query."""
        found = self._session().execute(_HAS_ENTRIES, {"kind": kind, "ref_ids": list(ref_ids)})
        return {ref_id for (ref_id,) in found}

    def insert_entries(self, rows: Sequence[dict]) -> None:
        """Entries (column name -> value each) by one Core INSERT, not loaded into the
        session."""
        self._session().execute(_INSERT_ENTRY, list(rows))

    def spendable(self, member_id: int, now: datetime) -> list[PointEntryEntity]:
        """The member's unexpired earning entries with points left, those expiring first
        first, locked: spending takes from them in this order."""
        stmt = (
            select(PointEntryEntity)
            .where(
                PointEntryEntity.member_id == member_id,
                PointEntryEntity.remaining > 0,
                PointEntryEntity.expires_at > now,
            )
            .order_by(PointEntryEntity.expires_at, PointEntryEntity.id)
            .with_for_update()
        )
        return list(self._session().scalars(stmt))

    def balance(self, member_id: int, now: datetime) -> int:
        stmt = select(func.coalesce(func.sum(PointEntryEntity.remaining), 0)).where(
            PointEntryEntity.member_id == member_id, PointEntryEntity.expires_at > now
        )
        return int(self._session().scalar(stmt))

    def next_expiry(self, member_id: int, now: datetime) -> tuple[datetime, int] | None:
        """When the member's next points expire, and how many of them."""
        first = self._session().scalar(
            select(func.min(PointEntryEntity.expires_at)).where(
                PointEntryEntity.member_id == member_id,
                PointEntryEntity.remaining > 0,
                PointEntryEntity.expires_at > now,
            )
        )
        if first is None:
            return None
        points = self._session().scalar(
            select(func.sum(PointEntryEntity.remaining)).where(
                PointEntryEntity.member_id == member_id, PointEntryEntity.expires_at == first
            )
        )
        return first, int(points)

    def entries(
        self, member_id: int, *, offset: int, limit: int
    ) -> tuple[list[PointEntryEntity], int]:
        stmt = select(PointEntryEntity).where(PointEntryEntity.member_id == member_id)
        return _page(self._session(), stmt, (PointEntryEntity.id.desc(),), offset, limit)

    def redemption(self, member_id: int, request_no: str) -> PointRedemptionEntity | None:
        stmt = select(PointRedemptionEntity).where(
            PointRedemptionEntity.member_id == member_id,
            PointRedemptionEntity.request_no == request_no,
        )
        return self._session().scalars(stmt).one_or_none()

    # -- experience gold ---------------------------------------------------------------
    def experience(self, member_id: int) -> ExperienceAccountEntity | None:
        return self._session().get(ExperienceAccountEntity, member_id)

    def grant(self, source: str, ref_id: int) -> ExperienceGrantEntity | None:
        stmt = select(ExperienceGrantEntity).where(
            ExperienceGrantEntity.source == source, ExperienceGrantEntity.ref_id == ref_id
        )
        return self._session().scalars(stmt).one_or_none()

    def add_granted(self, member_id: int, amount: Decimal) -> None:
        """Add ``amount`` to the member's experience gold, creating the account."""
        session = self._session()
        stmt = (
            update(ExperienceAccountEntity)
            .where(ExperienceAccountEntity.member_id == member_id)
            .values(granted=ExperienceAccountEntity.granted + amount)
        )
        if row_count(session, stmt) == 0:
            session.add(
                ExperienceAccountEntity(member_id=member_id, granted=amount, invested=Decimal(0))
            )
            session.flush()
        session.expire_all()

    def take_invested(self, member_id: int, amount: Decimal) -> bool:
        """Invest ``amount`` of the member's experience gold if so much is not invested yet:
        one conditional update, so racing investments never spend the same gold."""
        account = ExperienceAccountEntity
        stmt = (
            update(account)
            .where(
                account.member_id == member_id,
                account.invested + amount <= account.granted,
            )
            .values(invested=account.invested + amount)
        )
        taken = row_count(self._session(), stmt) == 1
        self._session().expire_all()
        return taken

    def experience_investment(
        self, member_id: int, request_no: str
    ) -> ExperienceInvestmentEntity | None:
        stmt = select(ExperienceInvestmentEntity).where(
            ExperienceInvestmentEntity.member_id == member_id,
            ExperienceInvestmentEntity.request_no == request_no,
        )
        return self._session().scalars(stmt).one_or_none()

    def experience_investments(
        self, member_id: int, *, offset: int, limit: int
    ) -> tuple[list[ExperienceInvestmentEntity], int]:
        stmt = select(ExperienceInvestmentEntity).where(
            ExperienceInvestmentEntity.member_id == member_id
        )
        return _page(self._session(), stmt, (ExperienceInvestmentEntity.id.desc(),), offset, limit)

    def matured(self, now: datetime, limit: int) -> list[int]:
        """RUNNING experience investments matured by ``now``, oldest first."""
        stmt = (
            select(ExperienceInvestmentEntity.id)
            .where(
                ExperienceInvestmentEntity.status == "RUNNING",
                ExperienceInvestmentEntity.matures_at <= now,
            )
            .order_by(ExperienceInvestmentEntity.matures_at, ExperienceInvestmentEntity.id)
            .limit(limit)
        )
        return list(self._session().scalars(stmt))

    def experience_investment_locked(self, investment_id: int) -> ExperienceInvestmentEntity:
        return self._session().get(ExperienceInvestmentEntity, investment_id, with_for_update=True)

    # -- referral rewards --------------------------------------------------------------
    def reward(self, investment_id: int, referrer_id: int) -> ReferralRewardEntity | None:
        stmt = select(ReferralRewardEntity).where(
            ReferralRewardEntity.investment_id == investment_id,
            ReferralRewardEntity.referrer_id == referrer_id,
        )
        return self._session().scalars(stmt).one_or_none()

    def rewards_of_investment(self, investment_id: int) -> list[ReferralRewardEntity]:
        stmt = select(ReferralRewardEntity).where(
            ReferralRewardEntity.investment_id == investment_id
        )
        return list(self._session().scalars(stmt.with_for_update()))

    def reward_totals(self, referrer_id: int, invitees: Sequence[int]) -> dict[int, Decimal]:
        """What ``referrer_id`` earned (PAID) for each of ``invitees``."""
        if not invitees:
            return {}
        stmt = (
            select(ReferralRewardEntity.invitee_id, func.sum(ReferralRewardEntity.amount))
            .where(
                ReferralRewardEntity.referrer_id == referrer_id,
                ReferralRewardEntity.invitee_id.in_(invitees),
                ReferralRewardEntity.status == "PAID",
            )
            .group_by(ReferralRewardEntity.invitee_id)
        )
        return {invitee: total for invitee, total in self._session().execute(stmt)}


def _page(session: Session, stmt, order_by, offset: int, limit: int):
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(*order_by).offset(offset).limit(limit)).all()
    return list(rows), int(total or 0)
