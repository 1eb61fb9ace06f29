"""Coupons used on investments: locked when the member invests, released when the investment
is given back or refused, consumed when the listing is disbursed.

``lock`` runs inside ``invest`` (service/p2p/investing.py), after the investment row is
written, in its transaction: each named coupon is checked on fresh rows (the member's own,
valid now, its template and campaign in force, the investment in the template's tier
[min_invest, max_invest), the listing's term and repayment method eligible, CASH or
RATE_BOOST; a coupon that is not stackable alone, one rate boost at most), the campaign's
money budget is charged with what the coupon will cost (a CASH coupon's face value, a rate
boost's total over the term: service/marketing/boost.py), and the coupon moves AVAILABLE ->
LOCKED by a conditional UPDATE checked by its row count: of two investments naming one coupon
at once, exactly one locks it, the other is refused (COUPON_NOT_AVAILABLE) and rolls back
whole. Any refusal rolls the investment back with it.

``release`` (the investment released or refused by the bank): LOCKED -> AVAILABLE, the charge
refunded. ``consume`` (the listing disbursed): LOCKED -> USED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from dao.marketing import CouponEntity, CouponTemplateEntity, MarketingRepository
from dao.p2p import InvestmentEntity, LoanEntity
from service import errors
from service.errors import BusinessError
from service.marketing.boost import total_boost
from service.marketing.budget import Budgets
from service.marketing.issuing import in_force

#: How many coupons one investment may name.
MAX_COUPONS = 5
USABLE_KINDS = ("CASH", "RATE_BOOST")


def lock_reason(coupon: CouponEntity) -> str:
    """The campaign_charge reason of a coupon's cost, charged when it is locked."""
    return f"LOCK_C{coupon.id}"


def release_reason(coupon: CouponEntity) -> str:
    return f"RELEASE_C{coupon.id}"


def listed(text: str | None) -> tuple[str, ...] | None:
    """A template's comma-separated terms or methods (None: any)."""
    return None if text is None else tuple(t for t in text.split(",") if t)


def coupon_cost(coupon: CouponTemplateEntity, loan: LoanEntity, amount: Decimal) -> Decimal:
    """What a coupon of ``coupon`` costs its campaign on an investment of ``amount`` in
    ``loan``: a CASH coupon its face value, a RATE_BOOST its extra interest over the term."""
    if coupon.kind == "RATE_BOOST":
        return total_boost(
            amount,
            loan.annual_rate,
            loan.term_months,
            loan.repayment_method,
            coupon.extra_rate,
            coupon.boost_periods,
        )
    return coupon.face_value


class CouponUse:
    """Coupons on investments, in the caller's transaction (never opens or commits one)."""

    def __init__(self, tx, clock):
        self.tx = tx
        self._clock = clock
        self._repo = MarketingRepository(tx.session)
        self._budgets = Budgets(tx, clock)

    def lock(
        self, coupon_ids: Sequence[int], loan: LoanEntity, investment: InvestmentEntity
    ) -> list[CouponEntity]:
        """Lock ``coupon_ids`` to ``investment`` in ``loan`` (see the module docstring)."""
        if len(set(coupon_ids)) != len(coupon_ids):
            raise BusinessError(errors.COUPONS_NOT_STACKABLE, "a coupon is named twice")
        if len(coupon_ids) > MAX_COUPONS:
            raise BusinessError(
                errors.COUPONS_NOT_STACKABLE, f"at most {MAX_COUPONS} coupons an investment"
            )
        now = self._clock()
        coupons = [self._usable(cid, loan, investment, now) for cid in coupon_ids]
        if len(coupons) > 1 and not all(t.stackable for _, t in coupons):
            raise BusinessError(
                errors.COUPONS_NOT_STACKABLE,
                "a coupon that is not stackable is used alone: "
                + ", ".join(str(c.id) for c, t in coupons if not t.stackable),
            )
        if sum(1 for _, t in coupons if t.kind == "RATE_BOOST") > 1:
            raise BusinessError(
                errors.COUPONS_NOT_STACKABLE, "one rate-boost coupon an investment at most"
            )
        for coupon, template in coupons:
            cost = coupon_cost(template, loan, investment.amount)
            if not self._repo.lock_coupon(coupon.id, investment.id, now):
                raise BusinessError(
                    errors.COUPON_NOT_AVAILABLE, f"coupon {coupon.id} was used meanwhile"
                )
            self._budgets.charge(
                coupon.campaign_id, cost, lock_reason(coupon), ("investment", investment.id)
            )
            self._repo.refresh(coupon)
        return [c for c, _ in coupons]

    def release(self, investment: InvestmentEntity) -> None:
        """The investment's money was given back or never frozen: its coupons AVAILABLE
        again, their cost refunded to their campaigns."""
        now = self._clock()
        for coupon in self._repo.coupons_of_investment(investment.id):
            if coupon.status != "LOCKED":
                continue
            ref = ("investment", investment.id)
            charge = self._budgets.charge_for(coupon.campaign_id, lock_reason(coupon), ref)
            if charge is not None:
                self._budgets.refund(
                    coupon.campaign_id, charge.amount, release_reason(coupon), ref, charge.count
                )
            coupon.status = "AVAILABLE"
            coupon.investment_id = None
            coupon.locked_at = None
            coupon.updated_at = now
        self.tx.session().flush()

    def consume(self, investment: InvestmentEntity) -> list[CouponEntity]:
        """The listing is disbursed: the investment's LOCKED coupons are USED; returns them."""
        now = self._clock()
        used = []
        for coupon in self._repo.coupons_of_investment(investment.id):
            if coupon.status == "LOCKED":
                coupon.status = "USED"
                coupon.used_at = now
                coupon.updated_at = now
                used.append(coupon)
        self.tx.session().flush()
        return used

    def _usable(
        self, coupon_id: int, loan: LoanEntity, investment: InvestmentEntity, now: dt.datetime
    ) -> tuple[CouponEntity, CouponTemplateEntity]:
        coupon = self._repo.coupon(coupon_id)
        if coupon is None or coupon.member_id != investment.investor_id:
            raise BusinessError(errors.COUPON_NOT_FOUND, f"coupon {coupon_id} does not exist")
        self._repo.refresh(coupon)  # as it is now, not as this session first read it
        if coupon.status != "AVAILABLE":
            raise BusinessError(
                errors.COUPON_NOT_AVAILABLE, f"coupon {coupon.id} is {coupon.status}"
            )
        if not coupon.valid_from <= now < coupon.valid_until:
            raise BusinessError(
                errors.COUPON_EXPIRED,
                f"coupon {coupon.id} is valid from {coupon.valid_from:%Y-%m-%d %H:%M:%S}"
                f" to {coupon.valid_until:%Y-%m-%d %H:%M:%S} UTC",
            )
        template = self._repo.template(coupon.template_id)
        campaign = self._repo.campaign(coupon.campaign_id)
        if template.status != "ACTIVE" or not in_force(campaign, now):
            raise BusinessError(
                errors.CAMPAIGN_INACTIVE, f"coupon {coupon.id}'s campaign is not in force"
            )
        why = _not_applicable(template, loan, investment.amount)
        if why:
            raise BusinessError(errors.COUPON_NOT_APPLICABLE, f"coupon {coupon.id}: {why}")
        return coupon, template


def _not_applicable(template: CouponTemplateEntity, loan: LoanEntity, amount: Decimal) -> str:
    if template.kind not in USABLE_KINDS:
        return f"a {template.kind} coupon is not used on an investment"
    if amount < template.min_invest:
        return f"the investment is below its minimum {template.min_invest:f}"
    if template.max_invest is not None and amount >= template.max_invest:
        return f"the investment reaches its tier's upper bound {template.max_invest:f}"
    terms = listed(template.terms)
    if terms is not None and str(loan.term_months) not in terms:
        return f"a listing of {loan.term_months} months is not eligible"
    methods = listed(template.methods)
    if methods is not None and loan.repayment_method not in methods:
        return f"a listing repaid {loan.repayment_method} is not eligible"
    return ""
