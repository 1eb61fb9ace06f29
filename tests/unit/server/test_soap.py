"""The SOAP 1.1 envelope parser and credentials, and SOAP calls through the app."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from facade.p2p.loan import NS as LOAN_NS
from facade.types import COMMON_NS
from server.soap import ENV, WSSE, parse_envelope, read_credentials
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


def malformed(body: bytes) -> str:
    with pytest.raises(BusinessError) as e:
        parse_envelope(body)
    assert e.value.code == "MALFORMED_REQUEST"
    return e.value.message


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


def test_soap_1_2_refused() -> None:
    assert "SOAP 1.2" in malformed(envelope(ns=ENV12))


def test_other_documents_refused() -> None:
    assert "not a SOAP 1.1 Envelope" in malformed(b"<Envelope><Body/></Envelope>")
    assert "not well-formed" in malformed(b"<s:Envelope")
    assert "empty" in malformed(b"  ")
    no_body = f'<s:Envelope xmlns:s="{ENV}"><s:Header/></s:Envelope>'.encode()
    assert "no Body" in malformed(no_body)


@pytest.mark.parametrize("body", [GET_LOAN + GET_LOAN, "", "<!-- only a comment -->"])
def test_body_must_hold_exactly_one_element(body: str) -> None:
    assert "exactly one element" in malformed(envelope(body))


def header_of(xml: str):
    header, _ = parse_envelope(envelope(header=xml))
    return header


def test_must_understand_on_an_unknown_header_refused() -> None:
    header = header_of(f'<x:Tx xmlns:x="urn:tx" xmlns:s="{ENV}" s:mustUnderstand="1"/>')
    with pytest.raises(BusinessError) as e:
        read_credentials(header)
    assert e.value.code == "MALFORMED_REQUEST"
    assert "Tx" in e.value.message


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
