"""Signing up through what the server publishes (/openapi.json and the WSDL, via zeep): a code
by SMS (read from the server's outbox, as from a phone), registration with an invite code,
the inviter's promotion page, password reset ending every old credential, wrong codes refused
alike on both protocols, and the code never in a response body or the server's log."""

from __future__ import annotations

import random
import re

import pytest
import requests
import zeep
from zeep.transports import Transport

pytestmark = pytest.mark.slow

PASSWORD = "Signup123x"
NEW_PASSWORD = "Renewed456y"


def new_mobile() -> str:
    return "134" + f"{random.randrange(10**8):08d}"


def masked(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:]


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def shows(text: str, secret: str) -> bool:
    """Whether `secret` (a code, a mobile) stands in `text` as a value of its own, not as a run
    of digits inside another one: the server's log holds thousands of request ids (32 hex
    digits), which hold any six given digits now and then."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


class Bodies:
    """Every response body the test received, REST and SOAP, to look for codes in."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def record(self, response: requests.Response, *args, **kwargs) -> None:
        self.texts.append(response.text)

    def assert_free_of(self, *secrets: str) -> None:
        assert self.texts
        for text in self.texts:
            for secret in secrets:
                assert not shows(text, secret), text[:500]


@pytest.fixture
def bodies() -> Bodies:
    return Bodies()


@pytest.fixture
def rest(api, bodies):
    """api.call, recording each response."""

    def call(operation_id: str, **kwargs) -> requests.Response:
        response = api.call(operation_id, **kwargs)
        bodies.record(response)
        return response

    return call


@pytest.fixture
def member_soap(server, bodies) -> zeep.Client:
    """A zeep client of MemberFacade from its WSDL, recording every response."""
    session = requests.Session()
    session.hooks["response"].append(bodies.record)
    return zeep.Client(
        server.url("/services/MemberFacade?wsdl"), transport=Transport(session=session)
    )


def auth(token: str) -> dict:
    return {"_soapheaders": {"auth": {"token": token}}}


def fault_of(call, **kwargs) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(**kwargs)
    return caught.value


def rest_register(rest, server, mobile: str, role: str, **extra) -> dict:
    r = rest("sendVerificationCode", json_body={"mobile": mobile, "purpose": "REGISTER"})
    assert r.status_code == 201, r.text
    code = server.last_code(mobile, "REGISTER")
    body = {"mobile": mobile, "password": PASSWORD, "role": role, "verificationCode": code}
    r = rest("register", json_body={**body, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def rest_login(rest, mobile: str, password: str = PASSWORD) -> dict:
    r = rest("login", json_body={"mobile": mobile, "password": password})
    assert r.status_code == 201, r.text
    return r.json()


def rest_register_with(rest, server, mobile: str, role: str, invite_code: str) -> dict:
    code = server.last_code(mobile, "REGISTER")
    body = {
        "mobile": mobile,
        "password": PASSWORD,
        "role": role,
        "verificationCode": code,
        "inviteCode": invite_code.lower(),
    }
    r = rest("register", json_body=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_sign_up_with_an_invite_code_over_rest_and_soap(
    api, rest, member_soap, server, checks, bodies
):
    inviter = new_mobile()
    invite_code = rest_register(rest, server, inviter, "INVESTOR")["inviteCode"]
    inviter_token = rest_login(rest, inviter)["token"]
    r = rest("getPromotion", token=inviter_token)
    promotion = api.check_body("getPromotion", r)
    assert promotion == {"inviteCode": invite_code, "invitedCount": 0}  # as register said

    # REST: the code, then registration with the invite code
    first = new_mobile()
    r = rest("sendVerificationCode", json_body={"mobile": first, "purpose": "REGISTER"})
    sent = api.check_body("sendVerificationCode", r)
    assert (sent["expiresIn"], sent["resendAfter"]) == (300, 60)
    member = rest_register_with(rest, server, first, "BORROWER", invite_code)
    assert member["mobile"] == masked(first)

    # SOAP: the same, from the WSDL
    second = new_mobile()
    sent = member_soap.service.sendVerificationCode(
        request={"mobile": second, "purpose": "REGISTER"}
    )
    assert (sent.expiresIn, sent.resendAfter) == (300, 60)
    registered = member_soap.service.register(
        request={
            "mobile": second,
            "password": PASSWORD,
            "role": "INVESTOR",
            "verificationCode": server.last_code(second, "REGISTER"),
            "inviteCode": invite_code,
        }
    )
    assert registered.mobile == masked(second)
    assert registered.inviteCode not in (None, invite_code, member["inviteCode"])

    # the inviter's promotion, on both protocols: newest first, masked
    r = rest("getPromotion", token=inviter_token)
    assert api.check_body("getPromotion", r) == {"inviteCode": invite_code, "invitedCount": 2}
    r = rest("listInvitees", token=inviter_token, params={"page": 1, "pageSize": 10})
    page = api.check_body("listInvitees", r)
    assert page["total"] == 2
    assert [i["mobile"] for i in page["items"]] == [masked(second), masked(first)]
    assert [i["identityVerified"] for i in page["items"]] == [False, False]
    soap_promotion = member_soap.service.getPromotion(**auth(inviter_token))
    assert (soap_promotion.inviteCode, soap_promotion.invitedCount) == (invite_code, 2)
    soap_page = member_soap.service.listInvitees(page=1, pageSize=1, **auth(inviter_token))
    assert soap_page.total == 2 and [i.mobile for i in soap_page.items] == [masked(second)]

    # an invite code nobody has, on both protocols
    third = new_mobile()
    r = rest("sendVerificationCode", json_body={"mobile": third, "purpose": "REGISTER"})
    assert r.status_code == 201
    code = server.last_code(third, "REGISTER")
    body = {"mobile": third, "password": PASSWORD, "role": "INVESTOR", "verificationCode": code}
    r = rest("register", json_body={**body, "inviteCode": "ZZZZZZZZ"})
    checks.error(r, 422, "INVITE_CODE_INVALID")
    fault = fault_of(member_soap.service.register, request={**body, "inviteCode": "ZZZZZZZZ"})
    assert fault.code.endswith("Client")
    assert checks.zeep_code(fault) == "INVITE_CODE_INVALID"

    codes = [server.last_code(m, "REGISTER") for m in (inviter, first, second, third)]
    bodies.assert_free_of(*codes)
    log = server.log_text()
    assert not [c for c in codes if c in log]
    assert not [m for m in (inviter, first, second, third) if m in log]


def test_an_operator_finds_a_member_by_mobile_on_both_protocols(
    api, rest, member_soap, server, checks, operator, bodies
):
    """findMemberByMobile: the member as getMember shows them, personal data masked; an
    unknown number MEMBER_NOT_FOUND without the number; the number in no answer or log line."""
    mobile, nobody = new_mobile(), new_mobile()
    member_id = rest_register(rest, server, mobile, "BORROWER")["memberId"]
    r = rest("findMemberByMobile", token=operator.token, json_body={"mobile": mobile})
    found = api.check_body("findMemberByMobile", r)
    r = rest("getMember", token=operator.token, memberId=member_id)
    assert found == api.check_body("getMember", r)
    assert (found["memberId"], found["mobile"]) == (member_id, masked(mobile))
    soap = member_soap.service.findMemberByMobile(mobile=mobile, **auth(operator.token))
    assert (soap.memberId, soap.mobile) == (member_id, masked(mobile))

    r = rest("findMemberByMobile", token=operator.token, json_body={"mobile": nobody})
    checks.error(r, 404, "MEMBER_NOT_FOUND")
    fault = fault_of(member_soap.service.findMemberByMobile, mobile=nobody, **auth(operator.token))
    assert checks.zeep_code(fault) == "MEMBER_NOT_FOUND"
    member_token = rest_login(rest, mobile)["token"]
    r = rest("findMemberByMobile", token=member_token, json_body={"mobile": mobile})
    checks.error(r, 403, "FORBIDDEN")

    bodies.assert_free_of(mobile, nobody)
    log = server.log_text()
    assert not shows(log, mobile) and not shows(log, nobody)


def test_wrong_codes_are_refused_alike_on_both_protocols(
    api, rest, member_soap, server, checks, bodies
):
    mobile = new_mobile()
    r = rest("sendVerificationCode", json_body={"mobile": mobile, "purpose": "REGISTER"})
    assert r.status_code == 201
    code = server.last_code(mobile, "REGISTER")
    body = {"mobile": mobile, "password": PASSWORD, "role": "INVESTOR"}
    wrong = {**body, "verificationCode": other_code(code)}
    rest_error = checks.error(rest("register", json_body=wrong), 422, "VERIFICATION_CODE_INVALID")
    fault = fault_of(member_soap.service.register, request=wrong)
    assert fault.code.endswith("Client")
    assert checks.zeep_code(fault) == "VERIFICATION_CODE_INVALID"
    assert fault.message == rest_error["message"]
    assert checks.zeep_detail(fault) == rest_error.get("detail", "")

    # asking again at once is too soon, on both protocols
    ask = {"mobile": mobile, "purpose": "REGISTER"}
    checks.error(rest("sendVerificationCode", json_body=ask), 429, "VERIFICATION_CODE_TOO_SOON")
    too_soon = fault_of(member_soap.service.sendVerificationCode, request=ask)
    assert checks.zeep_code(too_soon) == "VERIFICATION_CODE_TOO_SOON"

    # the code survived two wrong entries
    r = rest("register", json_body={**body, "verificationCode": code})
    assert r.status_code == 201, r.text

    # a reset with a wrong code and one for an unregistered number read the same
    r = rest("sendVerificationCode", json_body={"mobile": mobile, "purpose": "RESET_PASSWORD"})
    assert r.status_code == 201
    nobody = new_mobile()
    r = rest("sendVerificationCode", json_body={"mobile": nobody, "purpose": "RESET_PASSWORD"})
    assert api.check_body("sendVerificationCode", r) == {"expiresIn": 300, "resendAfter": 60}
    reset_code = server.last_code(mobile, "RESET_PASSWORD")
    reset = {"verificationCode": other_code(reset_code), "newPassword": NEW_PASSWORD}
    known = checks.error(
        rest("resetPassword", json_body={**reset, "mobile": mobile}),
        422,
        "VERIFICATION_CODE_INVALID",
    )
    unknown = checks.error(
        rest("resetPassword", json_body={**reset, "mobile": nobody}),
        422,
        "VERIFICATION_CODE_INVALID",
    )
    assert (known["message"], known.get("detail")) == (unknown["message"], unknown.get("detail"))
    for number in (mobile, nobody):
        fault = fault_of(member_soap.service.resetPassword, request={**reset, "mobile": number})
        assert checks.zeep_code(fault) == "VERIFICATION_CODE_INVALID"
        assert fault.message == known["message"]
        assert checks.zeep_detail(fault) == known.get("detail", "")
    assert nobody not in server.outbox.read_text(encoding="utf-8")  # it was sent nothing

    bodies.assert_free_of(code, reset_code)
    log = server.log_text()
    assert not shows(log, code) and not shows(log, reset_code)


def test_reset_password_ends_old_tokens_on_both_protocols(
    api, rest, member_soap, server, checks, bodies
):
    mobile = new_mobile()
    rest_register(rest, server, mobile, "INVESTOR")
    rest_token = rest_login(rest, mobile)
    soap_token = member_soap.service.login(request={"mobile": mobile, "password": PASSWORD})

    # reset over REST: both old tokens stop working
    r = rest("sendVerificationCode", json_body={"mobile": mobile, "purpose": "RESET_PASSWORD"})
    assert r.status_code == 201
    code = server.last_code(mobile, "RESET_PASSWORD")
    body = {"mobile": mobile, "verificationCode": code, "newPassword": NEW_PASSWORD}
    r = rest("resetPassword", json_body=body)
    assert r.status_code == 204, r.text
    checks.error(rest("getAccount", token=rest_token["token"]), 401, "UNAUTHENTICATED")
    refresh = {"refreshToken": rest_token["refreshToken"]}
    checks.error(rest("refreshToken", json_body=refresh), 401, "UNAUTHENTICATED")
    gone = fault_of(member_soap.service.getPromotion, **auth(soap_token.token))
    assert checks.zeep_code(gone) == "UNAUTHENTICATED"
    old = {"mobile": mobile, "password": PASSWORD}
    checks.error(rest("login", json_body=old), 401, "LOGIN_FAILED")
    assert rest_login(rest, mobile, NEW_PASSWORD)["token"]
    checks.error(rest("resetPassword", json_body=body), 422, "VERIFICATION_CODE_INVALID")

    # another member resets over SOAP, with a code asked for over SOAP
    other = new_mobile()
    rest_register(rest, server, other, "BORROWER")
    rest_token = rest_login(rest, other)["token"]
    soap_token = member_soap.service.login(request={"mobile": other, "password": PASSWORD})
    ask = {"mobile": other, "purpose": "RESET_PASSWORD"}
    member_soap.service.sendVerificationCode(request=ask)
    second = server.last_code(other, "RESET_PASSWORD")
    member_soap.service.resetPassword(
        request={"mobile": other, "verificationCode": second, "newPassword": NEW_PASSWORD}
    )
    checks.error(rest("getAccount", token=rest_token), 401, "UNAUTHENTICATED")
    gone = fault_of(member_soap.service.logout, **auth(soap_token.token))
    assert checks.zeep_code(gone) == "UNAUTHENTICATED"
    wrong = fault_of(member_soap.service.login, request={"mobile": other, "password": PASSWORD})
    assert checks.zeep_code(wrong) == "LOGIN_FAILED"
    assert member_soap.service.login(request={"mobile": other, "password": NEW_PASSWORD}).token

    bodies.assert_free_of(code, second)
    log = server.log_text()
    assert not shows(log, code) and not shows(log, second)
