"""The SOAP 1.1 envelope parser and credentials, and SOAP calls through the app."""

from __future__ import annotations

import logging
import re

import pytest
from lxml import etree

from facade.p2p.loan import NS as LOAN_NS
from facade.types import COMMON_NS
from server.soap import ENV, WSSE, fault_document, parse_envelope, read_credentials
from service import errors
from service.errors import BusinessError
from service.wsse import PasswordDigest

ENV12 = "http://www.w3.org/2003/05/soap-envelope"
DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
GET_LOAN = f'<l:getLoan xmlns:l="{LOAN_NS}"><l:loanId>42</l:loanId></l:getLoan>'


def envelope(body: str = GET_LOAN, header: str | None = None, ns: str = ENV) -> bytes:
    head = f"<s:Header>{header}</s:Header>" if header is not None else ""
    return f'<s:Envelope xmlns:s="{ns}">{head}<s:Body>{body}</s:Body></s:Envelope>'.encode()


def refused(body: bytes, code: str = "MALFORMED_REQUEST") -> str:
    with pytest.raises(BusinessError) as e:
        parse_envelope(body)
    assert e.value.code == code
    return e.value.message


def malformed(body: bytes) -> str:
    return refused(body)


def test_a_plain_envelope_is_read() -> None:
    header, call = parse_envelope(envelope(header="<x:h xmlns:x='urn:x'/>"))
    assert etree.QName(call).localname == "getLoan"
    assert header is not None and len(header) == 1
    assert parse_envelope(envelope())[0] is None


@pytest.mark.parametrize(
    ("prolog", "problem"),
    [
        ('<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "DOCTYPE"),
        ('<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>', "DOCTYPE"),
        ("<!DOCTYPE s:Envelope>", "DOCTYPE"),
        # An external DTD is never fetched; the parser or the DOCTYPE check refuses it.
        ('<!DOCTYPE s:Envelope SYSTEM "http://example.com/soap.dtd">', "DOCTYPE|well-formed"),
    ],
)
def test_doctype_refused(prolog: str, problem: str) -> None:
    body = b'<?xml version="1.0"?>' + prolog.encode() + envelope()
    assert re.search(problem, malformed(body))


def test_soap_1_2_envelope_is_a_version_mismatch() -> None:
    assert "SOAP 1.2" in refused(envelope(ns=ENV12), "VERSION_MISMATCH")


@pytest.mark.parametrize("ns", ["urn:soap:2.0", None])
def test_an_envelope_in_another_namespace_is_a_version_mismatch(ns: str | None) -> None:
    """SOAP 1.1 §4.1.2: an Envelope in any other namespace (or none) is a version error."""
    body = f'<Envelope xmlns="{ns}"><Body/></Envelope>' if ns else "<Envelope><Body/></Envelope>"
    assert "SOAP 1.1 namespace" in refused(body.encode(), "VERSION_MISMATCH")


def test_other_documents_refused() -> None:
    assert "not a SOAP 1.1 Envelope" in malformed(f'<s:Body xmlns:s="{ENV}"/>'.encode())
    assert "not a SOAP 1.1 Envelope" in malformed(b"<getLoan/>")
    assert "not well-formed" in malformed(b"<s:Envelope")
    assert "empty" in malformed(b"  ")
    no_body = f'<s:Envelope xmlns:s="{ENV}"><s:Header/></s:Envelope>'.encode()
    assert "no Body" in malformed(no_body)


@pytest.mark.parametrize("body", [GET_LOAN + GET_LOAN, "", "<!-- only a comment -->"])
def test_body_must_hold_exactly_one_element(body: str) -> None:
    assert "exactly one element" in malformed(envelope(body))


def raw_envelope(inside: str) -> bytes:
    return f'<s:Envelope xmlns:s="{ENV}" xmlns:x="urn:x">{inside}</s:Envelope>'.encode()


BODY = f"<s:Body>{GET_LOAN}</s:Body>"


@pytest.mark.parametrize(
    ("inside", "problem"),
    [
        (BODY + BODY, "only one Body"),
        (BODY + "<s:Body/>", "only one Body"),
        ("<s:Header/><s:Header/>" + BODY, "one Header, before the Body"),
        (BODY + "<s:Header/>", "one Header, before the Body"),
        (BODY + "<x:Trailer/>", "only a Header and a Body"),  # WS-I BP R1011
        ("<x:Before/>" + BODY, "only a Header and a Body"),
        ("<s:Fault/>" + BODY, "only a Header and a Body"),
        ("text" + BODY, "Envelope must not contain text"),
        (BODY + "text", "Envelope must not contain text"),
        ("<s:Header>text</s:Header>" + BODY, "Header must not contain text"),
        ("<s:Header><x:h/>text</s:Header>" + BODY, "Header must not contain text"),
        (f"<s:Body>text{GET_LOAN}</s:Body>", "Body must not contain text"),
        (f"<s:Body>{GET_LOAN}text</s:Body>", "Body must not contain text"),
        ("<s:Header><h/></s:Header>" + BODY, "h must be namespace-qualified"),
    ],
)
def test_the_envelope_holds_an_optional_header_then_one_body_and_nothing_else(
    inside: str, problem: str
) -> None:
    assert problem in malformed(raw_envelope(inside))


def test_white_space_and_comments_between_the_parts_are_fine() -> None:
    header, call = parse_envelope(
        raw_envelope(f"\n <!-- c --> <s:Header>\n<x:h/> </s:Header>\n\t{BODY}\n")
    )
    assert etree.QName(call).localname == "getLoan"
    assert len(header) == 1


def header_of(xml: str):
    header, _ = parse_envelope(envelope(header=xml))
    return header


@pytest.mark.parametrize("value", ["1", "true", " 1 "])
def test_must_understand_on_an_unknown_header_refused(value: str) -> None:
    tx = f'<x:Tx xmlns:x="urn:tx" xmlns:s="{ENV}" s:mustUnderstand="{value}"/>'
    assert "Tx" in refused(envelope(header=tx), "MUST_UNDERSTAND")


def test_must_understand_for_the_next_actor_refused() -> None:
    actor = "http://schemas.xmlsoap.org/soap/actor/next"
    tx = f'<x:Tx xmlns:x="urn:tx" xmlns:s="{ENV}" s:mustUnderstand="1" s:actor="{actor}"/>'
    assert "Tx" in refused(envelope(header=tx), "MUST_UNDERSTAND")


@pytest.mark.parametrize(
    "attribute",
    [
        's:mustUnderstand="0"',
        'mustUnderstand="1"',  # not SOAP's attribute
        's:mustUnderstand="1" s:actor="urn:example:audit-node"',  # meant for another node
        "",
    ],
)
def test_an_unknown_header_we_need_not_understand_is_ignored(attribute: str) -> None:
    tx = f'<x:Tx xmlns:x="urn:tx" xmlns:s="{ENV}" {attribute}/>'
    assert len(header_of(tx)) == 1


def test_unknown_header_without_must_understand_ignored() -> None:
    header = header_of('<x:Tx xmlns:x="urn:tx"/>')
    assert read_credentials(header).token is None


def test_auth_token_header_understood() -> None:
    header = header_of(
        f'<c:AuthToken xmlns:c="{COMMON_NS}" xmlns:s="{ENV}" s:mustUnderstand="1">'
        "<c:token> tok-1 </c:token></c:AuthToken>"
    )
    assert read_credentials(header).token == "tok-1"


def username_token(password: str) -> str:
    return (
        f'<w:Security xmlns:w="{WSSE}" xmlns:s="{ENV}" s:mustUnderstand="1"><w:UsernameToken>'
        f"<w:Username>13800000001</w:Username>{password}</w:UsernameToken></w:Security>"
    )


def test_ws_security_password_text_read() -> None:
    credentials = read_credentials(header_of(username_token("<w:Password>pw1234567</w:Password>")))
    assert (credentials.username, credentials.password) == ("13800000001", "pw1234567")


WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
B64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)


def test_ws_security_password_digest_read_with_nonce_and_created() -> None:
    header = header_of(
        username_token(
            f'<w:Password Type="{DIGEST}">abc=</w:Password>'
            f'<w:Nonce EncodingType="{B64}">bm9uY2U=</w:Nonce>'
            f'<u:Created xmlns:u="{WSU}">2026-03-01T08:30:00Z</u:Created>'
        )
    )
    credentials = read_credentials(header)
    assert credentials.username == "13800000001" and credentials.password is None
    assert credentials.digest == PasswordDigest("abc=", "bm9uY2U=", "2026-03-01T08:30:00Z")


@pytest.mark.parametrize(
    "extra",
    [
        "",  # neither Nonce nor Created
        f'<u:Created xmlns:u="{WSU}">2026-03-01T08:30:00Z</u:Created>',
        "<w:Nonce>bm9uY2U=</w:Nonce>",
        '<w:Nonce EncodingType="urn:hex">6e6f6e6365</w:Nonce>'
        f'<u:Created xmlns:u="{WSU}">2026-03-01T08:30:00Z</u:Created>',
    ],
)
def test_ws_security_password_digest_without_nonce_or_created_refused(extra: str) -> None:
    header = header_of(username_token(f'<w:Password Type="{DIGEST}">abc=</w:Password>{extra}'))
    with pytest.raises(BusinessError) as e:
        read_credentials(header)
    assert e.value.code == "UNAUTHENTICATED"


def test_ws_security_unknown_password_type_refused() -> None:
    header = header_of(username_token('<w:Password Type="urn:x#PasswordHash">x</w:Password>'))
    with pytest.raises(BusinessError) as e:
        read_credentials(header)
    assert e.value.code == "UNAUTHENTICATED"
    assert "PasswordText or PasswordDigest" in e.value.message


def test_ws_security_without_password_refused() -> None:
    with pytest.raises(BusinessError) as e:
        read_credentials(header_of(username_token("")))
    assert e.value.code == "UNAUTHENTICATED"


# -- through the app ----------------------------------------------------------------------


def fault(response) -> dict[str, str]:
    root = etree.fromstring(response.data)
    detail = root.find(f"{{{ENV}}}Body/{{{ENV}}}Fault/detail/{{{COMMON_NS}}}BusinessFault")
    assert detail is not None, response.data
    values = {etree.QName(c).localname: c.text for c in detail}
    values["faultcode"] = root.findtext(f"{{{ENV}}}Body/{{{ENV}}}Fault/faultcode")
    return values


def post(client, body: bytes, content_type: str = "text/xml; charset=utf-8"):
    return client.post("/services/LoanFacade", data=body, content_type=content_type)


def test_doctype_refused_through_the_app(client) -> None:
    body = b'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope()
    response = post(client, body)
    assert response.status_code == 500
    values = fault(response)
    assert values["code"] == "MALFORMED_REQUEST"
    assert values["faultcode"] == "soap:Client"
    assert "root:" not in response.get_data(as_text=True)


def test_soap_1_2_content_type_refused_through_the_app(client) -> None:
    response = post(client, envelope(ns=ENV12), "application/soap+xml; charset=utf-8")
    assert response.status_code == 415
    assert fault(response)["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(
    ("body", "faultcode", "code"),
    [
        (envelope(ns=ENV12), "soap:VersionMismatch", "VERSION_MISMATCH"),
        (
            envelope(header=f'<x:Tx xmlns:x="urn:tx" xmlns:s="{ENV}" s:mustUnderstand="1"/>'),
            "soap:MustUnderstand",
            "MUST_UNDERSTAND",
        ),
        (envelope(GET_LOAN + GET_LOAN), "soap:Client", "MALFORMED_REQUEST"),
    ],
)
def test_soap_faultcodes_through_the_app(client, body: bytes, faultcode: str, code: str) -> None:
    """SOAP 1.1 §4.4.1's own faultcodes, HTTP 500, and our BusinessFault in <detail> still."""
    response = client.post(
        "/services/LoanFacade", data=body, content_type="text/xml", headers={"X-Request-Id": "f-1"}
    )
    assert response.status_code == 500
    values = fault(response)
    assert (values["faultcode"], values["code"], values["requestId"]) == (faultcode, code, "f-1")
    assert response.headers["X-Request-Id"] == "f-1"


def test_the_faultcode_namespace_prefix_is_bound_to_soap_1_1() -> None:
    document = fault_document(BusinessError(errors.MUST_UNDERSTAND), "r")
    code = etree.fromstring(document).find(f".//{{{ENV}}}Fault/faultcode")
    prefix, _, local = code.text.partition(":")
    assert (code.nsmap[prefix], local) == (ENV, "MustUnderstand")


@pytest.mark.parametrize(
    ("method", "query", "allow"),
    [
        ("GET", "", "POST"),
        ("HEAD", "", "POST"),
        ("PUT", "", "POST"),
        ("DELETE", "?wsdl", "GET, HEAD, POST"),
        ("OPTIONS", "?WSDL", "GET, HEAD, POST"),
        ("PUT", "?doc", "GET, HEAD, POST"),
    ],
)
def test_a_wrong_method_is_a_fault_with_allow(client, method: str, query: str, allow: str):
    response = client.open(
        f"/services/LoanFacade{query}", method=method, headers={"X-Request-Id": "m-1"}
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.headers["X-Request-Id"] == "m-1"
    if method != "HEAD":
        values = fault(response)
        assert (values["code"], values["requestId"]) == ("METHOD_NOT_ALLOWED", "m-1")


def test_head_wsdl_is_answered_like_get(client) -> None:
    get = client.get("/services/LoanFacade?wsdl")
    head = client.head("/services/LoanFacade?wsdl")
    assert head.status_code == get.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"] == str(len(get.data))
    assert head.headers["X-Request-Id"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_unknown_facades_wsdl_is_a_404_fault(client, method: str) -> None:
    response = client.open(
        "/services/NoSuchFacade?wsdl", method=method, headers={"X-Request-Id": "w-1"}
    )
    assert response.status_code == 404
    assert response.headers["X-Request-Id"] == "w-1"
    assert response.headers["Content-Type"].startswith("text/xml")
    if method == "GET":
        values = fault(response)
        assert (values["code"], values["requestId"]) == ("UNKNOWN_OPERATION", "w-1")


def test_a_business_fault_carries_its_code_in_detail(client) -> None:
    response = post(client, envelope(), "text/xml")
    values = fault(response)
    assert values["code"] == "LOAN_NOT_FOUND"
    assert values["faultcode"] == "soap:Client"
    assert values["requestId"] == response.headers["X-Request-Id"]


def test_a_validation_fault_names_the_element(client) -> None:
    body = f'<l:getLoan xmlns:l="{LOAN_NS}"><l:loanId>0</l:loanId></l:getLoan>'
    values = fault(post(client, envelope(body)))
    assert values["code"] == "VALIDATION_FAILED"
    assert values["message"].startswith("loanId:")


def test_wsdl_address_from_host_not_from_an_untrusted_forwarded_host(client) -> None:
    response = client.get(
        "/services/LoanFacade?wsdl",
        headers={"Host": "worker1:8080", "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 200
    root = etree.fromstring(response.data)
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == "http://worker1:8080/services/LoanFacade"


def test_wsdl_address_from_public_url(make_client) -> None:
    client = make_client(**{"server.public_url": "https://api.example.com"})
    response = client.get("/services/MemberFacade?wsdl", headers={"Host": "worker1"})
    root = etree.fromstring(response.data)
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == "https://api.example.com/services/MemberFacade"


def test_an_unreadable_request_is_logged_without_quoting_it(caplog) -> None:
    """libxml2's message quotes the input; only where it failed is logged."""
    caplog.set_level(logging.INFO, logger="server.soap")
    body = f'<s:Envelope xmlns:s="{ENV}">\n<s:Body><![CDATA[Pa55word-9f2c\n2026-01-01 forged'
    assert "not well-formed" in malformed(body.encode())
    [logged] = [r.getMessage() for r in caplog.records if r.name == "server.soap"]
    assert re.fullmatch(r"unreadable SOAP request: not well-formed at line 3, column \d+", logged)
