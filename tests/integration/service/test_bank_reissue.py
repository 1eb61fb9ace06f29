"""Operators re-issue the bank orders that wait for a person (service/reconciliation/actions.py),
on SQLite and MariaDB, with a scripted depository and every batch item's attempts used up by
its first failure (bank.item_attempts 1): a DISBURSE or REPAY item and a release (UNFREEZE)
the bank FAILED are listed, re-issued under a new number linked to the failed one, audited,
and, once the new order succeeds, the listing, the installment or the investment moves on as
if the first had, the ledger check clean and nothing left for the in-doubt gauge; a re-issue
the bank fails too waits for a person again. Every refusal, UNKNOWN orders among them, and
request numbers."""

from __future__ import annotations

import itertools
import logging
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.ocp import protocol
from service.p2p.listing import AuditRequest
from service.reconciliation import ReconciliationService
from service.security import Principal
from tests.integration.service.banking import Banking, wire
from tests.integration.service.support import caller, error_of, race
from tests.integration.service.test_bank_payments import balances, funded

D = Decimal
AMOUNTS = (D("6000.00"), D("4000.00"))
APPROVE = AuditRequest(approve=True, reason=None)
_numbers = itertools.count(1)


def rows(sql, query: str, **params) -> list:
    with sql.connect() as conn:
        return list(conn.execute(text(query), params))


def orders_of(sql, order_type: str) -> list:
    """The bank orders of ``order_type``, oldest first."""
    return rows(sql, "SELECT * FROM bank_order WHERE order_type = :t ORDER BY id", t=order_type)


def order(sql, order_no: str):
    return rows(sql, "SELECT * FROM bank_order WHERE order_no = :n", n=order_no)[0]


def loan_status(sql, loan_id: int) -> str:
    return rows(sql, "SELECT status FROM loan WHERE id = :l", l=loan_id)[0].status


def settle(banking: Banking, row, status: str, **fields) -> str:
    """Send what is queued, then the bank's notification that ``row`` (a bank order) finished
    ``status``; its outcome."""
    banking.run_jobs()
    amount = protocol.format_amount(D(row.amount) / 100)
    message = banking.notification(row.order_no, status, amount, row.order_type, **fields)
    return banking.notify(message).outcome


def reissue(banking: Banking, who: Principal, order_no: str, no: str = "re-1", reason=None):
    reason = reason or "the bank confirmed the failure was theirs"
    return banking.reconciliation.reissue_bank_order(order_no, reason, no, who)


def waiting(banking: Banking) -> list:
    return list(banking.reconciliation.list_orders_waiting(page_size=100).items)


def failing_checks(banking: Banking) -> set[str]:
    return {c.name for c in LedgerAudit(banking.platform.tx).run().checks if not c.ok}


@pytest.fixture
def banking(make_platform) -> Banking:
    """The platform on a scripted bank, a batch item's attempts used up by its first failure."""
    return wire(make_platform(**{"bank.item_attempts": "1"}))


@pytest.fixture
def investor(banking: Banking, make_member):
    """Factory: an investor with 10000.00 available, recharged through the bank."""

    def factory() -> Principal:
        who = caller(make_member("INVESTOR"))
        funded(banking, who, "10000.00")
        return who

    return factory


@pytest.fixture
def frozen(banking: Banking, operator, loan_request, investor, sql):
    """Factory: a RAISING listing whose investors' FREEZEs the bank carried out (6000.00 and
    4000.00: FULL); its id and the investors."""

    def factory() -> tuple[int, list[Principal]]:
        vo = banking.loans.publish_loan(loan_request(min_invest=D("0.01")), operator)
        banking.loans.audit_loan(vo.loan_id, APPROVE, operator)
        investors = []
        for amount in AMOUNTS:
            who = investor()
            made = banking.loans.invest(vo.loan_id, amount, f"i{next(_numbers)}", who)
            assert settle(banking, order(sql, made.order_no), "SUCCEEDED") == "applied"
            investors.append(who)
        return vo.loan_id, investors

    return factory


@pytest.fixture
def disbursing(banking: Banking, frozen, operator, sql):
    """Factory: a FULL listing disbursed at the bank, its DISBURSE batch accepted; its id."""

    def factory() -> int:
        loan_id, _ = frozen()
        assert banking.loans.disburse_loan(loan_id, f"d{loan_id}", operator).status == "DISBURSING"
        banking.run_jobs()
        return loan_id

    return factory


def test_an_exhausted_disburse_item_reissued_by_an_operator_lends_its_investment(
    banking: Banking, disbursing, operator, sql, clock
) -> None:
    loan_id = disbursing()
    first, second = orders_of(sql, "DISBURSE")
    assert settle(banking, first, "SUCCEEDED") == "applied"
    assert settle(banking, second, "FAILED", reason="DECLINED_BY_BANK") == "applied"
    assert len(orders_of(sql, "DISBURSE")) == 2  # its one attempt used up: not re-issued
    [shown] = waiting(banking)
    assert (shown.order_no, shown.order_type, shown.member_id, shown.amount) == (
        second.order_no,
        "DISBURSE",
        second.member_id,
        D("4000.00"),
    )
    assert (shown.reason, shown.failed_at, shown.attempts) == ("DECLINED_BY_BANK", clock(), 1)
    assert banking.orders.in_doubt_count() == 1
    assert loan_status(sql, loan_id) == "DISBURSING"
    assert banking.ledger_ok()

    clock.advance(minutes=5)
    done = reissue(banking, operator, second.order_no, reason="the investor's FREEZE is intact")
    new = order(sql, done.new_order_no)
    assert (done.order_no, done.order_type, done.member_id, done.amount) == (
        second.order_no,
        "DISBURSE",
        second.member_id,
        D("4000.00"),
    )
    assert (done.reason, done.reissued_by, done.reissued_at) == (
        "the investor's FREEZE is intact",
        operator.member_id,
        clock(),
    )
    assert (new.retry_of, new.status, new.ref_id) == (second.id, "CREATED", second.ref_id)
    assert new.order_no != second.order_no and new.batch_no != second.batch_no
    assert new.batch_no not in banking.outbox.not_before  # sent at once, no backoff
    [audit] = rows(sql, "SELECT * FROM bank_order_reissue")
    assert (audit.order_id, audit.new_order_id, audit.reissued_by, audit.request_no) == (
        second.id,
        new.id,
        operator.member_id,
        "re-1",
    )
    assert waiting(banking) == [] and banking.orders.in_doubt_count() == 0
    assert banking.ledger_ok()

    assert banking.run_jobs() == 1
    [item] = banking.bank.submitted[-1]["items"]
    assert (item["itemNo"], item["freezeOrderNo"], item["principal"]) == (
        new.order_no,
        second.freeze_order_no,
        "4000.00",
    )
    assert settle(banking, order(sql, new.order_no), "SUCCEEDED") == "applied"
    assert loan_status(sql, loan_id) == "REPAYING"
    statuses = rows(sql, "SELECT status FROM investment WHERE loan_id = :l", l=loan_id)
    assert {s.status for s in statuses} == {"ACTIVE"}
    assert len(rows(sql, "SELECT id FROM installment WHERE loan_id = :l", l=loan_id)) == 12
    assert waiting(banking) == [] and banking.orders.in_doubt_count() == 0
    assert banking.ledger_ok()


def test_an_exhausted_repay_item_reissued_by_an_operator_pays_its_installment(
    banking: Banking, disbursing, borrower, operator, sql
) -> None:
    loan_id = disbursing()
    for item in orders_of(sql, "DISBURSE"):
        settle(banking, item, "SUCCEEDED")
    me = caller(borrower)
    paid = banking.loans.repay(loan_id, "pay-1", me)
    banking.run_jobs()
    first, second = orders_of(sql, "REPAY")
    assert settle(banking, first, "SUCCEEDED") == "applied"
    assert settle(banking, second, "FAILED", reason="INSUFFICIENT_BALANCE") == "applied"
    [shown] = waiting(banking)
    assert (shown.order_no, shown.order_type, shown.member_id) == (
        second.order_no,
        "REPAY",
        me.member_id,
    )
    assert banking.orders.in_doubt_count() == 1
    assert balances(sql, me.member_id)[1] == D(second.amount) / 100  # held for the decision
    assert banking.ledger_ok()

    done = reissue(banking, operator, second.order_no)
    assert waiting(banking) == [] and banking.orders.in_doubt_count() == 0
    assert banking.ledger_ok()
    assert settle(banking, order(sql, done.new_order_no), "SUCCEEDED") == "applied"
    schedule = banking.loans.get_repayment_schedule(loan_id, me).items
    assert (schedule[0].status, schedule[1].status) == ("PAID", "PENDING")
    again = banking.loans.repay(loan_id, "pay-1", me)
    assert (again.status, again.amount) == ("PAID", paid.amount)
    assert balances(sql, me.member_id)[1] == D("0.00")
    receipts = rows(sql, "SELECT status FROM receipt WHERE loan_id = :l AND period = 1", l=loan_id)
    assert {r.status for r in receipts} == {"RECEIVED"}
    assert waiting(banking) == [] and banking.orders.in_doubt_count() == 0
    assert banking.ledger_ok()


def test_a_failed_release_reissued_by_an_operator_releases_the_investment(
    banking: Banking, frozen, operator, sql
) -> None:
    loan_id, (one, _) = frozen()
    banking.loans.cancel_loan(loan_id, "the borrower withdrew", operator)
    first, second = orders_of(sql, "UNFREEZE")
    assert settle(banking, first, "FAILED", reason="DECLINED_BY_BANK") == "applied"
    assert settle(banking, second, "SUCCEEDED") == "applied"
    stuck = banking.loans.get_investment(first.ref_id, one)
    assert stuck.status == "RELEASING" and "DECLINED_BY_BANK" in stuck.failure_reason
    assert failing_checks(banking) == {"every release reached the bank"}
    [shown] = waiting(banking)
    assert (shown.order_no, shown.order_type, shown.member_id, shown.amount) == (
        first.order_no,
        "UNFREEZE",
        one.member_id,
        D("6000.00"),
    )
    assert (shown.reason, shown.attempts) == ("DECLINED_BY_BANK", 1)
    assert banking.orders.in_doubt_count() == 1

    done = reissue(banking, operator, first.order_no)
    new = order(sql, done.new_order_no)
    assert (new.order_type, new.retry_of, new.ref_id, new.status) == (
        "UNFREEZE",
        first.id,
        first.ref_id,
        "CREATED",
    )
    assert new.order_no.startswith("U") and new.order_no != first.order_no
    dealt_with = banking.loans.get_investment(first.ref_id, one)
    assert (dealt_with.status, dealt_with.failure_reason) == ("RELEASING", None)
    assert waiting(banking) == [] and banking.orders.in_doubt_count() == 0
    assert banking.ledger_ok()  # check 9: a person has dealt with it; the release is on its way

    assert banking.run_jobs() == 1
    sent = banking.bank.submitted[-1]
    assert (sent["orderNo"], sent["orderType"], sent["amount"]) == (
        new.order_no,
        "UNFREEZE",
        "6000.00",
    )
    assert sent["freezeOrderNo"] == stuck.order_no  # the same FREEZE
    assert settle(banking, new, "SUCCEEDED") == "applied"
    assert banking.loans.get_investment(first.ref_id, one).status == "RELEASED"
    assert balances(sql, one.member_id) == (D("10000.00"), D("0.00"))
    postings = rows(
        sql,
        "SELECT business_type FROM posting WHERE ref_type = 'investment' AND ref_id = :i"
        " ORDER BY id",
        i=first.ref_id,
    )
    assert [p.business_type for p in postings] == ["INVEST", "CANCEL"]
    assert waiting(banking) == [] and banking.orders.in_doubt_count() == 0
    assert banking.ledger_ok()


def test_a_reissued_item_the_bank_fails_again_waits_for_a_person_again(
    banking: Banking, disbursing, operator, sql, caplog
) -> None:
    loan_id = disbursing()
    first, second = orders_of(sql, "DISBURSE")
    settle(banking, first, "SUCCEEDED")
    settle(banking, second, "FAILED", reason="DECLINED_BY_BANK")
    done = reissue(banking, operator, second.order_no)
    with caplog.at_level(logging.ERROR, logger="service.ocp.alerts"):
        assert settle(banking, order(sql, done.new_order_no), "FAILED") == "applied"
    assert any(f"ALERT bank item {done.new_order_no}" in r.getMessage() for r in caplog.records)
    assert len(orders_of(sql, "DISBURSE")) == 3  # not re-issued by the machinery
    [shown] = waiting(banking)
    assert (shown.order_no, shown.attempts) == (done.new_order_no, 2)
    assert banking.orders.in_doubt_count() == 1
    assert loan_status(sql, loan_id) == "DISBURSING"
    assert banking.ledger_ok()

    again = reissue(banking, operator, done.new_order_no, "re-2")
    settle(banking, order(sql, again.new_order_no), "SUCCEEDED")
    assert loan_status(sql, loan_id) == "REPAYING"
    assert waiting(banking) == [] and banking.orders.in_doubt_count() == 0
    assert banking.ledger_ok()


def test_a_reissued_release_the_bank_fails_again_waits_for_a_person_again(
    banking: Banking, frozen, operator, sql
) -> None:
    loan_id, (one, _) = frozen()
    banking.loans.cancel_loan(loan_id, "the borrower withdrew", operator)
    first, second = orders_of(sql, "UNFREEZE")
    settle(banking, first, "FAILED", reason="DECLINED_BY_BANK")
    settle(banking, second, "SUCCEEDED")
    done = reissue(banking, operator, first.order_no)
    assert settle(banking, order(sql, done.new_order_no), "FAILED", reason="SYSTEM_ERROR") == (
        "applied"
    )
    stuck = banking.loans.get_investment(first.ref_id, one)
    assert stuck.status == "RELEASING"
    assert done.new_order_no in stuck.failure_reason and "SYSTEM_ERROR" in stuck.failure_reason
    assert failing_checks(banking) == {"every release reached the bank"}
    [shown] = waiting(banking)
    assert (shown.order_no, shown.reason, shown.attempts) == (
        done.new_order_no,
        "SYSTEM_ERROR",
        2,
    )
    assert banking.orders.in_doubt_count() == 1


def test_an_unknown_order_is_never_reissued(banking: Banking, frozen, operator, sql) -> None:
    loan_id, _ = frozen()
    banking.loans.disburse_loan(loan_id, "d-1", operator)
    banking.bank.result = None  # the answer never comes: the bank may have lent the money
    banking.run_jobs()
    first, _ = orders_of(sql, "DISBURSE")
    assert first.status == "UNKNOWN"
    refused = error_of(reissue, banking, operator, first.order_no)
    assert refused.code == "ORDER_NOT_REISSUABLE"
    assert "only a FAILED order is re-issued; this one is UNKNOWN" in refused.message
    assert len(orders_of(sql, "DISBURSE")) == 2
    assert rows(sql, "SELECT id FROM bank_order_reissue") == []
    assert waiting(banking) == []


def test_orders_that_do_not_wait_for_a_person_are_refused(
    banking: Banking, disbursing, investor, operator, loan_request, sql
) -> None:
    disbursing()
    first, second = orders_of(sql, "DISBURSE")

    def refusal(order_no: str, no: str) -> tuple[str, str]:
        e = error_of(reissue, banking, operator, order_no, no)
        return e.code, e.message

    assert refusal("D20260301NOSUCHORDER", "x-1") == (
        "BANK_ORDER_NOT_FOUND",
        "bank order D20260301NOSUCHORDER does not exist",
    )
    code, why = refusal(first.order_no, "x-2")
    assert (code, "this one is ACCEPTED" in why) == ("ORDER_NOT_REISSUABLE", True)
    settle(banking, first, "SUCCEEDED")
    code, why = refusal(first.order_no, "x-3")
    assert (code, "this one is SUCCEEDED" in why) == ("ORDER_NOT_REISSUABLE", True)

    # A FREEZE the bank failed: the investor invests again if they wish.
    listing = banking.loans.publish_loan(loan_request(), operator)
    banking.loans.audit_loan(listing.loan_id, APPROVE, operator)
    made = banking.loans.invest(listing.loan_id, D("100.00"), "i-f", investor())
    settle(banking, order(sql, made.order_no), "FAILED", reason="CANCELLED_BY_MEMBER")
    code, why = refusal(made.order_no, "x-4")
    assert (code, "a FREEZE order is not re-issued by an operator" in why) == (
        "ORDER_NOT_REISSUABLE",
        True,
    )

    settle(banking, second, "FAILED")
    done = reissue(banking, operator, second.order_no, "x-5")
    code, why = refusal(second.order_no, "x-6")  # its re-issue on its way
    assert (code, f"it was re-issued already, as {done.new_order_no}" in why) == (
        "ORDER_NOT_REISSUABLE",
        True,
    )
    settle(banking, order(sql, done.new_order_no), "SUCCEEDED")
    code, why = refusal(second.order_no, "x-7")  # its re-issue lent the investment
    assert code == "ORDER_NOT_REISSUABLE"
    assert f"its business is done: DISBURSE {done.new_order_no} SUCCEEDED" in why

    for reason, no in ((" \t\r\n", "x-8"), ("r" * 2001, "x-9"), ("fine", " x-10")):
        invalid = error_of(reissue, banking, operator, second.order_no, no, reason)
        assert invalid.code == "VALIDATION_FAILED"
    assert len(rows(sql, "SELECT id FROM bank_order_reissue")) == 1
    assert banking.ledger_ok()


def test_a_request_number_repeated_returns_the_same_reissue(
    banking: Banking, disbursing, operator, make_member, sql
) -> None:
    disbursing()
    first, second = orders_of(sql, "DISBURSE")
    settle(banking, first, "FAILED")
    settle(banking, second, "FAILED")
    done = reissue(banking, operator, first.order_no, "same", "it failed")
    assert reissue(banking, operator, first.order_no, "same", "it failed") == done
    assert len(orders_of(sql, "DISBURSE")) == 3  # one re-issue
    assert banking.run_jobs() == 1  # sent once
    for order_no, reason in ((first.order_no, "another reason"), (second.order_no, "it failed")):
        reused = error_of(reissue, banking, operator, order_no, "same", reason)
        assert reused.code == "REQUEST_NO_REUSED"
    # A request number is the operator's own: another operator's is another request.
    other = caller(make_member("OPERATOR"))
    theirs = reissue(banking, other, second.order_no, "same", "it failed")
    assert (theirs.order_no, theirs.reissued_by) == (second.order_no, other.member_id)
    assert len(rows(sql, "SELECT id FROM bank_order_reissue")) == 2
    assert banking.ledger_ok()


@pytest.mark.mysql
def test_the_same_request_made_twice_at_once_reissues_once(
    banking: Banking, disbursing, operator, sql, database
) -> None:
    if database.engine.url.get_backend_name() != "mysql":
        pytest.skip("a race for a row lock needs MariaDB")
    disbursing()
    first, _ = orders_of(sql, "DISBURSE")
    settle(banking, first, "FAILED")
    call = (reissue, banking, operator, first.order_no, "once", "it failed")
    one, two = race([call, call])
    assert one == two and one.order_no == first.order_no
    assert len(orders_of(sql, "DISBURSE")) == 3
    assert len(rows(sql, "SELECT id FROM bank_order_reissue")) == 1


def test_without_the_bank_nothing_waits_and_nothing_is_reissued(platform, operator) -> None:
    sandbox = platform.service(ReconciliationService)
    assert sandbox.list_orders_waiting().total == 0
    refused = error_of(sandbox.reissue_bank_order, "D1", "it failed", "r-1", operator)
    assert refused.code == "RECONCILIATION_UNAVAILABLE"
