"""Every unexpected exception is logged with its traceback, counted in p2p_exceptions_total and
reported once, wherever it is raised: in a service (inside the dispatcher), while a result is
rendered, or at the WSGI layer around the endpoints; and the caller gets INTERNAL_ERROR in
its protocol's form, with the request id of the log line."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from werkzeug.test import Client
from werkzeug.wrappers import Response

from conf import load_settings
from dao import migrate
from facade.p2p.loan import NS as LOAN_NS
from facade.types import COMMON_NS
from server import pages
from server.app import Application, create_platform
from server.soap import SOAP11, SOAP12, SoapEndpoint, SoapVersion
from service.p2p import LoanService


class Recording:
    """An ErrorReporter that keeps what it is given."""

    def __init__(self) -> None:
        self.reports: list[tuple[BaseException, dict]] = []

    def report(self, exc: BaseException, tags) -> None:
        self.reports.append((exc, dict(tags)))


class Unrenderable:
    """A service result that fails as it is rendered, whichever field is read first."""

    def __getattr__(self, name: str):
        raise RuntimeError(f"cannot render {name}")


def unrenderable(method):
    """`method` (its signature kept, as the registry checks it) returning an Unrenderable."""

    @functools.wraps(method)
    def returns_unrenderable(*args, **kwargs):
        return Unrenderable()

    return returns_unrenderable


def boom(*args, **kwargs):
    raise RuntimeError("boom")


def failing_body():
    yield b"half a page"
    raise RuntimeError("the body failed")


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator:
    """Factory: an Application with a Recording reporter; services are bound when it is
    made, so patch them before."""
    platforms = []

    def make() -> Application:
        settings = load_settings({"P2P_ENV": "test"}, {"database.url": f"sqlite:///{tmp_path}/p"})
        migrate.upgrade(settings.database.url)
        platforms.append(create_platform(settings))
        return Application(platforms[-1], Recording())

    yield make
    for platform in platforms:
        platform.close()


def soap_call(client: Client, operation: str, inner: str = "", version: SoapVersion = SOAP11):
    body = (
        f'<s:Envelope xmlns:s="{version.namespace}"><s:Body><l:{operation} xmlns:l="{LOAN_NS}">'
        f"{inner}</l:{operation}></s:Body></s:Envelope>"
    )
    return client.post("/services/LoanFacade", data=body, content_type=version.content_type)


def answered_id(response) -> str:
    """The request id of an INTERNAL_ERROR answer, checked the same in header and body."""
    assert response.status_code == 500, response.data
    rid = response.headers["X-Request-Id"]
    if response.mimetype == "application/json":
        body = json.loads(response.data)
        assert (body["code"], body["requestId"]) == ("INTERNAL_ERROR", rid)
    else:
        assert response.mimetype in ("text/xml", "application/soap+xml"), response.data
        detail = etree.fromstring(response.data).find(f".//{{{COMMON_NS}}}BusinessFault")
        assert detail.findtext(f"{{{COMMON_NS}}}code") == "INTERNAL_ERROR"
        assert detail.findtext(f"{{{COMMON_NS}}}requestId") == rid
    return rid


def test_each_unexpected_exception_is_counted_logged_and_reported_once(
    make_app, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(LoanService, "get_loan", lambda self, loan_id: boom())
    monkeypatch.setattr(LoanService, "list_loans", unrenderable(LoanService.list_loans))
    app = make_app()
    caplog.set_level(logging.INFO)
    client = Client(app)
    answers = []

    # Raised by a service, inside the dispatcher.
    answers.append(("rest", client.get("/api/v1/loans/7")))
    answers.append(("soap", soap_call(client, "getLoan", "<l:loanId>7</l:loanId>")))
    answers.append(("soap12", soap_call(client, "getLoan", "<l:loanId>7</l:loanId>", SOAP12)))

    # Raised while the result is rendered.
    answers.append(("rest", client.get("/api/v1/loans")))
    answers.append(("soap", soap_call(client, "listLoans")))
    answers.append(("soap12", soap_call(client, "listLoans", version=SOAP12)))

    # Raised at the WSGI layer, outside every endpoint's dispatcher.
    monkeypatch.setattr(pages, "health", boom)
    answers.append(("-", client.get("/health")))
    monkeypatch.setattr(SoapEndpoint, "wsdl", boom)
    answers.append(("soap", client.get("/services/LoanFacade?wsdl")))
    monkeypatch.setattr(SoapEndpoint, "__call__", boom)
    answers.append(("soap12", soap_call(client, "getLoan", version=SOAP12)))
    monkeypatch.setattr(pages, "service_list", lambda facades: Response(failing_body()))
    answers.append(("-", client.get("/services")))

    ids = [answered_id(response) for _, response in answers]
    soap12 = [response.mimetype for protocol, response in answers if protocol == "soap12"]
    assert soap12 == ["application/soap+xml"] * 3
    assert len(set(ids)) == len(ids)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == len(answers)
    for rid, record in zip(ids, tracebacks, strict=True):
        assert rid in record.getMessage()
    counted = app.platform.metrics.registry.get_sample_value(
        "p2p_exceptions_total", {"type": "builtins.RuntimeError"}
    )
    assert counted == len(tracebacks)
    reports = app.reporter.reports
    assert [(tags["request_id"], tags["protocol"]) for _, tags in reports] == [
        (rid, protocol) for rid, (protocol, _) in zip(ids, answers, strict=True)
    ]
    assert all(isinstance(exc, RuntimeError) for exc, _ in reports)


def test_the_access_log_and_the_answer_share_the_request_id(make_app, monkeypatch, caplog):
    monkeypatch.setattr(LoanService, "list_loans", unrenderable(LoanService.list_loans))
    client = Client(make_app())
    caplog.set_level(logging.INFO, logger="server.access")
    rid = answered_id(client.get("/api/v1/loans"))
    [line] = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert line.startswith(rid + " ")
