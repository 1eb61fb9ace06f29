"""A result that cannot be written is an error of the call on both protocols: a SOAP Fault or
a JSON error with the call's request id, logged once with its traceback, counted, reported,
and access-logged with its real outcome (never the WSGI catch-all's HTTP 500)."""

from __future__ import annotations

import logging

import pytest
from lxml import etree
from werkzeug.test import Client

from facade.p2p.loan import NS as LOAN_NS
from facade.types import COMMON_NS
from server.app import Application
from server.soap import SOAP11, SOAP12
from service.p2p import LoanService

SOAP = {"soap": SOAP11, "soap12": SOAP12}


def get_loan(ns: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{ns}"><s:Body><l:getLoan xmlns:l="{LOAN_NS}">'
        "<l:loanId>7</l:loanId></l:getLoan></s:Body></s:Envelope>"
    ).encode()


class Reports:
    def __init__(self):
        self.reports: list[tuple[BaseException, dict]] = []

    def report(self, exc: BaseException, tags) -> None:
        self.reports.append((exc, dict(tags)))


def soap_code(response) -> tuple[str, str]:
    detail = etree.fromstring(response.data).find(f".//{{{COMMON_NS}}}BusinessFault")
    return detail.findtext(f"{{{COMMON_NS}}}code"), detail.findtext(f"{{{COMMON_NS}}}requestId")


def call(client: Client, protocol: str, rid: str):
    if protocol in SOAP:
        version = SOAP[protocol]
        response = client.post(
            "/services/LoanFacade",
            data=get_loan(version.namespace),
            content_type=version.content_type,
            headers={"X-Request-Id": rid},
        )
        assert response.headers["Content-Type"] == version.content_type
        assert etree.fromstring(response.data).tag == version.qname("Envelope")
        return response, soap_code(response)
    response = client.get("/api/v1/loans/7", headers={"X-Request-Id": rid})
    assert response.headers["Content-Type"] == "application/json"
    return response, (response.json["code"], response.json["requestId"])


@pytest.mark.parametrize("protocol", ["soap", "soap12", "rest"])
def test_a_result_that_cannot_be_written_is_an_internal_error_of_the_call(
    make_client, monkeypatch, caplog, protocol: str
) -> None:
    # The service answers with something no codec can write (a text writer that fails on a
    # character would do the same, but the writers are total: this failure cannot be fixed).
    monkeypatch.setattr(LoanService, "get_loan", lambda self, loan_id: object())
    platform = make_client().application.platform
    reports = Reports()
    client = Client(Application(platform, reports))
    caplog.set_level(logging.INFO)

    response, (code, rid) = call(client, protocol, "render-1")

    assert response.status_code == 500
    assert (code, rid) == ("INTERNAL_ERROR", "render-1")
    assert response.headers["X-Request-Id"] == "render-1"
    assert "AttributeError" not in response.get_data(as_text=True)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].exc_info[0] is AttributeError
    assert "render-1" in errors[0].getMessage()
    assert [(type(e), tags["request_id"], tags["protocol"]) for e, tags in reports.reports] == [
        (AttributeError, "render-1", protocol)
    ]
    access = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert len(access) == 1
    assert access[0].startswith(f"render-1 {protocol} LoanFacade.getLoan INTERNAL_ERROR ")
    samples = platform.metrics.registry.get_sample_value
    assert samples("p2p_exceptions_total", {"type": "builtins.AttributeError"}) == 1
    labels = {"facade": "LoanFacade", "operation": "getLoan", "protocol": protocol}
    assert samples("p2p_requests_total", {**labels, "outcome": "INTERNAL_ERROR"}) == 1
