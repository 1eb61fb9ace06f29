"""LoyaltyService: what facade/loyalty.py's operations do, loyalty's periodic jobs, and its
listener to the lending core (service/lifecycle.py), subscribed when the platform builds it.

The rules live beside it: levels.py, points.py, experience.py, referral.py. Rewards paid in
money (referral rewards, experience interest) are owed through marketing's rewards
(service/marketing/rewards.py) and coupons bought with points issued by marketing's issuer
(service/marketing/issuing.py), both in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from dao.loyalty import LevelRepository, LoyaltyRepository, PointRedemptionEntity
from dao.marketing import MarketingRepository
from service import errors
from service.businessday import BUSINESS_ZONE
from service.errors import BusinessError
from service.idempotency import Idempotency
from service.jobs import job
from service.lifecycle import Lifecycle, LifecycleListener
from service.loyalty.experience import (
    ExperienceBalanceVo,
    ExperienceGold,
    ExperienceInvestmentVo,
    experience_vo,
)
from service.loyalty.levels import Levels
from service.loyalty.points import (
    CheckInVo,
    PointEntryVo,
    PointsLedger,
    PointsVo,
    invest_points,
)
from service.loyalty.referral import ReferralRewards
from service.marketing import CouponIssuer, Rewards
from service.paging import PageVo, page_window
from service.security import Principal
from service.transaction import transactional

#: Matured experience investments paid per run of loyalty.mature_experience.
MATURE_BATCH = 500
#: Members given their level's monthly coupons per read.
MONTHLY_BATCH = 200
log = logging.getLogger(__name__)


PERCENT = Decimal(100)


@dataclass(frozen=True)
class MemberLevelVo:
    """A member's level as the member sees it: the fee discount in percent."""

    level: str
    invested: Decimal
    fee_discount: Decimal
    next_level: str | None
    next_level_from: Decimal | None
    evaluated_at: dt.datetime | None


@dataclass(frozen=True)
class RedemptionVo:
    redemption_id: int
    item: str
    points: int
    coupon_id: int
    balance: int
    created_at: dt.datetime


class LoyaltyService:
    def __init__(
        self, tx, settings, clock, lifecycle: Lifecycle, levels: Levels, gateway, bank, outbox
    ):
        self.tx = tx
        self._settings = settings
        self._clock = clock
        self._levels = levels
        self._repo = LoyaltyRepository(tx.session)
        self._marketing = MarketingRepository(tx.session)
        self._requests = Idempotency(tx)
        self._points = PointsLedger(tx, settings, clock)
        rewards = Rewards(tx, settings, clock, gateway, bank, outbox)
        self._experience = ExperienceGold(tx, settings, clock, rewards)
        self._referrals = ReferralRewards(tx, settings, clock, rewards)
        self._coupons = CouponIssuer(tx, clock)
        lifecycle.subscribe(_Listener(settings, self._points, self._experience, self._referrals))

    # -- check-in and points -----------------------------------------------------------
    @transactional
    def check_in(self, caller: Principal) -> CheckInVo:
        return self._points.check_in(caller.member_id)

    @transactional(read_only=True)
    def get_points(self, caller: Principal) -> PointsVo:
        return self._points.points(caller.member_id)

    @transactional(read_only=True)
    def list_point_entries(
        self, caller: Principal, page: int | None = None, page_size: int | None = None
    ) -> PageVo[PointEntryVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.entries(
            caller.member_id, offset=(page - 1) * page_size, limit=page_size
        )
        items = tuple(
            PointEntryVo(r.id, r.kind, r.points, r.remaining, r.expires_at, r.created_at)
            for r in rows
        )
        return PageVo(items, total, page, page_size)

    @transactional
    def redeem_points(self, item: str, request_no: str, caller: Principal) -> RedemptionVo:
        """Spend points on a catalogue item: its coupon issued by marketing, once per
        request number."""
        member_id = caller.member_id
        claim = self._requests.claim(f"member:{member_id}", request_no, "redeemPoints", item=item)
        if claim.repeat:
            return self._redemption_vo(self._repo.redemption(member_id, request_no))
        offer = next((c for c in self._settings.loyalty.catalogue if c.item == item), None)
        if offer is None:
            raise BusinessError(errors.CATALOGUE_ITEM_UNKNOWN, f"no item {item} to redeem")
        row = self._repo.add(
            PointRedemptionEntity(
                member_id=member_id,
                request_no=request_no,
                item=offer.item,
                template_id=offer.template,
                points=offer.points,
                created_at=self._clock(),
            )
        )
        self._points.spend(member_id, offer.points, "REDEEM", row.id)
        coupon = self._coupons.issue(
            offer.template, member_id, f"POINTS-{row.id}", f"积分兑换 {offer.item}"
        )
        row.coupon_id = coupon.id
        claim.done("point_redemption", row.id)
        return self._redemption_vo(row)

    # -- levels ------------------------------------------------------------------------
    @transactional(read_only=True)
    def get_level(self, caller: Principal) -> MemberLevelVo:
        vo = self._levels.level_of(caller.member_id)
        return MemberLevelVo(
            level=vo.level,
            invested=vo.invested,
            fee_discount=vo.fee_discount * PERCENT,
            next_level=vo.next_level,
            next_level_from=vo.next_level_from,
            evaluated_at=vo.evaluated_at,
        )

    # -- experience gold ---------------------------------------------------------------
    @transactional(read_only=True)
    def get_experience_balance(self, caller: Principal) -> ExperienceBalanceVo:
        return self._experience.balance(caller.member_id)

    @transactional
    def claim_experience_coupon(self, coupon_id: int, caller: Principal) -> ExperienceBalanceVo:
        """Turn one of the caller's EXPERIENCE coupons, within its validity, into experience
        gold of its face value, once (the grant's unique key: a repeat changes nothing)."""
        coupon = self._marketing.coupon(coupon_id)
        if coupon is None or coupon.member_id != caller.member_id:
            raise BusinessError(errors.COUPON_NOT_FOUND, f"coupon {coupon_id} is not yours")
        now = self._clock()
        if coupon.kind != "EXPERIENCE" or not coupon.valid_from <= now < coupon.valid_until:
            raise BusinessError(
                errors.COUPON_NOT_APPLICABLE,
                f"coupon {coupon_id} is not an experience coupon within its validity",
            )
        template = self._marketing.template(coupon.template_id)
        self._experience.grant(caller.member_id, template.face_value, "COUPON", coupon.id)
        return self._experience.balance(caller.member_id)

    @transactional
    def invest_experience(
        self, amount: Decimal, request_no: str, caller: Principal
    ) -> ExperienceInvestmentVo:
        member_id = caller.member_id
        claim = self._requests.claim(
            f"member:{member_id}", request_no, "investExperience", amount=amount
        )
        if claim.repeat:
            return experience_vo(self._repo.experience_investment(member_id, request_no))
        vo = self._experience.invest(member_id, amount, request_no)
        claim.done("experience_investment", vo.investment_id)
        return vo

    @transactional(read_only=True)
    def list_experience_investments(
        self, caller: Principal, page: int | None = None, page_size: int | None = None
    ) -> PageVo[ExperienceInvestmentVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.experience_investments(
            caller.member_id, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(map(experience_vo, rows)), total, page, page_size)

    @job("loyalty.mature_experience")
    def mature_experience(self) -> int:
        """Owe every matured experience investment's interest, one transaction each and none
        around them (marketing's payment job runs after each commit); how many this run
        matured."""
        due = self.tx.run(self._repo.matured, self._clock(), MATURE_BATCH, read_only=True)
        return sum(
            1 for investment_id in due if self.tx.run(self._experience.mature, investment_id)
        )

    @job("loyalty.monthly_coupons")
    def issue_monthly_coupons(self) -> int:
        """Give every member at a level with ``monthly_coupons`` this month's coupons (the
        month in Asia/Shanghai), through marketing's issuer with its rules, budget and limits:
        once a month per template and member (the issue key LEVEL-<level>-<yyyy-mm>), so a
        run repeated or retried issues nothing twice. A coupon marketing refuses (the
        campaign inactive or out of budget) is logged and skipped; how many coupons the
        members hold for the month after this run (issued now or before)."""
        rules = {r.name: r.monthly_coupons for r in self._settings.loyalty.levels}
        levels = [name for name, templates in rules.items() if templates]
        month = self._clock().astimezone(BUSINESS_ZONE).strftime("%Y-%m")
        issued, after = 0, 0
        members = LevelRepository(self.tx.session)
        while batch := self.tx.run(
            members.members_at, levels, after, MONTHLY_BATCH, read_only=True
        ):
            for member_id, level in batch:
                for template_id in rules[level]:
                    issued += self._issue_monthly(template_id, member_id, level, month)
            after = batch[-1][0]
        return issued

    def _issue_monthly(self, template_id: int, member_id: int, level: str, month: str) -> int:
        key, reason = f"LEVEL-{level}-{month}", f"会员等级 {level} {month} 月度礼券"
        try:
            self.tx.run(self._coupons.issue, template_id, member_id, key, reason)
        except BusinessError as e:
            log.warning(
                "monthly coupon of template %s to member %s: %s", template_id, member_id, e.code
            )
            return 0
        return 1

    # -- helpers -----------------------------------------------------------------------
    def _redemption_vo(self, row: PointRedemptionEntity) -> RedemptionVo:
        return RedemptionVo(
            redemption_id=row.id,
            item=row.item,
            points=row.points,
            coupon_id=row.coupon_id,
            balance=self._points.balance(row.member_id),
            created_at=row.created_at,
        )


class _Listener(LifecycleListener):
    """The lending core's events, in their transactions: points for investing (taken back
    with the money), referral rewards accrued, paid and reversed, experience gold on
    registration."""

    def __init__(
        self,
        settings,
        points: PointsLedger,
        experience: ExperienceGold,
        referrals: ReferralRewards,
    ) -> None:
        self._settings = settings
        self._points = points
        self._experience = experience
        self._referrals = referrals

    def member_registered(self, member) -> None:
        gift = self._settings.loyalty.experience_on_registration
        if gift > 0 and member.role == "INVESTOR":
            self._experience.grant(member.id, gift, "REGISTRATION", member.id)

    def investment_frozen(self, loan, investment) -> None:
        self.investments_frozen(loan, [investment])

    def investments_frozen(self, loan, investments) -> None:
        per_yuan = self._settings.loyalty.points_per_yuan
        earnings = [(i.investor_id, i.id, invest_points(i.amount, per_yuan)) for i in investments]
        self._points.earn_all("INVEST", [e for e in earnings if e[2] > 0])
        for investment in investments:
            self._referrals.accrue(loan, investment)

    def investment_released(self, loan, investment) -> None:
        self._points.take_back(investment.investor_id, "INVEST", investment.id)
        self._referrals.reverse(investment)

    def loan_disbursed(self, loan, investments) -> None:
        self._referrals.pay(loan, investments)
