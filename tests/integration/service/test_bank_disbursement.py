"""Disbursement through the depository bank (payment.gateway BANK) as DISBURSE batches, on
SQLite and MariaDB: a FULL listing becomes DISBURSING with an item per investment (its
exact share of the platform fee as the service fee), each item lends one investment on its
own, a failed item is re-issued, and the listing is REPAYING with its plan once every
investment is lent. The ledger check passes after every step."""

from __future__ import annotations

import collections
import itertools
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.ocp import protocol
from service.p2p import AuditRequest, LoanService
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.banking import Banking

D = Decimal
AMOUNTS = (D("3333.33"), D("3333.33"), D("3333.34"))
_numbers = itertools.count(1)


def rows(sql, query: str, **params) -> list:
    with sql.connect() as conn:
        return list(conn.execute(text(query), params))


def items(sql) -> list:
    return rows(sql, "SELECT * FROM bank_order WHERE order_type = 'DISBURSE' ORDER BY id")


def loan_row(sql, loan_id: int):
    return rows(sql, "SELECT * FROM loan WHERE id = :l", l=loan_id)[0]


def lend(banking: Banking, item) -> str:
    amount = protocol.format_amount(D(item.amount) / 100)
    message = banking.notification(item.order_no, "SUCCEEDED", amount, "DISBURSE")
    return banking.notify(message).outcome


@pytest.fixture
def full(banking: Banking, platform, operator, make_member, loan_request):
    """Factory: a FULL listing raised by three investors, each through the bank (frozen by its
    FREEZE order) or, where ``at_bank`` says False, as before investing was a bank order (the
    sandbox services: frozen in the ledger only); its id and the FREEZE order numbers."""

    def factory(*at_bank: bool) -> tuple[int, list[str]]:
        at_bank = at_bank or (True,) * len(AMOUNTS)
        sandbox = platform.service(LoanService)
        vo = sandbox.publish_loan(loan_request(amount=sum(AMOUNTS), min_invest=D("0.01")), operator)
        sandbox.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
        freezes = []
        for amount, bank in zip(AMOUNTS, at_bank, strict=True):
            loans = banking.loans if bank else sandbox
            who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
            platform.service(PaymentService).recharge(amount, f"r{next(_numbers)}", who)
            investment = loans.invest(vo.loan_id, amount, f"i{next(_numbers)}", who)
            if bank:
                banking.run_jobs()
                notice = banking.notification(
                    investment.order_no, "SUCCEEDED", f"{amount:f}", "FREEZE"
                )
                assert banking.notify(notice).outcome == "applied"
                freezes.append(investment.order_no)
        assert loan_row(sql_of(banking), vo.loan_id).status == "FULL"
        return vo.loan_id, freezes

    return factory


def sql_of(banking: Banking):
    return banking.platform.database.engine


def test_a_listing_is_disbursing_until_every_investment_is_lent(
    banking: Banking, full, operator, sql, borrower
) -> None:
    full, freezes = full()
    shown = banking.loans.disburse_loan(full, "d-1", operator)
    assert shown.status == "DISBURSING"
    assert banking.loans.disburse_loan(full, "d-1", operator).status == "DISBURSING"
    fee = D(loan_row(sql, full).fee) / 100
    assert fee == (sum(AMOUNTS) * banking.platform.settings.loan.platform_fee_rate).quantize(
        D("0.01")
    )
    assert banking.ledger_ok()
    assert banking.run_jobs() == 1
    batch = banking.bank.submitted[-1]
    assert batch["orderType"] == "DISBURSE"
    assert [D(i["principal"]) for i in batch["items"]] == list(AMOUNTS)
    assert [i["freezeOrderNo"] for i in batch["items"]] == freezes
    assert sum(D(i["serviceFee"]) for i in batch["items"]) == fee  # split to the fen
    payee = banking.members.get_fund_account(
        Principal(member_id=borrower.member_id, role="BORROWER")
    ).account_no
    assert {i["payeeAccountNo"] for i in batch["items"]} == {payee}

    first, second, third = items(sql)
    assert lend(banking, first) == "applied"
    assert loan_row(sql, full).status == "DISBURSING"
    assert rows(sql, "SELECT COUNT(*) AS n FROM installment")[0].n == 0
    assert banking.ledger_ok()
    message = banking.notification(second.order_no, "FAILED", "3333.33", "DISBURSE")
    assert banking.notify(message).outcome == "applied"
    assert lend(banking, third) == "applied"
    assert loan_row(sql, full).status == "DISBURSING"
    assert banking.ledger_ok()
    banking.run_jobs()
    retry = items(sql)[-1]
    assert (retry.retry_of, D(retry.service_fee)) == (second.id, D(second.service_fee))
    assert lend(banking, retry) == "applied"
    loan = loan_row(sql, full)
    assert (loan.status, loan.disbursed_at is not None) == ("REPAYING", True)
    assert rows(sql, "SELECT COUNT(*) AS n FROM installment")[0].n == 12
    statuses = rows(sql, "SELECT status FROM investment WHERE loan_id = :l", l=full)
    assert {s.status for s in statuses} == {"ACTIVE"}
    [account] = rows(
        sql, "SELECT available FROM account WHERE member_id = :m", m=borrower.member_id
    )
    assert D(account.available) / 100 == sum(AMOUNTS) - fee
    assert banking.ledger_ok()


def test_a_listing_raised_before_investing_was_a_bank_order_is_disbursed_as_before(
    banking: Banking, full, operator, sql
) -> None:
    full, _ = full(False, False, False)
    assert banking.loans.disburse_loan(full, "d-1", operator).status == "REPAYING"
    assert items(sql) == [] and banking.outbox.jobs == collections.deque()
    assert banking.ledger_ok()


def test_a_listing_frozen_partly_at_the_bank_is_not_disbursed(
    banking: Banking, full, operator, sql
) -> None:
    full, _ = full(True, False, True)
    with pytest.raises(BusinessError, match="some investments are frozen at the bank") as e:
        banking.loans.disburse_loan(full, "d-1", operator)
    assert e.value.code == "LOAN_STATE_INVALID"
    assert loan_row(sql, full).status == "FULL"
    assert banking.ledger_ok()
