"""Loyalty end to end against the running server: a member checks in over JSON REST (found
through /openapi.json) and is refused a second check-in of the business day over SOAP (zeep,
from the served WSDL); the investment earns points and lifts nothing below 5000 yuan; the
level, points ledger and experience gold answer on both protocols."""

from __future__ import annotations

import uuid

import pytest
import zeep

from tests.e2e.conftest import zeep_fault_code

pytestmark = pytest.mark.slow


def rno() -> str:
    return "e2e-loy-" + uuid.uuid4().hex


def auth(token: str) -> dict:
    return {"_soapheaders": {"auth": {"token": token}}}


@pytest.fixture(scope="module")
def loyalty_client(soap) -> zeep.Client:
    return soap.client("LoyaltyFacade")


def test_check_in_once_a_day_on_both_protocols_and_points_for_investing(
    api, loyalty_client, operator, members, loan_terms
):
    who = members("INVESTOR")
    checked = api.check_body("checkIn", api.call("checkIn", token=who.token))
    assert (checked["streak"], checked["points"], checked["balance"]) == (1, 5, 5)
    with pytest.raises(zeep.exceptions.Fault) as refused:
        loyalty_client.service.checkIn(**auth(who.token))
    assert zeep_fault_code(refused.value) == "ALREADY_CHECKED_IN"

    body = loan_terms(amount="1000.00", minInvest="100.00", maxInvestPerInvestor=None)
    loan_id = api.check_body(
        "publishLoan", api.call("publishLoan", token=operator.token, json_body=body)
    )["loanId"]
    r = api.call("auditLoan", token=operator.token, loanId=loan_id, json_body={"approve": True})
    assert r.status_code == 200, r.text
    r = api.call("recharge", token=who.token, json_body={"amount": "300.00", "requestNo": rno()})
    assert r.status_code == 201, r.text
    r = api.call(
        "invest",
        token=who.token,
        loanId=loan_id,
        json_body={"amount": "200.00", "requestNo": rno()},
    )
    assert r.status_code == 201, r.text

    points = loyalty_client.service.getPoints(**auth(who.token))
    assert points.balance == 205
    page = api.check_body(
        "listPointEntries", api.call("listPointEntries", token=who.token, params={"pageSize": 5})
    )
    assert [(e["kind"], e["points"]) for e in page["items"]] == [("INVEST", 200), ("CHECK_IN", 5)]
    level = api.check_body("getLevel", api.call("getLevel", token=who.token))
    assert (level["level"], level["invested"], level["nextLevelFrom"]) == (
        "REGULAR",
        "200.00",
        "5000.00",
    )
    gold = loyalty_client.service.getExperienceBalance(**auth(who.token))
    assert (gold.granted, gold.available) == (0, 0)
    with pytest.raises(zeep.exceptions.Fault) as short:
        loyalty_client.service.investExperience(amount="1.00", requestNo=rno(), **auth(who.token))
    assert zeep_fault_code(short.value) == "EXPERIENCE_INSUFFICIENT"
