"""WS-Security UsernameToken with PasswordDigest through the real server, with zeep's own
UsernameToken(use_digest=True) on clients built from the served WSDL: the API secret from
rotateApiSecret authenticates, a replay of the very same envelope is refused, a stale Created
says wsse:MessageExpired, and PasswordText and the AuthToken header keep working; on the SOAP
1.1 and the SOAP 1.2 ports alike."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin
from zeep.wsse.username import UsernameToken

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("soap", ["1.1", "1.2"], indirect=True)]


def terms(borrower_id: int) -> dict:
    return {
        "title": "Greenhouse " + uuid.uuid4().hex[:6],
        "description": "Glass for the north greenhouse.",
        "borrowerId": borrower_id,
        "amount": Decimal("10000.00"),
        "annualRate": Decimal("10"),
        "termMonths": 6,
        "repaymentMethod": "BULLET",
        "minInvest": Decimal("100.00"),
        "maxInvestPerInvestor": Decimal("5000.00"),
        "raiseDays": 7,
    }


def fault_of(call, *args, **kwargs) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(*args, **kwargs)
    return caught.value


def digest_client(soap, facade: str, mobile: str, secret: str, **token) -> tuple:
    history = HistoryPlugin()
    wsse = UsernameToken(mobile, secret, use_digest=True, **token)
    return soap.client(facade, wsse=wsse, plugins=[history]), history


def rotate(soap, member) -> str:
    issued = soap.member.service.rotateApiSecret(
        request={"password": member.password}, **soap.auth(member.token)
    )
    assert issued.username == member.mobile
    assert issued.maxSkewSeconds == 300
    assert len(issued.apiSecret) >= 43
    return issued.apiSecret


def test_password_digest_with_the_api_secret_calls_an_operators_operation(
    soap, operator, borrower, checks
):
    secret = rotate(soap, operator)
    client, history = digest_client(soap, "LoanFacade", operator.mobile, secret)
    loan = client.service.publishLoan(request=terms(borrower.member_id))
    assert loan.status == "PENDING_AUDIT"

    sent = history.last_sent["envelope"]
    password = sent.find(".//{*}UsernameToken/{*}Password")
    assert password.get("Type").endswith("#PasswordDigest")
    assert secret not in etree.tostring(sent).decode()  # only the digest travels

    # The very same envelope again, as an eavesdropper would replay it: refused.
    replay = soap.post("LoanFacade", etree.tostring(sent, xml_declaration=True, encoding="UTF-8"))
    fault = checks.fault(replay)
    assert fault.code == "UNAUTHENTICATED"
    assert "MessageExpired" not in fault.detail

    # A new message (fresh nonce) from the same client still works.
    assert client.service.publishLoan(request=terms(borrower.member_id)).loanId > loan.loanId


def test_password_text_and_the_auth_token_still_work(soap, operator, borrower):
    rotate(soap, operator)  # having an API secret changes nothing for the other ways
    text_client = soap.loan_as(operator.mobile, operator.password)
    assert text_client.service.publishLoan(request=terms(borrower.member_id)).loanId
    by_token = soap.loan.service.publishLoan(
        request=terms(borrower.member_id), **soap.auth(operator.token)
    )
    assert by_token.loanId


def test_a_digest_of_the_login_password_is_refused(soap, operator, borrower, checks):
    rotate(soap, operator)
    client, _ = digest_client(soap, "LoanFacade", operator.mobile, operator.password)
    refused = fault_of(client.service.publishLoan, request=terms(borrower.member_id))
    assert checks.zeep_code(refused) == "UNAUTHENTICATED"


@pytest.mark.parametrize("minutes", [-10, 10])
def test_a_stale_or_future_created_is_refused_as_message_expired(
    soap, operator, borrower, checks, minutes
):
    secret = rotate(soap, operator)
    created = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    client, _ = digest_client(soap, "LoanFacade", operator.mobile, secret, created=created)
    refused = fault_of(client.service.publishLoan, request=terms(borrower.member_id))
    assert checks.zeep_code(refused) == "UNAUTHENTICATED"
    assert "wsse:MessageExpired" in checks.zeep_detail(refused)


def test_rotation_voids_the_old_secret_and_revocation_ends_digest(soap, members, checks):
    member = members("BORROWER")
    first = rotate(soap, member)
    client, _ = digest_client(soap, "MemberFacade", member.mobile, first)
    assert client.service.logout() is None  # logout needs a member: the digest made one

    second = rotate(soap, member)
    assert second != first
    old = fault_of(client.service.logout)
    assert checks.zeep_code(old) == "UNAUTHENTICATED"
    client, _ = digest_client(soap, "MemberFacade", member.mobile, second)
    assert client.service.logout() is None

    assert soap.member.service.revokeApiSecret(**soap.auth(member.token)) is None
    revoked = fault_of(client.service.logout)
    assert checks.zeep_code(revoked) == "UNAUTHENTICATED"


def test_rotating_needs_the_login_password_and_a_member(soap, members, checks):
    member = members("INVESTOR")
    wrong = fault_of(
        soap.member.service.rotateApiSecret,
        request={"password": "NotMyPassw0rd"},
        **soap.auth(member.token),
    )
    assert checks.zeep_code(wrong) == "LOGIN_FAILED"
    anonymous = fault_of(soap.member.service.rotateApiSecret, request={"password": "Passw0rd1"})
    assert checks.zeep_code(anonymous) == "UNAUTHENTICATED"


def test_rotate_over_rest_then_digest_over_soap(api, soap, members):
    member = members("INVESTOR")
    r = api.call("rotateApiSecret", token=member.token, json_body={"password": member.password})
    body = api.check_body("rotateApiSecret", r)
    assert r.status_code == 201 and body["username"] == member.mobile
    client, _ = digest_client(soap, "MemberFacade", member.mobile, body["apiSecret"])
    assert client.service.logout() is None
    assert api.call("revokeApiSecret", token=member.token).status_code in (200, 204)
