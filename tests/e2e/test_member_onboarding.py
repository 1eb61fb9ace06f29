"""Onboarding end to end, over JSON REST (found through /openapi.json) and SOAP (zeep clients
built from the served WSDLs): real-name verification, the owner's profile in full and the
operator's masked, bank cards, the fund account, the deprecated FundFacade; the refusals on
both protocols; and no full ID or card number in the server's log."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import zeep
from lxml import etree

from tests.support import resident_id_number

pytestmark = pytest.mark.slow

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
BANK = "中国农业银行"


def fault_of(call, *args, **kwargs) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(*args, **kwargs)
    return caught.value


def auth(token: str) -> dict:
    return {"_soapheaders": {"auth": {"token": token}}}


def masked_id(number: str) -> str:
    return number[0] + "*" * 16 + number[-1]


def masked_mobile(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:]


def underage_id_number() -> str:
    """The ID number of someone ten years old today."""
    today = dt.datetime.now(dt.UTC).date()
    return resident_id_number(dt.date(today.year - 10, 1, 1), 5)


@pytest.fixture(scope="module")
def fund_client(server) -> zeep.Client:
    return zeep.Client(server.url("/services/FundFacade?wsdl"))


@pytest.fixture(scope="module")
def seen(server):
    """Every full ID and card number the module sent, to look for in the server's log."""
    values: list[str] = []
    yield values
    log = server.log_text()
    leaked = [v for v in values if v in log or v.lower() in log]
    assert not leaked, "the server logged full ID or card numbers"


# -- REST ------------------------------------------------------------------------------------


def test_rest_onboarding_from_verification_to_fund_account(
    api, members, operator, identities, seen
) -> None:
    member = members("INVESTOR", onboarded=False)
    who = identities()
    seen += [who.id_number, who.card_number]

    profile = api.check_body("getProfile", api.call("getProfile", token=member.token))
    assert (profile["memberId"], profile["mobile"]) == (member.member_id, member.mobile)
    assert profile["identityVerified"] is False and profile["fundAccountOpen"] is False
    assert "realName" not in profile and "idNumber" not in profile
    assert api.check_body("getFundAccount", api.call("getFundAccount", token=member.token)) == {
        "status": "NONE"
    }

    r = api.call(
        "verifyIdentity",
        token=member.token,
        json_body={"realName": who.real_name, "idNumber": who.id_number},
    )
    verified = api.check_body("verifyIdentity", r)
    assert (verified["realName"], verified["idNumber"]) == (who.real_name, who.id_number)
    assert verified["identityVerified"] is True and verified["identityVerifiedAt"]
    own = api.check_body("getProfile", api.call("getProfile", token=member.token))
    assert (own["mobile"], own["realName"], own["idNumber"]) == (
        member.mobile,
        who.real_name,
        who.id_number,
    )

    r = api.call("getMember", token=operator.token, memberId=member.member_id)
    masked = api.check_body("getMember", r)
    assert masked["mobile"] == masked_mobile(member.mobile)
    assert masked["realName"] == who.real_name[0] + "*" * (len(who.real_name) - 1)
    assert masked["idNumber"] == masked_id(who.id_number)
    assert who.id_number not in r.text and member.mobile not in r.text

    r = api.call(
        "bindCard",
        token=member.token,
        json_body={"cardNumber": who.card_number, "bankName": BANK, "mobile": member.mobile},
    )
    assert r.status_code == 201, r.text
    card = api.check_body("bindCard", r)
    assert card["cardNumber"] == "**** **** **** " + who.card_number[-4:]
    assert card["mobile"] == masked_mobile(member.mobile) and card["bankName"] == BANK
    assert who.card_number not in r.text
    r = api.call("listCards", token=member.token)
    assert [c["cardId"] for c in api.check_body("listCards", r)["items"]] == [card["cardId"]]
    assert who.card_number not in r.text

    r = api.call("openFundAccount", token=member.token, json_body={"cardId": card["cardId"]})
    assert r.status_code == 201, r.text
    account = api.check_body("openFundAccount", r)
    assert account["status"] == "OPEN" and account["accountNo"] and account["openedAt"]
    r = api.call("getFundAccount", token=member.token)
    assert api.check_body("getFundAccount", r) == account
    r = api.call("hasFundAccount", token=member.token)
    assert api.check_body("hasFundAccount", r) == {"hasFundAccount": True}
    r = api.call("openFundAccount", token=member.token, json_body={"cardId": card["cardId"]})
    assert r.status_code == 409 and r.json()["code"] == "FUND_ACCOUNT_EXISTS"


def test_rest_unbinding_and_ownership_of_cards(api, members, checks, identities, seen) -> None:
    owner = members("INVESTOR")
    other = members("BORROWER", onboarded=False)  # verified below, no account yet
    number, theirs = identities().card_number, identities()
    seen += [number, theirs.id_number]
    body = {"realName": theirs.real_name, "idNumber": theirs.id_number}
    assert api.call("verifyIdentity", token=other.token, json_body=body).status_code == 200
    r = api.call(
        "bindCard",
        token=owner.token,
        json_body={"cardNumber": number, "bankName": BANK, "mobile": owner.mobile},
    )
    assert r.status_code == 201, r.text
    card_id = r.json()["cardId"]
    # Another member can neither unbind my card nor open an account with it, nor see it.
    checks.error(api.call("unbindCard", token=other.token, cardId=card_id), 404, "CARD_NOT_FOUND")
    r = api.call("openFundAccount", token=other.token, json_body={"cardId": card_id})
    checks.error(r, 404, "CARD_NOT_FOUND")
    none = api.check_body("listCards", api.call("listCards", token=other.token))
    assert none == {"items": [], "total": 0, "page": 1, "pageSize": 5}
    assert api.call("unbindCard", token=owner.token, cardId=card_id).status_code == 204
    cards = api.check_body("listCards", api.call("listCards", token=owner.token))["items"]
    assert [c["cardId"] for c in cards] == [owner.card_id]
    checks.error(api.call("unbindCard", token=owner.token, cardId=card_id), 404, "CARD_NOT_FOUND")
    r = api.call("openFundAccount", token=owner.token, json_body={"cardId": card_id})
    checks.error(r, 409, "FUND_ACCOUNT_EXISTS")


def test_rest_refusals(api, members, checks, identities, seen) -> None:
    first, second = members("INVESTOR", onboarded=False), members("BORROWER", onboarded=False)
    who = identities()
    bad_check = who.id_number[:17] + ("0" if who.id_number[17] != "0" else "1")
    seen += [who.id_number, who.card_number, bad_check]

    def verify(member, number: str) -> requests.Response:
        body = {"realName": who.real_name, "idNumber": number}
        return api.call("verifyIdentity", token=member.token, json_body=body)

    checks.error(verify(first, underage_id_number()), 422, "UNDERAGE")
    checks.error(verify(first, bad_check), 400, "VALIDATION_FAILED", mentions="check character")
    card = {"cardNumber": who.card_number, "bankName": BANK, "mobile": first.mobile}
    r = api.call("bindCard", token=first.token, json_body=card)
    checks.error(r, 403, "IDENTITY_NOT_VERIFIED")
    assert verify(first, who.id_number).status_code == 200
    checks.error(verify(first, who.id_number), 409, "IDENTITY_ALREADY_VERIFIED")
    body = checks.error(verify(second, who.id_number), 409, "ID_NUMBER_TAKEN")
    assert who.id_number not in str(body)

    assert api.call("bindCard", token=first.token, json_body=card).status_code == 201
    assert verify(second, identities().id_number).status_code == 200
    r = api.call("bindCard", token=second.token, json_body=card | {"mobile": second.mobile})
    body = checks.error(r, 409, "CARD_TAKEN")
    assert who.card_number not in str(body)


def test_rest_get_member_is_for_operators_and_names_unknown_members(
    api, operator, investor, checks
) -> None:
    r = api.call("getMember", token=operator.token, memberId=investor.member_id + 10**6)
    checks.error(r, 404, "MEMBER_NOT_FOUND")
    r = api.call("getMember", token=investor.token, memberId=investor.member_id)
    checks.error(r, 403, "FORBIDDEN")


# -- SOAP ------------------------------------------------------------------------------------


def test_soap_onboarding_from_verification_to_fund_account(
    soap, members, operator, identities, fund_client, seen, checks
) -> None:
    member = members("BORROWER", onboarded=False)
    who = identities()
    seen += [who.id_number, who.card_number]
    service, token = soap.member.service, auth(member.token)

    assert fund_client.service.hasFundAccount(**token) is False
    verified = service.verifyIdentity(
        request={"realName": who.real_name, "idNumber": who.id_number}, **token
    )
    assert (verified.realName, verified.idNumber) == (who.real_name, who.id_number)
    own = service.getProfile(**token)
    assert (own.mobile, own.realName, own.idNumber, own.identityVerified) == (
        member.mobile,
        who.real_name,
        who.id_number,
        True,
    )
    masked = service.getMember(memberId=member.member_id, **auth(operator.token))
    assert (masked.mobile, masked.idNumber) == (
        masked_mobile(member.mobile),
        masked_id(who.id_number),
    )
    assert masked.realName == who.real_name[0] + "*" * (len(who.real_name) - 1)

    card = service.bindCard(
        request={"cardNumber": who.card_number, "bankName": BANK, "mobile": member.mobile},
        **token,
    )
    assert card.cardNumber == "**** **** **** " + who.card_number[-4:]
    assert card.mobile == masked_mobile(member.mobile)
    listed = service.listCards(**token)
    assert (listed.total, listed.page, listed.pageSize) == (1, 1, 5)
    assert [(c.cardId, c.cardNumber) for c in listed.items] == [(card.cardId, card.cardNumber)]

    account = service.openFundAccount(cardId=card.cardId, **token)
    assert account.status == "OPEN" and account.accountNo
    again = service.getFundAccount(**token)
    assert (again.status, again.accountNo) == ("OPEN", account.accountNo)
    assert fund_client.service.hasFundAccount(**token) is True

    spare = identities().card_number
    seen.append(spare)
    extra = service.bindCard(
        request={"cardNumber": spare, "bankName": BANK, "mobile": member.mobile}, **token
    )
    assert service.unbindCard(cardId=extra.cardId, **token) is None
    assert [c.cardId for c in service.listCards(**token).items] == [card.cardId]
    refused = fault_of(service.unbindCard, cardId=extra.cardId, **token)
    assert checks.zeep_code(refused) == "CARD_NOT_FOUND"


def test_soap_refusals(soap, members, identities, seen, checks) -> None:
    first, second = members("INVESTOR", onboarded=False), members("BORROWER", onboarded=False)
    who = identities()
    bad_check = who.id_number[:17] + ("0" if who.id_number[17] != "0" else "1")
    seen += [who.id_number, who.card_number, bad_check]
    service = soap.member.service

    def verify(member, number: str):
        request = {"realName": who.real_name, "idNumber": number}
        return service.verifyIdentity(request=request, **auth(member.token))

    def code(call, *args) -> str:
        fault = fault_of(call, *args)
        assert fault.code.endswith("Client")
        return checks.zeep_code(fault)

    assert code(verify, first, underage_id_number()) == "UNDERAGE"
    refused = fault_of(verify, first, bad_check)
    assert checks.zeep_code(refused) == "VALIDATION_FAILED"
    assert "check character" in checks.zeep_detail(refused)
    verify(first, who.id_number)
    assert code(verify, second, who.id_number) == "ID_NUMBER_TAKEN"

    def bind(member):
        request = {"cardNumber": who.card_number, "bankName": BANK, "mobile": member.mobile}
        return service.bindCard(request=request, **auth(member.token))

    bind(first)
    verify_second = {"realName": "李四", "idNumber": identities().id_number}
    service.verifyIdentity(request=verify_second, **auth(second.token))
    assert code(bind, second) == "CARD_TAKEN"


# -- the deprecated FundFacade ---------------------------------------------------------------


def test_has_fund_account_is_marked_deprecated_in_both_contracts(api, server) -> None:
    operation = api.operations["hasFundAccount"][2]
    assert operation["deprecated"] is True
    assert api.operations["getFundAccount"][2].get("deprecated") is not True

    wsdl = etree.fromstring(
        requests.get(server.url("/services/FundFacade?wsdl"), timeout=10).content
    )
    [doc] = wsdl.xpath(
        "/w:definitions/w:portType/w:operation[@name='hasFundAccount']/w:documentation/text()",
        namespaces={"w": WSDL_NS},
    )
    assert doc.startswith("Deprecated.")


def test_rest_has_fund_account_for_a_member_without_one(api, members) -> None:
    member = members("INVESTOR", onboarded=False)
    r = api.call("hasFundAccount", token=member.token)
    assert api.check_body("hasFundAccount", r) == {"hasFundAccount": False}
