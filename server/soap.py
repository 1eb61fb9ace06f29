"""SOAP 1.1 and SOAP 1.2 endpoint: ``/services/<Facade>`` (POST a call, GET or HEAD ``?wsdl``;
the facade's document, ``?doc``, is served beside it by server/app.py).

One address serves both versions, told apart as each version's HTTP binding tells them: a
``text/xml`` request is SOAP 1.1, an ``application/soap+xml`` one (with an optional ``action``
parameter) is SOAP 1.2. One address rather than one a version, because a client then reaches
the right endpoint whichever port of the WSDL it takes the address from: PHP's SoapClient
posts SOAP 1.2 to the first port's address, the SOAP 1.1 one. What the versions spell
differently is a :class:`SoapVersion` value; reading, checking, dispatching and answering are
one code path for both.

Only a UTF-8 envelope is read, with a parser that loads no DTD, resolves no entity and
touches no network; any DOCTYPE is refused, so neither XXE nor entity expansion nor silently
dropped entity references can reach a service. SwA/MTOM (``multipart/related``) and every
other media type are refused with 415. An envelope that is not the version its media type
names (a SOAP 1.2 envelope sent as ``text/xml``, a SOAP 1.1 one as ``application/soap+xml``,
an unknown namespace) gets a VersionMismatch fault with SOAP 1.2's Upgrade header block naming
the envelopes served here (SOAP 1.2 part 1 §5.4.7); a SOAP 1.1 envelope, or a SOAP 1.1
message, is answered in SOAP 1.1 (part 1 appendix A). The Envelope holds an optional Header
and one Body, nothing else (WS-I BP R1011, SOAP 1.2 part 1 §5.1), and a header block marked
mustUnderstand for us (no actor or role: the ultimate receiver; or the next node) that we do
not process is refused with a MustUnderstand fault (BP R1027; SOAP 1.2 names each such block in
a NotUnderstood header block, part 1 §5.4.8).

SOAP 1.1's SOAPAction is not read: its binding declares an empty soapAction (WS-I BP R2745)
and the Body's element names the operation. SOAP 1.2's binding declares an action an
operation (:func:`server.wsdl.soap_action`); the Body still names the operation, and an action
parameter, when a caller sends one, must be that operation's (ACTION_MISMATCH otherwise).

Faults carry the catalogue code inside the detail (SOAP 1.2: also as the Subcode's Value, a
QName in the common namespace). The fault code is SOAP's own for the codes it names
(:data:`FAULTCODES`), else the caller's (Client, Sender) or ours (Server, Receiver) by the
code's status. A fault answering a call is HTTP 500 in SOAP 1.1 (BP R1126); in SOAP 1.2 a
Sender fault is 400 and every other 500 (part 2 §7.5.2, table 20); in both unless the HTTP
request itself is refused (wrong method, body too large, media type); a missing WSDL is 404.
"""

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from lxml import etree
from werkzeug.wrappers import Request, Response

from facade.contract import COMMON_NS
from server import partnerauth
from server.answer import Answer
from server.binding import carriable, shown
from server.body import media_type, read_body, request_media_type
from server.dispatcher import Credentials, Dispatcher, Invocation, request_id
from server.headers import error_headers, success_headers
from server.language import negotiate
from server.proxy import Proxies
from server.registry import BoundFacade, BoundOperation
from server.wsdl import Wsdl, soap_action
from server.xmlcodec import read_complex, write_value
from service import errors
from service.derived import Derived
from service.errors import BusinessError
from service.language import DEFAULT
from service.wsse import PasswordDigest

log = logging.getLogger("server.soap")

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_UT_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = _UT_PROFILE + "#PasswordText"
PASSWORD_DIGEST = _UT_PROFILE + "#PasswordDigest"
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_UNDERSTOOD = {f"{{{WSSE}}}Security", f"{{{COMMON_NS}}}AuthToken", partnerauth.SOAP_HEADER}

#: The fault codes SOAP names itself (1.1 §4.4.1, 1.2 part 1 §5.4.6), by the catalogue code
#: they carry; every other code is the caller's fault or ours.
FAULTCODES = {
    errors.VERSION_MISMATCH.code: "VersionMismatch",
    errors.MUST_UNDERSTAND.code: "MustUnderstand",
}
# Refusals of the HTTP request itself keep their status, in both versions.
_HTTP_REFUSALS = frozenset({405, 413, 415})


@dataclass(frozen=True, eq=False)
class SoapVersion:
    """Everything SOAP 1.1 and SOAP 1.2 spell differently, as this endpoint meets it."""

    name: str  # as messages name the version: "1.1"
    protocol: str  # the dispatcher's protocol: what metrics, the access log and Sentry say
    namespace: str  # of the Envelope, its parts, its attributes and SOAP's fault codes
    prefix: str  # the Envelope namespace's prefix in what we write
    media_type: str
    role_attribute: str  # the header block attribute naming whom it is for: actor, role
    next_role: str  # the role every node on the path plays
    ultimate_receiver: str | None  # SOAP 1.2 names it; SOAP 1.1 only omits the actor
    sender: str  # the fault code of the caller's faults: Client, Sender
    receiver: str  # and of ours: Server, Receiver
    sender_status: int  # the HTTP status of a fault with the sender code; others are 500
    action_parameter: str | None  # the media type's parameter naming the action (SOAP 1.2)
    refuses_processing_instructions: bool  # SOAP 1.2 part 1 §5: a Sender fault SHOULD answer one
    names_not_understood: bool  # a MustUnderstand fault lists them in NotUnderstood blocks
    write_fault: Callable[["SoapVersion", etree._Element, BusinessError, str, str], None]

    def qname(self, local: str) -> str:
        return f"{{{self.namespace}}}{local}"

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"

    def fault_code(self, error: BusinessError) -> str:
        """The fault code of ``error`` as written in a fault: a QName with our prefix."""
        return f"{self.prefix}:{self._fault_code(error)}"

    def _fault_code(self, error: BusinessError) -> str:
        return FAULTCODES.get(error.code) or (self.sender if error.error.client else self.receiver)

    def fault_status(self, error: BusinessError) -> int:
        if error.error.status in _HTTP_REFUSALS:
            return error.error.status
        return self.sender_status if self._fault_code(error) == self.sender else 500

    def for_us(self, block) -> bool:
        """Whether a header block is meant for this node: one without a role (or actor) is
        for the ultimate receiver, which we are; "next" names every node."""
        role = block.get(self.qname(self.role_attribute))
        return role is None or role.strip() in (self.next_role, self.ultimate_receiver)

    def must_understand(self, block) -> bool:
        return block.get(self.qname("mustUnderstand"), "").strip() in ("1", "true")


def _business_fault(parent, error: BusinessError, message: str, rid: str) -> None:
    """Our typed fault data, the same in both versions' detail."""
    data = etree.SubElement(parent, f"{{{COMMON_NS}}}BusinessFault", nsmap={"c": COMMON_NS})
    detail = error.detail and carriable(error.detail)  # it may echo what a caller sent
    fields = (("code", error.code), ("message", message), ("requestId", rid), ("detail", detail))
    for name, value in fields:
        if value is not None:
            etree.SubElement(data, f"{{{COMMON_NS}}}{name}").text = value


def _fault11(version: SoapVersion, body, error: BusinessError, rid: str, language: str) -> None:
    fault = etree.SubElement(body, version.qname("Fault"))
    etree.SubElement(fault, "faultcode").text = version.fault_code(error)
    message = error.error.text(language)
    etree.SubElement(fault, "faultstring").text = message
    _business_fault(etree.SubElement(fault, "detail"), error, message, rid)


def _fault12(version: SoapVersion, body, error: BusinessError, rid: str, language: str) -> None:
    """Code (SOAP's Value, the catalogue code as its Subcode), Reason and Detail."""
    fault = etree.SubElement(body, version.qname("Fault"))
    code = etree.SubElement(fault, version.qname("Code"))
    etree.SubElement(code, version.qname("Value")).text = version.fault_code(error)
    subcode = etree.SubElement(code, version.qname("Subcode"))
    value = etree.SubElement(subcode, version.qname("Value"), nsmap={"c": COMMON_NS})
    value.text = f"c:{error.code}"
    message = error.error.text(language)
    text = etree.SubElement(etree.SubElement(fault, version.qname("Reason")), version.qname("Text"))
    text.set(_XML_LANG, language)
    text.text = message
    _business_fault(etree.SubElement(fault, version.qname("Detail")), error, message, rid)


SOAP11 = SoapVersion(
    name="1.1",
    protocol="soap",
    namespace=ENV,
    prefix="soap",
    media_type="text/xml",
    role_attribute="actor",
    next_role="http://schemas.xmlsoap.org/soap/actor/next",
    ultimate_receiver=None,
    sender="Client",
    receiver="Server",
    sender_status=500,
    action_parameter=None,
    refuses_processing_instructions=False,
    names_not_understood=False,
    write_fault=_fault11,
)
SOAP12 = SoapVersion(
    name="1.2",
    protocol="soap12",
    namespace=ENV12,
    prefix="env",
    media_type="application/soap+xml",
    role_attribute="role",
    next_role=f"{ENV12}/role/next",
    ultimate_receiver=f"{ENV12}/role/ultimateReceiver",
    sender="Sender",
    receiver="Receiver",
    sender_status=400,
    action_parameter="action",
    refuses_processing_instructions=True,
    names_not_understood=True,
    write_fault=_fault12,
)
#: The versions served, in our order of preference (the Upgrade header block lists them so).
VERSIONS = (SOAP12, SOAP11)
_BY_MEDIA_TYPE = {v.media_type: v for v in VERSIONS}
_BY_NAMESPACE = {v.namespace: v for v in VERSIONS}


def version_of(content_type: str) -> SoapVersion:
    """The version a request speaks by its Content-Type; SOAP 1.1 for any other media type,
    whose refusal (415) is then written as SOAP 1.1 writes faults."""
    return _BY_MEDIA_TYPE.get(media_type(content_type)[0], SOAP11)


class VersionMismatch(BusinessError):
    """VERSION_MISMATCH, answered in ``answer_in``: the version the sender can read."""

    def __init__(self, message: str, answer_in: SoapVersion):
        super().__init__(errors.VERSION_MISMATCH, message)
        self.answer_in = answer_in


class NotUnderstood(BusinessError):
    """MUST_UNDERSTAND for the header blocks ``blocks`` (QNames), all of them at once as SOAP
    1.2 asks (part 1 §2.6: one fault for every mandatory block not understood)."""

    def __init__(self, blocks: list[etree.QName]):
        names = ", ".join(shown(b.localname) for b in blocks)
        many = len(blocks) > 1
        super().__init__(
            errors.MUST_UNDERSTAND,
            f"header{'s' if many else ''} {names} {'are' if many else 'is'} not understood",
        )
        self.blocks = tuple(blocks)


class _NoExternal(etree.Resolver):
    """Opens nothing a document names: libxml2 reads a local external DTD or parameter entity
    (``SYSTEM "file:///dev/stdin"`` blocks a worker) even with load_dtd=False."""

    def resolve(self, url, pubid, context):
        return self.resolve_string("", context)


_PARSERS = threading.local()


def _parser(keep_processing_instructions: bool) -> etree.XMLParser:
    """This thread's parser of that kind, made on its first envelope: a parser is reused by one
    thread at a time (lxml's parsers are not shared between threads), and making one costs
    more than parsing a small envelope."""
    name = "keeping_pis" if keep_processing_instructions else "dropping_pis"
    parser = getattr(_PARSERS, name, None)
    if parser is None:
        parser = _new_parser(keep_processing_instructions)
        setattr(_PARSERS, name, parser)
    return parser


def _new_parser(keep_processing_instructions: bool) -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=not keep_processing_instructions,
        collect_ids=False,
    )
    parser.resolvers.add(_NoExternal())
    return parser


def _malformed(message: str) -> BusinessError:
    return BusinessError(errors.MALFORMED_REQUEST, message)


def _refuse_other_media(request: Request) -> None:
    """Only the two SOAP media types; name what a caller probably meant otherwise."""
    mimetype = request_media_type(request)[0]
    if mimetype == "multipart/related":
        raise BusinessError(
            errors.UNSUPPORTED_MEDIA_TYPE, "SOAP with attachments and MTOM are not supported"
        )
    if mimetype not in _BY_MEDIA_TYPE:
        raise BusinessError(
            errors.UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)",
        )


def parse_envelope(body: bytes, version: SoapVersion = SOAP11):
    """The Header (or None) and the one element in the Body of a ``version`` envelope."""
    if not body.strip():
        raise _malformed("the request body is empty")
    try:
        root = etree.fromstring(body, _parser(version.refuses_processing_instructions))
    except etree.XMLSyntaxError as e:
        # Never the parser's message: it quotes the input (a password in a CDATA section, a
        # line break that would start a forged log line). Where it failed is enough.
        line, column = e.position
        log.info("unreadable SOAP request: not well-formed at line %d, column %d", line, column)
        raise _malformed("the request is not well-formed XML") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _malformed("a DOCTYPE is not allowed")
    _check_version(root, version)
    if version.refuses_processing_instructions and root.getroottree().xpath(
        "//processing-instruction()"
    ):
        raise _malformed("a processing instruction is not allowed")
    header, body_el = _header_and_body(root, version)
    _check_understood(header, version)
    children = [c for c in body_el if isinstance(c.tag, str)]
    if len(children) != 1:
        raise _malformed("the Body must hold exactly one element")
    return header, children[0]


def _check_version(root, version: SoapVersion) -> None:
    """The document is an Envelope of ``version``. An Envelope of the other version is
    answered in SOAP 1.1 either way: a SOAP 1.1 envelope by appendix A of SOAP 1.2 part 1,
    a SOAP 1.2 one because ``text/xml`` made the message SOAP 1.1."""
    if root.tag == version.qname("Envelope"):
        return
    qname = etree.QName(root)
    if qname.localname != "Envelope":
        raise _malformed(f"the document is not a SOAP {version.name} Envelope")
    sent = _BY_NAMESPACE.get(qname.namespace)
    if sent is None:
        raise VersionMismatch(f"the Envelope is not in the SOAP {version.name} namespace", version)
    raise VersionMismatch(
        f"a SOAP {sent.name} envelope is sent as {sent.media_type}, not {version.media_type}",
        SOAP11,
    )


def _header_and_body(envelope, version: SoapVersion):
    """An optional Header, then one Body, and nothing else: no other element (WS-I BP R1011,
    SOAP 1.2 part 1 §5.1), no second Header or Body, no text between them or beside their
    entries."""
    header_tag, body_tag = version.qname("Header"), version.qname("Body")
    header = body = None
    for child in envelope:
        if child.tag == header_tag and header is None and body is None:
            header = child
        elif child.tag == body_tag and body is None:
            body = child
        elif child.tag == header_tag:
            raise _malformed("the Envelope may hold one Header, before the Body")
        elif child.tag == body_tag:
            raise _malformed("the Envelope may hold only one Body")
        else:
            raise _malformed("the Envelope may hold only a Header and a Body")
    if body is None:
        raise _malformed("the Envelope has no Body")
    for element, name in ((envelope, "Envelope"), (header, "Header"), (body, "Body")):
        if element is not None and _has_text(element):
            raise _malformed(f"the {name} must not contain text")
    return header, body


def _has_text(element) -> bool:
    return any(t and t.strip() for t in (element.text, *(c.tail for c in element)))


def _check_understood(header, version: SoapVersion) -> None:
    """Every header block is namespace-qualified (SOAP 1.1 §4.2, 1.2 part 1 §5.2.1), and
    every one marked mustUnderstand and meant for us is one we process (1.1 §4.2.2, §4.2.3;
    1.2 part 1 §5.2.2, §5.2.3)."""
    refused = []
    for h in () if header is None else header:
        qname = etree.QName(h)
        if qname.namespace is None:
            raise _malformed(f"header {shown(qname.localname)} must be namespace-qualified")
        if version.must_understand(h) and version.for_us(h) and h.tag not in _UNDERSTOOD:
            refused.append(qname)
    if refused:
        raise NotUnderstood(refused)


def read_credentials(header) -> Credentials:
    if header is None:
        return Credentials()
    token = header.findtext(f"{{{COMMON_NS}}}AuthToken/{{{COMMON_NS}}}token")
    if token is not None:
        return Credentials(token=token.strip())
    ut = header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if ut is None:
        return Credentials()
    username = ut.findtext(f"{{{WSSE}}}Username")
    password = ut.find(f"{{{WSSE}}}Password")
    if not username or password is None:
        raise BusinessError(errors.UNAUTHENTICATED, "UsernameToken needs Username and Password")
    kind = password.get("Type", PASSWORD_TEXT)
    if kind == PASSWORD_TEXT:
        return Credentials(username=username.strip(), password=password.text or "")
    if kind != PASSWORD_DIGEST:
        raise BusinessError(
            errors.UNAUTHENTICATED, "the Password Type must be PasswordText or PasswordDigest"
        )
    nonce = ut.find(f"{{{WSSE}}}Nonce")
    created = ut.findtext(f"{{{WSU}}}Created")
    if (
        nonce is None
        or created is None
        or nonce.get("EncodingType", BASE64_BINARY) != BASE64_BINARY
    ):
        raise BusinessError(
            errors.UNAUTHENTICATED, "a PasswordDigest needs a Base64Binary Nonce and a wsu:Created"
        )
    digest = PasswordDigest(password.text or "", nonce.text or "", created)
    return Credentials(username=username.strip(), digest=digest)


def _check_action(request: Request, version: SoapVersion, op: BoundOperation) -> None:
    """The action a caller sent, if any, is the one the WSDL declares for the operation the
    Body names; an empty one says nothing (PHP's SoapClient sends SOAP 1.1's empty
    soapAction as the action of its SOAP 1.2 calls)."""
    if version.action_parameter is None:
        return
    action = request_media_type(request)[1].get(version.action_parameter, "")
    if action and action != soap_action(op):
        raise BusinessError(
            errors.ACTION_MISMATCH, f"the action is not that of {op.name} ({soap_action(op)})"
        )


def _envelope(version: SoapVersion):
    return etree.Element(version.qname("Envelope"), nsmap={version.prefix: version.namespace})


def _fault_header(envelope, error: BusinessError, version: SoapVersion) -> None:
    """The header blocks SOAP 1.2 defines to tell more of a fault: Upgrade, the envelopes this
    endpoint reads, for a VersionMismatch (part 1 §5.4.7; in SOAP 1.1 too, appendix A), and
    one NotUnderstood for each block a MustUnderstand fault refused (part 1 §5.4.8). Built in
    place, so each keeps the declaration of the prefix its qname attribute uses."""
    if isinstance(error, VersionMismatch):
        header = etree.SubElement(envelope, version.qname("Header"))
        upgrade = etree.SubElement(
            header, f"{{{ENV12}}}Upgrade", nsmap={SOAP12.prefix: SOAP12.namespace}
        )
        for v in VERSIONS:
            etree.SubElement(
                upgrade,
                f"{{{ENV12}}}SupportedEnvelope",
                qname=f"{v.prefix}:Envelope",
                nsmap={v.prefix: v.namespace},
            )
    elif isinstance(error, NotUnderstood) and version.names_not_understood:
        header = etree.SubElement(envelope, version.qname("Header"))
        for block in error.blocks:
            etree.SubElement(
                header,
                f"{{{ENV12}}}NotUnderstood",
                qname=f"h:{block.localname}",
                nsmap={"h": block.namespace},
            )


def fault_document(
    error: BusinessError, rid: str, version: SoapVersion = SOAP11, language: str = DEFAULT
) -> bytes:
    envelope = _envelope(version)
    _fault_header(envelope, error, version)
    body = etree.SubElement(envelope, version.qname("Body"))
    version.write_fault(version, body, error, rid, language)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def fault_response(
    error: BusinessError,
    rid: str,
    version: SoapVersion = SOAP11,
    status: int | None = None,
    headers=(),
    language: str = DEFAULT,
) -> Response:
    """The Fault for ``error`` in ``version`` (or the version a VersionMismatch is answered
    in), with the version's HTTP status for it unless ``status`` says otherwise, its message
    in ``language``."""
    if isinstance(error, VersionMismatch):
        version = error.answer_in
    return Response(
        fault_document(error, rid, version, language),
        status or version.fault_status(error),
        content_type=version.content_type,
        headers=[
            ("X-Request-Id", rid),
            ("Content-Language", language),
            *error_headers(error).items(),
            *headers,
        ],
    )


def asks(request: Request, query: str) -> bool:
    """Whether the query string names ``query`` in any case: ``?wsdl``, or ``?doc`` (the
    facade's document, served by server/app.py)."""
    return query in {k.lower() for k in request.args}


class SoapEndpoint:
    """Serves every bound facade over SOAP 1.1 and 1.2 through the shared dispatcher."""

    def __init__(
        self,
        facades: list[BoundFacade],
        dispatcher: Dispatcher,
        proxies: Proxies,
        max_body_bytes: int,
    ):
        self._facades = {f.name: f for f in facades}
        self._wsdl: dict[str, Wsdl] = {}  # by facade, each made by its first ?wsdl
        self._dispatcher = dispatcher
        self._proxies = proxies
        self._max_body = max_body_bytes

    def wsdl(self, name: str, environ) -> bytes | None:
        """The facade's WSDL with the caller's address in it; None for an unknown facade. Its
        template is made on the first request for it, not at start (two threads asking at
        once may both make it: the same bytes, one kept)."""
        w = self._wsdl.get(name)
        if w is None:
            bound = self._facades.get(name)
            if bound is None:
                return None
            w = self._wsdl.setdefault(name, Wsdl(bound))
        return w.render(self._proxies.base_url(environ), f"/services/{name}")

    def __call__(self, request: Request, name: str) -> Answer | Response:
        """GET or HEAD ``?wsdl`` is the WSDL (werkzeug sends no body for HEAD); anything else
        is a call, which the dispatcher refuses unless it is a POST."""
        rid = request_id(request.headers.get("X-Request-Id"))
        version = version_of(request.headers.get("Content-Type", ""))
        language = negotiate(request.headers.get("Accept-Language"))
        if request.method in ("GET", "HEAD") and asks(request, "wsdl"):
            document = self.wsdl(name, request.environ)
            if document is None:
                error = BusinessError(errors.UNKNOWN_OPERATION, "no such service")
                return fault_response(error, rid, version, 404, language=language)
            return Response(document, mimetype="text/xml", headers={"X-Request-Id": rid})
        allow: list[str] = []
        inv = Invocation(
            protocol=version.protocol,
            request_id=rid,
            client_addr=self._proxies.client_addr(request.environ),
            resolve=lambda inv: self._resolve(inv, request, name, version, allow),
            render=functools.partial(_render, version),
            language=language,
        )
        try:
            response: Answer | Response = cast(Answer, self._dispatcher.dispatch(inv))
        except BusinessError as e:  # the dispatcher's answer is what _render made
            allowed = [("Allow", ", ".join(allow))] if allow else ()
            response = fault_response(e, rid, version, headers=allowed, language=language)
        return partnerauth.finish(inv, response)

    def _resolve(
        self,
        inv: Invocation,
        request: Request,
        name: str,
        version: SoapVersion,
        allow: list[str],
    ):
        if request.method != "POST":
            documents = asks(request, "wsdl") or asks(request, "doc")
            allow.extend(("GET", "HEAD", "POST") if documents else ("POST",))
            raise BusinessError(
                errors.METHOD_NOT_ALLOWED,
                "POST SOAP calls here; the WSDL is at ?wsdl, the document at ?doc",
            )
        bound = self._facades.get(name)
        if bound is None:
            raise BusinessError(errors.UNKNOWN_OPERATION, "no such service")
        _refuse_other_media(request)
        body = read_body(request, version.media_type, self._max_body)
        header, call = parse_envelope(body, version)
        qname = etree.QName(call)
        op = bound.operation(qname.localname) if qname.namespace == bound.facade.namespace else None
        if op is None:
            raise BusinessError(
                errors.UNKNOWN_OPERATION, f"{bound.name} has no operation {shown(qname.localname)}"
            )
        _check_action(request, version, op)
        inv.operation = op
        if op.operation.partner:  # signed by a partner app, never a member's credentials
            inv.credentials = Credentials(partner=partnerauth.soap_request(request, header, call))
        else:
            inv.credentials = read_credentials(header)
        return lambda: read_complex(call, op.request, "")


#: Answers' bodies by the result they were written from (service/derived.py), per operation
#: and SOAP version: a cached read's value, shared by every caller who sees it alike, is
#: written once.
_BODIES = Derived()


def _render(version: SoapVersion, inv: Invocation, result) -> Answer:
    """The answer to a call that succeeded (run by the dispatcher, inside its error funnel)."""
    op = inv.operation
    body = _BODIES.get(result, (op, version), lambda: _document(version, op, result))
    headers = {
        "Content-Type": version.content_type,
        "X-Request-Id": inv.request_id,
        "Content-Language": inv.language,
        **success_headers(op),
    }
    return Answer(body, 200, headers)


def _document(version: SoapVersion, op: BoundOperation, result) -> bytes:
    """The envelope of `op`'s answer `result`."""
    envelope = _envelope(version)
    body = etree.SubElement(envelope, version.qname("Body"))
    wrapper = etree.SubElement(
        body, f"{{{op.namespace}}}{op.response.name}", nsmap={"tns": op.namespace}
    )
    f = op.result
    if f is not None and result is not None:
        if f.repeated:
            for item in result:
                write_value(wrapper, f, op.namespace, item)
        else:
            write_value(wrapper, f, op.namespace, result)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
