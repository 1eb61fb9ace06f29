"""Marketing: campaigns and their budgets, coupon templates, coupons and the rewards the
platform pays members (README "Marketing").

The services behind the facades: :class:`CampaignService` (operators, CampaignFacade) and
:class:`MarketingService` (members, MarketingFacade; marketing's jobs and its listener to the
lending core). Other modules use marketing inside their own transactions through:

* :class:`Budgets` (budget.py): ``charge(campaign_id, amount, reason, ref, count=0)`` spends a
  campaign's budget atomically, once per (campaign, reason, ref), CAMPAIGN_BUDGET_EXHAUSTED
  when it does not fit; ``refund(campaign_id, amount, reason, ref, count=0)`` gives back.
* :class:`CouponIssuer` (issuing.py): ``issue(template_id, member_id, issue_key, reason,
  issued_by=None)`` issues a coupon of a template, every rule checked, once per issue key.
* :class:`Rewards` (rewards.py): ``record(kind, source, member_id, amount, memo,
  campaign_id=None, coupon_id=None)`` owes a member a reward once per (kind, source, member)
  and pays it after the commit by a platform transfer (job ``marketing.pay``);
  ``cancel(kind, source, member_id)`` cancels one not paid yet.
"""

from service.marketing.budget import Budgets
from service.marketing.campaigns import CampaignService
from service.marketing.issuing import CouponIssuer
from service.marketing.members import MarketingService
from service.marketing.rewards import Rewards

__all__ = ["Budgets", "CampaignService", "CouponIssuer", "MarketingService", "Rewards"]
