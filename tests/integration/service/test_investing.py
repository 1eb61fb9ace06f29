"""Investing, failure (流标), cancellation and disbursement on SQLite and MariaDB: the rules,
idempotency, and every fen checked with plain SQL and the ledger audit after each scenario."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from sqlalchemy import text

from server.cli import main
from service.audit import LedgerAudit
from service.errors import BusinessError
from service.p2p import LoanService
from service.p2p.investing import platform_fee
from service.p2p.listing import AuditRequest
from service.payment import PaymentService
from service.security import Principal

D = Decimal
APPROVE = AuditRequest(approve=True, reason=None)
_request_nos = itertools.count(1)


def rno() -> str:
    return f"req-{next(_request_nos)}"


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


# -- fixtures and plain-SQL views ------------------------------------------------------------


@pytest.fixture
def investor(platform, make_member):
    """Factory: an investor recharged with ``funds`` through the payment service."""
    payments = platform.service(PaymentService)

    def factory(funds: str = "10000.00") -> Principal:
        member = make_member("INVESTOR")
        caller = Principal(member_id=member.member_id, role="INVESTOR")
        if D(funds):
            payments.recharge(D(funds), rno(), caller)
        return caller

    return factory


@pytest.fixture
def raising(loans, operator, loan_request):
    """Factory: a listing published and approved, now RAISING."""

    def factory(**terms):
        vo = loans.publish_loan(loan_request(**terms), operator)
        return loans.audit_loan(vo.loan_id, APPROVE, operator)

    return factory


@pytest.fixture
def audit(platform):
    """The whole-database invariant check (`p2p check-ledger`), asserted clean."""

    def check() -> None:
        report = LedgerAudit(platform.tx).run()
        assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]

    return check


def balance(sql, member_id: int) -> tuple[Decimal, Decimal]:
    with sql.connect() as conn:
        available, frozen = conn.execute(
            text("SELECT available, frozen FROM account WHERE member_id = :m"), {"m": member_id}
        ).one()
    return D(available) / 100, D(frozen) / 100


def platform_balance(sql, code: str) -> Decimal:
    with sql.connect() as conn:
        fen = conn.execute(
            text("SELECT available FROM account WHERE code = :c"), {"c": code}
        ).scalar_one()
    return D(fen) / 100


def loan_row(sql, loan_id: int):
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT status, raised, fee, disbursed_at, reject_reason FROM loan WHERE id = :id"
            ),
            {"id": loan_id},
        ).one()


def investments(sql, loan_id: int) -> list:
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, investor_id, amount, status FROM investment WHERE loan_id = :l"
                " ORDER BY id"
            ),
            {"l": loan_id},
        ).all()


def postings(sql, business_type: str) -> list:
    """(posting id, ref_type, ref_id, entry count, debits, credits) of one business type."""
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT p.id, p.ref_type, p.ref_id, COUNT(e.id),"
                " SUM(CASE WHEN e.direction = 'D' THEN e.amount ELSE 0 END),"
                " SUM(CASE WHEN e.direction = 'C' THEN e.amount ELSE 0 END)"
                " FROM posting p JOIN posting_entry e ON e.posting_id = p.id"
                " WHERE p.business_type = :b GROUP BY p.id, p.ref_type, p.ref_id ORDER BY p.id"
            ),
            {"b": business_type},
        ).all()


def count(sql, table: str) -> int:
    with sql.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


# -- investing -------------------------------------------------------------------------------


def test_invest_freezes_funds_and_raises_the_listing(loans, investor, raising, sql, audit, clock):
    loan = raising()
    alice = investor("1000.00")
    vo = loans.invest(loan.loan_id, D("300.00"), "a-1", alice)
    assert (vo.loan_id, vo.amount, vo.status, vo.created_at) == (
        loan.loan_id,
        D("300.00"),
        "FROZEN",
        clock.now,
    )
    assert balance(sql, alice.member_id) == (D("700.00"), D("300.00"))
    assert [tuple(r) for r in investments(sql, loan.loan_id)] == [
        (vo.investment_id, alice.member_id, 30000, "FROZEN")
    ]
    assert loan_row(sql, loan.loan_id).raised == 30000
    assert loans.get_loan(loan.loan_id).raised == D("300.00")
    [freeze] = postings(sql, "INVEST")
    assert freeze[1:] == ("investment", vo.investment_id, 2, 30000, 30000)
    audit()


def test_a_repeated_request_returns_the_first_investment(loans, investor, raising, sql, audit):
    loan = raising()
    alice = investor("1000.00")
    first = loans.invest(loan.loan_id, D("300.00"), "same", alice)
    assert loans.invest(loan.loan_id, D("300.00"), "same", alice) == first
    assert balance(sql, alice.member_id) == (D("700.00"), D("300.00"))
    assert len(investments(sql, loan.loan_id)) == 1
    assert loan_row(sql, loan.loan_id).raised == 30000
    e = error_of(loans.invest, loan.loan_id, D("400.00"), "same", alice)
    assert e.code == "REQUEST_NO_REUSED"
    other = raising()
    assert error_of(loans.invest, other.loan_id, D("300.00"), "same", alice).code == (
        "REQUEST_NO_REUSED"
    )
    audit()


def test_a_failed_request_moves_nothing_and_may_be_sent_again(
    loans, investor, raising, sql, platform, audit
):
    loan = raising()
    poor = investor("100.00")
    e = error_of(loans.invest, loan.loan_id, D("200.00"), "retry-me", poor)
    assert e.code == "INSUFFICIENT_FUNDS"
    assert balance(sql, poor.member_id) == (D("100.00"), D("0.00"))
    assert investments(sql, loan.loan_id) == []
    assert loan_row(sql, loan.loan_id).raised == 0
    platform.service(PaymentService).recharge(D("100.00"), rno(), poor)
    vo = loans.invest(loan.loan_id, D("200.00"), "retry-me", poor)
    assert vo.status == "FROZEN"
    assert balance(sql, poor.member_id) == (D("0.00"), D("200.00"))
    audit()


@pytest.mark.parametrize("status", ["PENDING_AUDIT", "REJECTED"])
def test_only_a_raising_listing_takes_investments(
    loans, operator, loan_request, investor, status, sql
):
    vo = loans.publish_loan(loan_request(), operator)
    if status == "REJECTED":
        loans.audit_loan(vo.loan_id, AuditRequest(approve=False, reason="资料不全"), operator)
    e = error_of(loans.invest, vo.loan_id, D("100.00"), rno(), investor())
    # Not yet public: the investor is told what a missing listing answers.
    assert (e.code, e.message) == ("LOAN_NOT_FOUND", f"listing {vo.loan_id} does not exist")
    assert count(sql, "investment") == 0


def test_raising_ends_at_the_deadline(loans, investor, raising, clock, sql):
    loan = raising(raise_days=7)
    alice = investor()
    clock.advance(days=7, seconds=-1)
    loans.invest(loan.loan_id, D("100.00"), rno(), alice)
    clock.advance(seconds=1)
    e = error_of(loans.invest, loan.loan_id, D("100.00"), rno(), alice)
    assert e.code == "RAISING_ENDED"
    assert loan_row(sql, loan.loan_id).raised == 10000


def test_amount_rules(loans, investor, raising, sql, audit):
    loan = raising(amount=D("1000.00"), min_invest=D("300.00"), max_invest_per_investor=D("500.00"))
    alice, bob, carol = investor(), investor(), investor()
    cases = [
        (D("299.99"), alice, "INVEST_BELOW_MINIMUM", "minInvest"),
        (D("0.00"), alice, "VALIDATION_FAILED", "amount"),
        (D("300.001"), alice, "VALIDATION_FAILED", "amount"),
        (D("500.01"), alice, "INVEST_CAP_EXCEEDED", "500.00"),
    ]
    for amount, who, code, word in cases:
        e = error_of(loans.invest, loan.loan_id, amount, rno(), who)
        assert (e.code, word in e.message) == (code, True), e.message
    loans.invest(loan.loan_id, D("300.00"), rno(), alice)
    e = error_of(loans.invest, loan.loan_id, D("300.00"), rno(), alice)  # 600 in total
    assert e.code == "INVEST_CAP_EXCEEDED"
    loans.invest(loan.loan_id, D("500.00"), rno(), bob)
    # 200 remain, less than minInvest: exactly the remainder, nothing else
    e = error_of(loans.invest, loan.loan_id, D("100.00"), rno(), carol)
    assert e.code == "INVEST_BELOW_MINIMUM"
    assert "exactly the 200.00 remaining" in e.message
    e = error_of(loans.invest, loan.loan_id, D("300.00"), rno(), carol)
    assert e.code == "INVEST_ABOVE_REMAINING"
    loans.invest(loan.loan_id, D("200.00"), rno(), carol)
    stored = loan_row(sql, loan.loan_id)
    assert (stored.status, stored.raised) == ("FULL", 100000)
    e = error_of(loans.invest, loan.loan_id, D("300.00"), rno(), carol)
    assert e.code == "LOAN_STATE_INVALID"
    assert "FULL" in e.message
    audit()


def test_a_borrower_never_invests_in_their_own_listing(loans, raising, borrower, sql):
    loan = raising()
    as_investor = Principal(member_id=borrower.member_id, role="INVESTOR")
    e = error_of(loans.invest, loan.loan_id, D("100.00"), rno(), as_investor)
    assert e.code == "OWN_LOAN"
    assert count(sql, "investment") == 0


def test_unknown_listing(loans, investor):
    assert error_of(loans.invest, 999999, D("100.00"), rno(), investor()).code == ("LOAN_NOT_FOUND")


# -- disbursement ----------------------------------------------------------------------------


def fill(loans, loan, investors, amounts) -> list:
    return [
        loans.invest(loan.loan_id, D(a), rno(), who)
        for who, a in zip(investors, amounts, strict=True)
    ]


def test_disbursement_moves_frozen_funds_to_the_borrower_less_the_fee(
    loans, investor, raising, operator, borrower, sql, audit, clock
):
    loan = raising(amount=D("10000.01"), term_months=6)
    people = [investor(), investor(), investor()]
    made = fill(loans, loan, people, ["3333.33", "3333.34", "3333.34"])
    assert loan_row(sql, loan.loan_id).status == "FULL"
    clock.advance(days=1)
    vo = loans.disburse_loan(loan.loan_id, "d-1", operator)
    fee = D("100.00")  # 1% of 10000.01 = 100.0001, half up to the fen
    assert (vo.status, vo.raised) == ("REPAYING", D("10000.01"))
    stored = loan_row(sql, loan.loan_id)
    assert (stored.status, stored.fee, stored.raised) == ("REPAYING", 10000, 1000001)
    assert stored.disbursed_at is not None
    assert balance(sql, borrower.member_id) == (D("10000.01") - fee, D("0.00"))
    assert platform_balance(sql, "FEE_INCOME") == fee
    # The fee leaves the members' money at the bank for the platform's own account.
    assert platform_balance(sql, "PLATFORM_FUNDS") == fee
    for who in people:
        assert balance(sql, who.member_id)[1] == D("0.00")
    assert {r.status for r in investments(sql, loan.loan_id)} == {"ACTIVE"}
    [posting] = postings(sql, "DISBURSE")
    # Three investors, the borrower, FEE_INCOME, and the fee from CLEARING to PLATFORM_FUNDS.
    assert posting[1:] == ("loan", loan.loan_id, 7, 1010001, 1010001)
    with sql.connect() as conn:
        n, first_due = conn.execute(
            text("SELECT COUNT(*), MIN(due_date) FROM installment WHERE loan_id = :l"),
            {"l": loan.loan_id},
        ).one()
        assert (n, str(first_due)) == (6, "2026-04-02")  # a month after the disbursement day
        receipts = conn.execute(
            text("SELECT COUNT(DISTINCT investment_id), COUNT(*) FROM receipt WHERE loan_id = :l"),
            {"l": loan.loan_id},
        ).one()
    assert tuple(receipts) == (3, 18)
    assert {m.investment_id for m in made} == {r.id for r in investments(sql, loan.loan_id)}
    # a repeat moves nothing; another request is refused by the listing's status
    assert loans.disburse_loan(loan.loan_id, "d-1", operator).status == "REPAYING"
    assert len(postings(sql, "DISBURSE")) == 1
    e = error_of(loans.disburse_loan, loan.loan_id, "d-2", operator)
    assert (e.code, "REPAYING" in e.message) == ("LOAN_STATE_INVALID", True)
    audit()


def test_only_a_full_listing_is_disbursed(loans, investor, raising, operator, sql):
    loan = raising()
    loans.invest(loan.loan_id, D("100.00"), rno(), investor())
    e = error_of(loans.disburse_loan, loan.loan_id, rno(), operator)
    assert (e.code, "RAISING" in e.message) == ("LOAN_STATE_INVALID", True)
    assert postings(sql, "DISBURSE") == []


@pytest.mark.parametrize(
    ("amount", "rate", "fee"),
    [
        ("10000.01", "0.0100", "100.00"),
        ("50.00", "0.0001", "0.01"),  # 0.005 rounds half up
        ("49.99", "0.0001", "0.00"),  # 0.004999 rounds down; no fee leg is posted
        ("50000000.00", "0.0350", "1750000.00"),
    ],
)
def test_platform_fee_rounds_half_up_to_the_fen(amount, rate, fee):
    assert platform_fee(D(amount), D(rate)) == D(fee)


def test_auto_disbursement_in_the_investing_transaction(
    make_platform, investor, raising, borrower, sql, audit
):
    loan = raising(amount=D("1000.00"))
    auto = make_platform(**{"loan.auto_disburse": True, "loan.platform_fee_rate": "0.0250"})
    service = auto.service(LoanService)
    alice, bob = investor(), investor()
    service.invest(loan.loan_id, D("400.00"), rno(), alice)
    assert loan_row(sql, loan.loan_id).status == "RAISING"
    service.invest(loan.loan_id, D("600.00"), rno(), bob)
    stored = loan_row(sql, loan.loan_id)
    assert (stored.status, stored.fee) == ("REPAYING", 2500)
    assert balance(sql, borrower.member_id) == (D("975.00"), D("0.00"))
    assert count(sql, "installment") == 12
    audit()


# -- cancellation and failure ----------------------------------------------------------------


@pytest.mark.parametrize("stage", ["PENDING_AUDIT", "REJECTED", "RAISING", "FULL"])
def test_cancel_releases_every_frozen_investment(
    loans, operator, loan_request, investor, stage, sql, audit
):
    vo = loans.publish_loan(loan_request(amount=D("1000.00")), operator)
    people = []
    if stage == "REJECTED":
        loans.audit_loan(vo.loan_id, AuditRequest(approve=False, reason="x"), operator)
    if stage in ("RAISING", "FULL"):
        loans.audit_loan(vo.loan_id, APPROVE, operator)
        people = [investor("2000.00"), investor("2000.00")]
        amounts = ["300.00", "700.00" if stage == "FULL" else "200.00"]
        fill(loans, vo, people, amounts)
    assert loan_row(sql, vo.loan_id).status == stage
    out = loans.cancel_loan(vo.loan_id, "  借款人撤回  ", operator)
    assert (out.status, out.raised, out.reject_reason) == ("CANCELLED", D("0.00"), "借款人撤回")
    stored = loan_row(sql, vo.loan_id)
    assert (stored.status, stored.raised) == ("CANCELLED", 0)
    assert {r.status for r in investments(sql, vo.loan_id)} <= {"RELEASED"}
    for who in people:
        assert balance(sql, who.member_id) == (D("2000.00"), D("0.00"))
    released = postings(sql, "CANCEL")
    assert sorted(p[2] for p in released) == [r.id for r in investments(sql, vo.loan_id)]
    assert all(p[3] == 2 and p[4] == p[5] for p in released)
    e = error_of(loans.cancel_loan, vo.loan_id, "again", operator)
    assert (e.code, "CANCELLED" in e.message) == ("LOAN_STATE_INVALID", True)
    audit()


def test_cancel_needs_a_reason_and_an_undisbursed_listing(
    loans, investor, raising, operator, sql, audit
):
    loan = raising(amount=D("100.00"), min_invest=D("100.00"))
    e = error_of(loans.cancel_loan, loan.loan_id, "   ", operator)
    assert (e.code, "reason" in e.message) == ("VALIDATION_FAILED", True)
    loans.invest(loan.loan_id, D("100.00"), rno(), investor())
    loans.disburse_loan(loan.loan_id, rno(), operator)
    e = error_of(loans.cancel_loan, loan.loan_id, "too late", operator)
    assert (e.code, "REPAYING" in e.message) == ("LOAN_STATE_INVALID", True)
    assert loan_row(sql, loan.loan_id).status == "REPAYING"
    audit()


def test_close_expired_fails_only_raising_listings_past_their_deadline(
    loans, investor, raising, operator, sql, clock, audit
):
    early = raising(raise_days=3, amount=D("1000.00"))
    late = raising(raise_days=10)
    full = raising(raise_days=3, amount=D("100.00"), min_invest=D("100.00"))
    alice, bob = investor("1000.00"), investor("1000.00")
    loans.invest(early.loan_id, D("300.00"), rno(), alice)
    loans.invest(early.loan_id, D("400.00"), rno(), bob)
    loans.invest(late.loan_id, D("100.00"), rno(), alice)
    loans.invest(full.loan_id, D("100.00"), rno(), bob)
    clock.advance(days=2)
    assert loans.close_expired_loans().failed == 0
    clock.advance(days=1)  # exactly early's deadline: raising has ended
    assert loans.close_expired_loans().failed == 1
    assert [loan_row(sql, x.loan_id).status for x in (early, late, full)] == [
        "FAILED",
        "RAISING",
        "FULL",
    ]
    assert loan_row(sql, early.loan_id).raised == 0
    assert [r.status for r in investments(sql, early.loan_id)] == ["RELEASED", "RELEASED"]
    assert balance(sql, alice.member_id) == (D("900.00"), D("100.00"))
    assert balance(sql, bob.member_id) == (D("900.00"), D("100.00"))
    assert len(postings(sql, "FAIL")) == 2
    assert loans.close_expired_loans().failed == 0
    audit()


def test_close_expired_loans_command(service_url, loans, investor, raising, sql, clock, capsys):
    loan = raising(raise_days=1)
    alice = investor("500.00")
    loans.invest(loan.loan_id, D("500.00"), rno(), alice)
    clock.advance(days=1)
    assert main(["close-expired-loans", "--set", f"database.url={service_url}"]) == 0
    assert "1 expired listing(s) marked FAILED" in capsys.readouterr().out
    assert loan_row(sql, loan.loan_id).status == "FAILED"
    assert balance(sql, alice.member_id) == (D("500.00"), D("0.00"))


# -- listing one's investments ---------------------------------------------------------------


def test_list_investments_newest_first_filtered_and_paged(loans, investor, raising):
    one, two = raising(), raising()
    alice, bob = investor(), investor()
    a1 = loans.invest(one.loan_id, D("100.00"), rno(), alice)
    a2 = loans.invest(two.loan_id, D("200.00"), rno(), alice)
    loans.invest(one.loan_id, D("300.00"), rno(), bob)
    a3 = loans.invest(one.loan_id, D("400.00"), rno(), alice)
    page = loans.list_investments(alice)
    assert [i.investment_id for i in page.items] == [
        a3.investment_id,
        a2.investment_id,
        a1.investment_id,
    ]
    assert (page.total, page.page) == (3, 1)
    mine_in_one = loans.list_investments(alice, loan_id=one.loan_id, page=2, page_size=1)
    assert [i.investment_id for i in mine_in_one.items] == [a1.investment_id]
    assert (mine_in_one.total, mine_in_one.page_size) == (2, 1)
    assert loans.list_investments(bob, loan_id=two.loan_id).total == 0
    assert error_of(loans.list_investments, alice, None, 0).code == "VALIDATION_FAILED"
