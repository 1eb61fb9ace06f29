"""Marketing: campaigns with their budgets, coupon templates, the coupons issued to members, what
each campaign's budget was charged for, and the rewards the platform pays members.

* campaign: a money budget and optionally a count budget; ``spent_amount``/``spent_count`` only
  ever move by a conditional UPDATE (``spent + x <= budget``), each move one campaign_charge
  row, so the spend equals its charges and never passes the budget (CHECK constraints say so
  too).
* coupon_template: the terms of a coupon (kind, face value or extra yearly rate, the investment
  tier [min_invest, max_invest), eligible terms and methods, validity, stackable, total count
  and per-member limit, audience) and whether it is issued by a rule (on registration).
* coupon: one issued to a member, AVAILABLE, LOCKED to an investment while that is pending,
  USED once the listing is disbursed; ``(template_id, member_id, member_seq)`` is unique, so a
  per-member limit holds under concurrency, and ``(template_id, member_id, issue_key)`` too, so
  issuing for one source twice finds the first coupon.
* marketing_reward: money owed to a member (a CASH coupon at disbursement, a period's rate
  boost, another module's reward), unique per (kind, source, member): never recorded twice;
  paid by a platform transfer (``transfer_id``), request number ``MR<id>-<attempt>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from dao.base import MYSQL_TABLE_ARGS, Base, IdType, row_count, sql_in
from dao.bulk import CHUNK
from dao.types import FixedPoint, Identifier, Money, UtcDateTime, utcnow

CAMPAIGN_STATUSES: tuple[str, ...] = ("ACTIVE", "INACTIVE")
COUPON_KINDS: tuple[str, ...] = ("CASH", "RATE_BOOST", "EXPERIENCE")
#: Who may receive a template's coupons: anyone, members who never invested, invited members
#: (a referrer), members of a level, or only those an operator names.
AUDIENCES: tuple[str, ...] = ("ALL", "NEW_MEMBERS", "INVITED", "LEVEL", "LIST")
#: The rule that issues a template's coupons by itself (None: operators or services only).
ISSUE_RULES: tuple[str, ...] = ("REGISTRATION",)
COUPON_STATUSES: tuple[str, ...] = ("AVAILABLE", "LOCKED", "USED")
REWARD_STATUSES: tuple[str, ...] = ("PENDING", "PAYING", "PAID", "CANCELLED")
#: A rate's places, as loan.annual_rate (a yearly percentage: 1.5 is 1.5 %).
RATE_SCALE = 4
MAX_NAME = 100
MAX_REASON = 200


class CampaignEntity(Base):
    __tablename__ = "campaign"
    __table_args__ = (
        UniqueConstraint("name"),
        CheckConstraint(sql_in("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint("spent_amount >= 0 AND spent_amount <= budget_amount", name="budget"),
        CheckConstraint(
            "spent_count >= 0 AND (budget_count IS NULL OR spent_count <= budget_count)",
            name="budget_count",
        ),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="window"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # Unique, compared exactly (as a partner app's name).
    name: Mapped[str] = mapped_column(Identifier(MAX_NAME), nullable=False)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    budget_amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    spent_amount: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))
    budget_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    spent_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    created_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    changed_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class CampaignChargeEntity(Base):
    """One move of a campaign's spend: a charge (positive) or a refund (negative), unique per
    (campaign, reason, reference), so charging for one thing twice finds the first."""

    __tablename__ = "campaign_charge"
    __table_args__ = (
        UniqueConstraint("campaign_id", "reason", "ref_type", "ref_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(IdType, ForeignKey("campaign.id"), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(Identifier(32), nullable=False)
    ref_type: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    ref_id: Mapped[int] = mapped_column(IdType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)


class CouponTemplateEntity(Base):
    __tablename__ = "coupon_template"
    __table_args__ = (
        CheckConstraint(sql_in("kind", COUPON_KINDS), name="kind"),
        CheckConstraint(sql_in("audience", AUDIENCES), name="audience"),
        CheckConstraint(sql_in("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint(f"issue_rule IS NULL OR {sql_in('issue_rule', ISSUE_RULES)}", name="rule"),
        # A RATE_BOOST adds a rate; the other kinds are worth an amount.
        CheckConstraint("(kind = 'RATE_BOOST') = (extra_rate IS NOT NULL)", name="rate"),
        CheckConstraint("(kind <> 'RATE_BOOST') = (face_value IS NOT NULL)", name="face"),
        CheckConstraint("face_value IS NULL OR face_value > 0", name="face_positive"),
        CheckConstraint("extra_rate IS NULL OR extra_rate > 0", name="rate_positive"),
        CheckConstraint(
            "min_invest >= 0 AND (max_invest IS NULL OR max_invest > min_invest)", name="tier"
        ),
        # A fixed window, or a number of days after issue.
        CheckConstraint("(valid_days IS NULL) <> (valid_until IS NULL)", name="validity"),
        CheckConstraint(
            "issued_count >= 0 AND (total_count IS NULL OR issued_count <= total_count)",
            name="issued",
        ),
        CheckConstraint("(audience = 'LEVEL') = (audience_level IS NOT NULL)", name="level"),
        Index("ix_coupon_template_campaign_id", "campaign_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(IdType, ForeignKey("campaign.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(MAX_NAME), nullable=False)
    kind: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    face_value: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    extra_rate: Mapped[Decimal | None] = mapped_column(FixedPoint(RATE_SCALE), nullable=True)
    # The first N periods a RATE_BOOST adds its rate to (None: every period).
    boost_periods: Mapped[int | None] = mapped_column(Integer, nullable=True)
    min_invest: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    max_invest: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    # Comma-separated term months and repayment methods a listing must have (None: any).
    terms: Mapped[str | None] = mapped_column(Identifier(200), nullable=True)
    methods: Mapped[str | None] = mapped_column(Identifier(200), nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    valid_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stackable: Mapped[bool] = mapped_column(Boolean, nullable=False)
    total_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    issued_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    per_member_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    audience: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    audience_level: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    issue_rule: Mapped[str | None] = mapped_column(Identifier(16), nullable=True)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    created_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    changed_by: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class CouponEntity(Base):
    __tablename__ = "coupon"
    __table_args__ = (
        UniqueConstraint("template_id", "member_id", "member_seq"),
        UniqueConstraint("template_id", "member_id", "issue_key"),
        CheckConstraint(sql_in("status", COUPON_STATUSES), name="status"),
        CheckConstraint("(status = 'AVAILABLE') = (investment_id IS NULL)", name="investment"),
        CheckConstraint("valid_until > valid_from", name="validity"),
        Index("ix_coupon_member_id_id", "member_id", "id"),
        Index("ix_coupon_investment_id", "investment_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    template_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("coupon_template.id"), nullable=False
    )
    campaign_id: Mapped[int] = mapped_column(IdType, ForeignKey("campaign.id"), nullable=False)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    kind: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    # The member's n-th coupon of the template (the per-member limit's key).
    member_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    # What issued it (REGISTRATION, an operator's request number, another module's source).
    issue_key: Mapped[str] = mapped_column(Identifier(100), nullable=False)
    reason: Mapped[str] = mapped_column(String(MAX_REASON), nullable=False)
    issued_by: Mapped[int | None] = mapped_column(IdType, ForeignKey("member.id"), nullable=True)
    investment_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("investment.id"), nullable=True
    )
    locked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class RewardEntity(Base):
    __tablename__ = "marketing_reward"
    __table_args__ = (
        UniqueConstraint("kind", "source_type", "source_id", "member_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(sql_in("status", REWARD_STATUSES), name="status"),
        CheckConstraint("attempt >= 0", name="attempt"),
        Index("ix_marketing_reward_status_id", "status", "id"),
        Index("ix_marketing_reward_coupon_id", "coupon_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # What earned it (CASH_COUPON, RATE_BOOST, or another module's kind); the posting's
    # business type is MKT_<kind>.
    kind: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    source_type: Mapped[str] = mapped_column(Identifier(24), nullable=False)
    source_id: Mapped[int] = mapped_column(IdType, nullable=False)
    member_id: Mapped[int] = mapped_column(IdType, ForeignKey("member.id"), nullable=False)
    campaign_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("campaign.id"), nullable=True
    )
    coupon_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("coupon.id"), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    memo: Mapped[str] = mapped_column(String(MAX_REASON), nullable=False)
    status: Mapped[str] = mapped_column(Identifier(16), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    transfer_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("platform_transfer.id"), nullable=True
    )
    # Why it is not paid yet (the platform's account short, the bank failed the transfer).
    waiting_reason: Mapped[str | None] = mapped_column(String(MAX_REASON), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class MarketingRepository:
    """Campaigns, templates, coupons, charges and rewards on the current transaction's session
    (never commits)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def add(self, entity):
        session = self._session()
        session.add(entity)
        session.flush()
        return entity

    # -- campaigns and their budgets -------------------------------------------------------
    def campaign(self, campaign_id: int) -> CampaignEntity | None:
        return self._session().get(CampaignEntity, campaign_id)

    def campaign_named(self, name: str) -> CampaignEntity | None:
        return self._session().scalar(select(CampaignEntity).where(CampaignEntity.name == name))

    def campaigns(
        self, status: str | None, *, offset: int, limit: int
    ) -> tuple[list[CampaignEntity], int]:
        c = CampaignEntity
        where = [c.status == status] if status is not None else []
        session = self._session()
        total = session.scalar(select(func.count()).select_from(c).where(*where))
        rows = session.scalars(
            select(c).where(*where).order_by(c.id.desc()).offset(offset).limit(limit)
        ).all()
        return list(rows), int(total or 0)

    def charge(self, campaign_id: int, amount: Decimal, count: int) -> bool:
        """Add ``amount`` and ``count`` to the campaign's spend if both stay within its
        budget (a refund is negative); False, changing nothing, when they would not."""
        c = CampaignEntity
        return (
            row_count(
                self._session(),
                update(c)
                .where(
                    c.id == campaign_id,
                    c.spent_amount + amount <= c.budget_amount,
                    c.spent_amount + amount >= 0,
                    c.spent_count + count >= 0,
                    (c.budget_count.is_(None)) | (c.spent_count + count <= c.budget_count),
                )
                .values(spent_amount=c.spent_amount + amount, spent_count=c.spent_count + count)
                .execution_options(synchronize_session=False),
            )
            == 1
        )

    def charge_for(
        self, campaign_id: int, reason: str, ref: tuple[str, int]
    ) -> CampaignChargeEntity | None:
        ch = CampaignChargeEntity
        return self._session().scalar(
            select(ch).where(
                ch.campaign_id == campaign_id,
                ch.reason == reason,
                ch.ref_type == ref[0],
                ch.ref_id == ref[1],
            )
        )

    def refresh(self, entity) -> None:
        self._session().refresh(entity)

    # -- templates -----------------------------------------------------------------------
    def template(self, template_id: int) -> CouponTemplateEntity | None:
        return self._session().get(CouponTemplateEntity, template_id)

    def templates_of(self, campaign_id: int) -> list[CouponTemplateEntity]:
        t = CouponTemplateEntity
        return list(
            self._session().scalars(select(t).where(t.campaign_id == campaign_id).order_by(t.id))
        )

    def templates_issued_by(self, rule: str) -> list[CouponTemplateEntity]:
        t = CouponTemplateEntity
        return list(
            self._session().scalars(
                select(t).where(t.issue_rule == rule, t.status == "ACTIVE").order_by(t.id)
            )
        )

    def count_one_issued(self, template_id: int) -> bool:
        """One more coupon of the template, if its total count allows; False otherwise."""
        t = CouponTemplateEntity
        return (
            row_count(
                self._session(),
                update(t)
                .where(
                    t.id == template_id,
                    (t.total_count.is_(None)) | (t.issued_count < t.total_count),
                )
                .values(issued_count=t.issued_count + 1)
                .execution_options(synchronize_session=False),
            )
            == 1
        )

    def uncount_one_issued(self, template_id: int) -> None:
        """Undo :meth:`count_one_issued` in the same transaction (the campaign refused it)."""
        t = CouponTemplateEntity
        self._session().execute(
            update(t)
            .where(t.id == template_id)
            .values(issued_count=t.issued_count - 1)
            .execution_options(synchronize_session=False)
        )

    # -- coupons -------------------------------------------------------------------------
    def coupon(self, coupon_id: int) -> CouponEntity | None:
        return self._session().get(CouponEntity, coupon_id)

    def coupon_issued(
        self, template_id: int, member_id: int, issue_key: str
    ) -> CouponEntity | None:
        c = CouponEntity
        return self._session().scalar(
            select(c).where(
                c.template_id == template_id, c.member_id == member_id, c.issue_key == issue_key
            )
        )

    def coupons_held(self, template_id: int, member_id: int) -> int:
        c = CouponEntity
        return int(
            self._session().scalar(
                select(func.count()).where(c.template_id == template_id, c.member_id == member_id)
            )
            or 0
        )

    def coupons_of_member(
        self, member_id: int, where: Sequence, *, offset: int, limit: int
    ) -> tuple[list[CouponEntity], int]:
        c = CouponEntity
        conditions = [c.member_id == member_id, *where]
        session = self._session()
        total = session.scalar(select(func.count()).select_from(c).where(*conditions))
        rows = session.scalars(
            select(c).where(*conditions).order_by(c.id.desc()).offset(offset).limit(limit)
        ).all()
        return list(rows), int(total or 0)

    def coupons_of_investment(self, investment_id: int) -> list[CouponEntity]:
        c = CouponEntity
        return list(
            self._session().scalars(
                select(c).where(c.investment_id == investment_id).order_by(c.id)
            )
        )

    def coupons_of_investments(self, investment_ids: list[int]) -> dict[int, list[CouponEntity]]:
        """Investment id -> its coupons (by id), for those of ``investment_ids`` that have
        any, in one query (a repayment pays every investment of a listing)."""
        c = CouponEntity
        coupons: dict[int, list[CouponEntity]] = {}
        for start in range(0, len(investment_ids), CHUNK):
            ids = investment_ids[start : start + CHUNK]
            for coupon in self._session().scalars(
                select(c).where(c.investment_id.in_(ids)).order_by(c.id)
            ):
                coupons.setdefault(coupon.investment_id, []).append(coupon)
        return coupons

    def lock_coupon(self, coupon_id: int, investment_id: int, now: datetime) -> bool:
        """AVAILABLE -> LOCKED to the investment, only if it is AVAILABLE now: of two
        concurrent investments naming one coupon, exactly one gets it."""
        c = CouponEntity
        return (
            row_count(
                self._session(),
                update(c)
                .where(c.id == coupon_id, c.status == "AVAILABLE")
                .values(status="LOCKED", investment_id=investment_id, locked_at=now, updated_at=now)
                .execution_options(synchronize_session=False),
            )
            == 1
        )

    # -- rewards -------------------------------------------------------------------------
    def reward_for_update(self, reward_id: int) -> RewardEntity | None:
        return self._session().get(RewardEntity, reward_id, with_for_update=True)

    def reward_of(self, kind: str, source: tuple[str, int], member_id: int) -> RewardEntity | None:
        r = RewardEntity
        return self._session().scalar(
            select(r).where(
                r.kind == kind,
                r.source_type == source[0],
                r.source_id == source[1],
                r.member_id == member_id,
            )
        )

    def rewards_due(self, limit: int) -> list[int]:
        """Ids of rewards not paid yet (PENDING, or PAYING whose transfer may have ended)."""
        r = RewardEntity
        return list(
            self._session().scalars(
                select(r.id).where(r.status.in_(("PENDING", "PAYING"))).order_by(r.id).limit(limit)
            )
        )
