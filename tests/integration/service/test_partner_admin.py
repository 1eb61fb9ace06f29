"""Operators' management of partner apps (service/partner/admin.py): registering, suspending
and resuming apps, issuing and revoking their keys, the audit trail of each change, and
PartnerAdminFacade over REST and SOAP through the platform's own application."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from sqlalchemy import text
from werkzeug.test import Client

from facade.partneradmin import NS as ADMIN_NS
from facade.types import COMMON_NS
from server.app import Application
from server.soap import ENV
from service.errors import BusinessError
from service.partner import PartnerAdminService, PartnerAppRequest, PartnerKeys
from service.partner.admin import MAX_ACTIVE_KEYS
from service.security import Principal
from tests.integration.service.conftest import PASSWORD


def pem_of(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


RSA_PEM = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def app_request(**overrides) -> PartnerAppRequest:
    fields = {
        "name": "渠道甲",
        "contact": "张三 zhang@partner.example",
        "callback_url": "https://partner.example/p2p/callbacks",
        "scopes": ["LISTING_READ", "MEMBER_REGISTER", "LISTING_READ"],
        "rate_per_minute": 600,
        "burst": 20,
    }
    return PartnerAppRequest(**{**fields, **overrides})


@pytest.fixture
def admin(platform) -> PartnerAdminService:
    return platform.service(PartnerAdminService)


def refused(code: str, call, *args, **kwargs) -> BusinessError:
    with pytest.raises(BusinessError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_an_app_is_registered_active_without_keys_once_and_audited(
    admin: PartnerAdminService, operator: Principal, sql
) -> None:
    app = admin.register_partner_app(app_request(), operator)
    assert app.app_id.startswith("pa") and len(app.app_id) == 26
    assert (app.status, app.scopes, app.keys) == (
        "ACTIVE",
        ("LISTING_READ", "MEMBER_REGISTER"),
        (),
    )
    assert admin.get_partner_app(app.app_id) == app
    refused("PARTNER_APP_NAME_TAKEN", admin.register_partner_app, app_request(), operator)
    other = admin.register_partner_app(app_request(name="渠道甲 "), operator)  # exact names
    assert other.app_id != app.app_id

    events = admin.list_partner_app_events(app.app_id).items
    assert [(e.action, e.operator_id) for e in events] == [("REGISTER", operator.member_id)]
    assert json.loads(events[0].detail) == {
        "name": "渠道甲",
        "callbackUrl": "https://partner.example/p2p/callbacks",
        "scopes": ["LISTING_READ", "MEMBER_REGISTER"],
        "ratePerMinute": 600,
        "burst": 20,
    }
    page = admin.list_partner_apps(status="ACTIVE")
    assert [a.app_id for a in page.items] == [app.app_id, other.app_id]
    assert admin.list_partner_apps(status="SUSPENDED").total == 0
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM partner_app")).scalar() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " \t"}, "name"),
        ({"contact": ""}, "contact"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["LISTING_READ", "EVERYTHING"]}, "scopes"),
        ({"callback_url": "ftp://partner.example/x"}, "callbackUrl"),
        ({"callback_url": "https://user:pw@partner.example/x"}, "callbackUrl"),
        ({"callback_url": "https://partner.example/x#frag"}, "callbackUrl"),
        ({"callback_url": "https:///no-host"}, "callbackUrl"),
        ({"callback_url": "https://partner.example:99999/x"}, "callbackUrl"),
        ({"burst": 0}, "ratePerMinute"),
    ],
)
def test_an_app_that_is_not_well_formed_is_refused(
    admin: PartnerAdminService, operator: Principal, change: dict, field: str
) -> None:
    error = refused(
        "VALIDATION_FAILED", admin.register_partner_app, app_request(**change), operator
    )
    assert error.message.startswith(field + ":")
    assert admin.list_partner_apps().total == 0


def test_an_app_is_suspended_and_resumed_each_once_and_each_change_audited(
    admin: PartnerAdminService, operator: Principal, clock
) -> None:
    app = admin.register_partner_app(app_request(), operator)
    clock.advance(minutes=1)
    suspended = admin.suspend_partner_app(app.app_id, "对方系统被入侵", operator)
    assert (suspended.status, suspended.updated_at) == ("SUSPENDED", clock.now)
    refused("PARTNER_APP_STATE_INVALID", admin.suspend_partner_app, app.app_id, "x", operator)
    refused("VALIDATION_FAILED", admin.suspend_partner_app, app.app_id, " ", operator)
    clock.advance(minutes=1)
    assert admin.resume_partner_app(app.app_id, "已整改", operator).status == "ACTIVE"
    refused("PARTNER_APP_STATE_INVALID", admin.resume_partner_app, app.app_id, "x", operator)
    refused("PARTNER_APP_NOT_FOUND", admin.suspend_partner_app, "pa0", "why", operator)

    events = admin.list_partner_app_events(app.app_id).items  # latest first
    assert [(e.action, e.reason, e.at) for e in events] == [
        ("RESUME", "已整改", clock.now),
        ("SUSPEND", "对方系统被入侵", clock.now - dt.timedelta(minutes=1)),
        ("REGISTER", None, events[2].at),
    ]


def test_rsa_keys_are_kept_as_public_keys_and_anything_else_is_refused(
    admin: PartnerAdminService, operator: Principal, sql
) -> None:
    app = admin.register_partner_app(app_request(), operator)
    key = admin.issue_partner_key(app.app_id, "2026-12", "RSA_SHA256", operator, RSA_PEM)
    assert (key.key_id, key.status, key.secret) == ("2026-12", "ACTIVE", None)  # an RSA key
    assert key.public_key == RSA_PEM
    small = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - refused on purpose
    curve = pem_of(ec.generate_private_key(ec.SECP256R1()))
    for pem in (small, curve, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"):
        error = refused(
            "VALIDATION_FAILED",
            admin.issue_partner_key,
            app.app_id,
            "k2",
            "RSA_SHA256",
            operator,
            pem,
        )
        assert error.message.startswith("publicKey:")
    refused("VALIDATION_FAILED", admin.issue_partner_key, app.app_id, "k2", "RSA_SHA256", operator)
    refused(
        "VALIDATION_FAILED",
        admin.issue_partner_key,
        app.app_id,
        "k2",
        "HMAC_SHA256",
        operator,
        RSA_PEM,
    )
    refused(
        "VALIDATION_FAILED", admin.issue_partner_key, app.app_id, "k/2", "HMAC_SHA256", operator
    )
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM partner_key")).scalar() == 1


def test_an_hmac_secret_is_shown_once_and_stored_sealed_to_its_app_and_key(
    platform, admin: PartnerAdminService, operator: Principal, sql
) -> None:
    app = admin.register_partner_app(app_request(), operator)
    key = admin.issue_partner_key(app.app_id, "h1", "HMAC_SHA256", operator)
    assert key.secret and len(key.secret) >= 43 and key.public_key is None
    [shown] = admin.get_partner_app(app.app_id).keys
    assert shown.key_id == "h1" and not hasattr(shown, "secret")
    with sql.connect() as conn:
        sealed = conn.execute(text("SELECT secret_sealed FROM partner_key")).scalar()
    assert sealed.startswith("v1.") and key.secret not in sealed
    keys: PartnerKeys = platform.components["partner_keys"]
    assert keys.open_secret(app.app_id, "h1", sealed) == key.secret
    assert keys.open_secret(app.app_id, "h2", sealed) is None  # bound to its key id
    assert keys.open_secret("pa-other", "h1", sealed) is None  # and to its app


def test_hmac_keys_need_the_platform_s_secret_key_rsa_keys_do_not(
    make_platform, operator: Principal
) -> None:
    admin = make_platform(**{"security.secret_key": ""}).service(PartnerAdminService)
    app = admin.register_partner_app(app_request(), operator)
    refused(
        "SERVICE_UNAVAILABLE", admin.issue_partner_key, app.app_id, "h1", "HMAC_SHA256", operator
    )
    assert admin.issue_partner_key(app.app_id, "r1", "RSA_SHA256", operator, RSA_PEM).key_id == "r1"
    assert [k.key_id for k in admin.get_partner_app(app.app_id).keys] == ["r1"]


def test_several_keys_are_active_at_once_up_to_the_limit_and_a_revoked_one_is_kept(
    admin: PartnerAdminService, operator: Principal, clock
) -> None:
    app = admin.register_partner_app(app_request(), operator)
    for n in range(MAX_ACTIVE_KEYS):
        admin.issue_partner_key(app.app_id, f"k{n}", "HMAC_SHA256", operator)
    refused(
        "PARTNER_KEY_LIMIT_REACHED",
        admin.issue_partner_key,
        app.app_id,
        "kx",
        "HMAC_SHA256",
        operator,
    )
    refused(
        "PARTNER_KEY_EXISTS",
        admin.issue_partner_key,
        app.app_id,
        "k0",
        "RSA_SHA256",
        operator,
        RSA_PEM,
    )

    clock.advance(seconds=5)
    revoked = admin.revoke_partner_key(app.app_id, "k0", "rotated to k5", operator)
    assert (revoked.status, revoked.revoked_at) == ("REVOKED", clock.now)
    refused("PARTNER_KEY_REVOKED", admin.revoke_partner_key, app.app_id, "k0", "again", operator)
    refused("PARTNER_KEY_NOT_FOUND", admin.revoke_partner_key, app.app_id, "nope", "x", operator)
    refused(
        "PARTNER_KEY_EXISTS", admin.issue_partner_key, app.app_id, "k0", "HMAC_SHA256", operator
    )
    admin.issue_partner_key(app.app_id, "k5", "HMAC_SHA256", operator)
    shown = admin.get_partner_app(app.app_id).keys
    assert [(k.key_id, k.status) for k in shown] == [
        ("k0", "REVOKED"),
        *((f"k{n}", "ACTIVE") for n in range(1, MAX_ACTIVE_KEYS + 1)),
    ]
    events = admin.list_partner_app_events(app.app_id, page_size=3).items
    assert [(e.action, e.key_id, e.reason) for e in events] == [
        ("ISSUE_KEY", "k5", None),
        ("REVOKE_KEY", "k0", "rotated to k5"),
        ("ISSUE_KEY", "k4", None),
    ]
    assert json.loads(events[0].detail) == {"algorithm": "HMAC_SHA256"}


# -- the facade on both protocols ---------------------------------------------------------


@pytest.fixture
def http(platform) -> Client:
    return Client(Application(platform))


def token(http: Client, mobile: str) -> str:
    answer = http.post("/api/v1/sessions", json={"mobile": mobile, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json["token"]


def soap(http: Client, operation: str, body: str, auth: str | None):
    header = (
        f'<s:Header><c:AuthToken xmlns:c="{COMMON_NS}"><c:token>{auth}</c:token></c:AuthToken>'
        "</s:Header>"
        if auth
        else ""
    )
    envelope = (
        f'<s:Envelope xmlns:s="{ENV}" xmlns:a="{ADMIN_NS}">{header}<s:Body>'
        f"<a:{operation}>{body}</a:{operation}></s:Body></s:Envelope>"
    )
    answer = http.post(
        "/services/PartnerAdminFacade",
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'},
    )
    return answer, etree.fromstring(answer.data)


def fault_code(doc) -> str:
    return doc.findtext(f".//{{{COMMON_NS}}}code")


def test_operators_manage_apps_over_rest_and_soap_and_nobody_else_may(
    http: Client, make_member
) -> None:
    make_member("OPERATOR", "13900000071")
    operator = token(http, "13900000071")
    auth = {"Authorization": f"Bearer {operator}"}
    body = {
        "name": "渠道乙",
        "contact": "李四",
        "scopes": ["REPORT_READ"],
        "ratePerMinute": 60,
        "burst": 5,
    }
    made = http.post("/api/v1/partner-apps", json=body, headers=auth)
    assert made.status_code == 201, made.text
    app_id = made.json["appId"]
    assert (made.json["status"], made.json["keys"], "callbackUrl" in made.json) == (
        "ACTIVE",
        [],
        False,
    )
    issued = http.post(
        f"/api/v1/partner-apps/{app_id}/keys",
        json={"keyId": "h1", "algorithm": "HMAC_SHA256"},
        headers=auth,
    )
    assert issued.status_code == 201, issued.text
    assert issued.json["secret"] and issued.headers["Cache-Control"] == "no-store"
    again = http.post("/api/v1/partner-apps", json=body, headers=auth)
    assert (again.status_code, again.json["code"]) == (409, "PARTNER_APP_NAME_TAKEN")

    answer, doc = soap(http, "getPartnerApp", f"<a:appId>{app_id}</a:appId>", operator)
    assert answer.status_code == 200, answer.text
    key = doc.find(f".//{{{ADMIN_NS}}}keys")
    assert key.findtext(f"{{{ADMIN_NS}}}keyId") == "h1"
    assert key.find(f"{{{ADMIN_NS}}}secret") is None
    answer, doc = soap(
        http,
        "suspendPartnerApp",
        f"<a:appId>{app_id}</a:appId><a:reason>合同到期</a:reason>",
        operator,
    )
    assert doc.findtext(f".//{{{ADMIN_NS}}}status") == "SUSPENDED"
    answer, doc = soap(
        http, "suspendPartnerApp", f"<a:appId>{app_id}</a:appId><a:reason>x</a:reason>", operator
    )
    assert (answer.status_code, fault_code(doc)) == (500, "PARTNER_APP_STATE_INVALID")
    answer, doc = soap(http, "getPartnerApp", "<a:appId>pa0</a:appId>", operator)
    assert fault_code(doc) == "PARTNER_APP_NOT_FOUND"
    events = http.get(f"/api/v1/partner-apps/{app_id}/events", headers=auth).json
    assert [e["action"] for e in events["items"]] == ["SUSPEND", "ISSUE_KEY", "REGISTER"]

    make_member("INVESTOR", "13900000072", onboarded=False)
    investor = token(http, "13900000072")
    member = {"Authorization": f"Bearer {investor}"}
    assert http.get(f"/api/v1/partner-apps/{app_id}", headers=member).json["code"] == "FORBIDDEN"
    assert http.get("/api/v1/partner-apps").json["code"] == "UNAUTHENTICATED"
    _, doc = soap(http, "getPartnerApp", f"<a:appId>{app_id}</a:appId>", investor)
    assert fault_code(doc) == "FORBIDDEN"
    _, doc = soap(http, "listPartnerApps", "", None)
    assert fault_code(doc) == "UNAUTHENTICATED"
