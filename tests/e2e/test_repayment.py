"""Repayment end to end through the real server: a listing funded by three investors, its
schedule, repaying it to the last installment over REST, early settlement over SOAP, receipts,
overdue marking and the preview, with the errors partners see. The server's clock is real, so
nothing here is overdue; penalties are covered by the integration tests."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import zeep

pytestmark = pytest.mark.slow

D = Decimal
AMOUNTS = ("333.33", "123.45", "543.23")  # 1000.01 in all


def request_no() -> str:
    return "e2e-" + uuid.uuid4().hex


def balance(api, member) -> D:
    r = api.call("getAccount", token=member.token)
    assert r.status_code == 200, r.text
    return D(r.json()["available"])


@pytest.fixture
def funded(api, members, operator, borrower):
    """Factory: a REPAYING listing of 1000.01 by ``method`` funded by three new investors; the
    borrower is recharged for the interest. Returns the listing id and the investors."""

    def factory(method: str, term: int) -> tuple[int, list]:
        terms = {
            "title": "Repayment " + uuid.uuid4().hex[:6],
            "description": "e2e",
            "borrowerId": borrower.member_id,
            "amount": "1000.01",
            "annualRate": "12",
            "termMonths": term,
            "repaymentMethod": method,
            "minInvest": "0.01",
            "raiseDays": 5,
        }
        r = api.call("publishLoan", token=operator.token, json_body=terms)
        assert r.status_code == 201, r.text
        loan_id = r.json()["loanId"]
        r = api.call("auditLoan", token=operator.token, loanId=loan_id, json_body={"approve": True})
        assert r.status_code == 200, r.text
        investors = []
        for amount in AMOUNTS:
            who = members("INVESTOR")
            body = {"amount": amount, "requestNo": request_no()}
            assert api.call("recharge", token=who.token, json_body=body).status_code == 201
            body = {"amount": amount, "requestNo": request_no()}
            r = api.call("invest", token=who.token, loanId=loan_id, json_body=body)
            assert r.status_code in (200, 201), r.text
            investors.append(who)
        r = api.call(
            "disburseLoan",
            token=operator.token,
            loanId=loan_id,
            json_body={"requestNo": request_no()},
        )
        assert r.status_code == 200, r.text
        body = {"amount": "100.00", "requestNo": request_no()}
        assert api.call("recharge", token=borrower.token, json_body=body).status_code == 201
        return loan_id, investors

    return factory


def test_rest_repay_a_listing_to_the_end(api, funded, borrower, members, checks) -> None:
    loan_id, investors = funded("EQUAL_PRINCIPAL", 3)
    r = api.call("getRepaymentSchedule", loanId=loan_id)  # public
    plan = api.check_body("getRepaymentSchedule", r)
    assert plan["projected"] is False and plan["loanStatus"] == "REPAYING"
    assert [i["principal"] for i in plan["items"]] == ["333.34", "333.34", "333.33"]
    assert all(i["status"] == "PENDING" and "dueDate" in i for i in plan["items"])

    stranger = members("BORROWER")
    checks.error(
        api.call("repay", token=stranger.token, loanId=loan_id, json_body={"requestNo": "x"}),
        403,
        "FORBIDDEN",
    )
    before_investors = [balance(api, w) for w in investors]
    before = balance(api, borrower)
    paid = []
    for _ in plan["items"]:
        no = request_no()
        r = api.call("repay", token=borrower.token, loanId=loan_id, json_body={"requestNo": no})
        paid.append(api.check_body("repay", r))
        again = api.call("repay", token=borrower.token, loanId=loan_id, json_body={"requestNo": no})
        assert again.json() == paid[-1]
    assert [p["period"] for p in paid] == [1, 2, 3]
    assert [p["settled"] for p in paid] == [False, False, True]
    total = sum(D(p["amount"]) for p in paid)
    assert total == sum(D(i["payment"]) for i in plan["items"])
    assert balance(api, borrower) == before - total
    gains = [balance(api, w) - b for w, b in zip(investors, before_investors, strict=True)]
    assert sum(gains) == total
    r = api.call("getLoan", loanId=loan_id)
    assert r.json()["status"] == "SETTLED"
    checks.error(
        api.call("repay", token=borrower.token, loanId=loan_id, json_body={"requestNo": "late"}),
        409,
        "LOAN_STATE_INVALID",
    )

    r = api.call("listReceipts", token=investors[0].token, params={"loanId": loan_id})
    page = api.check_body("listReceipts", r)
    assert page["total"] == 3
    assert [x["status"] for x in page["items"]] == ["RECEIVED"] * 3
    assert sum(D(x["principal"]) for x in page["items"]) == D(AMOUNTS[0])
    assert sum(D(x["amount"]) for x in page["items"]) == gains[0]
    checks.error(api.call("listReceipts", token=borrower.token), 403, "FORBIDDEN")


def test_soap_settle_early_and_what_is_due(server, api, funded, borrower, checks) -> None:
    loan_id, _ = funded("MONTHLY_INTEREST", 6)
    r = api.call("getRepaymentsDue", token=borrower.token)
    due = [d for d in api.check_body("getRepaymentsDue", r)["items"] if d["loanId"] == loan_id]
    assert [(d["period"], d["status"], d["amount"]) for d in due] == [(1, "PENDING", "10.00")]
    client = zeep.Client(server.url("/services/LoanFacade?wsdl"))
    auth = {"_soapheaders": {"auth": {"token": borrower.token}}}
    before = balance(api, borrower)
    vo = client.service.settleEarly(loanId=loan_id, requestNo="settle-" + str(loan_id), **auth)
    assert (vo.principal, vo.interest, vo.penalty, vo.amount) == (
        D("1000.01"),
        D("10.00"),
        D("0.00"),
        D("1010.01"),
    )
    assert balance(api, borrower) == before - D("1010.01")
    plan = client.service.getRepaymentSchedule(loanId=loan_id)
    assert plan.loanStatus == "SETTLED"
    assert [i.status for i in plan.items] == ["SETTLED_EARLY"] * 6


def test_preview_and_overdue_marking(api, operator, investor, soap, checks) -> None:
    params = {
        "principal": "10000.01",
        "annualRate": "0",
        "termMonths": 3,
        "repaymentMethod": "EQUAL_INSTALLMENT",
    }
    r = api.call("previewRepaymentSchedule", params=params)
    body = api.check_body("previewRepaymentSchedule", r)
    assert [row["principal"] for row in body["items"]] == ["3333.34", "3333.34", "3333.33"]
    checks.error(
        api.call("previewRepaymentSchedule", params={**params, "termMonths": 61}),
        400,
        "VALIDATION_FAILED",
        mentions="termMonths",
    )
    bullet = soap.loan.service.previewRepaymentSchedule(
        principal=D("1000"), annualRate=D("36"), termMonths=12, repaymentMethod="BULLET"
    )
    assert [(row.period, row.payment) for row in bullet.items] == [(12, D("1360.00"))]
    r = api.call("markOverdueInstallments", token=operator.token)
    assert api.check_body("markOverdueInstallments", r)["marked"] >= 0
    checks.error(api.call("markOverdueInstallments", token=investor.token), 403, "FORBIDDEN")
