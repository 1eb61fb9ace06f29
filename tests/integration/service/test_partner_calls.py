"""Signed partner calls through the platform's own application (SQLite and MariaDB; the
embedded in-process cache, and Redis shared by two platforms): what PartnerFacade shows,
the refusals that depend on the platform's configuration and clock, and the nonce and rate
limit decided once among concurrent callers."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from p2p_partner import AnswerNotSigned, HmacKey, PartnerClient, RsaKey
from p2p_partner.soap import sign_envelope
from werkzeug.test import Client

from facade.partner.listings import NS as PARTNER_NS
from facade.types import COMMON_NS
from server.app import Application, Platform
from server.soap import ENV
from service.p2p import AuditRequest
from service.partner import PartnerAdminService, PartnerAppRequest
from service.security import Principal

LISTINGS = "/api/v1/partner/listings"
APPROVE = AuditRequest(approve=True, reason=None)
#: Another master key than conf/test.toml's: HMAC secrets sealed under that one do not open.
OTHER_SECRET_KEY = base64.b64encode(b"another-master-key-for-tests-32b").decode()


def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, *, private: bool) -> bytes:
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Partner:
    """A partner app calling one platform's WSGI application with the SDK's signatures."""

    def __init__(self, platform: Platform, app_id: str, key, clock, platform_pem=None):
        self.web = Client(Application(platform))
        self.sdk = PartnerClient(
            "http://localhost",
            app_id,
            key,
            platform_public_key=platform_pem,
            clock=lambda: clock().timestamp(),
        )

    def get(self, path: str, query: str = "", **changes):
        headers = {**self.sdk.signature_headers("GET", path, query, b""), **changes}
        answer = self.web.get(path, query_string=query, headers=headers)
        return answer, headers

    def verified(self, path: str, query: str = ""):
        answer, headers = self.get(path, query)
        self.sdk.verify_answer(
            SimpleNamespace(
                headers=answer.headers, status_code=answer.status_code, content=answer.get_data()
            ),
            headers["X-P2P-Nonce"],
        )
        return answer


@pytest.fixture
def register(operator: Principal):
    def make(platform: Platform, *, scopes=("LISTING_READ",), rate=600, burst=100) -> str:
        admin = platform.service(PartnerAdminService)
        request = PartnerAppRequest(f"app {uuid.uuid4().hex}", "c", None, list(scopes), rate, burst)
        return admin.register_partner_app(request, operator).app_id

    return make


def hmac(platform: Platform, app_id: str, key_id: str, operator: Principal) -> HmacKey:
    issued = platform.service(PartnerAdminService).issue_partner_key(
        app_id, key_id, "HMAC_SHA256", operator
    )
    return HmacKey(key_id, issued.secret)


def test_listings_show_raising_ones_only_without_the_borrower(
    platform, loans, loan_request, operator, register, clock
) -> None:
    pending = loans.publish_loan(loan_request(), operator).loan_id
    raising = loans.publish_loan(loan_request(amount=D("2000.00")), operator).loan_id
    loans.audit_loan(raising, APPROVE, operator)
    app_id = register(platform)
    partner = Partner(platform, app_id, hmac(platform, app_id, "k1", operator), clock)

    page = partner.verified(LISTINGS, "page=1&pageSize=10")
    assert page.status_code == 200, page.get_data(as_text=True)
    body = page.json
    assert (body["total"], body["page"], body["pageSize"]) == (1, 1, 10)
    [item] = body["items"]
    assert (item["loanId"], item["amount"], item["raised"]) == (raising, "2000.00", "0.00")
    assert not {"borrowerId", "description", "rejectReason"} & set(item)
    one = partner.verified(f"{LISTINGS}/{raising}")
    assert one.json == item
    hidden = partner.verified(f"{LISTINGS}/{pending}")
    assert (hidden.status_code, hidden.json["code"]) == (404, "LOAN_NOT_FOUND")


def test_the_embedded_cache_refuses_a_replay_and_limits_the_rate(
    platform, operator, register, clock
) -> None:
    app_id = register(platform, rate=1, burst=2)
    partner = Partner(platform, app_id, hmac(platform, app_id, "k1", operator), clock)
    first, headers = partner.get(LISTINGS)
    assert first.status_code == 200
    again = partner.web.get(LISTINGS, headers=headers)
    assert (again.status_code, again.json["code"]) == (401, "PARTNER_NONCE_REPLAYED")
    assert partner.verified(LISTINGS).status_code == 200
    limited = partner.verified(LISTINGS)
    assert (limited.status_code, limited.json["code"]) == (429, "PARTNER_RATE_LIMITED")
    assert limited.headers["Retry-After"] == "60"  # one token a minute, Redis or not
    assert limited.headers["RateLimit-Remaining"] == "0"


def test_the_timestamp_window_is_the_configured_one_either_way(
    make_platform, operator, register, clock
) -> None:
    platform = make_platform(**{"partner.timestamp_window_seconds": 60})
    app_id = register(platform)
    key = hmac(platform, app_id, "k1", operator)
    for skew, code in ((-61, "PARTNER_TIMESTAMP_STALE"), (61, "PARTNER_TIMESTAMP_STALE")):
        sender = Partner(platform, app_id, key, lambda s=skew: clock.now + dt.timedelta(seconds=s))
        answer, _ = sender.get(LISTINGS)
        assert (answer.status_code, answer.json["code"]) == (401, code)
        assert ("ahead" if skew > 0 else "behind") in answer.json["detail"]
    for skew in (-59, 59):
        sender = Partner(platform, app_id, key, lambda s=skew: clock.now + dt.timedelta(seconds=s))
        assert sender.get(LISTINGS)[0].status_code == 200


def test_secrets_that_no_longer_open_and_rsa_without_a_platform_key_are_unavailable(
    make_platform, operator, register, clock
) -> None:
    platform = make_platform()
    app_id = register(platform)
    key = hmac(platform, app_id, "k1", operator)
    private = rsa_private()
    platform.service(PartnerAdminService).issue_partner_key(
        app_id, "r1", "RSA_SHA256", operator, pem(private, private=False).decode()
    )
    rekeyed = make_platform(**{"security.secret_key": OTHER_SECRET_KEY})
    answer, _ = Partner(rekeyed, app_id, key, clock).get(LISTINGS)
    assert (answer.status_code, answer.json["code"]) == (503, "SERVICE_UNAVAILABLE")
    rsa_key = RsaKey("r1", pem(private, private=True))
    answer, _ = Partner(platform, app_id, rsa_key, clock, b"unused").get(LISTINGS)
    assert (answer.status_code, answer.json["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert platform.components["partner_auth"].platform_key is None
    assert Client(Application(platform)).get("/partner/platform-key").status_code == 404


def test_an_rsa_app_is_answered_with_the_published_platform_key(
    make_platform, operator, register, clock
) -> None:
    platform_key = rsa_private()
    platform = make_platform(
        **{"partner.platform_private_key": pem(platform_key, private=True).decode()}
    )
    published = Client(Application(platform)).get("/partner/platform-key").json
    assert published["publicKey"].encode() == pem(platform_key, private=False)
    assert (published["keyId"], published["algorithm"]) == ("platform-1", "RSA_SHA256")
    app_id = register(platform)
    private = rsa_private()
    platform.service(PartnerAdminService).issue_partner_key(
        app_id, "r1", "RSA_SHA256", operator, pem(private, private=False).decode()
    )
    key = RsaKey("r1", pem(private, private=True))
    partner = Partner(platform, app_id, key, clock, published["publicKey"])
    answer = partner.verified(LISTINGS)
    assert answer.headers["X-P2P-Key-Id"] == "platform-1"
    impostor = Partner(platform, app_id, key, clock, pem(rsa_private(), private=False))
    with pytest.raises(AnswerNotSigned):
        impostor.verified(LISTINGS)


def test_a_soap_body_other_than_the_signed_one_is_refused(
    platform, operator, register, clock
) -> None:
    app_id = register(platform)
    partner = Partner(platform, app_id, hmac(platform, app_id, "k1", operator), clock)
    envelope = etree.Element(f"{{{ENV}}}Envelope", nsmap={"soap": ENV})
    body = etree.SubElement(envelope, f"{{{ENV}}}Body")
    call = etree.SubElement(body, f"{{{PARTNER_NS}}}listPartnerListings", nsmap={"p": PARTNER_NS})
    etree.SubElement(call, f"{{{PARTNER_NS}}}page").text = "1"
    sign_envelope(partner.sdk, envelope, "http://localhost/services/PartnerFacade")
    signed = etree.tostring(envelope)
    # A wrapping attempt: the signed Body kept in a header block, another Body dispatched.
    wrapped = etree.fromstring(signed)
    header = wrapped.find(f"{{{ENV}}}Header")
    etree.SubElement(header, "{urn:example}Kept").append(
        etree.fromstring(etree.tostring(wrapped.find(f"{{{ENV}}}Body")))
    )
    wrapped.find(
        f"{{{ENV}}}Body/{{{PARTNER_NS}}}listPartnerListings/{{{PARTNER_NS}}}page"
    ).text = "2"
    post = {"content_type": "text/xml; charset=utf-8"}
    refused = partner.web.post("/services/PartnerFacade", data=etree.tostring(wrapped), **post)
    code = etree.fromstring(refused.get_data()).findtext(f".//{{{COMMON_NS}}}code")
    assert code == "PARTNER_SIGNATURE_INVALID"
    assert partner.web.post("/services/PartnerFacade", data=signed, **post).status_code == 200


@pytest.mark.mysql
@pytest.mark.redis
def test_two_platforms_on_one_redis_accept_a_nonce_once_and_share_the_limit(
    make_platform, redis_settings, operator, register, clock, database
) -> None:
    if database.engine.url.get_backend_name() != "mysql":
        pytest.skip("the concurrent claim is checked on MariaDB + Redis")
    one, two = make_platform(**redis_settings), make_platform(**redis_settings)
    app_id = register(one, rate=1, burst=6)
    key = hmac(one, app_id, "k1", operator)
    partners = [Partner(p, app_id, key, clock) for p in (one, two) for _ in range(4)]
    replayed = partners[0].sdk.signature_headers("GET", LISTINGS, "", b"")
    start = threading.Barrier(len(partners))
    statuses: list[int] = []

    def run(partner: Partner) -> None:
        start.wait()
        statuses.append(partner.web.get(LISTINGS, headers=replayed).status_code)

    threads = [threading.Thread(target=run, args=(p,)) for p in partners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [200] + [401] * 7
    fresh: list[int] = []
    start = threading.Barrier(len(partners))

    def fresh_call(partner: Partner) -> None:
        start.wait()
        fresh.append(partner.get(LISTINGS)[0].status_code)

    threads = [threading.Thread(target=fresh_call, args=(p,)) for p in partners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(fresh) == [200] * 5 + [429] * 3  # six tokens, one spent above
