"""Only onboarded members move money, end to end over REST and SOAP: recharging, withdrawing,
investing and having a listing published are refused with IDENTITY_NOT_VERIFIED before the
real name is verified and FUND_ACCOUNT_REQUIRED before the fund account is open; once it is,
the very same requests succeed."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import zeep

pytestmark = pytest.mark.slow

D = Decimal
BANK = "中国工商银行"


def request_no() -> str:
    return "gate-" + uuid.uuid4().hex


def auth(token: str) -> dict:
    return {"_soapheaders": {"auth": {"token": token}}}


def soap_code(checks, call, **kwargs) -> str:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(**kwargs)
    return checks.zeep_code(caught.value)


@pytest.fixture(scope="module")
def payment_client(server) -> zeep.Client:
    return zeep.Client(server.url("/services/PaymentFacade?wsdl"))


@pytest.fixture(scope="module")
def loan_client(server) -> zeep.Client:
    return zeep.Client(server.url("/services/LoanFacade?wsdl"))


def post(api, name: str, token: str, body: dict, **path) -> dict:
    r = api.call(name, token=token, json_body=body, **path)
    assert r.status_code in (200, 201), r.text
    return r.json()


def verify_and_bind(api, member, person) -> int:
    """The member verifies their real name and binds a card; the card's id."""
    post(
        api,
        "verifyIdentity",
        member.token,
        {"realName": person.real_name, "idNumber": person.id_number},
    )
    card = {"cardNumber": person.card_number, "bankName": BANK, "mobile": member.mobile}
    return post(api, "bindCard", member.token, card)["cardId"]


@pytest.fixture
def raising(api, operator, loan_terms) -> int:
    loan_id = post(api, "publishLoan", operator.token, loan_terms())["loanId"]
    post(api, "auditLoan", operator.token, {"approve": True}, loanId=loan_id)
    return loan_id


@pytest.mark.parametrize("step", ["unverified", "without fund account"])
def test_money_moves_only_once_onboarded(
    api, payment_client, loan_client, members, identities, raising, checks, step
) -> None:
    member = members("INVESTOR", onboarded=False)
    person = identities()
    card_id = 987654321  # none yet: the gate answers before any card is looked at
    expected = "IDENTITY_NOT_VERIFIED"
    if step == "without fund account":
        card_id = verify_and_bind(api, member, person)
        expected = "FUND_ACCOUNT_REQUIRED"
    recharge = {"amount": "200.00", "requestNo": request_no()}
    withdraw = {"amount": "1.00", "cardId": card_id, "requestNo": request_no()}
    invest = {"amount": "100.00", "requestNo": request_no()}
    calls = [
        ("recharge", recharge, {}, payment_client.service.recharge),
        ("withdraw", withdraw, {}, payment_client.service.withdraw),
        ("invest", invest, {"loanId": raising}, loan_client.service.invest),
    ]
    for name, body, path, soap_call in calls:
        checks.error(api.call(name, token=member.token, json_body=body, **path), 403, expected)
        soap_body = {k: D(v) if k == "amount" else v for k, v in body.items()}
        got = soap_code(checks, soap_call, **soap_body, **path, **auth(member.token))
        assert got == expected, name

    if step == "unverified":
        card_id = verify_and_bind(api, member, person)
        withdraw["cardId"] = card_id
    post(api, "openFundAccount", member.token, {"cardId": card_id})
    assert post(api, "recharge", member.token, recharge)["status"] == "SUCCESS"
    assert post(api, "withdraw", member.token, withdraw)["status"] == "SUCCESS"
    assert post(api, "invest", member.token, invest, loanId=raising)["amount"] == "100.00"


@pytest.mark.parametrize("step", ["unverified", "without fund account"])
def test_a_listing_is_published_only_for_an_onboarded_borrower(
    api, loan_client, operator, members, identities, loan_terms, checks, step
) -> None:
    borrower = members("BORROWER", onboarded=False)
    person = identities()
    expected = "IDENTITY_NOT_VERIFIED"
    if step == "without fund account":
        card_id = verify_and_bind(api, borrower, person)
        expected = "FUND_ACCOUNT_REQUIRED"
    terms = loan_terms(borrowerId=borrower.member_id)
    refused = checks.error(
        api.call("publishLoan", token=operator.token, json_body=terms), 403, expected
    )
    assert "borrower" in refused["detail"] and borrower.mobile not in str(refused)
    soap_terms = {
        "title": "Gate " + uuid.uuid4().hex[:6],
        "description": "Publishing for a borrower not onboarded.",
        "borrowerId": borrower.member_id,
        "amount": D("10000.00"),
        "annualRate": D("9.5"),
        "termMonths": 12,
        "repaymentMethod": "EQUAL_INSTALLMENT",
        "minInvest": D("100.00"),
        "raiseDays": 10,
    }
    publish = loan_client.service.publishLoan
    assert soap_code(checks, publish, request=soap_terms, **auth(operator.token)) == expected

    if step == "unverified":
        card_id = verify_and_bind(api, borrower, person)
    post(api, "openFundAccount", borrower.token, {"cardId": card_id})
    assert post(api, "publishLoan", operator.token, terms)["borrowerId"] == borrower.member_id
