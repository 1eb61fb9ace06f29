"""REST calls through the whole app (werkzeug test client, SQLite file): the same error
catalogue, validation and authorisation as SOAP."""

from __future__ import annotations

import json
import logging
import re

import pytest

from service.errors import LOAN_NOT_FOUND
from service.p2p import LoanService

SECRET = "OperationalError: SELECT * FROM loan /srv/p2p/dao/p2p.py"


def json_of(response) -> dict:
    assert response.mimetype == "application/json"
    return json.loads(response.data)


def test_unexpected_exception_is_internal_error_with_request_id(
    make_client, monkeypatch, caplog
) -> None:
    def get_loan(self, loan_id: int):
        raise RuntimeError(SECRET)

    monkeypatch.setattr(LoanService, "get_loan", get_loan)
    client = make_client()
    response = client.get("/api/v1/loans/7", headers={"X-Request-Id": "req-42"})
    assert response.status_code == 500
    body = json_of(response)
    assert body["code"] == "INTERNAL_ERROR"
    assert body["requestId"] == "req-42"
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "SELECT" not in text and "/srv/" not in text
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(logged) == 1
    assert "req-42" in logged[0].getMessage()
    assert "Traceback" in caplog.text


def test_malformed_json_bodies(client) -> None:
    for body in (b'{"mobile": "1", "mobile": "2"}', b'{"a": NaN}', b"[" * 50_000):
        response = client.post("/api/v1/members", data=body, content_type="application/json")
        assert response.status_code == 400, body[:20]
        assert json_of(response)["code"] == "MALFORMED_REQUEST"


def test_unknown_field_named_over_rest(client) -> None:
    body = {
        "mobile": "13800000001",
        "password": "secret123",
        "role": "INVESTOR",
        "verificationCode": "123456",
        "x": 1,
    }
    response = client.post("/api/v1/members", json=body)
    assert response.status_code == 400
    assert json_of(response) | {"requestId": "-"} == {
        "code": "VALIDATION_FAILED",
        "message": "A field is missing or invalid; correct it and send the request again.",
        "requestId": "-",
        "detail": "x: is not a known field",
    }
    assert response.headers["Content-Language"] == "en"  # the default


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        (None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en;q=0.5, zh-Hans-CN", "zh"),
        ("en-US;q=0.3, zh;q=0.2", "en"),
        ("fr, zh;q=0.1", "zh"),
        ("zh;q=0, *", "en"),
        ("fr", "en"),
    ],
)
def test_rest_errors_are_told_in_the_language_asked_for(client, accept_language, language):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = client.get("/api/v1/loans/999999", headers=headers)
    assert response.status_code == 404
    body = json_of(response)
    assert body["message"] == LOAN_NOT_FOUND.text(language)
    assert body["detail"] == "listing 999999 does not exist"  # the detail stays English
    assert response.headers["Content-Language"] == language
    ok = client.get("/api/v1/loans", headers=headers)
    assert ok.status_code == 200 and ok.headers["Content-Language"] == language


def test_soap_faults_are_told_in_the_language_asked_for(client) -> None:
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<p:getLoan xmlns:p="http://p2p.hry.com/facade/p2p"><p:loanId>999999</p:loanId>'
        "</p:getLoan></soap:Body></soap:Envelope>"
    )
    response = client.post(
        "/services/LoanFacade",
        data=envelope,
        content_type="text/xml; charset=utf-8",
        headers={"Accept-Language": "zh-CN"},
    )
    assert response.status_code == 500
    assert response.headers["Content-Language"] == "zh"
    text = response.get_data(as_text=True)
    assert f"<faultstring>{LOAN_NOT_FOUND.zh}</faultstring>" in text
    assert "listing 999999 does not exist" in text


def test_member_session_and_roles_over_rest(client, caplog) -> None:
    caplog.set_level(logging.INFO)
    credentials = {"mobile": "13800000001", "password": "secret123"}
    sent = client.post(
        "/api/v1/verification-codes", json={"mobile": credentials["mobile"], "purpose": "REGISTER"}
    )
    assert sent.status_code == 201, sent.data
    # The member's phone: the sandbox sender of the app's platform.
    sender = client.application.platform.components["verification"].sender
    code = sender.last_code(credentials["mobile"], "REGISTER")
    assert code is not None
    assert code not in sent.get_data(as_text=True)
    registration = {**credentials, "role": "INVESTOR", "verificationCode": code}
    response = client.post("/api/v1/members", json=registration)
    assert response.status_code == 201, response.data
    assert json_of(response)["mobile"] == "138****0001"
    assert "secret123" not in caplog.text
    assert not re.search(rf"\b{code}\b", caplog.text), "the verification code was logged"

    response = client.post("/api/v1/sessions", json=credentials)
    assert response.status_code == 201
    token = json_of(response)["token"]
    auth = {"Authorization": f"Bearer {token}"}

    loan = {
        "title": "t",
        "description": "d",
        "borrowerId": 1,
        "amount": "1000.00",
        "annualRate": "10",
        "termMonths": 6,
        "repaymentMethod": "BULLET",
        "minInvest": "100.00",
        "raiseDays": 5,
    }
    anonymous = client.post("/api/v1/loans", json=loan)
    assert (anonymous.status_code, json_of(anonymous)["code"]) == (401, "UNAUTHENTICATED")
    investor = client.post("/api/v1/loans", json=loan, headers=auth)
    assert (investor.status_code, json_of(investor)["code"]) == (403, "FORBIDDEN")

    assert client.delete("/api/v1/sessions/current", headers=auth).status_code == 204
    again = client.delete("/api/v1/sessions/current", headers=auth)
    assert (again.status_code, json_of(again)["code"]) == (401, "UNAUTHENTICATED")
