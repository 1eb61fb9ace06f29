"""Marketing's listener to the lending core (service/lifecycle.py), told in the transaction of
each event:

* a member registered: a coupon of every ACTIVE template issued on REGISTRATION whose audience
  admits them (issue key REGISTRATION: once a template); a template out of coupons or budget,
  or not for this member, issues nothing, and the registration goes on;
* an investment refused by the bank or released (the listing failed or was cancelled): its
  coupons AVAILABLE again, their cost refunded;
* a listing disbursed: each investment's coupons USED; a CASH coupon's face value recorded as
  a reward (CASH_COUPON, source the coupon: once), paid after the commit;
* receipts paid: for each receipt of an investment with a USED rate-boost coupon (one an
  investment at most), the period's boost (service/marketing/boost.py) recorded as a reward
  (RATE_BOOST, source the receipt) when the receipt carries its base interest; a period whose
  base interest was waived by an early settlement waives its boost too, and the campaign gets
  it back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dao.marketing import MarketingRepository
from dao.p2p import InvestmentEntity, LoanEntity, ReceiptEntity
from service import errors
from service.errors import BusinessError
from service.lifecycle import LifecycleListener
from service.marketing.boost import boosts
from service.marketing.budget import Budgets
from service.marketing.issuing import CouponIssuer
from service.marketing.rewards import Rewards
from service.marketing.usage import CouponUse

log = logging.getLogger(__name__)

CASH_COUPON, RATE_BOOST = "CASH_COUPON", "RATE_BOOST"
REGISTRATION = "REGISTRATION"
#: Refusals that mean "no coupon for this member now", not a fault of the registration.
_NOT_ISSUED = (
    errors.COUPON_LIMIT_REACHED,
    errors.CAMPAIGN_BUDGET_EXHAUSTED,
    errors.COUPON_AUDIENCE_MISMATCH,
    errors.CAMPAIGN_INACTIVE,
)


class MarketingListener(LifecycleListener):
    def __init__(self, tx, clock, levels, rewards: Rewards):
        self.tx = tx
        self._repo = MarketingRepository(tx.session)
        self._issuer = CouponIssuer(tx, clock, levels)
        self._use = CouponUse(tx, clock)
        self._budgets = Budgets(tx, clock)
        self._rewards = rewards

    def member_registered(self, member) -> None:
        for template in self._repo.templates_issued_by(REGISTRATION):
            try:
                self._issuer.issue(template.id, member.id, REGISTRATION, "注册奖励")
            except BusinessError as refused:
                if refused.error not in _NOT_ISSUED:
                    raise
                log.info("no coupon of template %s on registration: %s", template.id, refused)

    def investment_refused(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        self._use.release(investment)

    def investment_released(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        self._use.release(investment)

    def loan_disbursed(self, loan: LoanEntity, investments: Sequence[InvestmentEntity]) -> None:
        for investment in investments:
            for coupon in self._use.consume(investment):
                if coupon.kind != "CASH":
                    continue
                template = self._repo.template(coupon.template_id)
                self._rewards.record(
                    CASH_COUPON,
                    ("coupon", coupon.id),
                    investment.investor_id,
                    template.face_value,
                    f"红包：{template.name}",
                    campaign_id=coupon.campaign_id,
                    coupon_id=coupon.id,
                )

    def receipts_paid(self, loan: LoanEntity, receipts: Sequence[ReceiptEntity]) -> None:
        coupons = self._repo.coupons_of_investments(sorted({r.investment_id for r in receipts}))
        for receipt in receipts:
            for coupon in coupons.get(receipt.investment_id, ()):
                if coupon.kind == "RATE_BOOST" and coupon.status == "USED":
                    self._boost(loan, receipt, coupon)

    def _boost(self, loan: LoanEntity, receipt: ReceiptEntity, coupon) -> None:
        template = self._repo.template(coupon.template_id)
        investment = self.tx.session().get(InvestmentEntity, receipt.investment_id)
        amount = boosts(
            investment.amount,
            loan.annual_rate,
            loan.term_months,
            loan.repayment_method,
            template.extra_rate,
            template.boost_periods,
        ).get(receipt.period)
        if not amount:
            return
        if receipt.interest == 0:  # waived by an early settlement, as the base interest
            self._budgets.refund(
                coupon.campaign_id, amount, f"WAIVE_C{coupon.id}", ("receipt", receipt.id)
            )
            return
        self._rewards.record(
            RATE_BOOST,
            ("receipt", receipt.id),
            receipt.investor_id,
            amount,
            f"加息券：{template.name}，第 {receipt.period} 期",
            campaign_id=coupon.campaign_id,
            coupon_id=coupon.id,
        )
