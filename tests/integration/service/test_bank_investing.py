"""Investing through the depository bank's FREEZE and UNFREEZE orders (payment.gateway BANK),
on SQLite and MariaDB: an investment is PENDING and reserves its share of the listing until
the bank freezes the money (FROZEN, the listing FULL when nothing is pending any more) or
does not (FAILED, the capacity back); a freeze the bank makes after the listing ended is
refunded by an UNFREEZE; cancelling or failing a listing releases each FROZEN investment
through the bank (RELEASING, then RELEASED); an UNFREEZE that fails is an alert and fails the
ledger check. The ledger check passes after every step otherwise."""

from __future__ import annotations

import logging
import queue
import random
import threading
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.errors import BusinessError
from service.ocp import protocol
from service.p2p import LoanService
from service.p2p.listing import AuditRequest
from tests.integration.service.banking import AUTHORIZE, Banking
from tests.integration.service.support import caller, error_of
from tests.integration.service.test_bank_payments import balances, funded

D = Decimal
APPROVE = AuditRequest(approve=True, reason=None)


@pytest.fixture
def investor(banking: Banking, make_member):
    """Factory: an investor with ``funds`` available, recharged through the bank."""

    def factory(funds: str = "10000.00"):
        who = caller(make_member("INVESTOR"))
        funded(banking, who, funds)
        return who

    return factory


@pytest.fixture
def raising(banking: Banking, operator, loan_request):
    """Factory: a listing published and approved, now RAISING (10000.00 unless told)."""

    def factory(**terms):
        vo = banking.loans.publish_loan(loan_request(**terms), operator)
        return banking.loans.audit_loan(vo.loan_id, APPROVE, operator)

    return factory


def settle(banking: Banking, order_no: str, status: str, amount: str, order_type: str, **fields):
    """Send what is queued, then the bank's notification about ``order_no``; its outcome."""
    banking.run_jobs()
    message = banking.notification(order_no, status, amount, order_type, **fields)
    return banking.notify(message).outcome


def froze(banking: Banking, investment, status: str = "SUCCEEDED", **fields) -> str:
    return settle(
        banking, investment.order_no, status, f"{investment.amount:f}", "FREEZE", **fields
    )


def loan_row(sql, loan_id: int):
    with sql.connect() as conn:
        return conn.execute(
            text("SELECT status, raised FROM loan WHERE id = :id"), {"id": loan_id}
        ).one()


def investment_postings(sql, investment_id: int) -> list[str]:
    with sql.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT business_type FROM posting WHERE ref_type = 'investment'"
                    " AND ref_id = :id ORDER BY id"
                ),
                {"id": investment_id},
            ).scalars()
        )


def investment_messages(sql, investment_id: int) -> list[str]:
    """The titles of the messages about an investment, oldest first."""
    with sql.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT title FROM member_message WHERE ref_type = 'investment'"
                    " AND ref_id = :id ORDER BY id"
                ),
                {"id": investment_id},
            ).scalars()
        )


def unfreeze_order(sql, investment_id: int):
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT order_no, status, amount FROM bank_order WHERE ref_type = 'investment'"
                " AND ref_id = :id AND order_type = 'UNFREEZE'"
            ),
            {"id": investment_id},
        ).one()


def test_an_investment_is_pending_and_reserves_its_share_until_the_bank_freezes_it(
    banking: Banking, investor, raising, sql
) -> None:
    who = investor()
    loan = raising()
    vo = banking.loans.invest(loan.loan_id, D("3000.00"), "i-1", who)
    assert (vo.status, vo.authorize_url, vo.failure_reason) == ("PENDING", None, None)
    assert vo.order_no.startswith("I") and len(vo.order_no) <= 32
    assert loan_row(sql, loan.loan_id) == ("RAISING", 300000)  # reserved at once
    assert banking.loans.get_loan(loan.loan_id).raised == D("3000.00")
    assert balances(sql, who.member_id) == (D("10000.00"), D("0.00"))  # nothing posted yet
    assert investment_postings(sql, vo.investment_id) == []
    assert banking.ledger_ok()

    banking.run_jobs()
    assert banking.bank.submitted[-1] == {
        "orderNo": vo.order_no,
        "orderType": "FREEZE",
        "accountNo": banking.members.get_fund_account(who).account_no,
        "amount": "3000.00",
    }
    shown = banking.loans.get_investment(vo.investment_id, who)
    assert (shown.status, shown.authorize_url) == ("PENDING", AUTHORIZE + vo.order_no)
    [listed] = banking.loans.list_investments(who).items
    assert listed == shown

    assert froze(banking, vo) == "applied"
    done = banking.loans.get_investment(vo.investment_id, who)
    assert (done.status, done.authorize_url, done.order_no) == ("FROZEN", None, vo.order_no)
    assert balances(sql, who.member_id) == (D("7000.00"), D("3000.00"))
    assert investment_postings(sql, vo.investment_id) == ["INVEST"]
    assert loan_row(sql, loan.loan_id) == ("RAISING", 300000)
    with sql.connect() as conn:
        notices = conn.execute(
            text(
                "SELECT COUNT(*) FROM member_message WHERE member_id = :m"
                " AND category = 'INVESTMENT'"
            ),
            {"m": who.member_id},
        ).scalar_one()
    assert notices == 1
    assert banking.ledger_ok()


def test_a_repeated_request_is_the_same_investment_and_one_bank_order(
    banking: Banking, investor, raising
) -> None:
    who, loan = investor(), raising()
    first = banking.loans.invest(loan.loan_id, D("1000.00"), "i-2", who)
    assert banking.loans.invest(loan.loan_id, D("1000.00"), "i-2", who) == first
    assert banking.run_jobs() == 1
    assert banking.loans.get_loan(loan.loan_id).raised == D("1000.00")


def test_the_listing_is_full_when_the_last_pending_investment_is_frozen(
    banking: Banking, investor, raising, sql
) -> None:
    one, two, late = investor(), investor(), investor()
    loan = raising()
    a = banking.loans.invest(loan.loan_id, D("6000.00"), "a", one)
    b = banking.loans.invest(loan.loan_id, D("4000.00"), "b", two)
    e = error_of(banking.loans.invest, loan.loan_id, D("100.00"), "c", late)
    assert e.code == "INVEST_ABOVE_REMAINING"  # the PENDING ones hold the whole listing
    froze(banking, a)
    assert loan_row(sql, loan.loan_id) == ("RAISING", 1000000)  # b is still pending
    froze(banking, b)
    assert loan_row(sql, loan.loan_id) == ("FULL", 1000000)
    assert banking.ledger_ok()


@pytest.mark.parametrize(
    "reason", ["CANCELLED_BY_MEMBER", "AUTHORIZATION_EXPIRED", "INSUFFICIENT_BALANCE"]
)
def test_a_freeze_the_bank_fails_gives_the_capacity_back_and_moves_nothing(
    banking: Banking, investor, raising, sql, reason: str
) -> None:
    one, two = investor(), investor()
    loan = raising()
    a = banking.loans.invest(loan.loan_id, D("6000.00"), "a", one)
    b = banking.loans.invest(loan.loan_id, D("4000.00"), "b", two)
    froze(banking, b)
    assert froze(banking, a, "FAILED", reason=reason) == "applied"
    failed = banking.loans.get_investment(a.investment_id, one)
    assert (failed.status, failed.failure_reason) == ("FAILED", reason)
    assert loan_row(sql, loan.loan_id) == ("RAISING", 400000)
    assert balances(sql, one.member_id) == (D("10000.00"), D("0.00"))
    assert investment_postings(sql, a.investment_id) == []
    assert investment_messages(sql, a.investment_id) == ["投资未成功"]
    assert banking.ledger_ok()
    # The capacity is back for anyone, the failed investor included.
    again = banking.loans.invest(loan.loan_id, D("6000.00"), "a-again", one)
    froze(banking, again)
    assert loan_row(sql, loan.loan_id) == ("FULL", 1000000)
    assert banking.ledger_ok()


def test_a_freeze_the_bank_refuses_at_once_fails_the_investment(
    banking: Banking, investor, raising, sql
) -> None:
    who, loan = investor(), raising()
    banking.bank.result = protocol.REFUSED
    banking.bank.reason = "INSUFFICIENT_BALANCE"
    vo = banking.loans.invest(loan.loan_id, D("1000.00"), "i-3", who)
    banking.run_jobs()
    failed = banking.loans.get_investment(vo.investment_id, who)
    assert (failed.status, failed.failure_reason) == ("FAILED", "INSUFFICIENT_BALANCE")
    assert loan_row(sql, loan.loan_id) == ("RAISING", 0)
    assert banking.ledger_ok()


def test_an_investment_above_the_available_balance_is_refused_and_writes_nothing(
    banking: Banking, investor, raising, sql
) -> None:
    who, loan = investor("500.00"), raising()
    e = error_of(banking.loans.invest, loan.loan_id, D("500.01"), "i-4", who)
    assert e.code == "INSUFFICIENT_FUNDS"
    assert not banking.outbox.jobs  # no bank order
    assert loan_row(sql, loan.loan_id) == ("RAISING", 0)
    vo = banking.loans.invest(loan.loan_id, D("500.00"), "i-4", who)  # the number is free
    assert vo.status == "PENDING"


def test_a_freeze_after_the_listing_was_cancelled_is_refunded_through_the_bank(
    banking: Banking, investor, raising, operator, sql
) -> None:
    who, loan = investor(), raising()
    vo = banking.loans.invest(loan.loan_id, D("3000.00"), "i-5", who)
    banking.loans.cancel_loan(loan.loan_id, "borrower withdrew", operator)
    assert loan_row(sql, loan.loan_id) == ("CANCELLED", 300000)  # the PENDING one still counts
    assert banking.loans.get_investment(vo.investment_id, who).status == "PENDING"
    assert banking.ledger_ok()

    assert froze(banking, vo) == "applied"  # the member confirmed late
    late = banking.loans.get_investment(vo.investment_id, who)
    assert late.status == "RELEASING"
    assert loan_row(sql, loan.loan_id) == ("CANCELLED", 0)
    assert balances(sql, who.member_id) == (D("7000.00"), D("3000.00"))  # as at the bank
    assert investment_postings(sql, vo.investment_id) == ["INVEST"]
    assert banking.ledger_ok()

    order_no, _, _ = unfreeze_order(sql, vo.investment_id)
    banking.run_jobs()
    assert banking.bank.submitted[-1] == {
        "orderNo": order_no,
        "orderType": "UNFREEZE",
        "accountNo": banking.members.get_fund_account(who).account_no,
        "amount": "3000.00",
        "freezeOrderNo": vo.order_no,
    }
    assert settle(banking, order_no, "SUCCEEDED", "3000.00", "UNFREEZE") == "applied"
    assert banking.loans.get_investment(vo.investment_id, who).status == "RELEASED"
    assert balances(sql, who.member_id) == (D("10000.00"), D("0.00"))
    assert investment_postings(sql, vo.investment_id) == ["INVEST", "CANCEL"]
    assert investment_messages(sql, vo.investment_id) == ["投资资金已解冻"]  # never "invested"
    assert banking.ledger_ok()


def test_a_listing_failed_by_its_deadline_fails_a_late_freeze_or_refunds_it(
    banking: Banking, investor, raising, clock, sql
) -> None:
    one, two = investor(), investor()
    loan = raising(raise_days=1)
    a = banking.loans.invest(loan.loan_id, D("1000.00"), "a", one)
    b = banking.loans.invest(loan.loan_id, D("2000.00"), "b", two)
    clock.advance(days=2)
    assert banking.loans.close_expired_loans().failed == 1
    assert loan_row(sql, loan.loan_id) == ("FAILED", 300000)
    froze(banking, a, "FAILED", reason="AUTHORIZATION_EXPIRED")
    froze(banking, b)
    assert banking.loans.get_investment(a.investment_id, one).status == "FAILED"
    assert banking.loans.get_investment(b.investment_id, two).status == "RELEASING"
    assert loan_row(sql, loan.loan_id) == ("FAILED", 0)
    order_no, _, _ = unfreeze_order(sql, b.investment_id)
    settle(banking, order_no, "SUCCEEDED", "2000.00", "UNFREEZE")
    assert investment_postings(sql, b.investment_id) == ["INVEST", "FAIL"]
    assert balances(sql, two.member_id) == (D("10000.00"), D("0.00"))
    assert banking.ledger_ok()


def test_cancelling_releases_frozen_investments_through_the_bank_and_waits_for_pending_ones(
    banking: Banking, investor, raising, operator, sql
) -> None:
    one, two = investor(), investor()
    loan = raising()
    a = banking.loans.invest(loan.loan_id, D("6000.00"), "a", one)
    b = banking.loans.invest(loan.loan_id, D("1000.00"), "b", two)
    froze(banking, a)
    cancelled = banking.loans.cancel_loan(loan.loan_id, "fraud suspected", operator)
    assert (cancelled.status, cancelled.raised) == ("CANCELLED", D("1000.00"))  # b's, pending
    assert banking.loans.get_investment(a.investment_id, one).status == "RELEASING"
    assert banking.loans.get_investment(b.investment_id, two).status == "PENDING"
    assert balances(sql, one.member_id) == (D("4000.00"), D("6000.00"))  # frozen until released
    assert banking.ledger_ok()

    order_no, status, amount = unfreeze_order(sql, a.investment_id)
    assert (status, amount) == ("CREATED", 600000)
    settle(banking, order_no, "SUCCEEDED", "6000.00", "UNFREEZE")
    assert banking.loans.get_investment(a.investment_id, one).status == "RELEASED"
    assert balances(sql, one.member_id) == (D("10000.00"), D("0.00"))
    froze(banking, b, "FAILED", reason="CANCELLED_BY_MEMBER")
    assert banking.loans.get_investment(b.investment_id, two).status == "FAILED"
    assert loan_row(sql, loan.loan_id) == ("CANCELLED", 0)
    assert investment_postings(sql, a.investment_id) == ["INVEST", "CANCEL"]
    assert banking.ledger_ok()


def test_an_investment_frozen_before_investing_was_a_bank_order_is_released_in_the_ledger(
    banking: Banking, platform, investor, raising, operator, sql
) -> None:
    """The bank never froze it (the sandbox did, in the ledger only): no UNFREEZE for it, its
    release posted at once, beside a bank-frozen one that the bank releases."""
    one, two = investor(), investor()
    loan = raising()
    before = platform.service(LoanService).invest(loan.loan_id, D("2000.00"), "old", one)
    assert (before.status, before.order_no) == ("FROZEN", None)
    b = banking.loans.invest(loan.loan_id, D("3000.00"), "new", two)
    froze(banking, b)
    cancelled = banking.loans.cancel_loan(loan.loan_id, "the borrower withdrew", operator)
    assert cancelled.raised == D("0.00")
    assert banking.loans.get_investment(before.investment_id, one).status == "RELEASED"
    assert investment_postings(sql, before.investment_id) == ["INVEST", "CANCEL"]
    assert balances(sql, one.member_id) == (D("10000.00"), D("0.00"))
    with sql.connect() as conn:
        unfreezes = conn.execute(
            text("SELECT ref_id FROM bank_order WHERE order_type = 'UNFREEZE'")
        ).scalars()
        assert list(unfreezes) == [b.investment_id]
    assert banking.loans.get_investment(b.investment_id, two).status == "RELEASING"
    assert banking.ledger_ok()


def test_an_unfreeze_the_bank_fails_is_an_alert_and_fails_the_ledger_check(
    banking: Banking, investor, raising, operator, sql, caplog
) -> None:
    who, loan = investor(), raising()
    vo = banking.loans.invest(loan.loan_id, D("6000.00"), "a", who)
    froze(banking, vo)
    banking.loans.cancel_loan(loan.loan_id, "fraud suspected", operator)
    order_no, _, _ = unfreeze_order(sql, vo.investment_id)
    with caplog.at_level(logging.ERROR, logger="service.ocp.alerts"):
        outcome = settle(
            banking, order_no, "FAILED", "6000.00", "UNFREEZE", reason="DECLINED_BY_BANK"
        )
    assert outcome == "applied"
    stuck = banking.loans.get_investment(vo.investment_id, who)
    assert stuck.status == "RELEASING"
    assert order_no in stuck.failure_reason and "DECLINED_BY_BANK" in stuck.failure_reason
    assert balances(sql, who.member_id) == (D("4000.00"), D("6000.00"))  # still frozen
    [alert] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert order_no in alert and f"investment {vo.investment_id}" in alert
    report = LedgerAudit(banking.platform.tx).run()
    [check] = [c for c in report.checks if not c.ok]
    assert check.name == "every release reached the bank"
    assert check.problems == (
        f"investment {vo.investment_id} of member {who.member_id}: still frozen, "
        f"{stuck.failure_reason}",
    )


def test_the_same_news_again_changes_nothing_and_conflicting_news_is_kept_aside(
    banking: Banking, investor, raising, sql
) -> None:
    who, loan = investor(), raising()
    vo = banking.loans.invest(loan.loan_id, D("3000.00"), "i-6", who)
    banking.run_jobs()
    success = banking.notification(vo.order_no, "SUCCEEDED", "3000.00", "FREEZE")
    assert banking.notify(success).outcome == "applied"
    assert banking.notify(success).outcome == "repeat"
    again = banking.notification(vo.order_no, "SUCCEEDED", "3000.00", "FREEZE")
    assert banking.notify(again).outcome == "confirmed"
    stale = banking.notification(vo.order_no, "FAILED", "3000.00", "FREEZE", reason="SYSTEM_ERROR")
    assert banking.notify(stale).outcome == "conflict"
    assert banking.conflicts.kinds["status"] == 1
    assert banking.loans.get_investment(vo.investment_id, who).status == "FROZEN"
    assert balances(sql, who.member_id) == (D("7000.00"), D("3000.00"))
    assert investment_postings(sql, vo.investment_id) == ["INVEST"]
    assert loan_row(sql, loan.loan_id) == ("RAISING", 300000)
    assert banking.ledger_ok()


def test_a_freeze_the_ledger_cannot_follow_yet_is_applied_when_the_bank_says_it_again(
    banking: Banking, investor, raising, sql
) -> None:
    """The bank froze the money for the investment, so it refuses the withdrawal made
    meanwhile; until the platform hears that, its ledger holds the money for the withdrawal
    and cannot record the freeze: the notification is not applied (nor acknowledged), and its
    retry after the withdrawal's failure is."""
    who, loan = investor("1000.00"), raising()
    vo = banking.loans.invest(loan.loan_id, D("1000.00"), "i-10", who)
    card = banking.members.list_cards(who).items[0]
    withdrawal = banking.payments.withdraw(D("1000.00"), card.card_id, "w-10", who)
    banking.run_jobs()
    success = banking.notification(vo.order_no, "SUCCEEDED", "1000.00", "FREEZE")
    assert error_of(banking.notify, success).code == "INSUFFICIENT_FUNDS"
    assert banking.loans.get_investment(vo.investment_id, who).status == "PENDING"
    assert banking.order(vo.order_no).status == "ACCEPTED"
    assert banking.ledger_ok()

    refused = banking.notification(
        withdrawal.order_no, "FAILED", "1000.00", "WITHDRAW", reason="INSUFFICIENT_BALANCE"
    )
    assert banking.notify(refused).outcome == "applied"
    assert banking.notify(success).outcome == "applied"  # the bank's retry
    assert banking.loans.get_investment(vo.investment_id, who).status == "FROZEN"
    assert balances(sql, who.member_id) == (D("0.00"), D("1000.00"))
    assert banking.ledger_ok()


def test_a_listing_is_not_disbursed_while_an_investment_is_pending(
    banking: Banking, investor, raising, operator, sql
) -> None:
    who, loan = investor(), raising()
    banking.loans.invest(loan.loan_id, D("10000.00"), "i-7", who)
    with sql.begin() as conn:  # a FULL listing with a pending investment cannot arise: forced
        conn.execute(text("UPDATE loan SET status = 'FULL' WHERE id = :id"), {"id": loan.loan_id})
    e = error_of(banking.loans.disburse_loan, loan.loan_id, "d-1", operator)
    assert e.code == "LOAN_STATE_INVALID" and "not settled" in e.message
    assert loan_row(sql, loan.loan_id) == ("FULL", 1000000)


@pytest.mark.parametrize(
    ("corruption", "checks"),
    [
        # A PENDING investment reserves its share of the listing...
        ("UPDATE loan SET raised = 0", ["raised equals investments"]),
        # ...but nothing of the investor's balance is frozen for it yet.
        ("UPDATE investment SET status = 'FROZEN'", ["every frozen fen is accounted for"]),
        # A RELEASING one is out of raised and still frozen.
        (
            "UPDATE investment SET status = 'RELEASING'",
            ["raised equals investments", "every frozen fen is accounted for"],
        ),
    ],
)
def test_the_ledger_check_counts_a_pending_investment_in_raised_and_not_as_frozen(
    banking: Banking, investor, raising, sql, corruption: str, checks: list[str]
) -> None:
    who, loan = investor(), raising()
    banking.loans.invest(loan.loan_id, D("3000.00"), "i-9", who)
    assert banking.ledger_ok()
    with sql.begin() as conn:
        conn.execute(text(corruption))
    report = LedgerAudit(banking.platform.tx).run()
    assert [c.name for c in report.checks if not c.ok] == checks


def test_nobody_sees_another_investors_investment(banking: Banking, investor, raising) -> None:
    who, other, loan = investor(), investor(), raising()
    vo = banking.loans.invest(loan.loan_id, D("1000.00"), "i-8", who)
    for investment_id in (vo.investment_id, vo.investment_id + 1000):
        e = error_of(banking.loans.get_investment, investment_id, other)
        assert e.code == "INVESTMENT_NOT_FOUND"


# -- concurrency -----------------------------------------------------------------------------

#: What a racing investor may legitimately be told; anything else fails the test.
EXPECTED = {
    "INVEST_ABOVE_REMAINING",
    "INVEST_BELOW_MINIMUM",
    "LOAN_STATE_INVALID",
    "INSUFFICIENT_FUNDS",
}
AMOUNTS = [D(a) for a in ("100.00", "150.55", "333.33", "500.01", "1000.00", "2000.00")]


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_investors_racing_for_the_last_capacity_while_freezes_settle_never_oversubscribe(
    banking: Banking, investor, raising, sql
) -> None:
    """Eight investors invest at once in one listing while the bank's FREEZE results arrive
    from another thread; the bank succeeds a freeze only when its books cover it (as the
    simulator does) and fails some anyway. raised never exceeds the amount, and at the end it
    is the sum of the FROZEN investments; the ledger check passes."""
    loan = raising(amount=D("10000.00"), min_invest=D("100.00"))
    funds = D("4000.00")
    investors = [investor(f"{funds:f}") for _ in range(8)]
    made: queue.Queue = queue.Queue()
    codes: list[object] = []
    done = threading.Event()

    def invest(i: int, who) -> None:
        rng = random.Random(i)
        for n in range(15):
            current = banking.loans.get_loan(loan.loan_id)
            if current.status != "RAISING":
                return
            remaining = current.amount - current.raised
            amount = remaining if rng.random() < 0.3 and remaining else rng.choice(AMOUNTS)
            try:
                made.put((who, banking.loans.invest(loan.loan_id, amount, f"r{i}-{n}", who)))
            except BusinessError as e:
                codes.append(e.code)
            except Exception as e:  # anything else fails the test below
                codes.append(e)

    at_the_bank = {who.member_id: funds for who in investors}

    def bank() -> None:
        rng = random.Random(99)
        while not (done.is_set() and made.empty()):
            try:
                who, vo = made.get(timeout=0.1)
            except queue.Empty:
                continue
            covered = at_the_bank[who.member_id] >= vo.amount
            if covered and rng.random() < 0.8:
                at_the_bank[who.member_id] -= vo.amount
                froze(banking, vo)
            else:
                froze(banking, vo, "FAILED", reason="INSUFFICIENT_BALANCE")
            with sql.connect() as conn:
                raised, amount = conn.execute(
                    text("SELECT raised, amount FROM loan WHERE id = :id"), {"id": loan.loan_id}
                ).one()
            assert raised <= amount

    settling = threading.Thread(target=bank)
    settling.start()
    threads = [threading.Thread(target=invest, args=(i, w)) for i, w in enumerate(investors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    done.set()
    settling.join(timeout=300)
    assert not settling.is_alive() and not any(t.is_alive() for t in threads)
    assert set(codes) <= EXPECTED, codes

    with sql.connect() as conn:
        status, raised, amount = conn.execute(
            text("SELECT status, raised, amount FROM loan WHERE id = :id"), {"id": loan.loan_id}
        ).one()
        by_status = dict(
            conn.execute(
                text(
                    "SELECT status, SUM(amount) FROM investment WHERE loan_id = :id GROUP BY status"
                ),
                {"id": loan.loan_id},
            ).all()
        )
    assert set(by_status) <= {"FROZEN", "FAILED"}  # every freeze settled
    assert raised == by_status.get("FROZEN", 0) <= amount
    assert (status == "FULL") == (raised == amount)
    for who in investors:
        available, frozen = balances(sql, who.member_id)
        assert available == at_the_bank[who.member_id]  # the ledger follows the bank
        assert available + frozen == funds
    assert banking.ledger_ok()
