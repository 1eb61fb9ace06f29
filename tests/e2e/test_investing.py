"""Investing, cancellation, expiry and disbursement through the running server: REST driven by
/openapi.json and SOAP by the WSDL, with money put in through PaymentFacade.recharge."""

import uuid
from decimal import Decimal

import pytest
import zeep

pytestmark = pytest.mark.slow

D = Decimal


def rno() -> str:
    return uuid.uuid4().hex


def raising_loan(api, operator, loan_terms, **terms) -> int:
    r = api.call("publishLoan", token=operator.token, json_body=loan_terms(**terms))
    loan_id = api.check_body("publishLoan", r)["loanId"]
    r = api.call("auditLoan", token=operator.token, loanId=loan_id, json_body={"approve": True})
    assert api.check_body("auditLoan", r)["status"] == "RAISING"
    return loan_id


def funded(api, members, amount: str):
    who = members("INVESTOR")
    r = api.call("recharge", token=who.token, json_body={"amount": amount, "requestNo": rno()})
    assert r.status_code == 201, r.text
    return who


def invest(api, who, loan_id: int, amount: str, request_no: str | None = None):
    return api.call(
        "invest",
        token=who.token,
        loanId=loan_id,
        json_body={"amount": amount, "requestNo": request_no or rno()},
    )


def test_invest_fill_and_disburse_over_rest(api, checks, operator, borrower, members, loan_terms):
    loan_id = raising_loan(
        api, operator, loan_terms, amount="1000.00", minInvest="100.00", maxInvestPerInvestor=None
    )
    alice, bob = funded(api, members, "800.00"), funded(api, members, "800.00")

    r = invest(api, alice, loan_id, "600.00", "alice-1")
    assert r.status_code == 201
    first = api.check_body("invest", r)
    assert (first["loanId"], first["amount"], first["status"]) == (loan_id, "600.00", "FROZEN")
    again = api.check_body("invest", invest(api, alice, loan_id, "600.00", "alice-1"))
    assert again == first
    checks.error(invest(api, alice, loan_id, "500.00", "alice-1"), 409, "REQUEST_NO_REUSED")
    checks.error(invest(api, alice, loan_id, "300.00"), 422, "INSUFFICIENT_FUNDS")
    checks.error(invest(api, bob, loan_id, "500.00"), 409, "INVEST_ABOVE_REMAINING")
    checks.error(invest(api, bob, loan_id, "99.99"), 422, "INVEST_BELOW_MINIMUM")
    checks.error(invest(api, borrower, loan_id, "100.00"), 403, "FORBIDDEN")

    loan = api.check_body("getLoan", api.call("getLoan", loanId=loan_id))
    assert (loan["raised"], loan["status"]) == ("600.00", "RAISING")
    checks.error(
        api.call(
            "disburseLoan", token=operator.token, loanId=loan_id, json_body={"requestNo": "x"}
        ),
        409,
        "LOAN_STATE_INVALID",
        mentions="RAISING",
    )

    assert invest(api, bob, loan_id, "400.00").status_code == 201
    loan = api.check_body("getLoan", api.call("getLoan", loanId=loan_id))
    assert (loan["raised"], loan["status"]) == ("1000.00", "FULL")

    checks.error(
        api.call("disburseLoan", token=alice.token, loanId=loan_id, json_body={"requestNo": "x"}),
        403,
        "FORBIDDEN",
    )
    body = {"requestNo": rno()}
    r = api.call("disburseLoan", token=operator.token, loanId=loan_id, json_body=body)
    disbursed = api.check_body("disburseLoan", r)
    assert (disbursed["status"], disbursed["raised"]) == ("REPAYING", "1000.00")
    r = api.call("disburseLoan", token=operator.token, loanId=loan_id, json_body=body)
    assert api.check_body("disburseLoan", r)["status"] == "REPAYING"

    r = api.call("listInvestments", token=alice.token, params={"loanId": loan_id})
    page = api.check_body("listInvestments", r)
    assert page["total"] == 1
    assert page["items"][0]["investmentId"] == first["investmentId"]
    assert page["items"][0]["status"] == "ACTIVE"


def test_cancel_releases_funds_over_rest(api, checks, operator, members, loan_terms):
    loan_id = raising_loan(api, operator, loan_terms)
    alice = funded(api, members, "500.00")
    assert invest(api, alice, loan_id, "500.00").status_code == 201
    checks.error(
        api.call("cancelLoan", token=alice.token, loanId=loan_id, json_body={"reason": "x"}),
        403,
        "FORBIDDEN",
    )
    r = api.call("cancelLoan", token=operator.token, loanId=loan_id, json_body={"reason": "撤标"})
    loan = api.check_body("cancelLoan", r)
    assert (loan["status"], loan["raised"], loan["rejectReason"]) == ("CANCELLED", "0.00", "撤标")
    page = api.check_body("listInvestments", api.call("listInvestments", token=alice.token))
    assert [i["status"] for i in page["items"]] == ["RELEASED"]
    # the released funds are available again: they buy into another listing
    other = raising_loan(api, operator, loan_terms)
    assert invest(api, alice, other, "500.00").status_code == 201


def test_close_expired_loans_is_for_operators(api, checks, operator, investor):
    r = api.call("closeExpiredLoans", token=operator.token)
    assert api.check_body("closeExpiredLoans", r)["failed"] >= 0
    checks.error(api.call("closeExpiredLoans", token=investor.token), 403, "FORBIDDEN")


def test_invest_over_soap(soap, api, checks, operator, members, loan_terms):
    loan_id = raising_loan(api, operator, loan_terms, maxInvestPerInvestor="300.00")
    alice = funded(api, members, "1000.00")
    svc = soap.loan.service
    made = svc.invest(
        loanId=loan_id, amount=D("300.00"), requestNo="soap-1", **soap.auth(alice.token)
    )
    assert (made.loanId, made.amount, made.status) == (loan_id, D("300.00"), "FROZEN")
    with pytest.raises(zeep.exceptions.Fault) as fault:
        svc.invest(loanId=loan_id, amount=D("100.00"), requestNo="soap-2", **soap.auth(alice.token))
    assert checks.zeep_code(fault.value) == "INVEST_CAP_EXCEEDED"
    page = svc.listInvestments(loanId=loan_id, **soap.auth(alice.token))
    assert [i.investmentId for i in page.items] == [made.investmentId]
    assert svc.getLoan(loanId=loan_id).raised == D("300.00")
