"""Signed partner calls against two real server processes sharing one MariaDB database and
one Redis, as production runs its workers: a captured request replayed to the other worker is
refused, a rate limit holds across both, keys rotate without a refused call, every refusal has
its code on REST and on SOAP, an openssl-made signature is accepted, and the SDK
(clients/python) verifies every answer."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import zeep
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from p2p_partner import AnswerNotSigned, HmacKey, PartnerClient, RsaKey
from p2p_partner import canonical as sdk_canonical
from p2p_partner.soap import SigningTransport, sign_envelope

pytestmark = [pytest.mark.slow, pytest.mark.mysql, pytest.mark.redis]

LISTINGS = "/api/v1/partner/listings"
ENDPOINT = "/services/PartnerFacade"
COMMON_NS = "http://p2p.hry.com/facade/common"
PARTNER_NS = "http://p2p.hry.com/facade/partner"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
CONTENT_TYPES = {
    SOAP_ENV: "text/xml; charset=utf-8",
    SOAP12_ENV: "application/soap+xml; charset=utf-8",
}


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class Pair:
    """Two workers of one platform: the same database, the same Redis and key prefix."""

    one: object
    two: object
    operator_token: str

    def admin(self, method: str, path: str, **body) -> dict:
        answer = requests.request(
            method,
            self.one.url("/api/v1" + path),
            json=body or None,
            headers={"Authorization": f"Bearer {self.operator_token}"},
            timeout=30,
        )
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def register(self, *, scopes=("LISTING_READ",), rate=600, burst=100) -> str:
        made = self.admin(
            "POST",
            "/partner-apps",
            name=f"e2e partner {uuid.uuid4().hex[:10]}",
            contact="ops@partner.example",
            scopes=list(scopes),
            ratePerMinute=rate,
            burst=burst,
        )
        return made["appId"]

    def hmac_key(self, app_id: str, key_id: str) -> HmacKey:
        issued = self.admin(
            "POST", f"/partner-apps/{app_id}/keys", keyId=key_id, algorithm="HMAC_SHA256"
        )
        return HmacKey(key_id, issued["secret"])

    def rsa_key(self, app_id: str, key_id: str) -> tuple[RsaKey, bytes]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.admin(
            "POST",
            f"/partner-apps/{app_id}/keys",
            keyId=key_id,
            algorithm="RSA_SHA256",
            publicKey=public_pem(key),
        )
        return RsaKey(key_id, private_pem(key)), private_pem(key)

    def client(self, app_id: str, key, server=None) -> PartnerClient:
        server = server or self.one
        platform = requests.get(server.url("/partner/platform-key"), timeout=30).json()
        return PartnerClient(
            server.base,
            app_id,
            key,
            platform_public_key=platform["publicKey"],
            platform_key_id=platform["keyId"],
        )


@pytest.fixture(scope="module")
def pair(tmp_path_factory, processes) -> Pair:
    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    db_raw = os.environ.get("P2P_TEST_DATABASE_URL")
    redis_url = os.environ.get("P2P_TEST_REDIS_URL")
    if not db_raw or not redis_url:
        pytest.skip("two workers on one database and Redis need P2P_TEST_DATABASE_URL and REDIS")
    workdir = tmp_path_factory.mktemp("e2e-partner")
    db_url = make_url(db_raw)
    name = f"{db_url.database}_partner"
    admin = create_engine(db_url.set(database=""), poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    key_file = workdir / "platform.pem"
    key_file.write_bytes(
        private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    )
    prefix = f"p2p-e2e-partner-{uuid.uuid4().hex[:8]}:"
    settings = [
        f"database.url={db_url.set(database=name).render_as_string(hide_password=False)}",
        f"cache.url={redis_url}",
        f"cache.key_prefix={prefix}",
        f"partner.platform_private_key={key_file}",
        "partner.platform_key_id=platform-e2e",
        "jobs.embedded_worker=false",  # no job is needed here; the machine is small
    ]
    started = []
    try:
        started.append(processes.start_server("mariadb", workdir / "one", settings, True))
        started.append(processes.start_server("mariadb", workdir / "two", settings, False))
        login = dict(zip(("mobile", "password"), processes.operator_login, strict=True))
        token = requests.post(
            started[0].server.url("/api/v1/sessions"), json=login, timeout=30
        ).json()["token"]
        yield Pair(started[0].server, started[1].server, token)
    finally:
        for s in started:
            s.stop()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
        r = redis.Redis.from_url(redis_url)
        for key in r.scan_iter(match=f"{prefix}*"):
            r.delete(key)
        r.close()


def code_of(answer: requests.Response) -> str:
    return answer.json()["code"]


def soap_envelope(env: str, operation: str, **fields) -> etree._Element:
    envelope = etree.Element(f"{{{env}}}Envelope", nsmap={"s": env})
    body = etree.SubElement(envelope, f"{{{env}}}Body")
    call = etree.SubElement(body, f"{{{PARTNER_NS}}}{operation}", nsmap={"p": PARTNER_NS})
    for name, value in fields.items():
        etree.SubElement(call, f"{{{PARTNER_NS}}}{name}").text = str(value)
    return envelope


def soap_post(server, envelope: etree._Element) -> requests.Response:
    env = etree.QName(envelope).namespace
    return requests.post(
        server.url(ENDPOINT),
        data=etree.tostring(envelope),
        headers={"Content-Type": CONTENT_TYPES[env]},
        timeout=30,
    )


def soap_code(answer: requests.Response) -> str:
    return etree.fromstring(answer.content).findtext(f".//{{{COMMON_NS}}}code")


# -- the SDK, both algorithms, both protocols ------------------------------------------------


def test_hmac_and_rsa_apps_read_listings_and_the_sdk_verifies_every_answer(pair: Pair) -> None:
    app_id = pair.register()
    for key in (pair.hmac_key(app_id, "h1"), pair.rsa_key(app_id, "r1")[0]):
        client = pair.client(app_id, key)
        answer = client.get(LISTINGS, params={"page": 1, "pageSize": 5})
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"items", "total", "page", "pageSize"}
        assert (answer.json()["page"], answer.json()["pageSize"]) == (1, 5)
        assert int(answer.headers["RateLimit-Remaining"]) < 100
        missing = client.get(LISTINGS + "/999999999")
        assert (missing.status_code, code_of(missing)) == (404, "LOAN_NOT_FOUND")  # signed too
        expected = "h1" if isinstance(key, HmacKey) else "platform-e2e"
        assert missing.headers["X-P2P-Key-Id"] == expected


def test_a_tampered_answer_is_refused_by_the_sdk(pair: Pair) -> None:
    app_id = pair.register()
    client = pair.client(app_id, pair.hmac_key(app_id, "h1"))
    headers = client.signature_headers("GET", LISTINGS, "", b"")
    answer = requests.get(pair.one.url(LISTINGS), headers=headers, timeout=30)
    client.verify_answer(answer, headers["X-P2P-Nonce"])
    answer._content = answer.content.replace(b'"total":0', b'"total":9')
    with pytest.raises(AnswerNotSigned):
        client.verify_answer(answer, headers["X-P2P-Nonce"])
    with pytest.raises(AnswerNotSigned):  # bound to the request's nonce
        client.verify_answer(answer, "another-nonce-0123456789")


@pytest.mark.parametrize("env", [SOAP_ENV, SOAP12_ENV], ids=["soap11", "soap12"])
def test_soap_calls_are_signed_with_the_header_and_answered_signed(pair: Pair, env) -> None:
    app_id = pair.register()
    key, _ = pair.rsa_key(app_id, "r1")
    client = pair.client(app_id, key)
    envelope = soap_envelope(env, "listPartnerListings", page=1)
    nonce = sign_envelope(client, envelope, pair.one.url(ENDPOINT))
    answer = soap_post(pair.one, envelope)
    assert answer.status_code == 200, answer.text
    client.verify_answer(answer, nonce)
    # The Body is what is signed: another page under the same header is refused.
    envelope.find(f".//{{{PARTNER_NS}}}page").text = "2"
    refused = soap_post(pair.two, envelope)
    assert soap_code(refused) == "PARTNER_SIGNATURE_INVALID"


def test_zeep_with_the_sdk_transport_calls_from_the_wsdl_alone(pair: Pair) -> None:
    app_id = pair.register()
    client = pair.client(app_id, pair.hmac_key(app_id, "h1"))
    soap = zeep.Client(pair.one.url(ENDPOINT + "?wsdl"), transport=SigningTransport(client))
    page = soap.service.listPartnerListings(page=1, pageSize=3)
    assert (page.page, page.pageSize) == (1, 3) and page.total >= len(page["items"])
    soap12 = zeep.Client(
        pair.one.url(ENDPOINT + "?wsdl"),
        transport=SigningTransport(client),
        port_name="PartnerFacadeSoap12Port",
    )
    with pytest.raises(zeep.exceptions.Fault) as fault:
        soap12.service.getPartnerListing(loanId=999999999)
    assert fault.value.detail.findtext(f".//{{{COMMON_NS}}}code") == "LOAN_NOT_FOUND"


# -- across processes ------------------------------------------------------------------------


def test_a_captured_request_replayed_to_another_worker_is_refused(pair: Pair) -> None:
    app_id = pair.register()
    client = pair.client(app_id, pair.hmac_key(app_id, "h1"))
    headers = client.signature_headers("GET", LISTINGS, "page=1", b"")
    first = requests.get(pair.one.url(LISTINGS + "?page=1"), headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    replayed = requests.get(pair.two.url(LISTINGS + "?page=1"), headers=headers, timeout=30)
    assert (replayed.status_code, code_of(replayed)) == (401, "PARTNER_NONCE_REPLAYED")
    # SOAP alike: one envelope, posted to each worker.
    envelope = soap_envelope(SOAP_ENV, "listPartnerListings")
    sign_envelope(client, envelope, pair.two.url(ENDPOINT))
    assert soap_post(pair.two, envelope).status_code == 200
    assert soap_code(soap_post(pair.one, envelope)) == "PARTNER_NONCE_REPLAYED"


def test_concurrent_copies_of_one_request_on_both_workers_pass_once(pair: Pair) -> None:
    app_id = pair.register()
    client = pair.client(app_id, pair.hmac_key(app_id, "h1"))
    headers = client.signature_headers("GET", LISTINGS, "", b"")
    servers = [pair.one, pair.two] * 4
    with ThreadPoolExecutor(len(servers)) as pool:
        answers = list(
            pool.map(lambda s: requests.get(s.url(LISTINGS), headers=headers, timeout=30), servers)
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [401] * (len(servers) - 1)
    assert {code_of(a) for a in answers if a.status_code == 401} == {"PARTNER_NONCE_REPLAYED"}


def test_the_rate_limit_holds_across_both_workers(pair: Pair) -> None:
    app_id = pair.register(rate=1, burst=4)  # one token a minute: none comes back in the test
    client_one = pair.client(app_id, pair.hmac_key(app_id, "h1"))
    client_two = pair.client(app_id, client_one.key, server=pair.two)
    clients = [client_one, client_two] * 4
    with ThreadPoolExecutor(len(clients)) as pool:
        answers = list(pool.map(lambda c: c.get(LISTINGS), clients))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 4 + [429] * 4, statuses
    limited = [a for a in answers if a.status_code == 429]
    assert {code_of(a) for a in limited} == {"PARTNER_RATE_LIMITED"}
    for a in limited:  # the SDK verified each: 429s are signed
        assert 1 <= int(a.headers["Retry-After"]) <= 60
        assert (a.headers["RateLimit-Limit"], a.headers["RateLimit-Remaining"]) == ("4", "0")
    envelope = soap_envelope(SOAP12_ENV, "listPartnerListings")
    sign_envelope(client_two, envelope, pair.two.url(ENDPOINT))
    fault = soap_post(pair.two, envelope)
    assert (fault.status_code, soap_code(fault)) == (400, "PARTNER_RATE_LIMITED")  # a Sender
    assert "Retry-After" in fault.headers


def test_keys_rotate_without_a_refused_call(pair: Pair) -> None:
    app_id = pair.register()
    old = pair.client(app_id, pair.hmac_key(app_id, "2026-11"))
    new_key, _ = pair.rsa_key(app_id, "2026-12")
    new = pair.client(app_id, new_key, server=pair.two)
    outcomes = []
    for client in (old, new, old, new):  # both active: the signers move over
        outcomes.append(client.get(LISTINGS).status_code)
    pair.admin("POST", f"/partner-apps/{app_id}/keys/2026-11/revocation", reason="rotated")
    outcomes.append(new.get(LISTINGS).status_code)
    assert outcomes == [200] * 5
    revoked = old.get(LISTINGS)
    assert (revoked.status_code, code_of(revoked)) == (401, "PARTNER_KEY_UNKNOWN")


# -- every refusal, on both protocols ---------------------------------------------------------


def _rest_refusals(pair: Pair) -> list[tuple[str, int, requests.Response, str | None]]:
    """Each refusal: its code, status, the answer and a word its message holds."""
    app_id = pair.register(scopes=("LISTING_READ",))
    key = pair.hmac_key(app_id, "h1")
    client = pair.client(app_id, key)
    other_app = pair.register(scopes=("REPORT_READ",))
    no_scope = pair.client(other_app, pair.hmac_key(other_app, "h1"))
    suspended_app = pair.register()
    suspended = pair.client(suspended_app, pair.hmac_key(suspended_app, "h1"))
    pair.admin("POST", f"/partner-apps/{suspended_app}/suspension", reason="e2e")
    pair.admin("POST", f"/partner-apps/{app_id}/keys", keyId="gone", algorithm="HMAC_SHA256")
    pair.admin("POST", f"/partner-apps/{app_id}/keys/gone/revocation", reason="e2e")

    def get(headers):
        return requests.get(pair.one.url(LISTINGS), headers=headers, timeout=30)

    def signed(**changes):
        headers = client.signature_headers("GET", LISTINGS, "", b"")
        return {**headers, **changes}

    stale = PartnerClient(pair.one.base, app_id, key, clock=lambda: 1_000_000_000)
    millis = PartnerClient(pair.one.base, app_id, key, clock=lambda: 1_796_300_000_000)
    replay = signed()
    get(replay)
    limited_app = pair.register(rate=1, burst=1)
    limited = pair.client(limited_app, pair.hmac_key(limited_app, "h1"))
    limited.get(LISTINGS)
    unsigned = requests.get(pair.one.url(LISTINGS), timeout=30)
    return [
        ("PARTNER_SIGNATURE_MISSING", 401, unsigned, None),
        ("PARTNER_SIGNATURE_MISSING", 401, get(signed(**{"X-P2P-Nonce": "short"})), "nonce"),
        ("PARTNER_APP_UNKNOWN", 401, get(signed(**{"X-P2P-App-Id": "pa" + "0" * 24})), None),
        ("PARTNER_KEY_UNKNOWN", 401, get(signed(**{"X-P2P-Key-Id": "never"})), None),
        ("PARTNER_KEY_UNKNOWN", 401, get(signed(**{"X-P2P-Key-Id": "gone"})), None),
        ("PARTNER_TIMESTAMP_STALE", 401, stale.get(LISTINGS), "behind"),
        ("PARTNER_TIMESTAMP_STALE", 401, millis.get(LISTINGS), "milliseconds"),
        ("PARTNER_SIGNATURE_INVALID", 401, get(signed(**{"X-P2P-Signature": "AAAA"})), None),
        ("PARTNER_NONCE_REPLAYED", 401, get(replay), None),
        ("PARTNER_APP_SUSPENDED", 403, suspended.get(LISTINGS), None),
        ("PARTNER_SCOPE_MISSING", 403, no_scope.get(LISTINGS), "LISTING_READ"),
        ("PARTNER_RATE_LIMITED", 429, limited.get(LISTINGS), None),
    ]


def test_every_refusal_has_its_code_over_rest(pair: Pair, checks) -> None:
    refusals = _rest_refusals(pair)
    for code, status, answer, mentions in refusals:
        checks.error(answer, status, code, mentions=mentions)
        # Signed from the app's proof on: never before it, where no key is proven.
        proven = code in ("PARTNER_NONCE_REPLAYED", "PARTNER_APP_SUSPENDED")
        proven |= code in ("PARTNER_SCOPE_MISSING", "PARTNER_RATE_LIMITED")
        assert ("X-P2P-Signature" in answer.headers) == proven, code
    assert len({code for code, *_ in refusals}) == 9


def test_a_member_token_does_not_call_a_partner_operation(pair: Pair, checks) -> None:
    answer = requests.get(
        pair.one.url(LISTINGS),
        headers={"Authorization": f"Bearer {pair.operator_token}"},
        timeout=30,
    )
    checks.error(answer, 401, "PARTNER_SIGNATURE_MISSING")


@pytest.mark.parametrize("env", [SOAP_ENV, SOAP12_ENV], ids=["soap11", "soap12"])
def test_every_refusal_has_its_code_over_soap(pair: Pair, env, checks) -> None:
    app_id = pair.register()
    key = pair.hmac_key(app_id, "h1")
    client = pair.client(app_id, key)
    other_app = pair.register(scopes=("REPORT_READ",))
    no_scope = pair.client(other_app, pair.hmac_key(other_app, "h1"))
    suspended_app = pair.register()
    suspended = pair.client(suspended_app, pair.hmac_key(suspended_app, "h1"))
    pair.admin("POST", f"/partner-apps/{suspended_app}/suspension", reason="e2e")
    limited_app = pair.register(rate=1, burst=1)
    limited = pair.client(limited_app, pair.hmac_key(limited_app, "h1"))
    stale = PartnerClient(pair.one.base, app_id, key, clock=lambda: 1_000_000_000)

    def call(signer, **changes) -> requests.Response:
        envelope = soap_envelope(env, "listPartnerListings")
        if signer is not None:
            sign_envelope(signer, envelope, pair.one.url(ENDPOINT))
            block = envelope.find(f".//{{{COMMON_NS}}}PartnerSignature")
            for name, value in changes.items():
                block.find(f"{{{COMMON_NS}}}{name}").text = value
        return soap_post(pair.one, envelope)

    envelope = soap_envelope(env, "listPartnerListings")
    sign_envelope(client, envelope, pair.one.url(ENDPOINT))
    assert soap_post(pair.one, envelope).status_code == 200
    limited_first = call(limited)
    assert limited_first.status_code == 200
    cases = [
        ("PARTNER_SIGNATURE_MISSING", call(None)),
        ("PARTNER_APP_UNKNOWN", call(client, appId="pa" + "0" * 24)),
        ("PARTNER_KEY_UNKNOWN", call(client, keyId="never")),
        ("PARTNER_TIMESTAMP_STALE", call(stale)),
        ("PARTNER_SIGNATURE_INVALID", call(client, signature="AAAA")),
        ("PARTNER_NONCE_REPLAYED", soap_post(pair.one, envelope)),
        ("PARTNER_APP_SUSPENDED", call(suspended)),
        ("PARTNER_SCOPE_MISSING", call(no_scope)),
        ("PARTNER_RATE_LIMITED", call(limited)),
    ]
    for code, answer in cases:
        fault = checks.fault(answer)
        assert fault.code == code, (code, answer.text)
        assert fault.kind in ("Client", "Sender"), code


# -- an independent signer ---------------------------------------------------------------------


def test_a_signature_made_by_openssl_is_accepted(pair: Pair, tmp_path: Path) -> None:
    app_id = pair.register()
    key, pem = pair.rsa_key(app_id, "r-openssl")
    key_file = tmp_path / "partner.pem"
    key_file.write_bytes(pem)
    client = pair.client(app_id, key)
    headers = client.signature_headers("GET", LISTINGS, "pageSize=2&page=1", b"")
    text = sdk_canonical.request(
        "GET",
        LISTINGS,
        "pageSize=2&page=1",
        app_id,
        "r-openssl",
        headers["X-P2P-Timestamp"],
        headers["X-P2P-Nonce"],
        sdk_canonical.sha256_hex(b""),
    )
    raw = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key_file)],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    headers["X-P2P-Signature"] = base64.b64encode(raw).decode()
    answer = requests.get(
        pair.one.url(LISTINGS + "?pageSize=2&page=1"), headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    client.verify_answer(answer, headers["X-P2P-Nonce"])
