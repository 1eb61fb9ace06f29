"""Partner operations against the running server (embedded, and MariaDB + Redis): joint
registration and authorised reads on REST and SOAP 1.1/1.2 through the SDK, the
Idempotency-Key's repeat and conflict on both protocols, a member's revocation, and callbacks
delivered by the job engine to a real HTTP receiver in the test that fails first and answers
slowly after, acknowledged once per event and replayed."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import requests
import zeep
from p2p_partner import HmacKey, PartnerClient, verify_callback
from p2p_partner.soap import SigningTransport

from service.businessday import business_day
from tests.callbackreceiver import FAIL, SLOW, receiving
from tests.e2e.conftest import new_mobile

pytestmark = pytest.mark.slow

MEMBERS = "/api/v1/partner/members"
ENDPOINT = "/services/PartnerFacade"
SCOPES = ["MEMBER_REGISTER", "MEMBER_INVESTMENT_READ", "REPORT_READ", "CALLBACK_MANAGE"]


def admin(server, operator, method: str, path: str, **body) -> dict:
    answer = requests.request(
        method,
        server.url("/api/v1" + path),
        json=body or None,
        headers={"Authorization": f"Bearer {operator.token}"},
        timeout=30,
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def partner(server, operator, callback_url: str | None = None) -> PartnerClient:
    fields = {"callbackUrl": callback_url} if callback_url else {}
    made = admin(
        server,
        operator,
        "POST",
        "/partner-apps",
        name=f"e2e operations {uuid.uuid4().hex[:10]}",
        contact="ops@partner.example",
        scopes=SCOPES,
        ratePerMinute=6000,
        burst=1000,
        **fields,
    )
    app_id = made["appId"]
    issued = admin(
        server,
        operator,
        "POST",
        f"/partner-apps/{app_id}/keys",
        keyId="k1",
        algorithm="HMAC_SHA256",
    )
    return PartnerClient(server.base, app_id, HmacKey("k1", issued["secret"]))


def code_for(server, mobile: str) -> str:
    sent = requests.post(
        server.url("/api/v1/verification-codes"),
        json={"mobile": mobile, "purpose": "REGISTER"},
        timeout=30,
    )
    assert sent.status_code == 201, sent.text
    return server.last_code(mobile, "REGISTER")


def soap_client(server, sdk: PartnerClient, port: str) -> tuple[zeep.Client, SigningTransport]:
    transport = SigningTransport(sdk)
    client = zeep.Client(
        server.url(ENDPOINT + "?wsdl"), transport=transport, port_name=f"PartnerFacade{port}"
    )
    return client, transport


def test_joint_registration_and_authorised_reads_on_rest(server, operator) -> None:
    sdk, other = partner(server, operator), partner(server, operator)
    mobile = new_mobile()
    body = {"mobile": mobile, "verificationCode": code_for(server, mobile)}
    missing = sdk.request("POST", MEMBERS, json=body)
    assert (missing.status_code, missing.json()["code"]) == (400, "PARTNER_IDEMPOTENCY_KEY_MISSING")
    first = sdk.request("POST", MEMBERS, json=body, idempotency_key="e2e-reg-1")
    assert first.status_code == 201, first.text
    assert first.json()["mobile"] == mobile[:3] + "****" + mobile[-4:]
    again = sdk.request("POST", MEMBERS, json=body, idempotency_key="e2e-reg-1")
    assert (again.status_code, again.json()) == (201, first.json())
    body["mobile"] = new_mobile()
    reused = sdk.request("POST", MEMBERS, json=body, idempotency_key="e2e-reg-1")
    assert (reused.status_code, reused.json()["code"]) == (409, "PARTNER_IDEMPOTENCY_KEY_REUSED")

    member_id = first.json()["memberId"]
    for what in ("investments", "receipts"):
        page = sdk.get(f"{MEMBERS}/{member_id}/{what}", params={"page": 1, "pageSize": 5})
        assert page.status_code == 200, page.text
        assert (page.json()["total"], page.json()["pageSize"]) == (0, 5)
        refused = other.get(f"{MEMBERS}/{member_id}/{what}")
        assert refused.json()["code"] == "PARTNER_MEMBER_NOT_AUTHORISED"

    # The member sets a password with a reset code, logs in and revokes the app.
    reset = {
        "mobile": mobile,
        "verificationCode": None,
        "newPassword": "Passw0rd-" + uuid.uuid4().hex[:6],
    }
    requests.post(
        server.url("/api/v1/verification-codes"),
        json={"mobile": mobile, "purpose": "RESET_PASSWORD"},
        timeout=30,
    )
    reset["verificationCode"] = server.last_code(mobile, "RESET_PASSWORD")
    done = requests.post(server.url("/api/v1/members/password-reset"), json=reset, timeout=30)
    assert done.status_code == 204, done.text
    login = requests.post(
        server.url("/api/v1/sessions"),
        json={"mobile": mobile, "password": reset["newPassword"]},
        timeout=30,
    ).json()
    me = {"Authorization": f"Bearer {login['token']}"}
    mine = requests.get(
        server.url("/api/v1/members/current/partner-authorisations"), headers=me, timeout=30
    )
    assert [a["appId"] for a in mine.json()["items"]] == [sdk.app_id]
    revoked = requests.delete(
        server.url(f"/api/v1/members/current/partner-authorisations/{sdk.app_id}"),
        headers=me,
        timeout=30,
    )
    assert revoked.status_code == 204, revoked.text
    mine = requests.get(
        server.url("/api/v1/members/current/partner-authorisations"), headers=me, timeout=30
    )
    assert mine.json()["items"][0]["revokedAt"], mine.text
    gone = sdk.get(f"{MEMBERS}/{member_id}/investments")
    assert gone.json()["code"] == "PARTNER_MEMBER_NOT_AUTHORISED"
    day = business_day(dt.datetime.now(dt.UTC)).isoformat()  # the report's days are Shanghai's
    report = sdk.get("/api/v1/partner/report", params={"fromDate": day, "toDate": day})
    assert report.json()["items"][0]["members"] == 1, report.text


@pytest.mark.parametrize("port", ["Port", "Soap12Port"])
def test_joint_registration_and_authorised_reads_on_soap(server, operator, port) -> None:
    sdk = partner(server, operator)
    client, transport = soap_client(server, sdk, port)
    mobile = new_mobile()
    request = {"mobile": mobile, "verificationCode": code_for(server, mobile)}
    with pytest.raises(zeep.exceptions.Fault) as missing:
        client.service.registerPartnerMember(request=request)
    assert missing.value.detail is not None
    assert "PARTNER_IDEMPOTENCY_KEY_MISSING" in zeep_code(missing.value)
    transport.idempotency_key = f"soap-{port}"
    first = client.service.registerPartnerMember(request=request)
    again = client.service.registerPartnerMember(request=request)
    assert (again.memberId, again.mobile) == (first.memberId, first.mobile)
    with pytest.raises(zeep.exceptions.Fault) as reused:
        client.service.registerPartnerMember(request={**request, "mobile": new_mobile()})
    assert "PARTNER_IDEMPOTENCY_KEY_REUSED" in zeep_code(reused.value)
    transport.idempotency_key = None
    page = client.service.listPartnerMemberInvestments(memberId=first.memberId, pageSize=3)
    assert (page.total, page.pageSize) == (0, 3)
    receipts = client.service.listPartnerMemberReceipts(memberId=first.memberId)
    assert receipts.total == 0
    with pytest.raises(zeep.exceptions.Fault) as refused:
        client.service.listPartnerMemberInvestments(memberId=first.memberId + 100000)
    assert "PARTNER_MEMBER_NOT_AUTHORISED" in zeep_code(refused.value)


def zeep_code(fault: zeep.exceptions.Fault) -> str:
    """The catalogue code of a fault: its BusinessFault detail's code."""
    return "".join(fault.detail.itertext()) if fault.detail is not None else fault.message


def wait_for(check, seconds: float = 120.0):
    """Poll ``check`` until it answers something true (the job engine works on its own)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail("the job engine did not get there in time")


def test_callbacks_are_acknowledged_once_per_event_and_replayed(server, operator) -> None:
    with receiving(slow_seconds=1.0) as receiver:
        sdk = partner(server, operator, receiver.url)
        events = sdk.request(
            "PUT",
            "/api/v1/partner/callback-events",
            json={"events": ["MEMBER_REGISTERED"]},
            idempotency_key="events",
        )
        assert events.json()["events"] == ["MEMBER_REGISTERED"], events.text
        receiver.script = [FAIL, SLOW]
        mobile = new_mobile()
        body = {"mobile": mobile, "verificationCode": code_for(server, mobile)}
        registered = sdk.request("POST", MEMBERS, json=body, idempotency_key="cb-reg")
        assert registered.status_code == 201, registered.text

        def delivered():
            page = sdk.get("/api/v1/partner/callbacks").json()["items"]
            return page if page and page[0]["status"] == "ACKED" else None

        [callback] = wait_for(delivered)  # the first attempt fails, the retry 15 s on
        assert [a["outcome"] for a in callback["attemptLog"]] == ["HTTP_ERROR", "ACKED"]
        assert len(receiver.received) == 2 and len(receiver.acknowledged()) == 1
        headers, raw = receiver.acknowledged()[0]
        told = verify_callback(headers, raw, app_id=sdk.app_id, keys=[sdk.key])
        assert told.event_id == callback["eventId"]
        assert told.data == {"memberId": registered.json()["memberId"]}

        replay = sdk.request(
            "POST",
            f"/api/v1/partner/callbacks/{callback['callbackId']}/replay",
            idempotency_key="r1",
        )
        assert replay.status_code == 201, replay.text
        wait_for(lambda: len(receiver.acknowledged()) == 2)
        assert receiver.acknowledged()[1][1] == raw
        assert {h["X-P2P-Event-Id"] for h, _ in receiver.acknowledged()} == {told.event_id}
