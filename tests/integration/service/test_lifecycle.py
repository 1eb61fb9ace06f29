"""The lifecycle's events (service/lifecycle.py) on SQLite and MariaDB: each told once, in
order, in the transaction of what it tells of, with the sandbox and with the depository bank;
a listener that raises rolls the event back with everything the core wrote for it."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.lifecycle import LifecycleListener
from service.p2p import AuditRequest
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.banking import Banking

D = Decimal
APPROVE = AuditRequest(approve=True, reason=None)
_numbers = itertools.count(1)


def rno() -> str:
    return f"lc-{next(_numbers)}"


class Recorder(LifecycleListener):
    """Remembers each event as a tuple of plain values read while it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def member_registered(self, member):
        self.seen.append(("registered", member.id, member.role))

    def investment_frozen(self, loan, investment):
        self.seen.append(("frozen", loan.id, investment.id, investment.status))

    def investment_refused(self, loan, investment):
        self.seen.append(("refused", loan.id, investment.id, investment.status))

    def investment_released(self, loan, investment):
        self.seen.append(("released", loan.status, investment.id, investment.status))

    def loan_full(self, loan):
        self.seen.append(("full", loan.id, loan.status))

    def loan_disbursed(self, loan, investments):
        self.seen.append(
            ("disbursed", loan.status, tuple(sorted((i.id, i.status) for i in investments)))
        )

    def receipts_paid(self, loan, receipts):
        self.seen.append(("paid", loan.id, tuple(sorted((r.period, r.status) for r in receipts))))

    def loan_settled(self, loan):
        self.seen.append(("settled", loan.id, loan.status))

    def take(self) -> list[tuple]:
        seen, self.seen = self.seen, []
        return seen


class Refuses(LifecycleListener):
    def investment_frozen(self, loan, investment):
        raise RuntimeError("the listener's own failure")


@pytest.fixture
def recorder(platform) -> Recorder:
    listener = Recorder()
    platform.components["lifecycle"].subscribe(listener)
    return listener


@pytest.fixture
def investor(platform, make_member):
    payments = platform.service(PaymentService)

    def factory(funds: str = "5000.00") -> Principal:
        who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
        payments.recharge(D(funds), rno(), who)
        return who

    return factory


@pytest.fixture
def raising(loans, operator, loan_request):
    def factory(amount: str) -> int:
        vo = loans.publish_loan(
            loan_request(amount=D(amount), min_invest=D("0.01"), term_months=3), operator
        )
        return loans.audit_loan(vo.loan_id, APPROVE, operator).loan_id

    return factory


def ids(sql, query: str, **params) -> list[int]:
    with sql.connect() as conn:
        return [row[0] for row in conn.execute(text(query), params)]


def test_a_listing_is_told_from_registration_to_early_settlement(
    recorder, make_member, investor, raising, loans, operator, borrower, platform, sql, clock
):
    recorder.take()  # the borrower's registration, made by a fixture
    member = make_member("INVESTOR", onboarded=False)
    operators_are_not_members = make_member("OPERATOR")
    assert recorder.take() == [("registered", member.member_id, "INVESTOR")]
    assert operators_are_not_members.member_id != member.member_id

    first, second = investor(), investor()
    recorder.take()  # their registrations
    loan_id = raising("1000.00")
    a = loans.invest(loan_id, D("400.00"), rno(), first)
    b = loans.invest(loan_id, D("600.00"), rno(), second)
    assert recorder.take() == [
        ("frozen", loan_id, a.investment_id, "FROZEN"),
        ("frozen", loan_id, b.investment_id, "FROZEN"),
        ("full", loan_id, "FULL"),
    ]
    loans.disburse_loan(loan_id, rno(), operator)
    assert recorder.take() == [
        ("disbursed", "REPAYING", ((a.investment_id, "ACTIVE"), (b.investment_id, "ACTIVE")))
    ]

    me = Principal(member_id=borrower.member_id, role="BORROWER")
    platform.service(PaymentService).recharge(D("100.00"), rno(), me)
    clock.advance(days=20)
    loans.repay(loan_id, rno(), me)
    assert recorder.take() == [("paid", loan_id, ((1, "RECEIVED"), (1, "RECEIVED")))]
    loans.settle_early(loan_id, rno(), me)
    told = recorder.take()
    assert told[0][:2] == ("paid", loan_id)
    assert {period for period, _ in told[0][2]} == {2, 3}
    assert {status for _, status in told[0][2]} == {"RECEIVED"}
    assert told[1:] == [("settled", loan_id, "SETTLED")]
    assert LedgerAudit(platform.tx).run().ok


def test_releases_are_told_for_a_cancelled_and_a_failed_listing(
    recorder, investor, raising, loans, operator, clock
):
    who = investor()
    cancelled = raising("1000.00")
    kept = loans.invest(cancelled, D("300.00"), rno(), who)
    recorder.take()
    loans.cancel_loan(cancelled, "撤回", operator)
    assert recorder.take() == [("released", "CANCELLED", kept.investment_id, "RELEASED")]

    expiring = raising("1000.00")
    held = loans.invest(expiring, D("200.00"), rno(), who)
    recorder.take()
    clock.advance(days=30)
    assert loans.close_expired_loans().failed >= 1
    assert recorder.take() == [("released", "FAILED", held.investment_id, "RELEASED")]


def test_a_listener_that_raises_rolls_the_event_back(platform, investor, raising, loans, sql):
    who = investor()
    loan_id = raising("1000.00")
    platform.components["lifecycle"].subscribe(Refuses())
    with pytest.raises(RuntimeError):
        loans.invest(loan_id, D("100.00"), "refused-1", who)
    assert ids(sql, "SELECT id FROM investment WHERE loan_id = :l", l=loan_id) == []
    assert ids(sql, "SELECT id FROM posting WHERE business_type = 'INVEST'") == []
    assert ids(sql, "SELECT raised FROM loan WHERE id = :l", l=loan_id) == [0]


def test_with_the_bank_each_event_is_told_once_when_the_bank_has_done_it(
    banking: Banking, recorder, platform, make_member, raising, operator, sql
):
    loan_id = raising("1000.00")
    people = [
        Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR") for _ in range(2)
    ]
    platform.service(PaymentService).recharge(D("50.00"), rno(), people[0])
    refused = banking.loans.invest(loan_id, D("50.00"), rno(), people[0])
    banking.run_jobs()
    notice = banking.notification(refused.order_no, "FAILED", "50.00", "FREEZE")
    assert banking.notify(notice).outcome == "applied"
    assert recorder.take()[-1] == ("refused", loan_id, refused.investment_id, "FAILED")
    orders = []
    for who, amount in zip(people, ("400.00", "600.00"), strict=True):
        platform.service(PaymentService).recharge(D(amount), rno(), who)
        orders.append(banking.loans.invest(loan_id, D(amount), rno(), who))
    banking.run_jobs()
    assert recorder.take() == []  # PENDING at the bank: nothing frozen yet
    for order, amount in zip(orders, ("400.00", "600.00"), strict=True):
        notice = banking.notification(order.order_no, "SUCCEEDED", amount, "FREEZE")
        assert banking.notify(notice).outcome == "applied"
        assert banking.notify(notice).outcome != "applied"  # a repeat changes nothing
    assert recorder.take() == [
        ("frozen", loan_id, orders[0].investment_id, "FROZEN"),
        ("frozen", loan_id, orders[1].investment_id, "FROZEN"),
        ("full", loan_id, "FULL"),
    ]
    banking.loans.disburse_loan(loan_id, rno(), operator)
    banking.run_jobs()
    items = ids(sql, "SELECT id FROM bank_order WHERE order_type = 'DISBURSE' ORDER BY id")
    with sql.connect() as conn:
        lent = [
            conn.execute(
                text("SELECT order_no, amount FROM bank_order WHERE id = :i"), {"i": i}
            ).one()
            for i in items
        ]
    for n, (order_no, fen) in enumerate(lent):
        notice = banking.notification(order_no, "SUCCEEDED", f"{D(fen) / 100:.2f}", "DISBURSE")
        assert banking.notify(notice).outcome == "applied"
        expected = [] if n < len(lent) - 1 else [("disbursed", "REPAYING")]
        assert [event[:2] for event in recorder.take()] == expected
    assert banking.ledger_ok()
