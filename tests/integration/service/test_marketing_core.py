"""Marketing's service API other modules use, on SQLite and MariaDB: charging a campaign's
budget (atomic, once per reference, never over budget), issuing a coupon (every rule, once per
issue key, the per-member and total limits), and recording and paying a reward (once per
source, a balanced posting of its own from MARKETING_EXPENSE, waiting when the platform's
account is short and paid once it is funded)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.audit import LedgerAudit
from service.marketing import Budgets, CampaignService, CouponIssuer, MarketingService, Rewards
from service.treasury import TreasuryService
from tests.integration.service.marketing_support import (
    active_template,
    campaign_request,
    one,
    rows,
)
from tests.integration.service.support import error_of

D = Decimal


@pytest.fixture
def campaigns(platform) -> CampaignService:
    return platform.service(CampaignService)


@pytest.fixture
def marketing(platform) -> MarketingService:
    return platform.service(MarketingService)


def rewards_of(platform) -> Rewards:
    c = platform.components
    return Rewards(c["tx"], c["settings"], c["clock"], c["gateway"], c["bank"], c["outbox"])


def in_tx(platform, fn, *args, **kwargs):
    return platform.tx.run(lambda: fn(*args, **kwargs))


def ledger_ok(platform) -> None:
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]


def test_a_charge_is_made_once_and_never_beyond_the_budget(platform, campaigns, operator, sql):
    campaign = campaigns.create_campaign(
        campaign_request(budget_amount=D("100.00"), budget_count=3), operator
    )
    budgets = Budgets(platform.tx, platform.components["clock"])
    cid = campaign.campaign_id
    first = in_tx(platform, budgets.charge, cid, D("60.00"), "REFERRAL", ("investment", 1), 1)
    again = in_tx(platform, budgets.charge, cid, D("60.00"), "REFERRAL", ("investment", 1), 1)
    assert again.id == first.id
    refused = error_of(
        in_tx, platform, budgets.charge, cid, D("40.01"), "REFERRAL", ("investment", 2)
    )
    assert refused.code == "CAMPAIGN_BUDGET_EXHAUSTED"
    in_tx(platform, budgets.charge, cid, D("40.00"), "REFERRAL", ("investment", 2))
    in_tx(platform, budgets.refund, cid, D("60.00"), "REFERRAL_UNDONE", ("investment", 1), 1)
    spend = campaigns.get_campaign_spend(cid)
    assert (spend.spent_amount, spend.spent_count, spend.remaining_amount) == (
        D("40.00"),
        0,
        D("60.00"),
    )
    assert one(sql, "SELECT SUM(amount) FROM campaign_charge WHERE campaign_id = :c", c=cid) == 4000


def test_issuing_checks_every_rule_and_issues_once_a_key(
    platform, campaigns, operator, make_member
):
    member = make_member("INVESTOR")
    template = active_template(campaigns, operator, per_member_limit=2)
    issuer = CouponIssuer(platform.tx, platform.components["clock"])
    tid, mid = template.template_id, member.member_id
    first = in_tx(platform, issuer.issue, tid, mid, "POINTS:1", "积分兑换")
    assert in_tx(platform, issuer.issue, tid, mid, "POINTS:1", "积分兑换").id == first.id
    in_tx(platform, issuer.issue, tid, mid, "POINTS:2", "积分兑换")
    refused = error_of(in_tx, platform, issuer.issue, tid, mid, "POINTS:3", "积分兑换")
    assert refused.code == "COUPON_LIMIT_REACHED"
    assert campaigns.get_campaign_spend(template.campaign_id).coupons_issued == 2

    invited_only = active_template(
        campaigns, operator, campaign={"name": "邀请专享"}, audience="INVITED"
    )
    refused = error_of(
        in_tx, platform, issuer.issue, invited_only.template_id, mid, "R", "注册奖励"
    )
    assert refused.code == "COUPON_AUDIENCE_MISMATCH"
    silver = active_template(
        campaigns,
        operator,
        campaign={"name": "白银专享"},
        audience="LEVEL",
        audience_level="SILVER",
    )
    refused = error_of(in_tx, platform, issuer.issue, silver.template_id, mid, "R", "x")
    assert refused.code == "COUPON_AUDIENCE_MISMATCH"  # a REGULAR member, never evaluated
    levelled = CouponIssuer(
        platform.tx, platform.components["clock"], platform.components["levels"]
    )
    refused = error_of(in_tx, platform, levelled.issue, silver.template_id, mid, "R", "x")
    assert refused.code == "COUPON_AUDIENCE_MISMATCH"
    listed = active_template(campaigns, operator, campaign={"name": "名单"}, audience="LIST")
    refused = error_of(in_tx, platform, issuer.issue, listed.template_id, mid, "R", "x")
    assert refused.code == "COUPON_AUDIENCE_MISMATCH"  # a service never issues a list's coupon
    campaigns.set_coupon_template_status(template.template_id, "INACTIVE", operator)
    refused = error_of(in_tx, platform, issuer.issue, tid, mid, "POINTS:9", "积分兑换")
    assert refused.code == "CAMPAIGN_INACTIVE"


def test_a_reward_is_paid_once_from_marketing_expense_and_waits_for_funds(
    platform, campaigns, marketing, operator, make_member, sql
):
    member = make_member("INVESTOR")
    rewards = rewards_of(platform)
    reward = in_tx(
        platform,
        rewards.record,
        "REFERRAL",
        ("investment", 7),
        member.member_id,
        D("8.88"),
        "邀请奖励",
    )
    # The platform's own account is empty: the reward waits, visible, and nothing moved.
    assert rows(sql, "SELECT status, waiting_reason IS NOT NULL FROM marketing_reward") == [
        ("PENDING", 1)
    ]
    again = in_tx(
        platform,
        rewards.record,
        "REFERRAL",
        ("investment", 7),
        member.member_id,
        D("8.88"),
        "邀请奖励",
    )
    assert again.id == reward.id
    platform.service(TreasuryService).fund_platform_account(D("100.00"), "fund-1", operator)
    assert marketing.pay_due_rewards().paid == 1
    assert marketing.pay_due_rewards().paid == 0
    marketing.pay_reward(reward.id)  # a job run twice pays nothing more
    assert rows(
        sql,
        "SELECT p.business_type, COALESCE(a.code, 'MEMBER'), e.direction, e.amount"
        " FROM marketing_reward r JOIN posting p ON p.ref_type = 'platform_transfer'"
        " AND p.ref_id = r.transfer_id AND p.business_type LIKE 'MKT_%'"
        " JOIN posting_entry e ON e.posting_id = p.id JOIN account a ON a.id = e.account_id"
        " ORDER BY e.id",
    ) == [
        ("MKT_REFERRAL", "PLATFORM_FUNDS", "C", 888),
        ("MKT_REFERRAL", "CLEARING", "D", 888),
        ("MKT_REFERRAL", "MARKETING_EXPENSE", "D", 888),
        ("MKT_REFERRAL", "MEMBER", "C", 888),
    ]
    assert one(sql, "SELECT COUNT(*) FROM platform_transfer WHERE kind = 'TRANSFER'") == 1
    assert rows(sql, "SELECT status, waiting_reason FROM marketing_reward") == [("PAID", None)]
    ledger_ok(platform)


def test_a_reward_not_paid_yet_is_cancelled_and_a_paid_one_is_not(
    platform, operator, make_member, sql
):
    member = make_member("INVESTOR")
    rewards = rewards_of(platform)
    mid = member.member_id
    in_tx(platform, rewards.record, "REFERRAL", ("investment", 1), mid, D("1.00"), "邀请奖励")
    assert in_tx(platform, rewards.cancel, "REFERRAL", ("investment", 1), mid).status == "CANCELLED"
    platform.service(TreasuryService).fund_platform_account(D("100.00"), "fund-1", operator)
    in_tx(platform, rewards.record, "REFERRAL", ("investment", 2), mid, D("2.00"), "邀请奖励")
    # Recorded after the funding: the outbox job paid it after its commit.
    assert in_tx(platform, rewards.cancel, "REFERRAL", ("investment", 2), mid).status == "PAID"
    assert rows(sql, "SELECT source_id, status FROM marketing_reward ORDER BY id") == [
        (1, "CANCELLED"),
        (2, "PAID"),
    ]
