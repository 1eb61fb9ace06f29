"""The reconciliation of the platform's own account at the bank, against the bank simulator
served over HTTP from a thread, on SQLite and MariaDB, time moved by the clock: the BALANCE
file's line without a member is compared with PLATFORM_FUNDS at the end of the day. A day with
the owners' funding, the bank's fees on every kind of order, a disbursement's service fee and
payments to members is clean; a movement of the platform's account the platform never heard
of is the platform line's BALANCE discrepancy, naming no member."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from banksim.bank import _move
from banksim.books import stamp
from service.ocp import protocol
from service.ocp.client import HttpBankClient
from service.p2p import LoanRequest, LoanService
from service.p2p.listing import AuditRequest
from service.reconciliation import ReconciliationService
from tests.integration.service.bankworld import World, bank_world, onboarded

D = Decimal
DAY = "2026-03-01"  # the clock's START, 16:30 in Shanghai
#: The bank's fees, taken from the platform's account, and what the owners fund it with first.
FEES = {
    "FUND": D("0.50"),
    "RECHARGE": D("1.00"),
    "FREEZE": D("0.30"),
    "DISBURSE": D("0.10"),
    "TRANSFER": D("0.20"),
}
FUNDS = "50.00"


@pytest.fixture
def world(tmp_path: Path, clock, service_url) -> Iterator[World]:
    yield from bank_world(tmp_path, clock, service_url, auto_authorize=True, fees=FEES, funds=FUNDS)


@pytest.fixture
def recon(world: World) -> Iterator[ReconciliationService]:
    """The platform's reconciliation, its files fetched with a patient read timeout (the
    world's 0.5 s is for the orders' timeout faults)."""
    service = world.platform.service(ReconciliationService)
    settings = world.platform.settings.current()
    patient = SimpleNamespace(bank=replace(settings.bank, read_timeout_seconds=10.0))
    service._client = HttpBankClient(patient, clock=world.clock)
    yield service
    service._client.close()


def next_day(world: World) -> None:
    world.clock.advance(hours=9)  # 01:30 the next day in Shanghai


def found(recon: ReconciliationService) -> Counter:
    page = recon.list_discrepancies(page_size=100)
    return Counter(item.category for item in page.items)


def platform_line(world: World) -> Decimal:
    """The platform's own account at the bank now, available + frozen."""
    [mine] = [a for a in world.bank.accounts() if a["accountNo"] == world.bank.platform_account_no]
    return D(mine["available"]) + D(mine["frozen"])


def lent(world: World, investor, borrower):
    """A listing of 1000.00 at 12% over 12 months, published, invested in whole by
    ``investor`` and disbursed to ``borrower`` at the bank: REPAYING."""
    loans, operator = world.platform.service(LoanService), world.operator()
    terms = LoanRequest(
        title="周转借款",
        description="经营周转",
        borrower_id=borrower.member_id,
        amount=D("1000.00"),
        annual_rate=D("12.0"),
        term_months=12,
        repayment_method="EQUAL_INSTALLMENT",
        min_invest=D("100.00"),
        max_invest_per_investor=None,
        raise_days=7,
    )
    loan = loans.publish_loan(terms, operator)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    loans.invest(loan.loan_id, D("1000.00"), "inv-1", investor)
    world.settle()
    assert loans.disburse_loan(loan.loan_id, "dis-1", operator).status == "DISBURSING"
    world.settle()
    assert loans.get_loan(loan.loan_id).status == "REPAYING"
    return loan


def test_a_day_of_funding_fees_a_disbursement_and_payments_to_members_is_clean(
    world: World, recon, make_member, identities
) -> None:
    investor, _, _ = onboarded(world, make_member, identities)
    borrower, _, _ = onboarded(world, make_member, identities, "BORROWER")
    world.payments.recharge(D("1000.00"), "rc-fund", investor)
    world.settle()
    operator = world.operator()
    lent(world, investor, borrower)
    for n, who in enumerate((investor, borrower)):
        world.treasury.pay_member(
            who.member_id, D("5.00"), "MARKETING", "奖励", f"pay-{n}", operator
        )
    world.settle()
    assert world.treasury.list_platform_transfers(status="SUCCESS").total == 3

    account = world.treasury.get_platform_account()
    # 50.00 funded, 10.00 of service fee (1% of the listing), 10.00 paid to members, and the
    # bank's fees: FUND 0.50, RECHARGE 1.00, FREEZE 0.30, DISBURSE 0.10, two TRANSFERs 0.40.
    assert (account.owner_funding, account.fee_income, account.bank_fees) == (
        D("50.00"),
        D("10.00"),
        D("2.30"),
    )
    assert account.available + account.frozen == D("47.70") == platform_line(world)
    world.books_agree(investor, world.members.get_fund_account(investor).account_no)

    next_day(world)
    run = recon.run_day(date.fromisoformat(DAY))
    assert run.status == "SUCCEEDED"
    assert found(recon) == Counter()


def test_a_day_of_repayments_keeping_the_interest_service_fee_is_clean(
    tmp_path: Path, clock, service_url, make_member, identities
) -> None:
    """At 10% of the interest, the simulator pays each REPAY item's serviceFee (its receipt's
    fee) into the platform's account: the investor's sub-account and the platform's line agree
    with the platform's books, and the day reconciles clean."""
    rate = {"repayment.interest_fee_rate": "0.1000"}
    worlds = bank_world(tmp_path, clock, service_url, auto_authorize=True, overrides=rate)
    world = next(worlds)
    try:
        investor, _, investor_account = onboarded(world, make_member, identities)
        borrower, _, borrower_account = onboarded(world, make_member, identities, "BORROWER")
        world.payments.recharge(D("1000.00"), "rc-investor", investor)
        world.payments.recharge(D("200.00"), "rc-borrower", borrower)
        world.settle()
        loans = world.platform.service(LoanService)
        loan = lent(world, investor, borrower)
        assert loans.repay(loan.loan_id, "pay-1", borrower).status == "PENDING"
        world.settle(rounds=2)
        [receipt] = loans.list_receipts(loan.loan_id, 1, 1, investor).items
        assert receipt.status == "RECEIVED"
        # 1000.00 at 12% a year: 10.00 of interest in the first month, 1.00 of it the fee
        # (a REGULAR investor: no discount).
        assert (receipt.interest, receipt.fee) == (D("10.00"), D("1.00"))

        account = world.treasury.get_platform_account()
        # 10.00 of disbursement service fee (1% of the listing) and the 1.00 interest fee.
        assert account.fee_income == D("11.00")
        assert account.available + account.frozen == D("11.00") == platform_line(world)
        got = world.books_agree(investor, investor_account)
        assert got == receipt.amount - receipt.fee
        world.books_agree(borrower, borrower_account)

        next_day(world)
        recon = world.platform.service(ReconciliationService)
        settings = world.platform.settings.current()
        patient = SimpleNamespace(bank=replace(settings.bank, read_timeout_seconds=10.0))
        recon._client = HttpBankClient(patient, clock=world.clock)
        try:
            assert recon.run_day(date.fromisoformat(DAY)).status == "SUCCEEDED"
            assert found(recon) == Counter()
        finally:
            recon._client.close()
    finally:
        worlds.close()


def test_a_movement_of_the_platforms_account_the_platform_never_heard_of_is_found(
    world: World, recon, operator
) -> None:
    """The bank takes 3.00 from the platform's account outside any order (a charge of its
    own): the platform line differs from PLATFORM_FUNDS by that, one BALANCE discrepancy
    naming the account and no member; an operator explains it."""
    at_bank = platform_line(world)
    with world.bank.books.transaction() as db:
        now = stamp(world.clock())
        _move(db, world.bank.platform_account_no, None, "CHARGE", D("-3.00"), D("0.00"), now)
    next_day(world)
    run = recon.run_day(date.fromisoformat(DAY))
    assert (run.status, run.balance_mismatches) == ("SUCCEEDED", 1)
    assert found(recon) == Counter({"BALANCE": 1})
    [item] = recon.list_discrepancies(page_size=100).items
    merchant = world.platform.settings.current().bank.merchant_id
    assert (item.subject, item.member_id) == (protocol.platform_account_no(merchant), None)
    assert (item.bank_amount, item.platform_amount) == (at_bank - D("3.00"), at_bank)
    explained = recon.resolve_discrepancy(
        item.discrepancy_id, "EXPLAIN", "银行收取的账户管理费", "fix-1", operator
    )
    assert explained.resolution == "EXPLAIN"


def test_a_fee_the_platform_learns_of_after_midnight_counts_for_the_day_the_bank_took_it(
    world: World, recon, make_member, identities
) -> None:
    """The bank finishes a recharge (and takes its fee) before midnight and never notifies;
    the platform's query learns of it after midnight: its fee posting is dated by the order's
    finish, so both lines of the day agree."""
    investor, _, account_no = onboarded(world, make_member, identities)
    world.arm("RECHARGE", "never_notify")
    world.payments.recharge(D("100.00"), "rc-late", investor)
    world.clock.advance(seconds=3)
    world.bank.run_due()  # the bank finishes it on the day; the platform hears nothing
    next_day(world)
    world.settle(seconds=120)  # the query on doubt learns it, after midnight
    assert world.treasury.get_platform_account().bank_fees == D("1.50")  # FUND and RECHARGE
    world.books_agree(investor, account_no)
    run = recon.run_day(date.fromisoformat(DAY))
    assert (run.status, run.balance_mismatches) == ("SUCCEEDED", 0)
    assert found(recon) == Counter()
