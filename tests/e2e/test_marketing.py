"""Marketing through the running server, on both protocols: an operator makes a campaign and a
CASH coupon template over REST, issues coupons over SOAP (zeep, from the served WSDL); an
investor finds them with listCoupons, invests naming one over SOAP and one over REST, the same
coupon again is refused; the listing is disbursed, the coupons are USED and their face value
reaches the investor from the platform's own account, as the campaign's spend shows."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import zeep

from tests.e2e.test_bank import eventually

pytestmark = pytest.mark.slow


def rno() -> str:
    return "mkt-" + uuid.uuid4().hex


def test_coupons_are_issued_used_on_invest_and_paid_at_disbursement(
    server, api, checks, operator, members, loan_terms
):
    def rest(name: str, token: str, status: int = 200, **kwargs) -> dict:
        r = api.call(name, token=token, **kwargs)
        assert r.status_code == status, r.text
        return api.check_body(name, r)

    op = operator.token
    funding = {"amount": "100.00", "requestNo": rno()}
    rest("fundPlatformAccount", op, 201, json_body=funding)
    name = "E2E " + uuid.uuid4().hex[:8]
    body = {"name": name, "startsAt": "2020-01-01T00:00:00Z", "budgetAmount": "50.00"}
    campaign = rest("createCampaign", op, 201, json_body=body)
    assert (campaign["status"], campaign["spentAmount"]) == ("INACTIVE", "0.00")
    rest("setCampaignStatus", op, campaignId=campaign["campaignId"], json_body={"status": "ACTIVE"})
    terms = {
        "campaignId": campaign["campaignId"],
        "name": "投资红包",
        "kind": "CASH",
        "faceValue": "8.88",
        "minInvest": "100.00",
        "validDays": 30,
        "stackable": True,
        "audience": "LIST",
    }
    template = rest("createCouponTemplate", op, 201, json_body=terms)["templateId"]
    overlapping = {**terms, "minInvest": "500.00"}
    r = api.call("createCouponTemplate", token=op, json_body=overlapping)
    checks.error(r, 422, "COUPON_TIERS_OVERLAP")
    rest("setCouponTemplateStatus", op, templateId=template, json_body={"status": "ACTIVE"})

    investor = members("INVESTOR")
    rest("recharge", investor.token, 201, json_body={"amount": "1000.00", "requestNo": rno()})
    soap = zeep.Client(server.url("/services/CampaignFacade?wsdl"))
    auth = {"_soapheaders": {"auth": {"token": op}}}
    issued = soap.service.issueCoupons(
        templateId=template, memberIds=[investor.member_id], requestNo=rno(), **auth
    )
    again = soap.service.issueCoupons(
        templateId=template, memberIds=[investor.member_id], requestNo=rno(), **auth
    )
    first, second = issued[0].couponId, again[0].couponId  # zeep unwraps the one field
    mine = rest("listCoupons", investor.token, params={"state": "AVAILABLE"})
    assert sorted(c["couponId"] for c in mine["items"]) == sorted([first, second])
    assert {c["faceValue"] for c in mine["items"]} == {"8.88"}

    r = api.call(
        "publishLoan", token=op, json_body=loan_terms(amount="600.00", maxInvestPerInvestor=None)
    )
    loan_id = api.check_body("publishLoan", r)["loanId"]
    rest("auditLoan", op, loanId=loan_id, json_body={"approve": True})
    loans = zeep.Client(server.url("/services/LoanFacade?wsdl"))
    over_soap = loans.service.invest(
        loanId=loan_id,
        amount="300.00",
        requestNo=rno(),
        couponIds=[first],
        _soapheaders={"auth": {"token": investor.token}},
    )
    assert over_soap.status == "FROZEN"
    twice = {"amount": "100.00", "requestNo": rno(), "couponIds": [first]}
    r = api.call("invest", token=investor.token, loanId=loan_id, json_body=twice)
    checks.error(r, 409, "COUPON_NOT_AVAILABLE")
    body = {"amount": "300.00", "requestNo": rno(), "couponIds": [second]}
    rest("invest", investor.token, 201, loanId=loan_id, json_body=body)
    locked = rest("getCoupon", investor.token, couponId=first)
    assert (locked["state"], locked["investmentId"]) == ("LOCKED", over_soap.investmentId)

    before = rest("getAccount", investor.token)["available"]
    rest("disburseLoan", op, loanId=loan_id, json_body={"requestNo": rno()})
    used = rest("listCoupons", investor.token, params={"state": "USED"})
    assert sorted(c["couponId"] for c in used["items"]) == sorted([first, second])
    # The rewards are paid by the job worker, after the disbursement's commit.
    eventually(
        lambda: (
            Decimal(rest("getAccount", investor.token)["available"]) - Decimal(before)
            == Decimal("17.76")
        ),
        "the coupons' face value did not reach the investor",
    )
    spend = rest("getCampaignSpend", op, campaignId=campaign["campaignId"])
    assert (spend["spentAmount"], spend["couponsUsed"], spend["rewardsPaid"]) == (
        "17.76",
        2,
        "17.76",
    )
    rewards = rest("listRewards", op, params={"campaignId": campaign["campaignId"]})
    assert {(x["kind"], x["status"], x["amount"]) for x in rewards["items"]} == {
        ("CASH_COUPON", "PAID", "8.88")
    }
