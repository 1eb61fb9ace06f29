"""Referral rewards (邀请奖励): a referrer earns for the investments of the members they invited.

The rule: ``loyalty.referral_annual_rate`` of the invitee's investment, pro rata to the
listing's term (x term_months / 12), rounded down to the fen and at most
``loyalty.referral_cap`` an investment; nothing when that is 0.

One reward per (investment, referrer), kept in referral_reward (its unique key):

* ACCRUED when the invitee's investment is frozen (the lifecycle's investment_frozen);
* PAID when the listing is lent (loan_disbursed): the reward is owed through marketing's
  rewards (service/marketing/rewards.py, kind REFERRAL, once per investment and referrer),
  which pays it from MARKETING_EXPENSE by a platform transfer after the commit. A disbursement
  told again (a retried transaction, a bank's item settled twice) finds it PAID and pays
  nothing more;
* REVERSED when the investment's money is given back before it was lent (the listing failed
  or was cancelled, or had ended when the bank's freeze arrived: investment_released). Nothing
  was paid then.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from sqlalchemy.exc import IntegrityError

from dao.loyalty import LoyaltyRepository, ReferralRewardEntity
from dao.member import MemberRepository
from service.ledger import CENT
from service.transaction import RetryTransaction

REWARD_KIND = "REFERRAL"
MONTHS_A_YEAR = Decimal(12)


def referral_amount(amount: Decimal, annual_rate: Decimal, months: int, cap: Decimal) -> Decimal:
    """What a referrer earns for an investment of ``amount`` over ``months``."""
    earned = (amount * annual_rate * months / MONTHS_A_YEAR).quantize(CENT, rounding=ROUND_DOWN)
    return min(earned, cap)


class ReferralRewards:
    """Referral rewards accrued, paid and reversed in the caller's transaction."""

    def __init__(self, tx, settings, clock, rewards) -> None:
        self._settings = settings
        self._clock = clock
        self._repo = LoyaltyRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._rewards = rewards

    def accrue(self, loan, investment) -> None:
        """The invitee's investment is frozen: its referrer's reward ACCRUED, once."""
        invitee = self._members.get(investment.investor_id)
        if invitee is None or invitee.referrer_id is None:
            return
        loyalty = self._settings.loyalty
        amount = referral_amount(
            investment.amount, loyalty.referral_annual_rate, loan.term_months, loyalty.referral_cap
        )
        if amount <= 0 or self._repo.reward(investment.id, invitee.referrer_id) is not None:
            return
        now = self._clock()
        try:
            self._repo.add(
                ReferralRewardEntity(
                    investment_id=investment.id,
                    referrer_id=invitee.referrer_id,
                    invitee_id=invitee.id,
                    amount=amount,
                    status="ACCRUED",
                    created_at=now,
                    updated_at=now,
                )
            )
        except IntegrityError:  # accrued concurrently: the retry finds it
            raise RetryTransaction(f"referral reward of {investment.id} accrued") from None

    def pay(self, loan, investments) -> None:
        """The listing is lent: every ACCRUED reward of its investments is owed to its
        referrer (marketing pays it after the commit); PAID ones are left alone."""
        for investment in investments:
            for reward in self._repo.rewards_of_investment(investment.id):
                if reward.status != "ACCRUED":
                    continue
                self._rewards.record(
                    REWARD_KIND,
                    ("investment", investment.id),
                    reward.referrer_id,
                    reward.amount,
                    f"邀请奖励: 好友投资「{loan.title}」{investment.amount} 元",
                )
                reward.status = "PAID"
                reward.updated_at = self._clock()

    def reverse(self, investment) -> None:
        """The investment's money was given back before it was lent: ACCRUED rewards
        REVERSED (nothing was paid for them)."""
        for reward in self._repo.rewards_of_investment(investment.id):
            if reward.status == "ACCRUED":
                reward.status = "REVERSED"
                reward.updated_at = self._clock()
