"""A campaign's budget: money and a count, spent only within them, atomically.

Every move of a campaign's spend is one conditional UPDATE (``spent + x <= budget``, checked by
its row count: of concurrent charges exactly those that fit succeed, none overruns by one) and
one campaign_charge row naming why and for what, unique per (campaign, reason, reference): the
same charge asked for twice (a retried job, a repeated event) finds the first and spends
nothing more. A refund is a charge of its own (negative), never an edit of the first.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from dao.marketing import CampaignChargeEntity, CampaignEntity, MarketingRepository
from service import errors
from service.errors import BusinessError
from service.text import shown
from service.transaction import RetryTransaction


def campaign_not_found(campaign_id: int) -> BusinessError:
    return BusinessError(errors.CAMPAIGN_NOT_FOUND, f"campaign {campaign_id} does not exist")


class Budgets:
    """Charging and refunding campaigns' budgets in the caller's transaction (never opens or
    commits one). Other modules' rewards charge their campaign through it too."""

    def __init__(self, tx, clock):
        self._clock = clock
        self._repo = MarketingRepository(tx.session)

    def charge(
        self,
        campaign_id: int,
        amount: Decimal,
        reason: str,
        ref: tuple[str, int],
        count: int = 0,
    ) -> CampaignChargeEntity:
        """Spend ``amount`` (and ``count`` coupons or rewards) of campaign ``campaign_id``'s
        budget for ``reason`` (an identifier, e.g. "REFERRAL") on ``ref`` (what it pays for);
        CAMPAIGN_BUDGET_EXHAUSTED, spending nothing, when the budget does not cover it. The same
        (campaign, reason, ref) again returns the first charge and spends nothing."""
        if amount < 0 or count < 0:
            raise ValueError("a charge spends; refund() gives back")
        first = self._repo.charge_for(campaign_id, reason, ref)
        if first is not None:
            return first
        self.spend(campaign_id, amount, count)
        return self.record(campaign_id, amount, count, reason, ref)

    def refund(
        self,
        campaign_id: int,
        amount: Decimal,
        reason: str,
        ref: tuple[str, int],
        count: int = 0,
    ) -> CampaignChargeEntity:
        """Give back ``amount`` (and ``count``) of what the campaign spent, for ``reason`` on
        ``ref``, as a charge of its own (negative); once: the same refund again returns the
        first."""
        if amount < 0 or count < 0:
            raise ValueError("a refund gives back a positive amount")
        first = self._repo.charge_for(campaign_id, reason, ref)
        if first is not None:
            return first
        self.spend(campaign_id, -amount, -count)
        return self.record(campaign_id, -amount, -count, reason, ref)

    def charge_for(
        self, campaign_id: int, reason: str, ref: tuple[str, int]
    ) -> CampaignChargeEntity | None:
        """The charge made for (campaign, reason, ref), if any."""
        return self._repo.charge_for(campaign_id, reason, ref)

    # -- the two steps, for a caller that spends before it knows its reference -----------
    def spend(self, campaign_id: int, amount: Decimal, count: int) -> None:
        """Move the campaign's spend by the conditional update alone;
        CAMPAIGN_BUDGET_EXHAUSTED, changing nothing, when it does not fit."""
        if self._repo.charge(campaign_id, amount, count):
            return
        campaign = self._repo.campaign(campaign_id)
        if campaign is None:
            raise campaign_not_found(campaign_id)
        self._repo.refresh(campaign)
        raise BusinessError(errors.CAMPAIGN_BUDGET_EXHAUSTED, _left(campaign, amount, count))

    def record(
        self, campaign_id: int, amount: Decimal, count: int, reason: str, ref: tuple[str, int]
    ) -> CampaignChargeEntity:
        try:
            return self._repo.add(
                CampaignChargeEntity(
                    campaign_id=campaign_id,
                    amount=amount,
                    count=count,
                    reason=reason,
                    ref_type=ref[0],
                    ref_id=ref[1],
                    created_at=self._clock(),
                )
            )
        except IntegrityError as e:  # the same charge made concurrently: the retry finds it
            raise RetryTransaction("campaign charge made concurrently") from e


def _left(campaign: CampaignEntity, amount: Decimal, count: int) -> str:
    money = campaign.budget_amount - campaign.spent_amount
    text = f"campaign {campaign.id} has {shown(money)} of its budget left"
    if campaign.budget_count is not None:
        text += f" and {campaign.budget_count - campaign.spent_count} of its count"
    return f"{text}: {shown(amount)} and {count} asked"
