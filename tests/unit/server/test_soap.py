"""The SOAP envelope parser and credentials in both versions, the faults each version writes,
and SOAP 1.1 and 1.2 calls through the app."""

from __future__ import annotations

import logging
import re

import pytest
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

from facade.p2p.loan import NS as LOAN_NS
from facade.types import COMMON_NS
from server.soap import (
    ENV,
    ENV12,
    SOAP11,
    SOAP12,
    WSSE,
    NotUnderstood,
    VersionMismatch,
    fault_document,
    fault_response,
    parse_envelope,
    read_credentials,
    version_of,
)
from server.wsdl import Wsdl
from service import errors
from service.errors import BusinessError
from service.wsse import PasswordDigest

DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
GET_LOAN = f'<l:getLoan xmlns:l="{LOAN_NS}"><l:loanId>42</l:loanId></l:getLoan>'
LIST_LOANS = f'<l:listLoans xmlns:l="{LOAN_NS}"/>'
XML = "text/xml; charset=utf-8"
SOAP_XML = "application/soap+xml; charset=utf-8"
#: Every version, for the rules they share.
BOTH = pytest.mark.parametrize("version", [SOAP11, SOAP12], ids=["1.1", "1.2"])


def envelope(body: str = GET_LOAN, header: str | None = None, ns: str = ENV) -> bytes:
    head = f"<s:Header>{header}</s:Header>" if header is not None else ""
    return f'<s:Envelope xmlns:s="{ns}">{head}<s:Body>{body}</s:Body></s:Envelope>'.encode()


def refused(body: bytes, code: str = "MALFORMED_REQUEST", version=SOAP11) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        parse_envelope(body, version)
    assert e.value.code == code
    return e.value


def malformed(body: bytes, version=SOAP11) -> str:
    return refused(body, version=version).message


@BOTH
def test_a_plain_envelope_is_read(version) -> None:
    header, call = parse_envelope(
        envelope(header="<x:h xmlns:x='urn:x'/>", ns=version.namespace), version
    )
    assert etree.QName(call).localname == "getLoan"
    assert header is not None and len(header) == 1
    assert parse_envelope(envelope(ns=version.namespace), version)[0] is None


@BOTH
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
def test_doctype_refused(version, prolog: str, problem: str) -> None:
    body = b'<?xml version="1.0"?>' + prolog.encode() + envelope(ns=version.namespace)
    assert re.search(problem, malformed(body, version))


# -- VersionMismatch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "read_as", "words"),
    [
        (ENV12, SOAP11, "SOAP 1.2 envelope is sent as application/soap+xml, not text/xml"),
        (ENV, SOAP12, "SOAP 1.1 envelope is sent as text/xml, not application/soap+xml"),
    ],
)
def test_the_other_versions_envelope_is_a_version_mismatch_answered_in_soap_1_1(
    sent: str, read_as, words: str
) -> None:
    """Both ways: SOAP 1.2 part 1 appendix A answers a SOAP 1.1 envelope in SOAP 1.1, and a
    SOAP 1.2 envelope sent as text/xml made a SOAP 1.1 message."""
    error = refused(envelope(ns=sent), "VERSION_MISMATCH", read_as)
    assert isinstance(error, VersionMismatch)
    assert words in error.message
    assert error.answer_in is SOAP11


@BOTH
@pytest.mark.parametrize("ns", ["urn:soap:2.0", None])
def test_an_envelope_in_another_namespace_is_a_version_mismatch(version, ns) -> None:
    """SOAP 1.1 §4.1.2, SOAP 1.2 part 1 §5.4.7: an Envelope in any other namespace (or none)
    is a version error, answered in the version the message was sent as."""
    body = f'<Envelope xmlns="{ns}"><Body/></Envelope>' if ns else "<Envelope><Body/></Envelope>"
    error = refused(body.encode(), "VERSION_MISMATCH", version)
    assert f"SOAP {version.name} namespace" in error.message
    assert error.answer_in is version


@BOTH
def test_other_documents_refused(version) -> None:
    ns, name = version.namespace, f"not a SOAP {version.name} Envelope"
    assert name in malformed(f'<s:Body xmlns:s="{ns}"/>'.encode(), version)
    assert name in malformed(b"<getLoan/>", version)
    assert "not well-formed" in malformed(b"<s:Envelope", version)
    assert "empty" in malformed(b"  ", version)
    no_body = f'<s:Envelope xmlns:s="{ns}"><s:Header/></s:Envelope>'.encode()
    assert "no Body" in malformed(no_body, version)


@BOTH
@pytest.mark.parametrize("body", [GET_LOAN + GET_LOAN, "", "<!-- only a comment -->"])
def test_body_must_hold_exactly_one_element(version, body: str) -> None:
    assert "exactly one element" in malformed(envelope(body, ns=version.namespace), version)


def raw_envelope(inside: str, ns: str = ENV) -> bytes:
    return f'<s:Envelope xmlns:s="{ns}" xmlns:x="urn:x">{inside}</s:Envelope>'.encode()


BODY = f"<s:Body>{GET_LOAN}</s:Body>"


@BOTH
@pytest.mark.parametrize(
    ("inside", "problem"),
    [
        (BODY + BODY, "only one Body"),
        (BODY + "<s:Body/>", "only one Body"),
        ("<s:Header/><s:Header/>" + BODY, "one Header, before the Body"),
        (BODY + "<s:Header/>", "one Header, before the Body"),
        (BODY + "<x:Trailer/>", "only a Header and a Body"),  # WS-I BP R1011, 1.2 part 1 §5.1
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
    version, inside: str, problem: str
) -> None:
    assert problem in malformed(raw_envelope(inside, version.namespace), version)


@BOTH
def test_white_space_and_comments_between_the_parts_are_fine(version) -> None:
    header, call = parse_envelope(
        raw_envelope(
            f"\n <!-- c --> <s:Header>\n<x:h/> </s:Header>\n\t{BODY}\n", version.namespace
        ),
        version,
    )
    assert etree.QName(call).localname == "getLoan"
    assert len(header) == 1


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><?xml-stylesheet href="a.xsl"?>' + envelope(ns=ENV12),
        envelope(f"<?audit x?>{GET_LOAN}", ns=ENV12),
        envelope(ns=ENV12) + b"<?after x?>",
    ],
)
def test_soap_1_2_refuses_a_processing_instruction_soap_1_1_drops_it(body: bytes) -> None:
    """SOAP 1.2 part 1 §5: a receiver SHOULD answer one with a Sender fault."""
    assert "processing instruction" in malformed(body, SOAP12)
    soap11 = body.replace(ENV12.encode(), ENV.encode())
    assert etree.QName(parse_envelope(soap11, SOAP11)[1]).localname == "getLoan"


# -- mustUnderstand, actor and role --------------------------------------------------------


def block(version, attributes: str, name: str = "Tx") -> str:
    return f'<x:{name} xmlns:x="urn:tx" xmlns:s="{version.namespace}" {attributes}/>'


def header_of(xml: str, version=SOAP11):
    header, _ = parse_envelope(envelope(header=xml, ns=version.namespace), version)
    return header


def _roles_for_us():
    """(version, role attribute or "") for every way of naming us: no actor or role (the
    ultimate receiver), the next node, and in SOAP 1.2 the ultimate receiver by name."""
    for version in (SOAP11, SOAP12):
        for role in ("", version.next_role, version.ultimate_receiver):
            if role is not None:
                named = f's:{version.role_attribute}="{role}"' if role else ""
                yield pytest.param(version, named, id=f"{version.name}-{role or 'no-role'}")


@pytest.mark.parametrize(("version", "role"), list(_roles_for_us()))
@pytest.mark.parametrize("value", ["1", "true", " 1 "])
def test_must_understand_on_an_unknown_header_for_us_refused(version, role: str, value) -> None:
    tx = block(version, f's:mustUnderstand="{value}" {role}')
    error = refused(envelope(header=tx, ns=version.namespace), "MUST_UNDERSTAND", version)
    assert error.message == "header Tx is not understood"
    assert isinstance(error, NotUnderstood)
    assert error.blocks == (etree.QName("urn:tx", "Tx"),)


@BOTH
@pytest.mark.parametrize(
    "attribute",
    [
        's:mustUnderstand="0"',
        's:mustUnderstand="false"',
        'mustUnderstand="1"',  # not SOAP's attribute
        's:mustUnderstand="1" s:{role}="urn:example:audit-node"',  # meant for another node
        's:mustUnderstand="1" s:{role}=""',  # a role we do not play either
        "",
    ],
)
def test_an_unknown_header_we_need_not_understand_is_ignored(version, attribute: str) -> None:
    tx = block(version, attribute.format(role=version.role_attribute))
    assert len(header_of(tx, version)) == 1


def test_soap_1_2_header_blocks_for_the_role_none_are_never_processed() -> None:
    tx = block(SOAP12, f's:mustUnderstand="true" s:role="{ENV12}/role/none"')
    assert len(header_of(tx, SOAP12)) == 1


@pytest.mark.parametrize(
    ("version", "foreign"),
    [(SOAP11, ENV12), (SOAP12, ENV)],
    ids=["1.2-attributes-in-1.1", "1.1-attributes-in-1.2"],
)
def test_the_other_versions_attributes_mean_nothing(version, foreign: str) -> None:
    tx = f'<x:Tx xmlns:x="urn:tx" xmlns:o="{foreign}" o:mustUnderstand="1"/>'
    assert len(header_of(tx, version)) == 1


@BOTH
def test_every_header_not_understood_is_named_in_one_fault(version) -> None:
    """SOAP 1.2 part 1 §2.6: one MustUnderstand fault for all of them, before any is
    processed."""
    blocks = "".join(
        f'<x:{n} xmlns:x="urn:{n}" xmlns:s="{version.namespace}" s:mustUnderstand="1"/>'
        for n in ("Tx", "Audit")
    )
    understood = f'<c:AuthToken xmlns:c="{COMMON_NS}"><c:token>t</c:token></c:AuthToken>'
    error = refused(
        envelope(header=blocks + understood, ns=version.namespace), "MUST_UNDERSTAND", version
    )
    assert error.message == "headers Tx, Audit are not understood"
    assert error.blocks == (etree.QName("urn:Tx", "Tx"), etree.QName("urn:Audit", "Audit"))


def test_unknown_header_without_must_understand_ignored() -> None:
    header = header_of('<x:Tx xmlns:x="urn:tx"/>')
    assert read_credentials(header).token is None


@BOTH
def test_auth_token_header_understood(version) -> None:
    header = header_of(
        f'<c:AuthToken xmlns:c="{COMMON_NS}" xmlns:s="{version.namespace}" '
        f's:mustUnderstand="true"><c:token> tok-1 </c:token></c:AuthToken>',
        version,
    )
    assert read_credentials(header).token == "tok-1"


def username_token(password: str, version=SOAP11) -> str:
    return (
        f'<w:Security xmlns:w="{WSSE}" xmlns:s="{version.namespace}" s:mustUnderstand="1">'
        f"<w:UsernameToken><w:Username>13800000001</w:Username>{password}</w:UsernameToken>"
        "</w:Security>"
    )


@BOTH
def test_ws_security_password_text_read(version) -> None:
    token = username_token("<w:Password>pw1234567</w:Password>", version)
    credentials = read_credentials(header_of(token, version))
    assert (credentials.username, credentials.password) == ("13800000001", "pw1234567")


WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
B64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)


@BOTH
def test_ws_security_password_digest_read_with_nonce_and_created(version) -> None:
    header = header_of(
        username_token(
            f'<w:Password Type="{DIGEST}">abc=</w:Password>'
            f'<w:Nonce EncodingType="{B64}">bm9uY2U=</w:Nonce>'
            f'<u:Created xmlns:u="{WSU}">2026-03-01T08:30:00Z</u:Created>',
            version,
        ),
        version,
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


# -- the faults each version writes ---------------------------------------------------------


def fault12(document: bytes) -> dict:
    """A SOAP 1.2 Fault's parts: Code/Value, Subcode/Value (as a QName), Reason/Text and its
    language, the BusinessFault in Detail, and the header blocks."""
    root = etree.fromstring(document)
    assert root.tag == f"{{{ENV12}}}Envelope"
    fault = root.find(f"{{{ENV12}}}Body/{{{ENV12}}}Fault")
    assert [etree.QName(c).localname for c in fault] == ["Code", "Reason", "Detail"]
    value = fault.find(f"{{{ENV12}}}Code/{{{ENV12}}}Value")
    subcode = fault.find(f"{{{ENV12}}}Code/{{{ENV12}}}Subcode/{{{ENV12}}}Value")
    text = fault.find(f"{{{ENV12}}}Reason/{{{ENV12}}}Text")
    [data] = fault.find(f"{{{ENV12}}}Detail")
    return {
        "code": qname(value),
        "subcode": qname(subcode),
        "reason": text.text,
        "lang": text.get(XML_LANG),
        "detail": (
            data.tag,
            *(data.findtext(f"{{{COMMON_NS}}}{n}") for n in ("code", "message", "requestId")),
        ),
        "more": data.findtext(f"{{{COMMON_NS}}}detail"),
        "header": root.find(f"{{{ENV12}}}Header"),
    }


def qname(element) -> etree.QName:
    """The QName an element's text spells, its prefix resolved where it stands."""
    prefix, _, local = element.text.partition(":")
    return etree.QName(element.nsmap[prefix], local)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (errors.LOAN_NOT_FOUND, "Sender", 400),
        (errors.VALIDATION_FAILED, "Sender", 400),
        (errors.UNAUTHENTICATED, "Sender", 400),
        (errors.ACCOUNT_LOCKED, "Sender", 400),
        (errors.ACTION_MISMATCH, "Sender", 400),
        (errors.INTERNAL_ERROR, "Receiver", 500),
        (errors.SERVICE_UNAVAILABLE, "Receiver", 500),
        (errors.MUST_UNDERSTAND, "MustUnderstand", 500),
        (errors.METHOD_NOT_ALLOWED, "Sender", 405),
        (errors.PAYLOAD_TOO_LARGE, "Sender", 413),
        (errors.UNSUPPORTED_MEDIA_TYPE, "Sender", 415),
    ],
)
def test_a_soap_1_2_fault_for_each_class_of_code(error, code: str, status: int) -> None:
    """env:Sender for the caller's faults, env:Receiver for ours, SOAP's own codes; the
    catalogue code as the Subcode and in Detail; HTTP 400 for Sender, 500 for the others
    (part 2 §7.5.2), refusals of the HTTP request itself with their own status."""
    business = BusinessError(error, "it went <wrong> & \x00 away")
    response = fault_response(business, "rid-7", SOAP12)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    parts = fault12(response.get_data())
    assert parts["code"] == etree.QName(ENV12, code)
    assert parts["subcode"] == etree.QName(COMMON_NS, error.code)
    assert (parts["reason"], parts["lang"]) == (error.message, "en")
    detail = "it went <wrong> & \ufffd away"  # what a caller sent, made carriable
    assert parts["detail"] == (f"{{{COMMON_NS}}}BusinessFault", error.code, error.message, "rid-7")
    assert parts["more"] == detail


@pytest.mark.parametrize(
    ("error", "faultcode"),
    [
        (errors.LOAN_NOT_FOUND, "Client"),
        (errors.INTERNAL_ERROR, "Server"),
        (errors.MUST_UNDERSTAND, "MustUnderstand"),
        (errors.VERSION_MISMATCH, "VersionMismatch"),
    ],
)
def test_a_soap_1_1_fault_is_http_500_whatever_its_code(error, faultcode: str) -> None:
    """WS-I BP R1126."""
    response = fault_response(BusinessError(error), "r", SOAP11)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    code = etree.fromstring(response.get_data()).find(f".//{{{ENV}}}Fault/faultcode")
    prefix, _, local = code.text.partition(":")
    assert (code.nsmap[prefix], local) == (ENV, faultcode)


def supported(document: bytes) -> list[etree.QName]:
    """The envelopes an Upgrade header block names, in its order."""
    root = etree.fromstring(document)
    [header] = [c for c in root if etree.QName(c).localname == "Header"]
    [upgrade] = header
    assert upgrade.tag == f"{{{ENV12}}}Upgrade"
    names = []
    for s in upgrade:
        assert s.tag == f"{{{ENV12}}}SupportedEnvelope"
        prefix, _, local = s.get("qname").partition(":")
        names.append(etree.QName(s.nsmap[prefix], local))
    return names


@pytest.mark.parametrize("answer_in", [SOAP11, SOAP12], ids=["1.1", "1.2"])
def test_a_version_mismatch_names_the_envelopes_served_in_an_upgrade_block(answer_in) -> None:
    """SOAP 1.2 part 1 §5.4.7, in a SOAP 1.1 fault too (appendix A); HTTP 500 in both."""
    error = VersionMismatch("the Envelope is not in the SOAP 1.2 namespace", answer_in)
    response = fault_response(error, "r", SOAP12)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == answer_in.content_type
    document = response.get_data()
    assert etree.fromstring(document).tag == f"{{{answer_in.namespace}}}Envelope"
    assert supported(document) == [
        etree.QName(ENV12, "Envelope"),
        etree.QName(ENV, "Envelope"),
    ]


def test_a_soap_1_2_must_understand_fault_names_each_block_in_not_understood() -> None:
    """Part 1 §5.4.8: a NotUnderstood header block for each, its qname resolvable where it
    stands even when the block's namespace is SOAP's own."""
    blocks = [etree.QName("urn:tx", "Tx"), etree.QName(ENV12, "Odd")]
    parts = fault12(fault_document(NotUnderstood(blocks), "r", SOAP12))
    assert parts["code"] == etree.QName(ENV12, "MustUnderstand")
    named = []
    for b in parts["header"]:
        assert b.tag == f"{{{ENV12}}}NotUnderstood"
        prefix, _, local = b.get("qname").partition(":")
        named.append(etree.QName(b.nsmap[prefix], local))
    assert named == blocks
    soap11 = etree.fromstring(fault_document(NotUnderstood(blocks), "r", SOAP11))
    assert soap11.find(f"{{{ENV}}}Header") is None  # SOAP 1.1 has no such block


@pytest.mark.parametrize(
    ("content_type", "version"),
    [
        ("text/xml; charset=utf-8", SOAP11),
        ("Text/XML", SOAP11),
        ('application/soap+xml; charset=utf-8; action="urn:a"', SOAP12),
        ("Application/SOAP+XML", SOAP12),
        ("application/xml", SOAP11),  # refused (415) in SOAP 1.1's words
        ("", SOAP11),
    ],
)
def test_the_version_a_request_speaks_is_its_media_types(content_type: str, version) -> None:
    assert version_of(content_type) is version


# -- through the app ----------------------------------------------------------------------


def fault(response) -> dict[str, str]:
    """The data of a SOAP 1.1 fault, or a SOAP 1.2 one's, by the envelope's namespace."""
    root = etree.fromstring(response.data)
    if root.tag == f"{{{ENV12}}}Envelope":
        assert response.headers["Content-Type"] == "application/soap+xml; charset=utf-8"
        parts = fault12(response.data)
        _, code, message, rid = parts["detail"]
        assert parts["subcode"] == etree.QName(COMMON_NS, code)
        local = parts["code"].localname
        values = {"code": code, "message": message, "requestId": rid, "faultcode": local}
        return values | ({"detail": parts["more"]} if parts["more"] is not None else {})
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    detail = root.find(f"{{{ENV}}}Body/{{{ENV}}}Fault/detail/{{{COMMON_NS}}}BusinessFault")
    assert detail is not None, response.data
    values = {etree.QName(c).localname: c.text for c in detail}
    values["faultcode"] = root.findtext(f"{{{ENV}}}Body/{{{ENV}}}Fault/faultcode")
    return values


def post(client, body: bytes, content_type: str = XML, **headers):
    return client.post(
        "/services/LoanFacade", data=body, content_type=content_type, headers=headers
    )


@BOTH
def test_doctype_refused_through_the_app(client, version) -> None:
    body = b'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope(
        ns=version.namespace
    )
    response = post(client, body, version.content_type)
    assert response.status_code == version.sender_status
    values = fault(response)
    assert values["code"] == "MALFORMED_REQUEST"
    assert values["faultcode"].endswith(version.sender)
    assert "root:" not in response.get_data(as_text=True)


def test_a_soap_1_2_call_is_answered_in_soap_1_2(client) -> None:
    response = post(client, envelope(LIST_LOANS, ns=ENV12), SOAP_XML, **{"X-Request-Id": "s-1"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    assert response.headers["X-Request-Id"] == "s-1"
    root = etree.fromstring(response.data)
    assert root.tag == f"{{{ENV12}}}Envelope"
    [answer] = root.find(f"{{{ENV12}}}Body")
    assert answer.tag == f"{{{LOAN_NS}}}listLoansResponse"
    assert answer.findtext(f"{{{LOAN_NS}}}return/{{{LOAN_NS}}}page") == "1"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "faultcode", "code"),
    [
        (envelope(ns=ENV12), XML, 500, "soap:VersionMismatch", "VERSION_MISMATCH"),
        (envelope(ns=ENV), SOAP_XML, 500, "soap:VersionMismatch", "VERSION_MISMATCH"),
        (envelope(ns="urn:soap:3"), SOAP_XML, 500, "VersionMismatch", "VERSION_MISMATCH"),
        (
            envelope(header=block(SOAP11, 's:mustUnderstand="1"'), ns=ENV),
            XML,
            500,
            "soap:MustUnderstand",
            "MUST_UNDERSTAND",
        ),
        (
            envelope(header=block(SOAP12, 's:mustUnderstand="true"'), ns=ENV12),
            SOAP_XML,
            500,
            "MustUnderstand",
            "MUST_UNDERSTAND",
        ),
        (envelope(GET_LOAN + GET_LOAN), XML, 500, "soap:Client", "MALFORMED_REQUEST"),
        (envelope(GET_LOAN + GET_LOAN, ns=ENV12), SOAP_XML, 400, "Sender", "MALFORMED_REQUEST"),
        (envelope(), XML, 500, "soap:Client", "LOAN_NOT_FOUND"),
        (envelope(ns=ENV12), SOAP_XML, 400, "Sender", "LOAN_NOT_FOUND"),
    ],
    ids=[
        "1.2-envelope-as-text/xml",
        "1.1-envelope-as-soap+xml",
        "unknown-envelope-as-soap+xml",
        "1.1-must-understand",
        "1.2-must-understand",
        "1.1-two-calls",
        "1.2-two-calls",
        "1.1-business-fault",
        "1.2-business-fault",
    ],
)
def test_soap_faults_through_the_app(
    client, body: bytes, content_type: str, status: int, faultcode: str, code: str
) -> None:
    """SOAP's own fault codes and the caller's, each version's HTTP status, our BusinessFault
    in the detail still, and the request id in both."""
    response = post(client, body, content_type, **{"X-Request-Id": "f-1"})
    assert response.status_code == status
    values = fault(response)
    assert (values["faultcode"], values["code"], values["requestId"]) == (faultcode, code, "f-1")
    assert response.headers["X-Request-Id"] == "f-1"


@pytest.mark.parametrize(
    "action", [None, "", "http://p2p.hry.com/facade/p2p/LoanFacade/listLoansRequest"]
)
def test_the_soap_1_2_action_may_be_left_out_or_name_the_bodys_operation(client, action) -> None:
    content_type = SOAP_XML if action is None else f'{SOAP_XML}; action="{action}"'
    assert post(client, envelope(LIST_LOANS, ns=ENV12), content_type).status_code == 200


@pytest.mark.parametrize(
    "action",
    ["http://p2p.hry.com/facade/p2p/LoanFacade/getLoanRequest", "urn:listLoans", "listLoans"],
)
def test_a_soap_1_2_action_naming_another_operation_is_refused(client, action: str) -> None:
    content_type = f'{SOAP_XML}; action="{action}"'
    response = post(client, envelope(LIST_LOANS, ns=ENV12), content_type)
    assert response.status_code == 400
    values = fault(response)
    assert (values["faultcode"], values["code"]) == ("Sender", "ACTION_MISMATCH")
    assert "http://p2p.hry.com/facade/p2p/LoanFacade/listLoansRequest" in values["detail"]


def test_soap_1_1s_soapaction_header_is_not_read(client) -> None:
    """Its binding declares an empty soapAction (WS-I BP R2745); the Body names the call."""
    action = {"SOAPAction": '"http://p2p.hry.com/facade/p2p/LoanFacade/getLoanRequest"'}
    assert post(client, envelope(LIST_LOANS), XML, **action).status_code == 200


@pytest.mark.parametrize(
    ("content_type", "faultcode"),
    [
        ("application/xml", "soap:Client"),
        ("text/plain; charset=utf-8", "soap:Client"),
        ("multipart/related; type=application/xop+xml", "soap:Client"),
        ("text/xml; charset=iso-8859-1", "soap:Client"),
        ("application/soap+xml; charset=iso-8859-1", "Sender"),
    ],
)
def test_other_media_types_are_refused_with_415(client, content_type: str, faultcode: str):
    response = post(client, envelope(ns=ENV12), content_type)
    assert response.status_code == 415
    values = fault(response)
    assert (values["code"], values["faultcode"]) == ("UNSUPPORTED_MEDIA_TYPE", faultcode)


def test_a_soap_1_2_call_is_counted_and_logged_as_soap12(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="server.access")
    post(client, envelope(ns=ENV12), SOAP_XML, **{"X-Request-Id": "m-12"})
    [line] = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert line.startswith("m-12 soap12 LoanFacade.getLoan LOAN_NOT_FOUND ")
    labels = {"facade": "LoanFacade", "operation": "getLoan", "protocol": "soap12"}
    families = text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    counted = {
        s.labels["outcome"]: s.value
        for f in families
        for s in f.samples
        if s.name == "p2p_requests_total" and labels.items() <= s.labels.items()
    }
    assert counted == {"LOAN_NOT_FOUND": 1.0}


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


def test_a_wrong_method_with_the_soap_1_2_media_type_is_a_soap_1_2_fault(client) -> None:
    response = client.put("/services/LoanFacade", data=envelope(ns=ENV12), content_type=SOAP_XML)
    assert response.status_code == 405
    values = fault(response)
    assert (values["code"], values["faultcode"]) == ("METHOD_NOT_ALLOWED", "Sender")


def test_head_wsdl_is_answered_like_get(client) -> None:
    get = client.get("/services/LoanFacade?wsdl")
    head = client.head("/services/LoanFacade?wsdl")
    assert head.status_code == get.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"] == str(len(get.data))
    assert head.headers["X-Request-Id"]


def test_each_facades_wsdl_is_made_on_its_first_request_and_kept(client) -> None:
    """No WSDL is made at start; the first ?wsdl of a facade answers what export-contracts
    writes for it, and so does every later one, from the kept template."""
    app = client.application
    assert app.soap._wsdl == {}
    for bound in app.platform.facades:
        path = f"/services/{bound.name}"
        expected = Wsdl(bound).render("http://localhost", path)
        first, again = client.get(path + "?wsdl"), client.get(path + "?wsdl")
        assert first.status_code == again.status_code == 200
        assert first.data == again.data == expected
    assert sorted(app.soap._wsdl) == sorted(f.name for f in app.platform.facades)


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


@BOTH
def test_a_business_fault_carries_its_code_in_detail(client, version) -> None:
    response = post(client, envelope(ns=version.namespace), version.content_type)
    values = fault(response)
    assert values["code"] == "LOAN_NOT_FOUND"
    assert values["faultcode"].endswith(version.sender)
    assert values["requestId"] == response.headers["X-Request-Id"]


@BOTH
def test_a_validation_fault_names_the_element(client, version) -> None:
    body = f'<l:getLoan xmlns:l="{LOAN_NS}"><l:loanId>0</l:loanId></l:getLoan>'
    values = fault(post(client, envelope(body, ns=version.namespace), version.content_type))
    assert values["code"] == "VALIDATION_FAILED"
    assert values["detail"].startswith("loanId:")


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
