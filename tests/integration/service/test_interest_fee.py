"""The interest service fee (repayment.interest_fee_rate, service/p2p/fees.py) on SQLite and
MariaDB, at 10%: a SILVER investor (fee_discount 0.05, 5000.00 invested) and a REGULAR one
are repaid an installment, a settlement and, at the bank, REPAY items whose service fee is
the receipt's fee. Each fee is computed here independently, in whole fen; balances, FEE_INCOME
and the ledger check are exact after every step."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.ocp import protocol
from service.p2p import AuditRequest, LoanService
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.banking import Banking

D = Decimal
SILVER, REGULAR = D("5000.00"), D("1234.57")  # 5000.00 is SILVER's first fen; REGULAR's below
#: The fee per fen of interest, by level: 10% less SILVER's 5% discount, 10% for REGULAR, as
#: thousandths (fee in fen = interest in fen x per-mille // 1000: rounded down).
PER_MILLE = {SILVER: 95, REGULAR: 100}
RATE = {"repayment.interest_fee_rate": "0.1000"}
_numbers = itertools.count(1)


def rows(sql, query: str, **params) -> list:
    with sql.connect() as conn:
        return list(conn.execute(text(query), params))


def available(sql, member_id: int) -> int:
    [(fen,)] = rows(sql, "SELECT available FROM account WHERE member_id = :m", m=member_id)
    return int(fen)


def platform_balance(sql, code: str) -> int:
    [(fen,)] = rows(sql, "SELECT available FROM account WHERE code = :c", c=code)
    return int(fen)


def receipts(sql, loan_id: int, status: str = "RECEIVED") -> list:
    return rows(
        sql,
        "SELECT id, investor_id, period, principal, interest, penalty, fee FROM receipt"
        " WHERE loan_id = :l AND status = :s ORDER BY period, id",
        l=loan_id,
        s=status,
    )


def yuan(fen: int) -> Decimal:
    return (D(fen) / 100).quantize(D("0.01"))


def expected_fee(interest_fen: int, invested: Decimal) -> int:
    return interest_fen * PER_MILLE[invested] // 1000


def ledger_ok(platform) -> None:
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]


@pytest.fixture
def platform(make_platform):
    """The test's platform charges 10% of the interest (the default levels: SILVER waives
    5% of it, REGULAR nothing)."""
    return make_platform(**RATE)


@pytest.fixture
def me(borrower) -> Principal:
    return Principal(member_id=borrower.member_id, role="BORROWER")


@pytest.fixture
def listing(platform, operator, make_member, loan_request, me):
    """Factory: a listing lent to the borrower by a SILVER and a REGULAR investor (through
    the platform's sandbox services), the borrower recharged for the interest; the listing
    id and the investors by what they invested."""
    loans = platform.service(LoanService)
    payments = platform.service(PaymentService)

    def factory(method: str = "EQUAL_INSTALLMENT", term: int = 6):
        request = loan_request(
            amount=SILVER + REGULAR, repayment_method=method, term_months=term, min_invest=D("1")
        )
        vo = loans.publish_loan(request, operator)
        loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
        investors = {}
        for amount in (SILVER, REGULAR):
            m = make_member("INVESTOR")
            who = Principal(member_id=m.member_id, role="INVESTOR")
            payments.recharge(amount, f"r{next(_numbers)}", who)
            loans.invest(vo.loan_id, amount, f"i{next(_numbers)}", who)
            investors[amount] = who
        loans.disburse_loan(vo.loan_id, f"d{vo.loan_id}", operator)
        payments.recharge(D("5000.00"), f"r{next(_numbers)}", me)
        return vo.loan_id, investors

    return factory


def check_paid(sql, loan_id: int, investors: dict, before: dict, fee_income_before: int) -> int:
    """Every RECEIVED receipt of the listing charged exactly its fee, each investor credited
    exactly what their receipts say less the fees, FEE_INCOME grown by them; the fees."""
    level = {who.member_id: amount for amount, who in investors.items()}
    paid = receipts(sql, loan_id)
    assert paid
    for r in paid:
        assert r.fee == expected_fee(r.interest, level[r.investor_id]), r
    for who in investors.values():
        mine = [r for r in paid if r.investor_id == who.member_id]
        got = sum(r.principal + r.interest + r.penalty - r.fee for r in mine)
        assert available(sql, who.member_id) - before[who.member_id] == got
    fees = sum(r.fee for r in paid)
    assert platform_balance(sql, "FEE_INCOME") - fee_income_before == fees
    return fees


def test_an_installment_and_the_rest_settled_early_each_keep_their_fee(
    platform, listing, me, sql, clock
) -> None:
    loans = platform.service(LoanService)
    loan_id, investors = listing()
    before = {who.member_id: available(sql, who.member_id) for who in investors.values()}
    income = platform_balance(sql, "FEE_INCOME")
    borrower = available(sql, me.member_id)

    clock.advance(days=20)
    vo = loans.repay(loan_id, "pay-1", me)
    assert available(sql, me.member_id) == borrower - int(vo.amount * 100)  # the whole of it
    fees = check_paid(sql, loan_id, investors, before, income)
    assert fees > 0
    assert {r.fee > 0 for r in receipts(sql, loan_id)} == {True}
    ledger_ok(platform)

    # What the investors see: the fee beside the amount, and a message of what they received.
    silver = investors[SILVER]
    [shown] = loans.list_receipts(loan_id, 1, 1, silver).items
    [row] = [r for r in receipts(sql, loan_id) if r.investor_id == silver.member_id]
    assert (shown.fee, shown.amount) == (yuan(row.fee), yuan(row.principal + row.interest))
    net, fee = yuan(row.principal + row.interest - row.fee), yuan(row.fee)
    [(body, body_en)] = rows(
        sql,
        "SELECT body, body_en FROM member_message WHERE member_id = :m AND category = 'REPAYMENT'",
        m=silver.member_id,
    )
    assert f"还款已到账：{net} 元（已扣除平台利息管理费 {fee} 元）。" in body
    assert f"received: {net} yuan (after the platform's interest service fee of {fee} yuan)." in (
        body_en
    )

    # A member never evaluated (no level row) is charged by the level their amount is in.
    with sql.begin() as conn:
        forget = text("DELETE FROM member_level WHERE member_id = :m")
        assert conn.execute(forget, {"m": silver.member_id}).rowcount == 1
    clock.advance(days=10)
    settled = loans.settle_early(loan_id, "all", me)
    assert settled.interest > 0  # CURRENT_PERIOD: the next period's interest, the rest waived
    check_paid(sql, loan_id, investors, before, income)
    waived = [r for r in receipts(sql, loan_id) if r.period > 2]
    assert waived and {(r.interest, r.fee) for r in waived} == {(0, 0)}
    assert available(sql, me.member_id) == borrower - int((vo.amount + settled.amount) * 100)
    ledger_ok(platform)


def test_an_overdue_penalty_pays_no_fee(platform, listing, me, sql, clock) -> None:
    loans = platform.service(LoanService)
    loan_id, investors = listing(term=3)
    before = {who.member_id: available(sql, who.member_id) for who in investors.values()}
    income = platform_balance(sql, "FEE_INCOME")
    clock.advance(days=31 + 40)  # period 1 (due 04-01) and period 2 (due 05-01) overdue
    loans.repay(loan_id, "pay-1", me)
    loans.repay(loan_id, "pay-2", me)
    check_paid(sql, loan_id, investors, before, income)
    assert any(r.penalty for r in receipts(sql, loan_id))  # on the fee: interest only
    ledger_ok(platform)


def test_no_fee_at_rate_zero(make_platform, listing, me, sql, clock) -> None:
    """The default rate charges nothing: the investors get the whole receipt."""
    loan_id, investors = listing()
    before = {who.member_id: available(sql, who.member_id) for who in investors.values()}
    loans = make_platform().service(LoanService)
    income = platform_balance(sql, "FEE_INCOME")
    clock.advance(days=20)
    loans.repay(loan_id, "pay-1", me)
    paid = receipts(sql, loan_id)
    assert {r.fee for r in paid} == {0}
    for r in paid:
        got = available(sql, r.investor_id) - before[r.investor_id]
        assert got == r.principal + r.interest > 0
    assert platform_balance(sql, "FEE_INCOME") == income


def test_at_the_bank_each_repay_item_carries_its_receipts_fee(
    banking: Banking, platform, listing, me, sql
) -> None:
    loan_id, investors = listing(term=3)
    level = {who.member_id: amount for amount, who in investors.items()}
    before = {who.member_id: available(sql, who.member_id) for who in investors.values()}
    income = platform_balance(sql, "FEE_INCOME")
    paid = banking.loans.repay(loan_id, "pay-1", me)
    assert paid.status == "PENDING"
    assert banking.run_jobs() == 1
    [batch] = banking.bank.submitted
    pending = {r.id: r for r in receipts(sql, loan_id, "PENDING") if r.period == 1}
    items = rows(
        sql,
        "SELECT order_no, ref_id, amount, service_fee FROM bank_order"
        " WHERE order_type = 'REPAY' ORDER BY id",
    )
    assert len(items) == 2
    for item, sent in zip(items, batch["items"], strict=True):
        r = pending[item.ref_id]
        fee = expected_fee(r.interest, level[r.investor_id])
        assert fee > 0
        assert (r.fee, item.service_fee) == (fee, fee)  # fixed when the batch is written
        assert sent["serviceFee"] == protocol.format_amount(yuan(fee))
    assert banking.ledger_ok()

    for item in items:
        message = banking.notification(
            item.order_no, "SUCCEEDED", protocol.format_amount(yuan(item.amount)), "REPAY"
        )
        assert banking.notify(message).outcome == "applied"
        assert banking.ledger_ok()
    check_paid(sql, loan_id, investors, before, income)
    [(status,)] = rows(
        sql, "SELECT status FROM installment WHERE loan_id = :l AND period = 1", l=loan_id
    )
    assert status == "PAID"
