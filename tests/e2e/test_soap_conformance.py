"""SOAP 1.1 conformance against the real server: SOAP's own faultcodes, the Envelope's shape,
structured answers to every method on /services/<x>, WSDL schemas a strict compiler accepts,
the soap:address without a Host, and request content that never reaches the log."""

import socket
import uuid
from pathlib import Path

import pytest
import requests
from lxml import etree

from tests.xsd import strict_schemas

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
COMMON_NS = "http://p2p.hry.com/facade/common"
LOAN_NS = "http://p2p.hry.com/facade/p2p"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XML = "text/xml; charset=utf-8"
#: Every facade the server publishes, as the committed contracts list them.
FACADES = sorted(p.stem for p in (ROOT / "wsdl").glob("*.wsdl"))

BODY = f'<s:Body><p:getLoan xmlns:p="{LOAN_NS}"><p:loanId>1</p:loanId></p:getLoan></s:Body>'


def envelope(inside: str, ns: str = ENV) -> bytes:
    return f'<?xml version="1.0"?><s:Envelope xmlns:s="{ns}">{inside}</s:Envelope>'.encode()


def header(must_understand: str) -> str:
    return (
        f'<s:Header><x:Transaction xmlns:x="urn:example:tx" s:mustUnderstand="{must_understand}">'
        "42</x:Transaction></s:Header>"
    )


@pytest.mark.parametrize(
    ("body", "faultcode", "code", "mentions"),
    [
        (envelope(header("1") + BODY), "soap:MustUnderstand", "MUST_UNDERSTAND", "Transaction"),
        (envelope(header("true") + BODY), "soap:MustUnderstand", "MUST_UNDERSTAND", "Transaction"),
        (envelope(BODY, ENV12), "soap:VersionMismatch", "VERSION_MISMATCH", "1.2"),
        (envelope(BODY + BODY), "soap:Client", "MALFORMED_REQUEST", "one Body"),
        (envelope("<s:Header/><s:Header/>" + BODY), "soap:Client", "MALFORMED_REQUEST", "Header"),
        (envelope(BODY + "<s:Header/>"), "soap:Client", "MALFORMED_REQUEST", "Header"),
        (envelope(BODY + '<x:t xmlns:x="urn:x"/>'), "soap:Client", "MALFORMED_REQUEST", "only"),
        (envelope("text" + BODY), "soap:Client", "MALFORMED_REQUEST", "text"),
    ],
    ids=[
        "must-understand-1",
        "must-understand-true",
        "soap-1.2-envelope",
        "second-body",
        "second-header",
        "header-after-body",
        "element-after-body",
        "text-in-envelope",
    ],
)
def test_envelope_refusals(soap, checks, body, faultcode, code, mentions):
    r = soap.post("LoanFacade", body, XML, headers={"X-Request-Id": "conf-1"})
    assert r.status_code == 500, r.text[:300]
    fault = checks.fault(r)
    assert (fault.faultcode, fault.code, fault.request_id) == (faultcode, code, "conf-1")
    assert r.headers["X-Request-Id"] == "conf-1"
    assert mentions in fault.message


def test_a_soap_1_1_envelope_sent_as_soap_1_2_is_a_version_mismatch_in_soap_1_1(soap, checks):
    r = soap.post("LoanFacade", envelope(BODY), "application/soap+xml; charset=utf-8")
    assert r.status_code == 500
    fault = checks.fault(r)
    assert (fault.faultcode, fault.code) == ("soap:VersionMismatch", "VERSION_MISMATCH")


@pytest.mark.parametrize(
    ("method", "path", "status", "allow", "code"),
    [
        ("GET", "/services/LoanFacade", 405, "POST", "METHOD_NOT_ALLOWED"),
        ("PUT", "/services/LoanFacade", 405, "POST", "METHOD_NOT_ALLOWED"),
        ("DELETE", "/services/LoanFacade?wsdl", 405, "GET, HEAD, POST", "METHOD_NOT_ALLOWED"),
        ("GET", "/services/NoSuchFacade?wsdl", 404, None, "UNKNOWN_OPERATION"),
        ("POST", "/services/NoSuchFacade", 500, None, "UNKNOWN_OPERATION"),
    ],
)
def test_every_answer_on_a_service_path_is_a_fault(
    server, checks, method, path, status, allow, code
):
    data, headers = (envelope(BODY), {"Content-Type": XML}) if method == "POST" else (None, {})
    r = requests.request(
        method, server.url(path), data=data, headers={"X-Request-Id": "m-2", **headers}, timeout=10
    )
    assert r.status_code == status
    assert r.headers.get("Allow") == allow
    assert r.headers["X-Request-Id"] == "m-2"
    fault = checks.fault(r)
    assert (fault.code, fault.request_id) == (code, "m-2")


@pytest.mark.parametrize("path", ["/services/LoanFacade?wsdl", "/services/NoSuchFacade?wsdl"])
def test_head_of_a_wsdl_is_answered_as_get_without_a_body(server, path):
    get = requests.get(server.url(path), headers={"X-Request-Id": "h-1"}, timeout=10)
    head = requests.head(server.url(path), headers={"X-Request-Id": "h-1"}, timeout=10)
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["X-Request-Id"] == "h-1"


# -- the WSDLs' schemas ------------------------------------------------------------------

#: One call per facade that an onboarded investor (an operator, for an operators' facade)
#: may make, with its response element.
CALLS = {
    "AccountFacade": "getAccount",
    "FundFacade": "hasFundAccount",
    "LoanFacade": "listLoans",
    "MemberFacade": "getProfile",
    "MessageFacade": "getUnreadCount",
    "PaymentFacade": "listOrders",
    "ReconciliationFacade": "listRuns",
}
#: Facades only operators call.
OPERATORS_ONLY = frozenset({"ReconciliationFacade"})


def test_every_facade_has_a_call_here():
    assert sorted(CALLS) == FACADES


@pytest.mark.parametrize("facade", FACADES)
def test_served_schemas_compile_strictly_and_describe_a_real_exchange(
    server, soap, checks, investor, operator, facade
):
    r = requests.get(server.url(f"/services/{facade}?wsdl"), timeout=10)
    assert r.status_code == 200
    schemas = strict_schemas(r.content)
    tns = etree.fromstring(r.content).get("targetNamespace")

    operation = CALLS[facade]
    request = f'<t:{operation} xmlns:t="{tns}"/>'
    schemas.validate(etree.fromstring(request))
    caller = operator if facade in OPERATORS_ONLY else investor
    token = f"<c:AuthToken xmlns:c='{COMMON_NS}'><c:token>{caller.token}</c:token></c:AuthToken>"
    answer = soap.post(facade, envelope(f"<s:Header>{token}</s:Header><s:Body>{request}</s:Body>"))
    assert answer.status_code == 200, answer.text[:500]
    [response] = etree.fromstring(answer.content).find(f"{{{ENV}}}Body")
    assert response.tag == f"{{{tns}}}{operation}Response"
    schemas.validate(response)

    refused = soap.post(facade, envelope(f"{header('1')}<s:Body>{request}</s:Body>"))
    assert checks.fault(refused).code == "MUST_UNDERSTAND"
    schemas.validate(etree.fromstring(refused.content).find(f".//{{{COMMON_NS}}}BusinessFault"))


# -- soap:address -------------------------------------------------------------------------


def soap_address(document: bytes) -> str:
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False))
    return root.find(f"{{{WSDL_NS}}}service/{{{WSDL_NS}}}port/{{{SOAP_NS}}}address").get("location")


def test_a_request_without_host_gets_the_servers_own_address(server):
    """HTTP/1.0 needs no Host; waitress then says SERVER_NAME=waitress.invalid."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /services/LoanFacade?wsdl HTTP/1.0\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    assert b"waitress.invalid" not in body
    assert soap_address(body) == f"http://127.0.0.1:{server.port}/services/LoanFacade"


@pytest.mark.parametrize("proto", ["HTTPS", "Https"])
def test_a_trusted_proxys_forwarded_scheme_in_any_case(proxied_server, proto):
    r = requests.get(
        proxied_server.url("/services/LoanFacade?wsdl"),
        headers={"X-Forwarded-Proto": proto, "X-Forwarded-Host": "API.Example.com"},
        timeout=10,
    )
    assert soap_address(r.content) == "https://api.example.com/services/LoanFacade"


# -- the log -------------------------------------------------------------------------------

FORGED_HEAD = "2099-01-01 00:00:00,000 INFO"


def forged_line(marker: str) -> str:
    return f"{FORGED_HEAD} 1 server.access {marker} soap LoanFacade.getLoan OK 1.0ms"


def test_request_content_never_reaches_the_log(server, soap, checks):
    """An unterminated CDATA section holding a password, and a line break followed by what
    looks like a log record: libxml2 quotes both in its message, which is never logged."""
    password, marker = f"Pw-{uuid.uuid4().hex}", f"forged-{uuid.uuid4().hex}"
    start = f'<s:Envelope xmlns:s="{ENV}"><s:Body>'
    for body in (
        f"{start}<![CDATA[{password}\n{forged_line(marker)}".encode(),
        f"{start}\n{forged_line(marker)}\n</s:Wrong>".encode(),
    ):
        r = soap.post("LoanFacade", body)
        assert checks.fault(r).code == "MALFORMED_REQUEST"
    for body in (
        f'{{"mobile": "{password}\n{forged_line(marker)}'.encode(),
        f'{{"mobile": 1}}\n{forged_line(marker)}\n'.encode(),
    ):
        r = requests.post(
            server.url("/api/v1/sessions"),
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        checks.error(r, 400, "MALFORMED_REQUEST")
    log = server.log_text()
    assert password not in log
    assert marker not in log
    assert not [line for line in log.splitlines() if line.startswith(FORGED_HEAD)]


def test_a_forwarded_address_that_is_no_address_never_reaches_the_log(proxied_server):
    rid = f"xff-{uuid.uuid4().hex[:12]}"
    r = requests.get(
        proxied_server.url("/api/v1/loans/1"),
        headers={"X-Request-Id": rid, "X-Forwarded-For": "6.6.6.6 member=99 client=6.6.6.6"},
        timeout=10,
    )
    assert r.headers["X-Request-Id"] == rid
    [line] = [ln for ln in proxied_server.log_text().splitlines() if f" {rid} " in ln]
    assert "6.6.6.6" not in line and "member=99" not in line
    assert line.endswith(" client=127.0.0.1 member=-")
