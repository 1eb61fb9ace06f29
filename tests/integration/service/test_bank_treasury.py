"""The platform's own account through the depository bank's orders (payment.gateway BANK), on
SQLite and MariaDB, the bank scripted: a FUND answers PENDING, carries no member, waits for the
treasurer's confirmation on the bank's page and funds PLATFORM_FUNDS once the bank says so; a
TRANSFER freezes on PLATFORM_FUNDS at once and pays the member, or is released, when the bank
says; the bank's fee on either leaves PLATFORM_FUNDS. The ledger check passes after every
step, orders in flight included."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.ocp import protocol
from service.reconciliation import ReconciliationService
from tests.integration.service.banking import AUTHORIZE, Banking
from tests.integration.service.support import caller
from tests.integration.service.test_treasury import balances, held, postings

D = Decimal


@pytest.fixture
def member(make_member):
    return caller(make_member("INVESTOR"))


def funded(banking: Banking, operator, amount: str, request_no: str = "fund-1"):
    """The platform's account funded with ``amount`` by a FUND the bank succeeded."""
    fund = banking.treasury.fund_platform_account(D(amount), request_no, operator)
    banking.run_jobs()
    message = banking.notification(fund.order_no, "SUCCEEDED", amount, "FUND")
    assert banking.notify(message).outcome == "applied"
    return banking.treasury.get_platform_transfer(fund.transfer_id)


def test_a_fund_waits_for_the_treasurer_then_funds_the_platforms_account(
    banking: Banking, operator, sql
) -> None:
    fund = banking.treasury.fund_platform_account(D("500.00"), "fund-1", operator)
    assert (fund.status, fund.authorize_url) == ("PENDING", None)
    row = banking.order(fund.order_no)
    assert (row.order_type, row.member_id, row.status) == ("FUND", None, "CREATED")
    merchant = banking.platform.settings.current().bank.merchant_id
    assert row.account_no == protocol.platform_account_no(merchant)
    assert banking.ledger_ok()

    assert banking.run_jobs() == 1
    assert banking.bank.submitted[-1] == {
        "orderNo": fund.order_no,
        "orderType": "FUND",
        "amount": "500.00",
    }
    shown = banking.treasury.get_platform_transfer(fund.transfer_id)
    assert (shown.status, shown.authorize_url) == ("PENDING", AUTHORIZE + fund.order_no)
    assert held(sql, "PLATFORM_FUNDS") == (D("0.00"), D("0.00"))
    assert banking.ledger_ok()

    message = banking.notification(fund.order_no, "SUCCEEDED", "500.00", "FUND")
    assert banking.notify(message).outcome == "applied"
    done = banking.treasury.get_platform_transfer(fund.transfer_id)
    assert (done.status, done.authorize_url) == ("SUCCESS", None)
    assert held(sql, "PLATFORM_FUNDS") == (D("500.00"), D("0.00"))
    assert held(sql, "OWNER_FUNDING") == (D("500.00"), D("0.00"))
    assert banking.notify(message).outcome == "repeat"
    assert held(sql, "PLATFORM_FUNDS") == (D("500.00"), D("0.00"))
    assert banking.ledger_ok()


def test_a_fund_the_treasurer_lets_expire_moves_nothing(banking: Banking, operator, sql) -> None:
    fund = banking.treasury.fund_platform_account(D("500.00"), "fund-1", operator)
    banking.run_jobs()
    message = banking.notification(
        fund.order_no, "FAILED", "500.00", "FUND", reason="AUTHORIZATION_EXPIRED"
    )
    assert banking.notify(message).outcome == "applied"
    done = banking.treasury.get_platform_transfer(fund.transfer_id)
    assert (done.status, done.failure_reason) == ("FAILED", "AUTHORIZATION_EXPIRED")
    assert postings(sql, fund.transfer_id) == []
    assert banking.ledger_ok()


def test_a_transfer_is_frozen_at_once_and_pays_the_member_when_the_bank_says(
    banking: Banking, operator, member, sql
) -> None:
    funded(banking, operator, "100.00")
    paid = banking.treasury.pay_member(
        member.member_id, D("30.00"), "COMPENSATION", "服务中断补偿", "pay-1", operator
    )
    assert (paid.status, paid.authorize_url) == ("PENDING", None)
    assert held(sql, "PLATFORM_FUNDS") == (D("70.00"), D("30.00"))
    assert balances(sql, member.member_id) == (D("0.00"), D("0.00"))
    row = banking.order(paid.order_no)
    assert (row.order_type, row.member_id) == ("TRANSFER", member.member_id)
    assert banking.ledger_ok()

    banking.run_jobs()
    account_no = banking.members.get_fund_account(member).account_no
    assert banking.bank.submitted[-1] == {
        "orderNo": paid.order_no,
        "orderType": "TRANSFER",
        "accountNo": account_no,
        "amount": "30.00",
    }
    assert banking.treasury.get_platform_transfer(paid.transfer_id).authorize_url is None
    message = banking.notification(paid.order_no, "SUCCEEDED", "30.00", "TRANSFER")
    assert banking.notify(message).outcome == "applied"
    assert banking.treasury.get_platform_transfer(paid.transfer_id).status == "SUCCESS"
    assert held(sql, "PLATFORM_FUNDS") == (D("70.00"), D("0.00"))
    assert held(sql, "COMPENSATION_EXPENSE") == (D("30.00"), D("0.00"))
    assert balances(sql, member.member_id) == (D("30.00"), D("0.00"))
    with sql.connect() as conn:
        body = conn.execute(
            text(
                "SELECT body FROM member_message WHERE member_id = :m"
                " AND ref_type = 'platform_transfer'"
            ),
            {"m": member.member_id},
        ).scalar_one()
    assert "30.00" in body and "补偿：服务中断补偿" in body
    assert banking.ledger_ok()


@pytest.mark.parametrize("how", ["notified", "refused at once"])
def test_a_transfer_the_bank_fails_is_released(
    banking: Banking, operator, member, sql, how: str
) -> None:
    funded(banking, operator, "100.00")
    if how == "refused at once":
        banking.bank.result, banking.bank.reason = protocol.REFUSED, "INSUFFICIENT_BALANCE"
    paid = banking.treasury.pay_member(
        member.member_id, D("30.00"), "MARKETING", None, "pay-1", operator
    )
    banking.run_jobs()
    if how == "notified":
        message = banking.notification(
            paid.order_no, "FAILED", "30.00", "TRANSFER", reason="DECLINED_BY_BANK"
        )
        assert banking.notify(message).outcome == "applied"
    done = banking.treasury.get_platform_transfer(paid.transfer_id)
    reason = "DECLINED_BY_BANK" if how == "notified" else "INSUFFICIENT_BALANCE"
    assert (done.status, done.failure_reason) == ("FAILED", reason)
    assert held(sql, "PLATFORM_FUNDS") == (D("100.00"), D("0.00"))
    assert balances(sql, member.member_id) == (D("0.00"), D("0.00"))
    assert banking.ledger_ok()


def test_the_banks_fees_on_the_platforms_own_orders_leave_its_account(
    banking: Banking, operator, member, sql
) -> None:
    """A FUND's fee comes out of what it brought, a TRANSFER's out of what remains: both are
    posted after the order's own effect, from PLATFORM_FUNDS."""
    fund = banking.treasury.fund_platform_account(D("100.00"), "fund-1", operator)
    banking.run_jobs()
    banking.notify(banking.notification(fund.order_no, "SUCCEEDED", "100.00", "FUND", fee="1.00"))
    paid = banking.treasury.pay_member(
        member.member_id, D("99.00"), "MARKETING", None, "pay-1", operator
    )
    banking.run_jobs()
    message = banking.notification(paid.order_no, "SUCCEEDED", "99.00", "TRANSFER", fee="0.00")
    assert banking.notify(message).outcome == "applied"
    assert held(sql, "PLATFORM_FUNDS") == (D("0.00"), D("0.00"))
    assert held(sql, "BANK_FEES") == (D("1.00"), D("0.00"))
    account = banking.treasury.get_platform_account()
    assert (account.owner_funding, account.bank_fees, account.marketing_expense) == (
        D("100.00"),
        D("1.00"),
        D("99.00"),
    )
    assert banking.ledger_ok()


def test_a_fund_left_in_doubt_is_handed_to_operators_without_a_member(
    banking: Banking, operator, clock
) -> None:
    """A FUND whose answer never came stays UNKNOWN; past bank.doubt_age_seconds it is listed
    among the orders in doubt, with no member: it serves the platform's own account."""
    banking.bank.result = None
    fund = banking.treasury.fund_platform_account(D("500.00"), "fund-1", operator)
    banking.run_jobs()
    assert banking.order(fund.order_no).status == "UNKNOWN"
    clock.advance(days=2)
    banking.orders.query_due()
    [doubt] = banking.platform.service(ReconciliationService).list_orders_in_doubt().items
    assert (doubt.order_no, doubt.order_type, doubt.member_id) == (fund.order_no, "FUND", None)
    assert banking.ledger_ok()


def test_money_frozen_on_the_platforms_account_for_no_pending_transfer_is_reported(
    banking: Banking, operator, member, sql
) -> None:
    funded(banking, operator, "100.00")
    banking.treasury.pay_member(member.member_id, D("30.00"), "MARKETING", None, "p-1", operator)
    assert banking.ledger_ok()  # frozen for the PENDING transfer
    with sql.begin() as conn:  # the transfer ended without its posting, behind the code's back
        conn.execute(
            text("UPDATE platform_transfer SET status = 'FAILED', finished_at = created_at")
        )
    report = LedgerAudit(banking.platform.tx).run()
    assert {c.name: c.problems for c in report.checks if not c.ok} == {
        "every frozen fen is accounted for": (
            "the platform's own account: frozen 30.00, held for transfers 0.00",
        )
    }
