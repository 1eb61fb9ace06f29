"""Operators' campaigns and coupon templates (CampaignFacade): creating and changing them,
switching them on and off (each change names the operator: ``changed_by``), issuing coupons
to members they name, and what a campaign has spent against its budget.

Rules checked here, before anything is written:

* a campaign's name is unique (CAMPAIGN_NAME_TAKEN); its budget never below what it has spent;
* a template's terms fit its kind (a CASH or EXPERIENCE coupon has a face value, a RATE_BOOST
  an extra yearly rate and optionally the first N periods it boosts); its validity is a fixed
  window (validUntil, optionally validFrom) or a number of days after issue (validDays), not
  both; its total count never below what was issued;
* the templates of one kind in one campaign are amount tiers that never overlap: each covers
  the half-open range [minInvest, maxInvest) (no maxInvest: no upper bound), and a template
  whose range meets another's is refused (COUPON_TIERS_OVERLAP), so an investment never
  qualifies for two tiers of one campaign.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select

from dao.marketing import (
    AUDIENCES,
    CAMPAIGN_STATUSES,
    COUPON_KINDS,
    MAX_NAME,
    REWARD_STATUSES,
    CampaignEntity,
    CouponEntity,
    CouponTemplateEntity,
    MarketingRepository,
    RewardEntity,
)
from service import errors
from service.errors import BusinessError, invalid
from service.idempotency import Idempotency
from service.ledger import CENT
from service.mapping import to_vo
from service.marketing.budget import campaign_not_found
from service.marketing.issuing import CouponIssuer, template_not_found
from service.paging import PageVo, page_window
from service.schedule import MAX_TERM_MONTHS, METHODS
from service.security import Principal
from service.text import is_blank, shown
from service.transaction import transactional

#: The largest extra yearly rate a coupon may add, percent.
MAX_EXTRA_RATE = Decimal(10)
#: Members one issueCoupons call may name.
MAX_ISSUE = 100
RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class CampaignRequest:
    name: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    budget_amount: Decimal
    budget_count: int | None


@dataclass(frozen=True)
class TemplateRequest:
    campaign_id: int
    name: str
    kind: str
    face_value: Decimal | None
    extra_rate: Decimal | None
    boost_periods: int | None
    min_invest: Decimal
    max_invest: Decimal | None
    terms: Sequence[int] | None
    methods: Sequence[str] | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    valid_days: int | None
    stackable: bool
    total_count: int | None
    per_member_limit: int | None
    audience: str
    audience_level: str | None
    issue_rule: str | None


@dataclass(frozen=True)
class CampaignVo:
    campaign_id: int
    name: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    budget_amount: Decimal
    spent_amount: Decimal
    budget_count: int | None
    spent_count: int
    status: str
    created_by: int
    changed_by: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class TemplateVo:
    template_id: int
    campaign_id: int
    name: str
    kind: str
    face_value: Decimal | None
    extra_rate: Decimal | None
    boost_periods: int | None
    min_invest: Decimal
    max_invest: Decimal | None
    terms: tuple[int, ...]
    methods: tuple[str, ...]
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    valid_days: int | None
    stackable: bool
    total_count: int | None
    issued_count: int
    per_member_limit: int | None
    audience: str
    audience_level: str | None
    issue_rule: str | None
    status: str
    changed_by: int
    updated_at: dt.datetime


@dataclass(frozen=True)
class CampaignSpendVo:
    campaign_id: int
    budget_amount: Decimal
    spent_amount: Decimal
    remaining_amount: Decimal
    budget_count: int | None
    spent_count: int
    coupons_issued: int
    coupons_locked: int
    coupons_used: int
    rewards_paid: Decimal
    rewards_owed: Decimal
    rewards_waiting: int


@dataclass(frozen=True)
class IssuedCouponVo:
    coupon_id: int
    member_id: int
    valid_from: dt.datetime
    valid_until: dt.datetime


@dataclass(frozen=True)
class IssuedCouponsVo:
    items: tuple[IssuedCouponVo, ...]


@dataclass(frozen=True)
class RewardVo:
    reward_id: int
    kind: str
    source_type: str
    source_id: int
    member_id: int
    campaign_id: int | None
    coupon_id: int | None
    amount: Decimal
    memo: str
    status: str
    transfer_id: int | None
    waiting_reason: str | None
    created_at: dt.datetime
    paid_at: dt.datetime | None


class CampaignService:
    def __init__(self, tx, settings, clock, levels):
        self.tx = tx
        self._settings = settings  # LiveSettings: api.* and loyalty.levels are read per call
        self._clock = clock
        self._repo = MarketingRepository(tx.session)
        self._issuer = CouponIssuer(tx, clock, levels)
        self._requests = Idempotency(tx)

    # -- campaigns -----------------------------------------------------------------------
    @transactional
    def create_campaign(self, request: CampaignRequest, caller: Principal) -> CampaignVo:
        self._check_campaign(request)
        if self._repo.campaign_named(request.name) is not None:
            raise BusinessError(errors.CAMPAIGN_NAME_TAKEN)
        now = self._clock()
        campaign = self._repo.add(
            CampaignEntity(
                **vars(request),
                spent_amount=Decimal("0.00"),
                spent_count=0,
                status="INACTIVE",
                created_by=caller.member_id,
                changed_by=caller.member_id,
                created_at=now,
                updated_at=now,
            )
        )
        return _campaign_vo(campaign)

    @transactional
    def update_campaign(
        self, campaign_id: int, request: CampaignRequest, caller: Principal
    ) -> CampaignVo:
        self._check_campaign(request)
        campaign = self._campaign(campaign_id)
        named = self._repo.campaign_named(request.name)
        if named is not None and named.id != campaign.id:
            raise BusinessError(errors.CAMPAIGN_NAME_TAKEN)
        self.tx.session().refresh(campaign, with_for_update=True)
        if request.budget_amount < campaign.spent_amount:
            raise invalid("budgetAmount", f"must be at least spent {shown(campaign.spent_amount)}")
        if request.budget_count is not None and request.budget_count < campaign.spent_count:
            raise invalid("budgetCount", f"must be at least spent {campaign.spent_count}")
        for field, value in vars(request).items():
            setattr(campaign, field, value)
        self._changed(campaign, caller)
        return _campaign_vo(campaign)

    @transactional
    def set_campaign_status(self, campaign_id: int, status: str, caller: Principal) -> CampaignVo:
        if status not in CAMPAIGN_STATUSES:
            raise invalid("status", f"must be one of {', '.join(CAMPAIGN_STATUSES)}")
        campaign = self._campaign(campaign_id)
        campaign.status = status
        self._changed(campaign, caller)
        return _campaign_vo(campaign)

    @transactional(read_only=True)
    def list_campaigns(
        self, status: str | None = None, page: int | None = None, page_size: int | None = None
    ) -> PageVo[CampaignVo]:
        if status is not None and status not in CAMPAIGN_STATUSES:
            raise invalid("status", f"must be one of {', '.join(CAMPAIGN_STATUSES)}")
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.campaigns(status, offset=(page - 1) * page_size, limit=page_size)
        return PageVo(tuple(map(_campaign_vo, rows)), total, page, page_size)

    @transactional(read_only=True)
    def get_campaign_spend(self, campaign_id: int) -> CampaignSpendVo:
        campaign = self._campaign(campaign_id)
        session = self.tx.session()
        c, r = CouponEntity, RewardEntity
        issued, locked, used = session.execute(
            select(
                func.count(),
                func.count(case((c.status == "LOCKED", 1))),
                func.count(case((c.status == "USED", 1))),
            ).where(c.campaign_id == campaign.id)
        ).one()
        rewards = {
            status: (amount, count)
            for status, amount, count in session.execute(
                select(r.status, func.sum(r.amount), func.count())
                .where(r.campaign_id == campaign.id)
                .group_by(r.status)
            )
        }
        # sum() keeps the column's type: the sums come back in yuan.
        zero = Decimal("0.00")
        paid = rewards.get("PAID", (zero, 0))[0] or zero
        owed = sum((rewards.get(s, (zero, 0))[0] or zero for s in ("PENDING", "PAYING")), zero)
        waiting = int(
            session.scalar(
                select(func.count()).where(
                    r.campaign_id == campaign.id,
                    r.status == "PENDING",
                    r.waiting_reason.is_not(None),
                )
            )
            or 0
        )
        return CampaignSpendVo(
            campaign.id,
            campaign.budget_amount,
            campaign.spent_amount,
            campaign.budget_amount - campaign.spent_amount,
            campaign.budget_count,
            campaign.spent_count,
            int(issued),
            int(locked),
            int(used),
            paid,
            owed,
            waiting,
        )

    # -- templates -----------------------------------------------------------------------
    @transactional
    def create_coupon_template(self, request: TemplateRequest, caller: Principal) -> TemplateVo:
        self._check_template(request)
        campaign = self._campaign(request.campaign_id, lock=True)
        self._check_tiers(campaign.id, request, None)
        now = self._clock()
        template = self._repo.add(
            CouponTemplateEntity(
                **_template_fields(request),
                issued_count=0,
                status="INACTIVE",
                created_by=caller.member_id,
                changed_by=caller.member_id,
                created_at=now,
                updated_at=now,
            )
        )
        return _template_vo(template)

    @transactional
    def update_coupon_template(
        self, template_id: int, request: TemplateRequest, caller: Principal
    ) -> TemplateVo:
        self._check_template(request)
        template = self._template(template_id)
        if request.campaign_id != template.campaign_id:
            raise invalid("campaignId", "a template stays in its campaign")
        self._campaign(template.campaign_id, lock=True)
        self.tx.session().refresh(template, with_for_update=True)
        self._check_tiers(template.campaign_id, request, template.id)
        if request.total_count is not None and request.total_count < template.issued_count:
            raise invalid("totalCount", f"must be at least issued {template.issued_count}")
        for field, value in _template_fields(request).items():
            setattr(template, field, value)
        self._changed(template, caller)
        return _template_vo(template)

    @transactional
    def set_coupon_template_status(
        self, template_id: int, status: str, caller: Principal
    ) -> TemplateVo:
        if status not in CAMPAIGN_STATUSES:
            raise invalid("status", f"must be one of {', '.join(CAMPAIGN_STATUSES)}")
        template = self._template(template_id)
        template.status = status
        self._changed(template, caller)
        return _template_vo(template)

    @transactional(read_only=True)
    def list_coupon_templates(
        self, campaign_id: int, page: int | None = None, page_size: int | None = None
    ) -> PageVo[TemplateVo]:
        self._campaign(campaign_id)
        page, page_size = page_window(page, page_size, self._settings.api)
        rows = self._repo.templates_of(campaign_id)
        start = (page - 1) * page_size
        window = rows[start : start + page_size]
        return PageVo(tuple(map(_template_vo, window)), len(rows), page, page_size)

    @transactional
    def issue_coupons(
        self, template_id: int, member_ids: Sequence[int], request_no: str, caller: Principal
    ) -> IssuedCouponsVo:
        """One coupon of the template to each member named, all or none; once per
        requestNo."""
        members = list(member_ids or ())
        if not 1 <= len(members) <= MAX_ISSUE or len(set(members)) != len(members):
            raise invalid("memberIds", f"must name 1 to {MAX_ISSUE} members, each once")
        claim = self._requests.claim(
            f"member:{caller.member_id}",
            request_no,
            "issueCoupons",
            template_id=template_id,
            member_ids=",".join(map(str, members)),
        )
        key = f"OP:{request_no}"
        coupons = [
            self._issuer.issue(template_id, m, key, "运营发放", issued_by=caller.member_id)
            for m in members
        ]
        if not claim.repeat:
            claim.done("coupon_template", template_id)
        return IssuedCouponsVo(tuple(to_vo(IssuedCouponVo, c, coupon_id=c.id) for c in coupons))

    # -- rewards -------------------------------------------------------------------------
    @transactional(read_only=True)
    def list_rewards(
        self,
        status: str | None = None,
        campaign_id: int | None = None,
        member_id: int | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> PageVo[RewardVo]:
        if status is not None and status not in REWARD_STATUSES:
            raise invalid("status", f"must be one of {', '.join(REWARD_STATUSES)}")
        page, page_size = page_window(page, page_size, self._settings.api)
        r = RewardEntity
        where = [
            column == value
            for column, value in (
                (r.status, status),
                (r.campaign_id, campaign_id),
                (r.member_id, member_id),
            )
            if value is not None
        ]
        session = self.tx.session()
        total = session.scalar(select(func.count()).select_from(r).where(*where))
        rows = session.scalars(
            select(r)
            .where(*where)
            .order_by(r.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
        items = tuple(to_vo(RewardVo, row, reward_id=row.id) for row in rows)
        return PageVo(items, int(total or 0), page, page_size)

    # -- helpers -------------------------------------------------------------------------
    def _campaign(self, campaign_id: int, lock: bool = False) -> CampaignEntity:
        campaign = self._repo.campaign(campaign_id)
        if campaign is None:
            raise campaign_not_found(campaign_id)
        if lock:  # templates of one campaign are checked against each other one at a time
            self.tx.session().refresh(campaign, with_for_update=True)
        return campaign

    def _template(self, template_id: int) -> CouponTemplateEntity:
        template = self._repo.template(template_id)
        if template is None:
            raise template_not_found(template_id)
        return template

    def _changed(self, entity, caller: Principal) -> None:
        entity.changed_by = caller.member_id
        entity.updated_at = self._clock()
        self.tx.session().flush()

    def _check_campaign(self, request: CampaignRequest) -> None:
        _check_name(request.name)
        if request.ends_at is not None and request.ends_at <= request.starts_at:
            raise invalid("endsAt", "must be after startsAt")
        _check_money("budgetAmount", request.budget_amount, zero=True)
        if request.budget_count is not None and request.budget_count < 0:
            raise invalid("budgetCount", "must not be negative")

    def _check_template(self, r: TemplateRequest) -> None:
        _check_name(r.name)
        if r.kind not in COUPON_KINDS:
            raise invalid("kind", f"must be one of {', '.join(COUPON_KINDS)}")
        if r.kind == "RATE_BOOST":
            if r.face_value is not None:
                raise invalid("faceValue", "a RATE_BOOST coupon adds a rate, not an amount")
            if r.extra_rate is None or not 0 < r.extra_rate <= MAX_EXTRA_RATE:
                raise invalid("extraRate", f"must be above 0 and at most {MAX_EXTRA_RATE}")
            if r.extra_rate != r.extra_rate.quantize(RATE_PLACES):
                raise invalid("extraRate", "must have at most 4 decimal places")
            if r.boost_periods is not None and not 1 <= r.boost_periods <= MAX_TERM_MONTHS:
                raise invalid("boostPeriods", f"must be between 1 and {MAX_TERM_MONTHS}")
        else:
            if r.extra_rate is not None or r.boost_periods is not None:
                raise invalid("extraRate", f"a {r.kind} coupon is worth an amount, not a rate")
            if r.face_value is None:
                raise invalid("faceValue", f"is required for a {r.kind} coupon")
            _check_money("faceValue", r.face_value)
        _check_money("minInvest", r.min_invest, zero=True)
        if r.max_invest is not None:
            _check_money("maxInvest", r.max_invest)
            if r.max_invest <= r.min_invest:
                raise invalid("maxInvest", "must be above minInvest")
        if any(not 1 <= t <= MAX_TERM_MONTHS for t in r.terms or ()):
            raise invalid("terms", f"must be months between 1 and {MAX_TERM_MONTHS}")
        if any(m not in METHODS for m in r.methods or ()):
            raise invalid("methods", f"must be among {', '.join(METHODS)}")
        if (r.valid_until is None) == (r.valid_days is None):
            raise invalid("validUntil", "give either validUntil or validDays")
        if r.valid_days is not None and (r.valid_from is not None or not 1 <= r.valid_days <= 3650):
            raise invalid("validDays", "must be 1 to 3650 days, without validFrom")
        if r.valid_from is not None and r.valid_from >= r.valid_until:
            raise invalid("validFrom", "must be before validUntil")
        for field, value in (("totalCount", r.total_count), ("perMemberLimit", r.per_member_limit)):
            if value is not None and value < 1:
                raise invalid(field, "must be at least 1")
        if r.audience not in AUDIENCES:
            raise invalid("audience", f"must be one of {', '.join(AUDIENCES)}")
        levels = [level.name for level in self._settings.loyalty.levels]
        if (r.audience == "LEVEL") != (r.audience_level is not None):
            raise invalid("audienceLevel", "is given exactly for a LEVEL audience")
        if r.audience_level is not None and r.audience_level not in levels:
            raise invalid("audienceLevel", f"must be one of {', '.join(levels)}")
        if r.issue_rule is not None and (r.issue_rule != "REGISTRATION" or r.audience == "LIST"):
            raise invalid("issueRule", "REGISTRATION only, for an audience other than LIST")

    def _check_tiers(self, campaign_id: int, r: TemplateRequest, own_id: int | None) -> None:
        for other in self._repo.templates_of(campaign_id):
            if other.id == own_id or other.kind != r.kind:
                continue
            if _overlap((r.min_invest, r.max_invest), (other.min_invest, other.max_invest)):
                raise BusinessError(
                    errors.COUPON_TIERS_OVERLAP,
                    f"[{shown(r.min_invest)}, {_bound(r.max_invest)}) meets template {other.id}'s"
                    f" [{shown(other.min_invest)}, {_bound(other.max_invest)})",
                )


def _overlap(a: tuple[Decimal, Decimal | None], b: tuple[Decimal, Decimal | None]) -> bool:
    """Whether two half-open ranges [min, max) share an amount (max None: unbounded)."""
    return (b[1] is None or a[0] < b[1]) and (a[1] is None or b[0] < a[1])


def _bound(value: Decimal | None) -> str:
    return "∞" if value is None else shown(value)


def _check_name(name: str) -> None:
    if is_blank(name) or len(name) > MAX_NAME:
        raise invalid("name", f"must not be blank, at most {MAX_NAME} characters")


def _check_money(field: str, value: Decimal, zero: bool = False) -> None:
    if (
        not value.is_finite()
        or value != value.quantize(CENT)
        or value < 0
        or (value == 0 and not zero)
    ):
        raise invalid(field, "must be an amount " + ("of 0 or more" if zero else "above 0"))


def _template_fields(r: TemplateRequest) -> dict:
    fields = vars(r).copy()
    fields["terms"] = ",".join(str(t) for t in sorted(set(r.terms))) if r.terms else None
    fields["methods"] = ",".join(sorted(set(r.methods))) if r.methods else None
    return fields


def _campaign_vo(campaign: CampaignEntity) -> CampaignVo:
    return to_vo(CampaignVo, campaign, campaign_id=campaign.id)


def _template_vo(t: CouponTemplateEntity) -> TemplateVo:
    return to_vo(
        TemplateVo,
        t,
        template_id=t.id,
        terms=tuple(int(x) for x in (t.terms or "").split(",") if x),
        methods=tuple(m for m in (t.methods or "").split(",") if m),
    )
