"""Unexpected errors reach Sentry, scrubbed and tagged; business errors never do.

No mock of the SDK: the app runs with a DSN pointing at a small HTTP server in this test that
accepts Sentry's envelope endpoint (POST /api/<project>/envelope/), so what is checked is
exactly what the SDK put on the wire, decompressed.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sentry_sdk
from lxml import etree
from werkzeug.test import Client

from conf import load_settings
from dao import migrate
from facade.p2p.loan import NS as LOAN_NS
from facade.types import COMMON_NS
from server.app import Application, create_app
from server.sentry import NullReporter, SentryReporter
from server.soap import ENV, WSSE
from service.p2p import LoanService

# Personal data the failing call carries (the member's login and password, the token) and
# puts in its exception (with an ID number and a bank card number).
MOBILE = "13912345678"
PASSWORD = "Pa55wordXyz9"
CARD = "6222020200112233445"
ID_NUMBER = "11010519491231002X"
RELEASE = "p2p-platform@test-1"
MISSING_LOAN = 424242  # looked up for real: the business error LOAN_NOT_FOUND


class EnvelopeEndpoint:
    """Sentry's ingestion endpoint on a free loopback port: keeps every envelope it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []  # (path, decompressed body)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = decompress(body, self.headers.get("Content-Encoding", ""))
                with endpoint._lock:
                    endpoint.received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self._server.server_address[1]}/1"

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(body for _, body in self.received)

    def events(self) -> list[dict]:
        """The event items of every envelope received (not sessions or client reports)."""
        with self._lock:
            received = list(self.received)
        events = []
        for path, body in received:
            assert path == "/api/1/envelope/", path
            header, items = parse_envelope(body)
            assert header.get("dsn", self.dsn) == self.dsn
            events += [json.loads(p) for h, p in items if h.get("type") == "event"]
        return events

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        brotli = pytest.importorskip("brotli")
        return brotli.decompress(body)
    assert encoding in ("", "identity"), encoding
    return body


def parse_envelope(body: bytes) -> tuple[dict, list[tuple[dict, bytes]]]:
    """Sentry's envelope: a JSON header line, then items (a JSON header line and a payload of
    the header's ``length`` in bytes, or up to the next newline when it has none)."""
    line, _, rest = body.partition(b"\n")
    header = json.loads(line)
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        item = json.loads(line)
        if "length" in item:
            payload, rest = rest[: item["length"]], rest[item["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item, payload))
    return header, items


def reset_sentry() -> None:
    """Close the SDK's client and unbind it, so nothing leaks into the next test."""
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def endpoint() -> Iterator[EnvelopeEndpoint]:
    served = EnvelopeEndpoint()
    yield served
    served.close()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Application]]:
    """Factory: create_app with the given sentry.dsn over a migrated SQLite file."""
    assert not sentry_sdk.get_client().is_active(), "the SDK leaked in from another test"
    apps: list[Application] = []

    def factory(dsn: str) -> Application:
        settings = load_settings(
            {"P2P_ENV": "test"},
            {
                "database.url": f"sqlite:///{tmp_path / 'p2p.db'}",
                "sentry.dsn": dsn,
                "sentry.environment": "integration",
                "sentry.release": RELEASE,
            },
        )
        migrate.upgrade(settings.database.url)
        apps.append(create_app(settings))
        return apps[-1]

    try:
        yield factory
    finally:
        reset_sentry()
        for app in apps:
            app.platform.close()
    assert not sentry_sdk.get_client().is_active()


def failing_get_loan(secrets: dict[str, str]):
    """LoanService.get_loan replaced by one that fails unexpectedly, its exception's text and
    its frames' variables full of personal data. MISSING_LOAN is still looked up for real."""
    real_get_loan = LoanService.get_loan

    def load(loan_id: int, **credentials: str):
        card = CARD  # a local variable: frames' variables are never sent
        raise RuntimeError(
            f"cannot load listing {loan_id} for member {MOBILE}, card {card}, "
            f"id {ID_NUMBER}, credentials {credentials}"
        ) from KeyError(f"id_number={ID_NUMBER} mobile={MOBILE}")

    def get_loan(self, loan_id: int):
        if loan_id == MISSING_LOAN:
            return real_get_loan(self, loan_id)
        return load(loan_id, password=PASSWORD, **secrets)

    return get_loan


def register_and_login(client: Client) -> str:
    """Sign up as a member does (a REGISTER code, read from the app's sandbox SMS sender),
    then log in; the token."""
    response = client.post(
        "/api/v1/verification-codes", json={"mobile": MOBILE, "purpose": "REGISTER"}
    )
    assert response.status_code == 201, response.data
    code = client.application.platform.components["verification"].sender.last_code(
        MOBILE, "REGISTER"
    )
    credentials = {"mobile": MOBILE, "password": PASSWORD}
    registration = {**credentials, "role": "INVESTOR", "verificationCode": code}
    response = client.post("/api/v1/members", json=registration)
    assert response.status_code == 201, response.data
    response = client.post("/api/v1/sessions", json=credentials)
    assert response.status_code == 201, response.data
    return response.get_json()["token"]


def soap_get_loan(client: Client, loan_id: int, request_id: str, ws_security: bool = True):
    header = (
        f'<s:Header><w:Security xmlns:w="{WSSE}"><w:UsernameToken>'
        f"<w:Username>{MOBILE}</w:Username><w:Password>{PASSWORD}</w:Password>"
        f"</w:UsernameToken></w:Security></s:Header>"
        if ws_security
        else ""
    )
    body = (
        f'<s:Envelope xmlns:s="{ENV}">{header}<s:Body><l:getLoan xmlns:l="{LOAN_NS}">'
        f"<l:loanId>{loan_id}</l:loanId></l:getLoan></s:Body></s:Envelope>"
    )
    return client.post(
        "/services/LoanFacade",
        data=body.encode(),
        content_type="text/xml; charset=utf-8",
        headers={"X-Request-Id": request_id},
    )


def soap_fault_code(response) -> str:
    root = etree.fromstring(response.data)
    return root.findtext(f".//{{{COMMON_NS}}}BusinessFault/{{{COMMON_NS}}}code")


def test_unexpected_errors_are_sent_once_tagged_and_scrubbed_on_both_protocols(
    endpoint, make_app, monkeypatch
) -> None:
    secrets: dict[str, str] = {}  # the token, once logged in
    monkeypatch.setattr(LoanService, "get_loan", failing_get_loan(secrets))
    app = make_app(endpoint.dsn)
    assert isinstance(app.reporter, SentryReporter)
    sdk = sentry_sdk.get_client()
    assert sdk.is_active() and sdk.dsn == endpoint.dsn
    assert not sdk.should_send_default_pii()
    assert sdk.options["include_local_variables"] is False
    assert set(sdk.integrations) == {"atexit", "dedupe", "modules"}

    client = Client(app)
    token = secrets["token"] = register_and_login(client)

    # REST: the request id is the server's own.
    response = client.get("/api/v1/loans/7", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == "INTERNAL_ERROR"
    assert body["requestId"] == response.headers["X-Request-Id"]
    rest_id = response.headers["X-Request-Id"]
    assert sentry_sdk.flush(timeout=10) is not False
    [rest_event] = endpoint.events()

    # SOAP: the caller's request id, WS-Security credentials in the header.
    response = soap_get_loan(client, 8, request_id="soap-call-1")
    assert response.status_code == 500
    assert soap_fault_code(response) == "INTERNAL_ERROR"
    assert response.headers["X-Request-Id"] == "soap-call-1"
    sentry_sdk.flush(timeout=10)
    events = endpoint.events()
    assert len(events) == 2, events
    soap_event = events[1]

    for event, protocol, rid, loan_id in (
        (rest_event, "rest", rest_id, 7),
        (soap_event, "soap", "soap-call-1", 8),
    ):
        assert event["tags"] == {
            "request_id": rid,
            "facade": "LoanFacade",
            "operation": "getLoan",
            "protocol": protocol,
        }
        assert event["transaction"] == "LoanFacade.getLoan"
        assert event["environment"] == "integration" and event["release"] == RELEASE
        values = event["exception"]["values"]
        assert [v["type"] for v in values] == ["KeyError", "RuntimeError"]
        message = values[-1]["value"]
        assert message.startswith(f"cannot load listing {loan_id} for member [Filtered]")
        assert "'password': [Filtered]" in message
        frames = [f for v in values for f in v.get("stacktrace", {}).get("frames", [])]
        assert frames and not any("vars" in f for f in frames)
        assert "request" not in event and not event.get("breadcrumbs", {}).get("values")
        assert not any(k in event.get("extra", {}) for k in ("sys.argv", "argv"))

    raw = endpoint.raw()
    assert b"cannot load listing" in raw  # decompressed: the search below can find text
    for personal in (MOBILE, PASSWORD, CARD, ID_NUMBER, token):
        assert personal.encode() not in raw, personal


def test_business_errors_send_nothing(endpoint, make_app, monkeypatch) -> None:
    monkeypatch.setattr(LoanService, "get_loan", failing_get_loan({}))
    client = Client(make_app(endpoint.dsn))

    response = client.get(f"/api/v1/loans/{MISSING_LOAN}")
    assert response.status_code == 404
    assert response.get_json()["code"] == "LOAN_NOT_FOUND"
    response = soap_get_loan(client, MISSING_LOAN, request_id="soap-missing", ws_security=False)
    assert soap_fault_code(response) == "LOAN_NOT_FOUND"
    response = client.get("/api/v1/accounts/me")
    assert response.get_json()["code"] == "UNAUTHENTICATED"
    sentry_sdk.flush(timeout=10)
    assert endpoint.events() == []

    # The pipe works in this very test: an unexpected error after them is the only event.
    response = client.get("/api/v1/loans/1", headers={"X-Request-Id": "after-business"})
    assert response.status_code == 500
    sentry_sdk.flush(timeout=10)
    assert [e["tags"]["request_id"] for e in endpoint.events()] == ["after-business"]


def test_without_a_dsn_the_sdk_is_never_initialised(
    endpoint, make_app, monkeypatch, caplog
) -> None:
    # The SDK would read SENTRY_DSN if the platform ever called init without its own setting.
    monkeypatch.setenv("SENTRY_DSN", endpoint.dsn)
    monkeypatch.setattr(LoanService, "get_loan", failing_get_loan({}))
    app = make_app("")
    assert isinstance(app.reporter, NullReporter)
    assert not sentry_sdk.get_client().is_active()

    response = Client(app).get("/api/v1/loans/1", headers={"X-Request-Id": "no-dsn"})
    assert response.status_code == 500
    body = response.get_json()
    assert (body["code"], body["requestId"]) == ("INTERNAL_ERROR", "no-dsn")
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)
    sentry_sdk.flush(timeout=2)
    assert not sentry_sdk.get_client().is_active()
    assert endpoint.received == []
