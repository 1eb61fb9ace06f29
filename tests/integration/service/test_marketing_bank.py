"""Coupons on investments through the depository bank (payment.gateway BANK), on SQLite and
MariaDB: a coupon is locked while its investment is PENDING at the bank, AVAILABLE again (its
cost refunded) when the bank does not freeze the money, and when a listing cancelled after
the freeze is released through the bank's UNFREEZE; the ledger check passes after each step."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.marketing import CampaignService
from service.p2p.listing import AuditRequest
from tests.integration.service.banking import Banking
from tests.integration.service.marketing_support import active_template, rows
from tests.integration.service.support import caller
from tests.integration.service.test_bank_investing import froze, settle, unfreeze_order
from tests.integration.service.test_bank_payments import funded

D = Decimal


@pytest.fixture
def investor(banking: Banking, make_member):
    """Factory: an investor with 10000.00 available, recharged through the bank."""

    def factory():
        who = caller(make_member("INVESTOR"))
        funded(banking, who, "10000.00")
        return who

    return factory


@pytest.fixture
def raising(banking: Banking, operator, loan_request):
    """Factory: a listing of 10000.00, RAISING."""

    def factory():
        vo = banking.loans.publish_loan(loan_request(), operator)
        return banking.loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)

    return factory


@pytest.fixture
def coupon(platform, operator):
    """Factory: an AVAILABLE CASH coupon of 10.00 issued to ``who``; its id."""
    campaigns = platform.service(CampaignService)
    template = active_template(campaigns, operator, face_value=D("10.00"))

    def factory(who) -> int:
        issued = campaigns.issue_coupons(
            template.template_id, [who.member_id], f"issue-{who.member_id}", operator
        )
        return issued.items[0].coupon_id

    return factory


def state(sql, coupon_id: int) -> tuple:
    [row] = rows(sql, "SELECT status, investment_id FROM coupon WHERE id = :c", c=coupon_id)
    return row


def spent(sql) -> int:
    [(amount,)] = rows(sql, "SELECT spent_amount FROM campaign")
    return amount


def test_a_coupon_is_released_when_the_bank_does_not_freeze_the_money(
    banking: Banking, investor, raising, coupon, sql
) -> None:
    who, loan = investor(), raising()
    coupon_id = coupon(who)
    vo = banking.loans.invest(loan.loan_id, D("1000.00"), "i-1", who, [coupon_id])
    assert vo.status == "PENDING"
    assert (state(sql, coupon_id), spent(sql)) == (("LOCKED", vo.investment_id), 1000)
    assert banking.ledger_ok()
    assert froze(banking, vo, "FAILED", reason="AUTHORIZATION_EXPIRED") == "applied"
    assert (state(sql, coupon_id), spent(sql)) == (("AVAILABLE", None), 0)
    assert banking.ledger_ok()


def test_a_coupon_is_released_with_an_investment_the_bank_releases(
    banking: Banking, investor, raising, coupon, operator, sql
) -> None:
    who, loan = investor(), raising()
    coupon_id = coupon(who)
    vo = banking.loans.invest(loan.loan_id, D("3000.00"), "i-2", who, [coupon_id])
    froze(banking, vo)
    banking.loans.cancel_loan(loan.loan_id, "borrower withdrew", operator)
    assert state(sql, coupon_id) == ("LOCKED", vo.investment_id)  # RELEASING: still frozen
    assert banking.ledger_ok()
    order_no, _, _ = unfreeze_order(sql, vo.investment_id)
    assert settle(banking, order_no, "SUCCEEDED", "3000.00", "UNFREEZE") == "applied"
    assert (state(sql, coupon_id), spent(sql)) == (("AVAILABLE", None), 0)
    assert banking.ledger_ok()
