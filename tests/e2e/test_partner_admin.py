"""Operators manage partner apps on a running server: PartnerAdminFacade through zeep (from
the served WSDL alone) and through HTTP, each protocol seeing what the other did."""

from __future__ import annotations

import uuid

import pytest
import requests
import zeep
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.conftest import Soap, zeep_fault_code

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def admin(server) -> zeep.Client:
    return zeep.Client(server.url("/services/PartnerAdminFacade?wsdl"))


def test_an_app_and_its_keys_are_managed_over_soap_and_rest(
    server, admin: zeep.Client, operator, investor
) -> None:
    auth = Soap.auth(operator.token)
    name = f"e2e 渠道 {uuid.uuid4().hex[:8]}"
    made = admin.service.registerPartnerApp(
        request={
            "name": name,
            "contact": "王五",
            "callbackUrl": "https://partner.example/cb",
            "scopes": ["REPORT_READ", "LISTING_READ"],
            "ratePerMinute": 120,
            "burst": 10,
        },
        **auth,
    )
    assert (made.status, made.scopes, made.keys) == ("ACTIVE", ["LISTING_READ", "REPORT_READ"], [])
    app_id = made.appId

    hmac_key = admin.service.issuePartnerKey(
        appId=app_id, keyId="h-2026", algorithm="HMAC_SHA256", **auth
    )
    assert hmac_key.secret and hmac_key.publicKey is None
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    headers = {"Authorization": f"Bearer {operator.token}"}
    issued = requests.post(
        server.url(f"/api/v1/partner-apps/{app_id}/keys"),
        json={"keyId": "r-2026", "algorithm": "RSA_SHA256", "publicKey": pem},
        headers=headers,
        timeout=30,
    )
    assert issued.status_code == 201, issued.text
    assert (issued.json()["publicKey"], "secret" in issued.json()) == (pem, False)

    shown = requests.get(
        server.url(f"/api/v1/partner-apps/{app_id}"), headers=headers, timeout=30
    ).json()
    assert [(k["keyId"], k["status"], "secret" in k) for k in shown["keys"]] == [
        ("h-2026", "ACTIVE", False),
        ("r-2026", "ACTIVE", False),
    ]
    revoked = admin.service.revokePartnerKey(
        appId=app_id, keyId="h-2026", reason="rotated to r-2026", **auth
    )
    assert revoked.status == "REVOKED"
    with pytest.raises(zeep.exceptions.Fault) as fault:
        admin.service.revokePartnerKey(appId=app_id, keyId="h-2026", reason="again", **auth)
    assert zeep_fault_code(fault.value) == "PARTNER_KEY_REVOKED"
    suspended = requests.post(
        server.url(f"/api/v1/partner-apps/{app_id}/suspension"),
        json={"reason": "合同到期"},
        headers=headers,
        timeout=30,
    )
    assert suspended.json()["status"] == "SUSPENDED", suspended.text
    with pytest.raises(zeep.exceptions.Fault) as fault:
        admin.service.suspendPartnerApp(appId=app_id, reason="again", **auth)
    assert zeep_fault_code(fault.value) == "PARTNER_APP_STATE_INVALID"
    assert admin.service.resumePartnerApp(appId=app_id, reason="续约", **auth).status == "ACTIVE"

    events = admin.service.listPartnerAppEvents(appId=app_id, **auth)
    assert [(e.action, e.keyId) for e in events["items"]] == [
        ("RESUME", None),
        ("SUSPEND", None),
        ("REVOKE_KEY", "h-2026"),
        ("ISSUE_KEY", "r-2026"),
        ("ISSUE_KEY", "h-2026"),
        ("REGISTER", None),
    ]
    assert {e.operatorId for e in events["items"]} == {operator.member_id}

    with pytest.raises(zeep.exceptions.Fault) as fault:
        admin.service.getPartnerApp(appId=app_id, **Soap.auth(investor.token))
    assert zeep_fault_code(fault.value) == "FORBIDDEN"
    taken = requests.post(
        server.url("/api/v1/partner-apps"),
        json={
            "name": name,
            "contact": "x",
            "scopes": ["REPORT_READ"],
            "ratePerMinute": 1,
            "burst": 1,
        },
        headers=headers,
        timeout=30,
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "PARTNER_APP_NAME_TAKEN")
    assert "Traceback" not in server.log_text()
