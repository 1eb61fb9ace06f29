"""Issuing coupons of a template to members, by rule, by an operator or by another module.

Every rule is checked on the rows as they are now, in the caller's transaction: the campaign
and the template ACTIVE and the campaign within its dates; the member in the template's
audience (a LEVEL audience: the member's level as the levels component last evaluated it,
service/loyalty/levels.py); the template's total count (a conditional UPDATE of
``issued_count``, checked by its row count) and the campaign's count budget
(service/marketing/budget.py), both atomic under concurrency; the per-member limit by the
unique key (template, member, member_seq): two concurrent issues to one member take the same
sequence number, one fails on the key and its transaction is retried from the start, seeing
the other's coupon.

Issuing is idempotent by ``issue_key``, what issued the coupon (REGISTRATION, an operator's
request number, another module's source such as a points redemption's entry): the same
(template, member, issue_key) again returns the first coupon and spends nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dao.marketing import CampaignEntity, CouponEntity, CouponTemplateEntity, MarketingRepository
from dao.member import MemberRepository
from dao.p2p import InvestmentEntity
from service import errors
from service.errors import BusinessError
from service.marketing.budget import Budgets, campaign_not_found
from service.transaction import RetryTransaction

#: The campaign_charge reason of a coupon's share of its campaign's count budget.
ISSUE = "ISSUE"


def template_not_found(template_id: int) -> BusinessError:
    return BusinessError(
        errors.COUPON_TEMPLATE_NOT_FOUND, f"coupon template {template_id} does not exist"
    )


def in_force(campaign: CampaignEntity, now: dt.datetime) -> bool:
    """Whether the campaign is ACTIVE and ``now`` within its dates."""
    return (
        campaign.status == "ACTIVE"
        and campaign.starts_at <= now
        and (campaign.ends_at is None or now < campaign.ends_at)
    )


class CouponIssuer:
    """Issues coupons in the caller's transaction (never opens or commits one)."""

    def __init__(self, tx, clock, levels=None):
        self.tx = tx
        self._clock = clock
        self._levels = levels  # the levels component (level_of); LEVEL audiences need it
        self._repo = MarketingRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._budgets = Budgets(tx, clock)

    def issue(
        self,
        template_id: int,
        member_id: int,
        issue_key: str,
        reason: str,
        issued_by: int | None = None,
    ) -> CouponEntity:
        """A coupon of template ``template_id`` to member ``member_id``, issued for
        ``issue_key`` (unique per template and member) with ``reason`` (words operators read);
        ``issued_by`` is the operator who asked, None for a rule or a service. Refused:
        COUPON_TEMPLATE_NOT_FOUND, MEMBER_NOT_FOUND, CAMPAIGN_INACTIVE, COUPON_AUDIENCE_MISMATCH
        (an explicit-list template is issued by operators only), COUPON_LIMIT_REACHED,
        CAMPAIGN_BUDGET_EXHAUSTED; a refusal spends nothing."""
        first = self._repo.coupon_issued(template_id, member_id, issue_key)
        if first is not None:
            return first
        template = self._repo.template(template_id)
        if template is None:
            raise template_not_found(template_id)
        campaign = self._repo.campaign(template.campaign_id)
        if campaign is None:
            raise campaign_not_found(template.campaign_id)
        now = self._clock()
        if template.status != "ACTIVE" or not in_force(campaign, now):
            raise BusinessError(
                errors.CAMPAIGN_INACTIVE,
                f"coupon template {template.id} or its campaign {campaign.id} is not in force",
            )
        valid_from, valid_until = _validity(template, now)
        if valid_until <= now:
            raise BusinessError(
                errors.CAMPAIGN_INACTIVE, f"coupon template {template.id}'s coupons have expired"
            )
        self._check_audience(template, member_id, issued_by)
        held = self._repo.coupons_held(template.id, member_id)
        if template.per_member_limit is not None and held >= template.per_member_limit:
            raise BusinessError(
                errors.COUPON_LIMIT_REACHED,
                f"member {member_id} holds {held} coupon(s) of template {template.id},"
                f" its limit per member",
            )
        if not self._repo.count_one_issued(template.id):
            raise BusinessError(
                errors.COUPON_LIMIT_REACHED,
                f"all {template.total_count} coupon(s) of template {template.id} are issued",
            )
        try:
            self._budgets.spend(campaign.id, Decimal(0), 1)
        except BusinessError:
            self._repo.uncount_one_issued(template.id)  # refused: nothing spent at all
            raise
        try:
            coupon = self._repo.add(
                CouponEntity(
                    template_id=template.id,
                    campaign_id=campaign.id,
                    member_id=member_id,
                    kind=template.kind,
                    status="AVAILABLE",
                    valid_from=valid_from,
                    valid_until=valid_until,
                    member_seq=held + 1,
                    issue_key=issue_key,
                    reason=reason,
                    issued_by=issued_by,
                    created_at=now,
                    updated_at=now,
                )
            )
        except IntegrityError as e:  # the same member's coupon issued concurrently
            raise RetryTransaction("coupon issued concurrently") from e
        self._budgets.record(campaign.id, Decimal(0), 1, ISSUE, ("coupon", coupon.id))
        return coupon

    def _check_audience(
        self, template: CouponTemplateEntity, member_id: int, issued_by: int | None
    ) -> None:
        member = self._members.get(member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND, f"member {member_id} does not exist")
        audience = template.audience
        if audience == "ALL":
            return
        if audience == "LIST" and issued_by is not None:
            return
        if audience == "INVITED" and member.referrer_id is not None:
            return
        if audience == "NEW_MEMBERS" and not self._has_invested(member_id):
            return
        if audience == "LEVEL" and self._level_of(member_id) == template.audience_level:
            return
        raise BusinessError(
            errors.COUPON_AUDIENCE_MISMATCH,
            f"member {member_id} is not in coupon template {template.id}'s audience ({audience})",
        )

    def _level_of(self, member_id: int) -> str | None:
        return None if self._levels is None else self._levels.level_of(member_id).level

    def _has_invested(self, member_id: int) -> bool:
        i = InvestmentEntity
        session = self.tx.session()
        return bool(session.scalar(select(func.count()).where(i.investor_id == member_id)))


def _validity(template: CouponTemplateEntity, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """A coupon's window: the template's fixed one (from now when it has no start), or
    ``valid_days`` days from now."""
    if template.valid_days is not None:
        return now, now + dt.timedelta(days=template.valid_days)
    return template.valid_from or now, template.valid_until
