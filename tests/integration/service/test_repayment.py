"""Integration tests of repayment (service/p2p/repayment.py) on SQLite and MariaDB: whole
listings repaid by every method with several investors, overdue penalties, early settlement,
idempotency, insufficient funds and ownership. Listings reach REPAYING through the real
flow (recharge, invest, disburse); results are checked with plain SQL and the ledger audit."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.errors import BusinessError
from service.p2p import AuditRequest, LoanService
from service.payment import PaymentService
from service.schedule import METHODS, accrued_penalty, schedule
from service.security import Principal

D = Decimal
ODD = (D("3333.33"), D("1234.57"), D("5432.11"))  # 10000.01 in all
TOPUP = D("5000.00")  # recharged to the borrower for the interest
_numbers = itertools.count(1)


def fen(value: Decimal) -> int:
    return int(value * 100)


def balance(sql, member_id: int) -> tuple[int, int]:
    with sql.connect() as conn:
        row = conn.execute(
            text("SELECT available, frozen FROM account WHERE member_id = :m"), {"m": member_id}
        ).one()
    return int(row[0]), int(row[1])


def fee_income(sql) -> int:
    with sql.connect() as conn:
        return int(conn.scalar(text("SELECT available FROM account WHERE code = 'FEE_INCOME'")))


def scalar(sql, query: str, **params):
    with sql.connect() as conn:
        return conn.scalar(text(query), params)


def rows(sql, query: str, **params) -> list:
    with sql.connect() as conn:
        return list(conn.execute(text(query), params))


@pytest.fixture
def payments(platform):
    return platform.service(PaymentService)


@pytest.fixture
def me(borrower) -> Principal:
    return Principal(member_id=borrower.member_id, role="BORROWER")


@pytest.fixture
def repaying(loans, payments, operator, make_member, loan_request, me):
    """Factory: a disbursed listing of ``amounts`` invested by as many new investors (in
    that order), and the borrower recharged with ``topup`` for the interest. Returns the
    listing id and the investors."""

    def factory(method, amounts=ODD, term=6, topup=TOPUP):
        total = sum(amounts)
        vo = loans.publish_loan(
            loan_request(
                amount=total, repayment_method=method, term_months=term, min_invest=D("0.01")
            ),
            operator,
        )
        loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
        investors = []
        for amount in amounts:
            m = make_member("INVESTOR")
            who = Principal(member_id=m.member_id, role="INVESTOR")
            payments.recharge(amount, f"r{next(_numbers)}", who)
            loans.invest(vo.loan_id, amount, f"i{next(_numbers)}", who)
            investors.append(who)
        loans.disburse_loan(vo.loan_id, f"d{vo.loan_id}", operator)
        if topup:
            payments.recharge(topup, f"r{next(_numbers)}", me)
        return vo.loan_id, investors

    return factory


def ledger_ok(platform) -> None:
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]


def unbalanced_postings(sql) -> int:
    return scalar(
        sql,
        "SELECT COUNT(*) FROM (SELECT posting_id FROM posting_entry GROUP BY posting_id "
        "HAVING SUM(CASE WHEN direction = 'D' THEN amount ELSE -amount END) <> 0) x",
    )


def received_by(sql, loan_id: int, investor_id: int) -> int:
    return int(
        scalar(
            sql,
            "SELECT COALESCE(SUM(principal + interest + penalty), 0) FROM receipt "
            "WHERE loan_id = :l AND investor_id = :i AND status = 'RECEIVED'",
            l=loan_id,
            i=investor_id,
        )
    )


@pytest.mark.parametrize("method", METHODS)
def test_a_whole_listing_is_repaid_exactly_to_every_investor(
    method, repaying, loans, me, sql, clock, platform
):
    loan_id, investors = repaying(method)
    before = {who.member_id: balance(sql, who.member_id)[0] for who in investors}
    borrower_before = balance(sql, me.member_id)[0]
    plan = schedule(sum(ODD), D("12.5"), 6, method)
    paid = []
    for row in plan:
        clock.advance(days=20)  # always before the next due date: no penalty
        vo = loans.repay(loan_id, f"pay{row.period}", me)
        assert (vo.period, vo.principal, vo.interest, vo.penalty) == (
            row.period,
            row.principal,
            row.interest,
            D("0.00"),
        )
        paid.append(vo)
    assert [vo.settled for vo in paid] == [False] * (len(plan) - 1) + [True]
    total = sum(r.payment for r in plan)
    assert balance(sql, me.member_id)[0] == borrower_before - fen(total)
    for who in investors:
        gain = balance(sql, who.member_id)[0] - before[who.member_id]
        assert gain == received_by(sql, loan_id, who.member_id)
    principal_back = [
        int(
            scalar(
                sql,
                "SELECT SUM(principal) FROM receipt WHERE loan_id = :l AND investor_id = :i",
                l=loan_id,
                i=who.member_id,
            )
        )
        for who in investors
    ]
    assert principal_back == [fen(a) for a in ODD]
    assert sum(balance(sql, w.member_id)[0] - before[w.member_id] for w in investors) == fen(total)
    assert rows(sql, "SELECT status FROM loan WHERE id = :l", l=loan_id) == [("SETTLED",)]
    assert scalar(sql, "SELECT settled_at FROM loan WHERE id = :l", l=loan_id) is not None
    assert {
        r[0] for r in rows(sql, "SELECT status FROM investment WHERE loan_id = :l", l=loan_id)
    } == {"SETTLED"}
    assert {
        r[0] for r in rows(sql, "SELECT status FROM installment WHERE loan_id = :l", l=loan_id)
    } == {"PAID"}
    assert {
        r[0] for r in rows(sql, "SELECT status FROM receipt WHERE loan_id = :l", l=loan_id)
    } == {"RECEIVED"}
    assert unbalanced_postings(sql) == 0
    ledger_ok(platform)
    with pytest.raises(BusinessError) as e:
        loans.repay(loan_id, "one-more", me)
    assert e.value.code == "LOAN_STATE_INVALID"


@pytest.mark.parametrize("penalty_to", ["INVESTORS", "PLATFORM"])
def test_an_overdue_installment_pays_its_penalty(
    penalty_to, make_platform, repaying, me, sql, clock
):
    platform = make_platform(**{"repayment.penalty_to": penalty_to})
    loans = platform.service(LoanService)
    loan_id, investors = repaying("EQUAL_PRINCIPAL")
    due_date, principal_fen = rows(
        sql,
        "SELECT due_date, principal FROM installment WHERE loan_id = :l AND period = 1",
        l=loan_id,
    )[0]
    due_date = dt.date.fromisoformat(str(due_date))
    clock.now = dt.datetime.combine(due_date, dt.time(9), dt.UTC) + dt.timedelta(days=10)
    assert loans.mark_overdue_installments().marked == 1
    assert loans.mark_overdue_installments().marked == 0
    schedule_vo = loans.get_repayment_schedule(loan_id)
    principal = D(int(principal_fen)).scaleb(-2)
    penalty = accrued_penalty(principal, D("0.0005"), 10)
    assert penalty > 0
    assert (schedule_vo.items[0].status, schedule_vo.items[0].penalty) == (
        "OVERDUE",
        penalty,
    )
    before = {w.member_id: balance(sql, w.member_id)[0] for w in investors}
    fees_before = fee_income(sql)
    borrower_before = balance(sql, me.member_id)[0]
    vo = loans.repay(loan_id, "late", me)
    assert vo.penalty == penalty
    assert balance(sql, me.member_id)[0] == borrower_before - fen(vo.amount)
    receipt_penalties = [
        int(r[0])
        for r in rows(
            sql,
            "SELECT penalty FROM receipt WHERE loan_id = :l AND period = 1 ORDER BY investment_id",
            l=loan_id,
        )
    ]
    gains = [balance(sql, w.member_id)[0] - before[w.member_id] for w in investors]
    assert gains == [received_by(sql, loan_id, w.member_id) for w in investors]
    if penalty_to == "INVESTORS":
        assert sum(receipt_penalties) == fen(penalty)
        assert all(p > 0 for p in receipt_penalties)
        assert fee_income(sql) == fees_before
    else:
        assert receipt_penalties == [0, 0, 0]
        assert fee_income(sql) == fees_before + fen(penalty)
    assert sum(gains) == fen(vo.amount) - (fen(penalty) if penalty_to == "PLATFORM" else 0)
    ledger_ok(platform)


@pytest.mark.parametrize("rule", ["CURRENT_PERIOD", "NONE"])
def test_early_settlement_pays_the_outstanding_principal_and_settles(
    rule, make_platform, repaying, me, sql, clock
):
    platform = make_platform(**{"repayment.early_settlement_interest": rule})
    loans = platform.service(LoanService)
    loan_id, investors = repaying("EQUAL_INSTALLMENT")
    plan = schedule(sum(ODD), D("12.5"), 6, "EQUAL_INSTALLMENT")
    clock.advance(days=20)
    loans.repay(loan_id, "first", me)
    before = {w.member_id: balance(sql, w.member_id)[0] for w in investors}
    borrower_before = balance(sql, me.member_id)[0]
    vo = loans.settle_early(loan_id, "all", me)
    outstanding = sum(r.principal for r in plan[1:])
    interest = plan[1].interest if rule == "CURRENT_PERIOD" else D("0.00")
    assert (vo.principal, vo.interest, vo.penalty) == (outstanding, interest, D("0.00"))
    assert vo.amount == outstanding + interest
    assert balance(sql, me.member_id)[0] == borrower_before - fen(vo.amount)
    gains = [balance(sql, w.member_id)[0] - before[w.member_id] for w in investors]
    assert sum(gains) == fen(vo.amount)
    principal_back = [
        int(
            scalar(
                sql,
                "SELECT SUM(principal) FROM receipt WHERE loan_id = :l AND investor_id = :i "
                "AND status = 'RECEIVED'",
                l=loan_id,
                i=w.member_id,
            )
        )
        for w in investors
    ]
    assert principal_back == [fen(a) for a in ODD]
    statuses = rows(
        sql, "SELECT status FROM installment WHERE loan_id = :l ORDER BY period", l=loan_id
    )
    assert [s[0] for s in statuses] == ["PAID"] + ["SETTLED_EARLY"] * 5
    assert rows(sql, "SELECT status FROM loan WHERE id = :l", l=loan_id) == [("SETTLED",)]
    assert loans.settle_early(loan_id, "all", me) == vo  # a repeat moves nothing
    assert balance(sql, me.member_id)[0] == borrower_before - fen(vo.amount)
    ledger_ok(platform)


def test_early_settlement_with_an_overdue_installment_pays_its_interest_and_penalty(
    repaying, loans, me, sql, clock, platform
):
    loan_id, _ = repaying("MONTHLY_INTEREST")
    plan = schedule(sum(ODD), D("12.5"), 6, "MONTHLY_INTEREST")
    clock.advance(days=31 + 5)  # period 1 (due 2026-04-01) is 5 days overdue
    vo = loans.settle_early(loan_id, "all", me)
    assert vo.principal == sum(ODD)
    assert vo.interest == plan[0].interest + plan[1].interest  # overdue + current period
    assert vo.penalty == D("0.00")  # period 1 of MONTHLY_INTEREST has no principal
    ledger_ok(platform)


FIVE = (D("1000.01"), D("2333.33"), D("777.77"), D("4100.09"), D("1788.81"))  # 10000.01


@pytest.mark.parametrize("chunk", [2, 500])
def test_a_repayment_written_in_chunks_pays_each_investor_exactly(
    chunk, monkeypatch, make_platform, repaying, me, sql, clock
):
    """The set-based writes (balances, receipts, coupons read) in chunks of 2 rows, and in
    one: a late installment with its penalty split, then an early settlement waiving the
    interest of the periods not yet due; every receipt, balance and message to the fen."""
    for module in ("dao.ledger", "dao.p2p.plan", "dao.marketing"):
        monkeypatch.setattr(f"{module}.CHUNK", chunk)
    platform = make_platform(
        **{"repayment.penalty_to": "INVESTORS", "repayment.early_settlement_interest": "NONE"}
    )
    loans = platform.service(LoanService)
    loan_id, investors = repaying("EQUAL_PRINCIPAL", amounts=FIVE)
    ids = [w.member_id for w in investors]
    due = dt.date.fromisoformat(
        str(
            scalar(
                sql, "SELECT due_date FROM installment WHERE loan_id = :l AND period = 1", l=loan_id
            )
        )
    )
    clock.now = dt.datetime.combine(due, dt.time(9), dt.UTC) + dt.timedelta(days=7)
    before = {m: balance(sql, m)[0] for m in ids}
    late = loans.repay(loan_id, "late", me)
    assert late.penalty > 0
    period_1 = rows(
        sql,
        "SELECT investor_id, principal + interest + penalty, penalty, status FROM receipt "
        "WHERE loan_id = :l AND period = 1 ORDER BY investment_id",
        l=loan_id,
    )
    assert [r[0] for r in period_1] == ids
    assert {r[3] for r in period_1} == {"RECEIVED"}
    assert sum(int(r[2]) for r in period_1) == fen(late.penalty)
    assert all(int(r[2]) > 0 for r in period_1)
    assert [balance(sql, m)[0] - before[m] for m in ids] == [int(r[1]) for r in period_1]
    told = rows(
        sql,
        "SELECT member_id, body_en FROM member_message WHERE category = 'REPAYMENT' "
        "AND ref_type = 'installment' ORDER BY member_id",
    )
    assert [(m, body.rsplit(": ", 1)[1]) for m, body in told] == sorted(
        (int(r[0]), f"{D(int(r[1])).scaleb(-2)} yuan.") for r in period_1
    )
    before = {m: balance(sql, m)[0] for m in ids}
    clock.advance(days=1)
    settled = loans.settle_early(loan_id, "all", me)
    assert settled.interest == D("0.00")  # period 2 not yet due, NONE: nothing waived is paid
    gains = [balance(sql, m)[0] - before[m] for m in ids]
    assert sum(gains) == fen(settled.amount)
    assert gains == [
        int(
            scalar(
                sql,
                "SELECT SUM(principal + interest + penalty) FROM receipt WHERE loan_id = :l "
                "AND investor_id = :i AND period > 1",
                l=loan_id,
                i=m,
            )
        )
        for m in ids
    ]
    assert (
        scalar(
            sql,
            "SELECT COUNT(*) FROM receipt WHERE loan_id = :l AND period > 1 AND interest <> 0",
            l=loan_id,
        )
        == 0
    )
    assert {
        r[0] for r in rows(sql, "SELECT status FROM receipt WHERE loan_id = :l", l=loan_id)
    } == {"RECEIVED"}
    assert scalar(
        sql,
        "SELECT COUNT(*) FROM member_message WHERE ref_type = 'loan' AND category = 'REPAYMENT'"
        " AND member_id <> :b",
        b=me.member_id,
    ) == len(ids)
    assert rows(sql, "SELECT status FROM loan WHERE id = :l", l=loan_id) == [("SETTLED",)]
    assert unbalanced_postings(sql) == 0
    ledger_ok(platform)


def test_a_repeated_request_returns_the_first_outcome_and_moves_nothing(
    repaying, loans, me, sql, clock
):
    loan_id, _ = repaying("BULLET", term=3)
    other_id, _ = repaying("BULLET", term=3, topup=None)
    clock.advance(days=10)
    borrower_before = balance(sql, me.member_id)[0]
    first = loans.repay(loan_id, "same", me)
    assert first.settled
    again = loans.repay(loan_id, "same", me)
    assert again == first
    assert balance(sql, me.member_id)[0] == borrower_before - fen(first.amount)
    assert scalar(sql, "SELECT COUNT(*) FROM posting WHERE business_type = 'REPAYMENT'") == 1
    with pytest.raises(BusinessError) as e:
        loans.repay(other_id, "same", me)
    assert e.value.code == "REQUEST_NO_REUSED"


def test_insufficient_funds_leaves_nothing_half_written(repaying, loans, me, sql, clock):
    loan_id, investors = repaying("BULLET", term=3, topup=None)  # the borrower lacks the interest
    clock.advance(days=10)
    balances = {m: balance(sql, m) for m in [me.member_id] + [w.member_id for w in investors]}
    postings = scalar(sql, "SELECT COUNT(*) FROM posting")
    with pytest.raises(BusinessError) as e:
        loans.repay(loan_id, "short", me)
    assert e.value.code == "INSUFFICIENT_FUNDS"
    assert {m: balance(sql, m) for m in balances} == balances
    assert scalar(sql, "SELECT COUNT(*) FROM posting") == postings
    assert rows(sql, "SELECT status, paid_at FROM installment WHERE loan_id = :l", l=loan_id) == [
        ("PENDING", None)
    ]
    assert {
        r[0] for r in rows(sql, "SELECT status FROM receipt WHERE loan_id = :l", l=loan_id)
    } == {"PENDING"}
    assert scalar(sql, "SELECT COUNT(*) FROM request_record WHERE request_no = 'short'") == 0
    assert rows(sql, "SELECT status FROM loan WHERE id = :l", l=loan_id) == [("REPAYING",)]


def test_another_borrower_is_refused(repaying, loans, make_member, sql):
    loan_id, _ = repaying("BULLET", term=3)
    stranger = Principal(member_id=make_member("BORROWER").member_id, role="BORROWER")
    for call in (loans.repay, loans.settle_early):
        with pytest.raises(BusinessError) as e:
            call(loan_id, "x", stranger)
        assert e.value.code == "FORBIDDEN"
    with pytest.raises(BusinessError) as e:
        loans.repay(10**9, "x", stranger)
    assert e.value.code == "LOAN_NOT_FOUND"
    assert scalar(sql, "SELECT COUNT(*) FROM installment WHERE status = 'PAID'") == 0


def test_the_schedule_is_projected_before_disbursement_and_stored_after(
    loans, operator, loan_request, repaying
):
    vo = loans.publish_loan(loan_request(repayment_method="BULLET", term_months=3), operator)
    projected = loans.get_repayment_schedule(vo.loan_id, operator)
    assert projected.projected and projected.loan_status == "PENDING_AUDIT"
    assert [(i.period, i.due_date, i.payment) for i in projected.items] == [
        (3, None, D("10312.50"))
    ]
    assert (projected.total, projected.page, projected.page_size) == (1, 1, 1)
    loan_id, _ = repaying("EQUAL_PRINCIPAL")
    stored = loans.get_repayment_schedule(loan_id)
    assert not stored.projected and stored.loan_status == "REPAYING"
    assert (stored.total, stored.page, stored.page_size) == (6, 1, 6)  # all on one page
    assert [i.due_date for i in stored.items][:2] == [
        dt.date(2026, 4, 1),
        dt.date(2026, 5, 1),
    ]
    expected = schedule(sum(ODD), D("12.5"), 6, "EQUAL_PRINCIPAL")
    assert [(i.principal, i.interest, i.remaining) for i in stored.items] == [
        (r.principal, r.interest, r.remaining) for r in expected
    ]
    with pytest.raises(BusinessError) as e:
        loans.get_repayment_schedule(10**9)
    assert e.value.code == "LOAN_NOT_FOUND"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((D("0"), D("12"), 12, "BULLET"), "principal"),
        ((D("100"), D("36.01"), 12, "BULLET"), "annualRate"),
        ((D("100"), D("12"), 61, "BULLET"), "termMonths"),
        ((D("100"), D("12"), 12, "WEEKLY"), "repaymentMethod"),
    ],
)
def test_preview_names_the_invalid_field(loans, args, field):
    with pytest.raises(BusinessError) as e:
        loans.preview_repayment_schedule(*args)
    assert e.value.code == "VALIDATION_FAILED"
    assert e.value.message.startswith(f"{field}: ")


def test_preview_is_the_schedule(loans):
    vo = loans.preview_repayment_schedule(D("10000.01"), D("0"), 3, "EQUAL_INSTALLMENT")
    assert [(r.period, r.principal, r.interest) for r in vo.items] == [
        (1, D("3333.34"), D("0.00")),
        (2, D("3333.34"), D("0.00")),
        (3, D("3333.33"), D("0.00")),
    ]
    assert (vo.total_interest, vo.total_payment) == (D("0.00"), D("10000.01"))
    assert (vo.total, vo.page, vo.page_size) == (3, 1, 3)  # every period on one page


def test_investors_list_their_receipts_and_borrowers_what_is_due(repaying, loans, me, clock):
    loan_id, investors = repaying("MONTHLY_INTEREST", term=3)
    clock.advance(days=10)
    loans.repay(loan_id, "p1", me)
    page = loans.list_receipts(loan_id=None, page=1, page_size=2, caller=investors[1])
    assert page.total == 3
    assert [(r.period, r.status) for r in page.items] == [(1, "RECEIVED"), (2, "PENDING")]
    assert page.items[0].received_at is not None
    assert page.items[0].amount == page.items[0].interest
    assert (
        loans.list_receipts(
            loan_id=loan_id + 1, page=None, page_size=None, caller=investors[1]
        ).total
        == 0
    )
    due = loans.get_repayments_due(caller=me)
    assert [(d.loan_id, d.period, d.status) for d in due.items] == [(loan_id, 2, "PENDING")]
    clock.advance(days=60)  # period 2 fell due on 2026-05-01
    (late,) = loans.get_repayments_due(caller=me).items
    assert late.status == "OVERDUE" and late.penalty == D("0.00")  # no principal in period 2
    assert late.amount == late.interest


def test_what_is_due_is_paged_by_listing(repaying, loans, me):
    ids = [repaying("MONTHLY_INTEREST", term=3)[0] for _ in range(3)]
    loans.repay(ids[1], "paged-1", me)
    first = loans.get_repayments_due(page=1, page_size=2, caller=me)
    assert (first.total, first.page, first.page_size) == (3, 1, 2)
    assert [(d.loan_id, d.period) for d in first.items] == [(ids[0], 1), (ids[1], 2)]
    second = loans.get_repayments_due(page=2, page_size=2, caller=me)
    assert [(d.loan_id, d.period) for d in second.items] == [(ids[2], 1)]
    assert second.total == 3
    with pytest.raises(BusinessError) as e:
        loans.get_repayments_due(page=0, caller=me)
    assert e.value.code == "VALIDATION_FAILED"


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_concurrent_repayments_pay_successive_installments_once_each(
    repaying, loans, me, sql, clock, platform
):
    """Six threads repay the same listing at once, one of them twice with the same requestNo:
    the listing's row lock serialises them, so periods 1-5 are each paid exactly once."""
    loan_id, investors = repaying("EQUAL_INSTALLMENT")
    plan = schedule(sum(ODD), D("12.5"), 6, "EQUAL_INSTALLMENT")
    clock.advance(days=5)
    borrower_before = balance(sql, me.member_id)[0]
    before = {w.member_id: balance(sql, w.member_id)[0] for w in investors}
    results, failures = [], []
    barrier = threading.Barrier(6)

    def pay(request_no: str) -> None:
        barrier.wait()
        try:
            results.append(loans.repay(loan_id, request_no, me))
        except Exception as e:  # reported by the assertion below
            failures.append(e)

    numbers = ["a", "b", "c", "d", "e", "e"]
    threads = [threading.Thread(target=pay, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted({vo.period for vo in results}) == [1, 2, 3, 4, 5]
    assert len(results) == 6
    paid = sum(r.payment for r in plan[:5])
    assert balance(sql, me.member_id)[0] == borrower_before - fen(paid)
    gains = sum(balance(sql, w.member_id)[0] - before[w.member_id] for w in investors)
    assert gains == fen(paid)
    assert scalar(sql, "SELECT COUNT(*) FROM posting WHERE business_type = 'REPAYMENT'") == 5
    ledger_ok(platform)
