"""SOAP 1.1 and SOAP 1.2 conformance against the real server: SOAP's own fault codes, the
Envelope's shape, VersionMismatch both ways with the Upgrade header block, the SOAP 1.2 action,
structured answers to every method on /services/<x>, WSDL schemas a strict compiler accepts
describing a real exchange in each version, the addresses without a Host, and request content
that never reaches the log."""

import socket
import uuid
from pathlib import Path

import pytest
import requests
from lxml import etree
from p2p_partner import HmacKey, PartnerClient
from p2p_partner.soap import sign_envelope

from tests.xsd import strict_schemas

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
COMMON_NS = "http://p2p.hry.com/facade/common"
LOAN_NS = "http://p2p.hry.com/facade/p2p"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
XML = "text/xml; charset=utf-8"
SOAP_XML = "application/soap+xml; charset=utf-8"
#: Every facade the server publishes, as the committed contracts list them.
FACADES = sorted(p.stem for p in (ROOT / "wsdl").glob("*.wsdl"))
#: Tests that run on either version's port take the ``soap`` fixture as each.
BOTH = pytest.mark.parametrize("soap", ["1.1", "1.2"], indirect=True)

BODY = f'<s:Body><p:getLoan xmlns:p="{LOAN_NS}"><p:loanId>987654321</p:loanId></p:getLoan></s:Body>'


def envelope(inside: str, ns: str = ENV) -> bytes:
    return f'<?xml version="1.0"?><s:Envelope xmlns:s="{ns}">{inside}</s:Envelope>'.encode()


def header(must_understand: str, role: str = "") -> str:
    return (
        f'<s:Header><x:Transaction xmlns:x="urn:example:tx" s:mustUnderstand="{must_understand}"'
        f"{role}>42</x:Transaction></s:Header>"
    )


def status_of(kind: str) -> int:
    """The HTTP status of a fault answering a call: 500 in SOAP 1.1, 400 for a SOAP 1.2
    Sender fault and 500 for the others."""
    return 400 if kind == "Sender" else 500


@BOTH
@pytest.mark.parametrize(
    ("inside", "kind", "code", "mentions"),
    [
        (header("1") + BODY, "MustUnderstand", "MUST_UNDERSTAND", "Transaction"),
        (header("true") + BODY, "MustUnderstand", "MUST_UNDERSTAND", "Transaction"),
        (BODY + BODY, "sender", "MALFORMED_REQUEST", "one Body"),
        ("<s:Header/><s:Header/>" + BODY, "sender", "MALFORMED_REQUEST", "Header"),
        (BODY + "<s:Header/>", "sender", "MALFORMED_REQUEST", "Header"),
        (BODY + '<x:t xmlns:x="urn:x"/>', "sender", "MALFORMED_REQUEST", "only"),
        ("text" + BODY, "sender", "MALFORMED_REQUEST", "text"),
    ],
    ids=[
        "must-understand-1",
        "must-understand-true",
        "second-body",
        "second-header",
        "header-after-body",
        "element-after-body",
        "text-in-envelope",
    ],
)
def test_envelope_refusals(soap, checks, inside, kind, code, mentions):
    kind = soap.version.sender if kind == "sender" else kind
    r = soap.post(
        "LoanFacade", envelope(inside, soap.version.envelope), headers={"X-Request-Id": "c-1"}
    )
    assert r.status_code == status_of(kind), r.text[:300]
    fault = checks.fault(r)
    assert (fault.kind, fault.code, fault.request_id) == (kind, code, "c-1")
    assert r.headers["X-Request-Id"] == "c-1"
    assert mentions in fault.detail


def upgrade(response: requests.Response) -> list[etree.QName]:
    """The envelopes the fault's Upgrade header block names, in order."""
    root = etree.fromstring(response.content)
    found = root.findall(f"{{{root.nsmap[root.prefix]}}}Header/{{{ENV12}}}Upgrade")
    assert len(found) == 1, response.text[:500]
    names = []
    for supported in found[0]:
        assert supported.tag == f"{{{ENV12}}}SupportedEnvelope"
        prefix, _, local = supported.get("qname").partition(":")
        names.append(etree.QName(supported.nsmap[prefix], local))
    return names


@pytest.mark.parametrize(
    ("sent", "content_type", "answer", "mentions"),
    [
        (ENV12, XML, ENV, "SOAP 1.2 envelope is sent as application/soap+xml"),
        (ENV, SOAP_XML, ENV, "SOAP 1.1 envelope is sent as text/xml"),
        ("urn:soap:3", XML, ENV, "not in the SOAP 1.1 namespace"),
        ("urn:soap:3", SOAP_XML, ENV12, "not in the SOAP 1.2 namespace"),
    ],
    ids=["1.2-as-text/xml", "1.1-as-soap+xml", "unknown-as-text/xml", "unknown-as-soap+xml"],
)
def test_a_version_mismatch_names_the_envelopes_served(
    soap, checks, sent, content_type, answer, mentions
):
    """SOAP 1.2 part 1 §5.4.7 and appendix A: HTTP 500, the Upgrade header block naming both
    envelopes (SOAP 1.2 first), in SOAP 1.1 whenever the envelope or the media type was."""
    r = soap.post("LoanFacade", envelope(BODY, sent), content_type, headers={"X-Request-Id": "v-1"})
    assert r.status_code == 500
    assert etree.fromstring(r.content).tag == f"{{{answer}}}Envelope"
    fault = checks.fault(r)
    assert (fault.kind, fault.code, fault.request_id) == (
        "VersionMismatch",
        "VERSION_MISMATCH",
        "v-1",
    )
    assert mentions in fault.detail
    assert upgrade(r) == [etree.QName(ENV12, "Envelope"), etree.QName(ENV, "Envelope")]


def test_a_soap_1_2_must_understand_fault_names_the_block_not_understood(soap, checks):
    body = envelope(header("true", f' s:role="{ENV12}/role/ultimateReceiver"') + BODY, ENV12)
    r = soap.post("LoanFacade", body, SOAP_XML)
    assert r.status_code == 500
    assert checks.fault(r).kind == "MustUnderstand"
    [block] = etree.fromstring(r.content).find(f"{{{ENV12}}}Header")
    assert block.tag == f"{{{ENV12}}}NotUnderstood"
    prefix, _, local = block.get("qname").partition(":")
    assert etree.QName(block.nsmap[prefix], local) == etree.QName("urn:example:tx", "Transaction")


@pytest.mark.parametrize("role", ["none", "other"])
def test_a_soap_1_2_header_block_for_another_role_is_left_alone(soap, checks, role):
    named = f"{ENV12}/role/none" if role == "none" else "urn:example:auditor"
    body = envelope(header("true", f' s:role="{named}"') + BODY, ENV12)
    r = soap.post("LoanFacade", body, SOAP_XML)
    assert checks.fault(r).code == "LOAN_NOT_FOUND"  # the call itself went through


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [
        ("http://p2p.hry.com/facade/p2p/LoanFacade/getLoanRequest", 400, "LOAN_NOT_FOUND"),
        ("", 400, "LOAN_NOT_FOUND"),
        ("http://p2p.hry.com/facade/p2p/LoanFacade/publishLoanRequest", 400, "ACTION_MISMATCH"),
    ],
)
def test_the_soap_1_2_action_must_name_the_bodys_operation(soap, checks, action, status, code):
    r = soap.post("LoanFacade", envelope(BODY, ENV12), f'{SOAP_XML}; action="{action}"')
    assert r.status_code == status
    assert checks.fault(r).code == code


@pytest.mark.parametrize(
    ("method", "path", "content_type", "status", "allow", "code"),
    [
        ("GET", "/services/LoanFacade", None, 405, "POST", "METHOD_NOT_ALLOWED"),
        ("PUT", "/services/LoanFacade", None, 405, "POST", "METHOD_NOT_ALLOWED"),
        ("PUT", "/services/LoanFacade", SOAP_XML, 405, "POST", "METHOD_NOT_ALLOWED"),
        ("DELETE", "/services/LoanFacade?wsdl", None, 405, "GET, HEAD, POST", "METHOD_NOT_ALLOWED"),
        ("GET", "/services/NoSuchFacade?wsdl", None, 404, None, "UNKNOWN_OPERATION"),
        ("POST", "/services/NoSuchFacade", XML, 500, None, "UNKNOWN_OPERATION"),
        ("POST", "/services/NoSuchFacade", SOAP_XML, 400, None, "UNKNOWN_OPERATION"),
        ("POST", "/services/LoanFacade", "text/plain", 415, None, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
def test_every_answer_on_a_service_path_is_a_fault(
    server, checks, method, path, content_type, status, allow, code
):
    """In the version of the request's media type, SOAP 1.1 for any other."""
    ns = ENV12 if content_type == SOAP_XML else ENV
    headers = {"X-Request-Id": "m-2"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = envelope(BODY, ns) if content_type is not None else None
    r = requests.request(method, server.url(path), data=data, headers=headers, timeout=10)
    assert r.status_code == status
    assert r.headers.get("Allow") == allow
    assert r.headers["X-Request-Id"] == "m-2"
    assert etree.fromstring(r.content).tag == f"{{{ns}}}Envelope"
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
    "CampaignFacade": "listCampaigns",
    "FundFacade": "hasFundAccount",
    "LoanFacade": "listLoans",
    "LoyaltyFacade": "getPoints",
    "MarketingFacade": "listCoupons",
    "MemberFacade": "getProfile",
    "MessageFacade": "getUnreadCount",
    "PartnerAdminFacade": "listPartnerApps",
    "PartnerFacade": "listPartnerListings",
    "PaymentFacade": "listOrders",
    "ReconciliationFacade": "listRuns",
    "TreasuryFacade": "getPlatformAccount",
}
#: Facades only operators call.
OPERATORS_ONLY = frozenset(
    {"CampaignFacade", "PartnerAdminFacade", "ReconciliationFacade", "TreasuryFacade"}
)
#: Facades partner apps call with a signed request (the SDK's PartnerSignature header), not
#: members.
PARTNER_ONLY = frozenset({"PartnerFacade"})


def partner_signer(server, operator) -> PartnerClient:
    """A fresh partner app with an HMAC key, registered by the operator, as a signer."""
    auth = {"Authorization": f"Bearer {operator.token}"}
    made = requests.post(
        server.url("/api/v1/partner-apps"),
        json={
            "name": f"conformance {uuid.uuid4().hex[:10]}",
            "contact": "ops@partner.example",
            "scopes": ["LISTING_READ"],
            "ratePerMinute": 600,
            "burst": 50,
        },
        headers=auth,
        timeout=30,
    ).json()
    issued = requests.post(
        server.url(f"/api/v1/partner-apps/{made['appId']}/keys"),
        json={"keyId": "k1", "algorithm": "HMAC_SHA256"},
        headers=auth,
        timeout=30,
    ).json()
    return PartnerClient(server.base, made["appId"], HmacKey("k1", issued["secret"]))


def test_every_facade_has_a_call_here():
    assert sorted(CALLS) == FACADES


@BOTH
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
    ns = soap.version.envelope
    call = envelope(f"<s:Header>{token}</s:Header><s:Body>{request}</s:Body>", ns)
    if facade in PARTNER_ONLY:
        signed = etree.fromstring(envelope(f"<s:Body>{request}</s:Body>", ns))
        sign_envelope(partner_signer(server, operator), signed, server.url(f"/services/{facade}"))
        call = etree.tostring(signed)
    answer = soap.post(facade, call)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["Content-Type"] == soap.version.content_type
    [response] = etree.fromstring(answer.content).find(f"{{{ns}}}Body")
    assert response.tag == f"{{{tns}}}{operation}Response"
    schemas.validate(response)

    refused = soap.post(facade, envelope(f"{header('1')}<s:Body>{request}</s:Body>", ns))
    assert checks.fault(refused).code == "MUST_UNDERSTAND"
    schemas.validate(etree.fromstring(refused.content).find(f".//{{{COMMON_NS}}}BusinessFault"))


# -- soap:address and soap12:address ---------------------------------------------------------


def soap_address(document: bytes) -> str:
    """The ports' one address: SOAP 1.1's, and SOAP 1.2's the same."""
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False))
    port = f"{{{WSDL_NS}}}service/{{{WSDL_NS}}}port"
    address = root.find(f"{port}/{{{SOAP_NS}}}address").get("location")
    assert root.find(f"{port}/{{{SOAP12_NS}}}address").get("location") == address
    return address


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
