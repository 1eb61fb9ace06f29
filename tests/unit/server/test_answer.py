"""A call's Answer on the wire: the status line, the headers the platform names and the
body's length, no body for HEAD, neither body nor length for 204; alone and through the app."""

from __future__ import annotations

from server.answer import Answer
from service.member import MemberService

NS = "http://p2p.hry.com/facade/p2p"


def _sent(answer: Answer, method: str = "GET") -> tuple[str, list, bytes]:
    started = []
    body = b"".join(answer({"REQUEST_METHOD": method}, lambda *a: started.append(a)))
    ((status, headers),) = started
    return status, headers, body


def test_an_answer_sends_its_status_headers_length_and_body() -> None:
    answer = Answer(b'{"a":"1.00"}', 201, {"Content-Type": "application/json", "X-A": "x"})
    assert _sent(answer) == (
        "201 CREATED",
        [("Content-Type", "application/json"), ("X-A", "x"), ("Content-Length", "12")],
        b'{"a":"1.00"}',
    )
    status, headers, body = _sent(answer, "HEAD")
    assert (status, body) == ("201 CREATED", b"")
    assert ("Content-Length", "12") in headers  # the length a GET's body has
    assert answer.get_data() == b'{"a":"1.00"}'


def test_a_204_has_neither_body_nor_length() -> None:
    assert _sent(Answer(b"", 204, {"X-Request-Id": "r"})) == (
        "204 NO CONTENT",
        [("X-Request-Id", "r")],
        b"",
    )


def test_the_app_answers_get_head_soap_and_204(client) -> None:
    listing = client.get("/api/v1/loans", headers={"X-Request-Id": "req-1"})
    assert listing.status_code == 200
    assert listing.headers["Content-Type"] == "application/json"
    assert listing.headers["X-Request-Id"] == "req-1"
    assert listing.headers["Content-Length"] == str(len(listing.data))
    head = client.head("/api/v1/loans")
    assert (head.status_code, head.data) == (200, b"")
    assert head.headers["Content-Length"] == listing.headers["Content-Length"]

    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        f' xmlns:p="{NS}"><soapenv:Body><p:listLoans/></soapenv:Body></soapenv:Envelope>'
    )
    soap = client.post(
        "/services/LoanFacade",
        data=envelope,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
    )
    assert soap.status_code == 200, soap.data
    assert soap.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert soap.headers["Content-Length"] == str(len(soap.data))
    assert b"listLoansResponse" in soap.data

    members = client.application.platform.service(MemberService)
    members.create_operator("13800000009", "Operator2024pass")
    login = {"mobile": "13800000009", "password": "Operator2024pass"}
    token = client.post("/api/v1/sessions", json=login).json["token"]
    session = client.post("/api/v1/sessions", json=login)
    assert session.status_code == 201
    assert session.headers["Cache-Control"] == "no-store"  # it carries a token
    logout = client.delete("/api/v1/sessions/current", headers={"Authorization": f"Bearer {token}"})
    assert (logout.status_code, logout.data) == (204, b"")
    assert "Content-Length" not in logout.headers
