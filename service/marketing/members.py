"""Members' coupons (MarketingFacade), and marketing's jobs and listener.

The service subscribes marketing's listener to the lending core's lifecycle once, when the
platform builds it, and runs marketing's jobs: ``marketing.pay`` (one reward, written to the
outbox with it) and ``marketing.pay_due`` (periodic: every reward not paid yet, one
transaction each, so a reward that waited for the platform's funds, or whose transfer the bank
failed, is paid once it can be).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from dao.marketing import CouponEntity, MarketingRepository
from service import errors
from service.errors import BusinessError, invalid
from service.jobs import Outbox, job
from service.lifecycle import Lifecycle
from service.marketing.listener import MarketingListener
from service.marketing.rewards import Rewards
from service.paging import PageVo, page_window
from service.security import Principal
from service.transaction import Propagation, transactional

log = logging.getLogger(__name__)

#: What a member filters their coupons by: EXPIRED is an AVAILABLE coupon past its validity.
COUPON_STATES = ("AVAILABLE", "LOCKED", "USED", "EXPIRED")
#: Rewards the periodic job takes a run.
PAY_DUE_BATCH = 200


@dataclass(frozen=True)
class CouponVo:
    coupon_id: int
    template_id: int
    campaign_id: int
    name: str
    kind: str
    state: str
    face_value: Decimal | None
    extra_rate: Decimal | None
    boost_periods: int | None
    min_invest: Decimal
    max_invest: Decimal | None
    terms: tuple[int, ...]
    methods: tuple[str, ...]
    stackable: bool
    valid_from: dt.datetime
    valid_until: dt.datetime
    reason: str
    investment_id: int | None
    created_at: dt.datetime
    used_at: dt.datetime | None


@dataclass(frozen=True)
class PaidVo:
    paid: int


def coupon_vo(repo: MarketingRepository, coupon: CouponEntity, now: dt.datetime) -> CouponVo:
    template = repo.template(coupon.template_id)
    state = coupon.status
    if state == "AVAILABLE" and now >= coupon.valid_until:
        state = "EXPIRED"
    return CouponVo(
        coupon.id,
        template.id,
        coupon.campaign_id,
        template.name,
        coupon.kind,
        state,
        template.face_value,
        template.extra_rate,
        template.boost_periods,
        template.min_invest,
        template.max_invest,
        tuple(int(t) for t in (template.terms or "").split(",") if t),
        tuple(m for m in (template.methods or "").split(",") if m),
        template.stackable,
        coupon.valid_from,
        coupon.valid_until,
        coupon.reason,
        coupon.investment_id,
        coupon.created_at,
        coupon.used_at,
    )


class MarketingService:
    def __init__(
        self,
        tx,
        settings,
        clock,
        gateway,
        lifecycle: Lifecycle,
        outbox: Outbox,
        levels,
        bank=None,
    ):
        self.tx = tx
        self._settings = settings  # LiveSettings: api.* is reloadable
        self._clock = clock
        self._repo = MarketingRepository(tx.session)
        self._rewards = Rewards(tx, settings, clock, gateway, bank, outbox)
        lifecycle.subscribe(MarketingListener(tx, clock, levels, self._rewards))

    # -- members' queries --------------------------------------------------------------
    @transactional(read_only=True)
    def list_coupons(
        self,
        caller: Principal,
        state: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> PageVo[CouponVo]:
        if state is not None and state not in COUPON_STATES:
            raise invalid("state", f"must be one of {', '.join(COUPON_STATES)}")
        page, page_size = page_window(page, page_size, self._settings.api)
        now = self._clock()
        c = CouponEntity
        where = {
            None: [],
            "AVAILABLE": [c.status == "AVAILABLE", c.valid_until > now],
            "EXPIRED": [c.status == "AVAILABLE", c.valid_until <= now],
            "LOCKED": [c.status == "LOCKED"],
            "USED": [c.status == "USED"],
        }[state]
        rows, total = self._repo.coupons_of_member(
            caller.member_id, where, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(coupon_vo(self._repo, r, now) for r in rows), total, page, page_size)

    @transactional(read_only=True)
    def get_coupon(self, coupon_id: int, caller: Principal) -> CouponVo:
        coupon = self._repo.coupon(coupon_id)
        if coupon is None or coupon.member_id != caller.member_id:
            raise BusinessError(errors.COUPON_NOT_FOUND, f"coupon {coupon_id} does not exist")
        return coupon_vo(self._repo, coupon, self._clock())

    # -- jobs --------------------------------------------------------------------------
    @job("marketing.pay")
    @transactional
    def pay_reward(self, reward_id: int) -> None:
        """Pay one reward (service/marketing/rewards.py); a repeat pays nothing more."""
        self._rewards.pay(reward_id)

    @job("marketing.pay_due")
    @transactional(read_only=True)
    def pay_due_rewards(self) -> PaidVo:
        """Every reward not paid yet, one transaction each; says how many are PAID now."""
        due = self._repo.rewards_due(PAY_DUE_BATCH)
        return PaidVo(sum(1 for reward_id in due if self._pay_one(reward_id)))

    @transactional(propagation=Propagation.REQUIRES_NEW)
    def _pay_one(self, reward_id: int) -> bool:
        reward = self._rewards.pay(reward_id)
        return reward is not None and reward.status == "PAID"
