"""What the marketing tests share: campaigns and templates made as operators make them, a
funded platform account, listings raising, and plain-SQL looks at what was written."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import text

from service.marketing.campaigns import CampaignRequest, TemplateRequest
from tests.integration.service.support import START

D = Decimal


def campaign_request(**overrides: Any) -> CampaignRequest:
    fields: dict[str, Any] = {
        "name": "新手红包",
        "starts_at": START,
        "ends_at": None,
        "budget_amount": D("10000.00"),
        "budget_count": None,
    }
    fields.update(overrides)
    return CampaignRequest(**fields)


def template_request(campaign_id: int, **overrides: Any) -> TemplateRequest:
    fields: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": "投资红包",
        "kind": "CASH",
        "face_value": D("10.00"),
        "extra_rate": None,
        "boost_periods": None,
        "min_invest": D("100.00"),
        "max_invest": None,
        "terms": None,
        "methods": None,
        "valid_from": None,
        "valid_until": None,
        "valid_days": 30,
        "stackable": True,
        "total_count": None,
        "per_member_limit": None,
        "audience": "ALL",
        "audience_level": None,
        "issue_rule": None,
    }
    fields.update(overrides)
    return TemplateRequest(**fields)


def active_template(campaigns, operator, campaign: dict | None = None, **template) -> Any:
    """An ACTIVE template in a new ACTIVE campaign; returns the template's VO."""
    c = campaigns.create_campaign(campaign_request(**(campaign or {})), operator)
    campaigns.set_campaign_status(c.campaign_id, "ACTIVE", operator)
    t = campaigns.create_coupon_template(template_request(c.campaign_id, **template), operator)
    return campaigns.set_coupon_template_status(t.template_id, "ACTIVE", operator)


def rows(sql, query: str, **params) -> list[tuple]:
    with sql.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query), params)]


def one(sql, query: str, **params):
    with sql.connect() as conn:
        return conn.execute(text(query), params).scalar_one()
