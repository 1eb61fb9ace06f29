"""Repayment through the depository bank (payment.gateway BANK) as REPAY batches, on SQLite and
MariaDB: the call freezes the borrower's due amount and answers PENDING, the batch goes in
one request after the commit, each item is settled on its own by its notification or a
query; failed items are re-issued under new numbers until their attempts are used up; a
refused batch fails its items; a lost submission is sent again whole. No fen is created or
lost, no receipt is paid twice, and the ledger check passes after every step."""

from __future__ import annotations

import itertools
import logging
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.ocp import protocol
from service.p2p import AuditRequest, LoanService
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.banking import Banking, wire
from tests.integration.service.support import race

D = Decimal
AMOUNTS = (D("6000.00"), D("4000.00"))
_numbers = itertools.count(1)


def rows(sql, query: str, **params) -> list:
    with sql.connect() as conn:
        return list(conn.execute(text(query), params))


def balance(sql, member_id: int) -> tuple[Decimal, Decimal]:
    [row] = rows(sql, "SELECT available, frozen FROM account WHERE member_id = :m", m=member_id)
    return D(row.available) / 100, D(row.frozen) / 100


def items(sql, *statuses: str) -> list:
    """The REPAY items, oldest first (of these statuses, if given)."""
    found = rows(sql, "SELECT * FROM bank_order WHERE order_type = 'REPAY' ORDER BY id")
    return [i for i in found if not statuses or i.status in statuses]


def money(fen: int) -> str:
    return protocol.format_amount(D(fen) / 100)


def installment_status(sql, loan_id: int, period: int = 1) -> str:
    [row] = rows(
        sql,
        "SELECT status FROM installment WHERE loan_id = :l AND period = :p",
        l=loan_id,
        p=period,
    )
    return row.status


@pytest.fixture
def me(borrower) -> Principal:
    return Principal(member_id=borrower.member_id, role="BORROWER")


@pytest.fixture
def listing(platform, operator, make_member, loan_request, me):
    """Factory: a listing lent to the test's borrower by two investors (through the
    platform's sandbox services), the borrower recharged for the interest; the listing id
    and the investors."""
    loans = platform.service(LoanService)
    payments = platform.service(PaymentService)

    def factory(term: int = 3):
        vo = loans.publish_loan(
            loan_request(amount=sum(AMOUNTS), term_months=term, min_invest=D("0.01")), operator
        )
        loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
        investors = []
        for amount in AMOUNTS:
            m = make_member("INVESTOR")
            who = Principal(member_id=m.member_id, role="INVESTOR")
            payments.recharge(amount, f"r{next(_numbers)}", who)
            loans.invest(vo.loan_id, amount, f"i{next(_numbers)}", who)
            investors.append(who)
        loans.disburse_loan(vo.loan_id, f"d{vo.loan_id}", operator)
        payments.recharge(D("5000.00"), f"r{next(_numbers)}", me)
        return vo.loan_id, investors

    return factory


def succeed(banking: Banking, item) -> str:
    message = banking.notification(item.order_no, "SUCCEEDED", money(item.amount), "REPAY")
    return banking.notify(message).outcome


def fail(banking: Banking, item, reason: str = "INSUFFICIENT_BALANCE") -> str:
    message = banking.notification(
        item.order_no, "FAILED", money(item.amount), "REPAY", reason=reason
    )
    return banking.notify(message).outcome


def test_a_repayment_is_pending_until_every_item_succeeded(
    banking: Banking, listing, me, sql
) -> None:
    loan_id, investors = listing()
    before = balance(sql, me.member_id)
    paid = banking.loans.repay(loan_id, "pay-1", me)
    assert (paid.status, paid.paid_at, paid.period) == ("PENDING", None, 1)
    assert banking.loans.repay(loan_id, "pay-1", me) == paid  # a repeat moves nothing
    assert installment_status(sql, loan_id) == "PAYING"
    shown = banking.loans.get_repayment_schedule(loan_id, me).items[0]
    assert (shown.status, shown.paid_at) == ("PAYING", None)
    assert balance(sql, me.member_id) == (before[0] - paid.amount, paid.amount)
    assert [i.status for i in items(sql)] == ["CREATED", "CREATED"]
    assert banking.bank.submitted == []
    assert banking.ledger_ok()

    assert banking.run_jobs() == 1
    [batch] = banking.bank.submitted
    first, second = items(sql)
    fund = {
        who.member_id: banking.members.get_fund_account(who).account_no for who in (me, *investors)
    }
    assert batch["orderType"] == "REPAY" and batch["loanId"] == str(loan_id)
    assert batch["orderNo"] == first.batch_no == second.batch_no
    assert [i["itemNo"] for i in batch["items"]] == [first.order_no, second.order_no]
    assert {i["payerAccountNo"] for i in batch["items"]} == {fund[me.member_id]}
    assert [i["payeeAccountNo"] for i in batch["items"]] == [fund[w.member_id] for w in investors]
    assert sum(D(i["principal"]) + D(i["interest"]) for i in batch["items"]) == paid.amount
    assert {i["serviceFee"] for i in batch["items"]} == {"0.00"}
    assert [i.status for i in items(sql)] == ["ACCEPTED", "ACCEPTED"]
    evidence = rows(
        sql, "SELECT order_id, kind, body FROM bank_evidence WHERE kind = 'REQUEST' ORDER BY id"
    )
    assert [e.order_id for e in evidence] == [first.id, second.id]
    assert protocol.decode(evidence[0].body.encode())["orderNo"] == first.batch_no
    assert protocol.decode(evidence[1].body.encode()) == {
        "batchNo": first.batch_no,
        "requestOf": first.order_no,
    }

    investor_before = balance(sql, investors[0].member_id)
    assert succeed(banking, first) == "applied"
    assert installment_status(sql, loan_id) == "PAYING"
    assert balance(sql, investors[0].member_id)[0] == investor_before[0] + D(first.amount) / 100
    assert banking.ledger_ok()
    assert succeed(banking, second) == "applied"
    assert installment_status(sql, loan_id) == "PAID"
    assert balance(sql, me.member_id) == (before[0] - paid.amount, D("0.00"))
    again = banking.loans.repay(loan_id, "pay-1", me)
    assert (again.status, again.paid_at is not None) == ("PAID", True)
    statuses = rows(sql, "SELECT status FROM receipt WHERE period = 1 AND loan_id = :l", l=loan_id)
    assert {r.status for r in statuses} == {"RECEIVED"}
    assert banking.ledger_ok()


def test_duplicate_and_conflicting_item_notifications_change_nothing(
    banking: Banking, listing, me, sql
) -> None:
    loan_id, _ = listing()
    banking.loans.repay(loan_id, "pay-1", me)
    banking.run_jobs()
    first, _second = items(sql)
    message = banking.notification(first.order_no, "SUCCEEDED", money(first.amount), "REPAY")
    assert banking.notify(message).outcome == "applied"
    assert banking.notify(message).outcome == "repeat"
    assert fail(banking, first) == "conflict"
    assert banking.conflicts.kinds == {"status": 1}
    postings = rows(sql, "SELECT id FROM posting WHERE business_type = 'REPAY'")
    assert len(postings) == 1
    assert [i.order_no for i in items(sql)] == [first.order_no, _second.order_no]  # no re-issue
    assert banking.ledger_ok()


def test_a_failed_item_is_reissued_under_a_new_number_and_then_succeeds(
    banking: Banking, listing, me, sql, clock
) -> None:
    loan_id, _ = listing()
    banking.loans.repay(loan_id, "pay-1", me)
    banking.run_jobs()
    first, second = items(sql)
    assert fail(banking, first) == "applied"
    assert succeed(banking, second) == "applied"
    retry = items(sql)[-1]
    assert (retry.retry_of, retry.status) == (first.id, "CREATED")
    assert retry.order_no not in (first.order_no, second.order_no)
    assert retry.batch_no != first.batch_no
    wait = banking.outbox.not_before[retry.batch_no] - clock()
    assert wait.total_seconds() == banking.platform.settings.bank.item_retry_seconds
    assert installment_status(sql, loan_id) == "PAYING"
    assert banking.ledger_ok()  # the failed item's money is still frozen, for its re-issue

    assert banking.run_jobs() == 1
    [item] = banking.bank.submitted[-1]["items"]
    assert (item["itemNo"], item["principal"]) == (retry.order_no, money(first.principal))
    assert succeed(banking, items(sql)[-1]) == "applied"
    assert installment_status(sql, loan_id) == "PAID"
    assert balance(sql, me.member_id)[1] == D("0.00")
    assert banking.ledger_ok()


def test_an_item_failing_every_attempt_is_left_to_operators(
    make_platform, listing, me, sql, caplog
) -> None:
    banking = wire(make_platform(**{"bank.item_attempts": "2"}))
    loan_id, _ = listing()
    banking.loans.repay(loan_id, "pay-1", me)
    banking.run_jobs()
    first, second = items(sql)
    succeed(banking, second)
    fail(banking, first)
    banking.run_jobs()
    retry = items(sql)[-1]
    with caplog.at_level(logging.ERROR, logger="service.ocp.alerts"):
        assert fail(banking, retry) == "applied"
    assert len(items(sql)) == 3  # not re-issued again
    assert any("ALERT bank item " + retry.order_no in r.getMessage() for r in caplog.records)
    assert items(sql)[-1].handed_to_reconciliation_at is not None
    assert banking.orders.in_doubt_count() == 1
    assert installment_status(sql, loan_id) == "PAYING"
    assert balance(sql, me.member_id)[1] == D(first.amount) / 100  # held for the decision
    assert banking.ledger_ok()


def test_a_refused_batch_fails_its_items_which_are_reissued(
    banking: Banking, listing, me, sql
) -> None:
    loan_id, _ = listing()
    banking.loans.repay(loan_id, "pay-1", me)
    banking.bank.result, banking.bank.reason = protocol.REFUSED, "ACCOUNT_NOT_FOUND"
    banking.run_jobs(1)
    first, second, *retries = items(sql)
    assert (first.status, first.reason, second.status) == ("FAILED", "ACCOUNT_NOT_FOUND", "FAILED")
    assert [r.retry_of for r in retries] == [first.id, second.id]
    [batch] = rows(sql, "SELECT status FROM bank_batch WHERE batch_no = :b", b=first.batch_no)
    assert batch.status == "REFUSED"
    assert banking.ledger_ok()
    banking.bank.result = protocol.ACCEPTED
    assert banking.run_jobs() == 2
    for retry in retries:
        succeed(banking, rows(sql, "SELECT * FROM bank_order WHERE id = :i", i=retry.id)[0])
    assert installment_status(sql, loan_id) == "PAID"
    assert banking.ledger_ok()


def test_a_lost_submission_is_queried_and_the_same_batch_sent_again(
    banking: Banking, listing, me, sql, clock
) -> None:
    loan_id, _ = listing()
    banking.loans.repay(loan_id, "pay-1", me)
    banking.bank.result = None  # the answer never comes
    banking.run_jobs()
    assert {i.status for i in items(sql)} == {"UNKNOWN"}
    [batch] = rows(sql, "SELECT * FROM bank_batch")
    assert batch.status == "UNKNOWN"
    assert banking.ledger_ok()

    clock.advance(seconds=banking.platform.settings.bank.query_first_after_seconds)
    for item in items(sql):
        banking.bank.status[item.order_no] = {"status": protocol.NOT_FOUND}
    assert banking.orders.query_due() == 2
    assert len(items(sql)) == 2  # an UNKNOWN item is never re-issued under a new number
    banking.bank.result = protocol.ACCEPTED
    assert banking.run_jobs() >= 1
    first, again = banking.bank.submitted[0], banking.bank.submitted[1]
    assert again == first  # the same batch number and items
    assert len(banking.bank.submitted) == 2  # sent again once, however many items said so
    assert {i.status for i in items(sql)} == {"ACCEPTED"}
    for item in items(sql):
        succeed(banking, item)
    assert installment_status(sql, loan_id) == "PAID"
    assert banking.ledger_ok()


def test_an_early_settlement_is_one_batch_and_settles_the_listing(
    banking: Banking, listing, me, sql
) -> None:
    loan_id, _ = listing(term=3)
    settled = banking.loans.settle_early(loan_id, "settle-1", me)
    assert (settled.status, settled.settled_at) == ("PENDING", None)
    assert {r.status for r in rows(sql, "SELECT status FROM installment")} == {"PAYING"}
    with pytest.raises(Exception, match="being paid at the bank"):
        banking.loans.repay(loan_id, "pay-2", me)
    banking.run_jobs()
    assert len(banking.bank.submitted[0]["items"]) == 6  # 3 installments x 2 investors
    for item in items(sql):
        succeed(banking, item)
    assert {r.status for r in rows(sql, "SELECT status FROM installment")} == {"SETTLED_EARLY"}
    assert rows(sql, "SELECT status FROM loan WHERE id = :l", l=loan_id)[0].status == "SETTLED"
    done = banking.loans.settle_early(loan_id, "settle-1", me)
    assert (done.status, done.amount) == ("PAID", settled.amount)
    assert banking.ledger_ok()


def test_a_penalty_kept_by_the_platform_is_an_item_paid_to_its_account(
    make_platform, listing, me, sql, clock
) -> None:
    banking = wire(make_platform(**{"repayment.penalty_to": "PLATFORM"}))
    loan_id, _ = listing()
    clock.advance(days=45)  # the first installment is overdue
    paid = banking.loans.repay(loan_id, "pay-1", me)
    assert paid.penalty > 0
    banking.run_jobs()
    penalty = [i for i in banking.bank.submitted[0]["items"] if D(i["penalty"])]
    merchant = banking.platform.settings.bank.merchant_id
    assert [(i["payeeAccountNo"], i["penalty"]) for i in penalty] == [
        (protocol.platform_account_no(merchant), protocol.format_amount(paid.penalty))
    ]
    for item in items(sql):
        succeed(banking, item)
    assert installment_status(sql, loan_id) == "PAID"
    assert banking.ledger_ok()


@pytest.mark.mysql
def test_an_items_notification_and_its_query_racing_apply_once(
    banking: Banking, listing, me, sql, clock, database
) -> None:
    if database.engine.url.get_backend_name() != "mysql":
        pytest.skip("a race for a row lock needs MariaDB")
    loan_id, _ = listing()
    banking.loans.repay(loan_id, "pay-1", me)
    banking.run_jobs()
    clock.advance(seconds=banking.platform.settings.bank.query_first_after_seconds)
    for item in items(sql):
        banking.bank.status[item.order_no] = {"status": "SUCCEEDED", "amount": money(item.amount)}
        attempt = banking.orders._claim_query(item.order_no)
        exchange = banking.bank.query(item.order_no)
        message = banking.notification(item.order_no, "SUCCEEDED", money(item.amount), "REPAY")
        notified, recorded = race(
            [
                (banking.notify, message),
                (banking.orders._record_query, item.order_no, attempt, exchange),
            ]
        )
        assert notified.outcome in ("applied", "confirmed") and recorded is None
    postings = rows(sql, "SELECT ref_id FROM posting WHERE business_type = 'REPAY'")
    assert sorted(p.ref_id for p in postings) == sorted(i.ref_id for i in items(sql))
    assert installment_status(sql, loan_id) == "PAID"
    assert banking.conflicts.kinds == {}
    assert banking.ledger_ok()


def test_check_ledger_finds_receipts_and_frozen_money_off_their_items(
    banking: Banking, listing, me, sql
) -> None:
    loan_id, _ = listing()
    banking.loans.repay(loan_id, "pay-1", me)
    banking.run_jobs()
    first, _ = items(sql)

    def failing() -> set[str]:
        report = LedgerAudit(banking.platform.tx).run()
        return {c.name for c in report.checks if not c.ok}

    with sql.begin() as conn:  # a receipt RECEIVED that no item paid
        conn.execute(
            text("UPDATE receipt SET status = 'RECEIVED' WHERE id = :r"), {"r": first.ref_id}
        )
    assert failing() == {"receipts agree with the bank's items"}
    with sql.begin() as conn:  # an item SUCCEEDED whose money never left the borrower
        conn.execute(
            text("UPDATE receipt SET status = 'PENDING' WHERE id = :r"), {"r": first.ref_id}
        )
        conn.execute(
            text(
                "UPDATE bank_order SET status = 'SUCCEEDED', finished_at = updated_at WHERE id = :i"
            ),
            {"i": first.id},
        )
    assert failing() == {
        "receipts agree with the bank's items",
        "every frozen fen is accounted for",
    }


@pytest.mark.mysql
def test_the_last_two_items_of_an_installment_succeeding_at_once_pay_it(
    banking: Banking, listing, me, sql, database
) -> None:
    """Each item's transaction locks the listing before it looks at the installment's other
    items, so of two finishing together the later one sees the first and pays it."""
    if database.engine.url.get_backend_name() != "mysql":
        pytest.skip("a race for a row lock needs MariaDB")
    loan_id, _ = listing()
    for period in (1, 2, 3):
        banking.loans.repay(loan_id, f"pay-{period}", me)
        banking.run_jobs()
        first, second = items(sql, "ACCEPTED")
        outcomes = race([(succeed, banking, first), (succeed, banking, second)])
        assert outcomes == ["applied", "applied"]
        assert installment_status(sql, loan_id, period) == "PAID"
    assert rows(sql, "SELECT status FROM loan WHERE id = :l", l=loan_id)[0].status == "SETTLED"
    assert banking.ledger_ok()
