"""SOAP 1.1 endpoint: ``/services/<Facade>`` (POST a call, GET or HEAD ``?wsdl``; the
facade's document, ``?doc``, is served beside it by server/app.py).

Only a plain ``text/xml`` UTF-8 envelope is read, with a parser that loads no DTD, resolves
no entity and touches no network; any DOCTYPE is refused, so neither XXE nor entity expansion
nor silently dropped entity references can reach a service. SwA/MTOM (``multipart/related``)
and SOAP 1.2 (``application/soap+xml``) are refused with 415; a SOAP 1.2 envelope sent as
``text/xml`` gets the VersionMismatch fault of SOAP 1.1. The Envelope holds an optional Header
and one Body, nothing else (WS-I BP R1011), and a header marked mustUnderstand that we do not
process is refused with a MustUnderstand fault (BP R1027).

Faults carry the catalogue code inside ``<detail>``. The faultcode is SOAP 1.1's own for the
codes it names (:data:`FAULTCODES`), else Client or Server by the code's status. A fault
answering a call is HTTP 500 (BP R1126) unless the HTTP request itself is refused (wrong
method, body too large, media type); a missing WSDL is 404.
"""

import logging

from lxml import etree
from werkzeug.wrappers import Request, Response

from facade.types import COMMON_NS
from server.binding import carriable, shown
from server.body import read_body
from server.dispatcher import Credentials, Dispatcher, Invocation, request_id
from server.headers import error_headers, success_headers
from server.proxy import Proxies
from server.registry import BoundFacade
from server.wsdl import Wsdl
from server.xmlcodec import read_complex, write_value
from service import errors
from service.errors import BusinessError
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
_UNDERSTOOD = {f"{{{WSSE}}}Security", f"{{{COMMON_NS}}}AuthToken"}
_MUST_UNDERSTAND, _ACTOR = f"{{{ENV}}}mustUnderstand", f"{{{ENV}}}actor"
ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
ENVELOPE, HEADER, BODY = (f"{{{ENV}}}{name}" for name in ("Envelope", "Header", "Body"))

#: SOAP 1.1 (§4.4.1) faultcodes other than Client and Server, by the catalogue code they carry.
FAULTCODES = {
    errors.VERSION_MISMATCH.code: "soap:VersionMismatch",
    errors.MUST_UNDERSTAND.code: "soap:MustUnderstand",
}
# Refusals of the HTTP request itself keep their status; every other fault is HTTP 500.
_HTTP_REFUSALS = frozenset({405, 413, 415})


class _NoExternal(etree.Resolver):
    """Opens nothing a document names: libxml2 reads a local external DTD or parameter entity
    (``SYSTEM "file:///dev/stdin"`` blocks a worker) even with load_dtd=False."""

    def resolve(self, url, pubid, context):
        return self.resolve_string("", context)


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    parser.resolvers.add(_NoExternal())
    return parser


def _malformed(message: str) -> BusinessError:
    return BusinessError(errors.MALFORMED_REQUEST, message)


def _refuse_other_soap(request: Request) -> None:
    """Name what a caller probably meant when the Content-Type is another kind of SOAP."""
    if request.mimetype == "multipart/related":
        raise BusinessError(
            errors.UNSUPPORTED_MEDIA_TYPE, "SOAP with attachments and MTOM are not supported"
        )
    if request.mimetype == "application/soap+xml":
        raise BusinessError(errors.UNSUPPORTED_MEDIA_TYPE, "SOAP 1.2 is not supported; use 1.1")


def parse_envelope(body: bytes):
    """The Envelope's Header (or None) and the one element in its Body."""
    if not body.strip():
        raise _malformed("the request body is empty")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as e:
        # Never the parser's message: it quotes the input (a password in a CDATA section, a
        # line break that would start a forged log line). Where it failed is enough.
        line, column = e.position
        log.info("unreadable SOAP request: not well-formed at line %d, column %d", line, column)
        raise _malformed("the request is not well-formed XML") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _malformed("a DOCTYPE is not allowed")
    if etree.QName(root).localname == "Envelope" and root.tag != ENVELOPE:
        raise BusinessError(
            errors.VERSION_MISMATCH,
            "SOAP 1.2 envelopes are not supported; use SOAP 1.1"
            if root.tag == f"{{{ENV12}}}Envelope"
            else "the Envelope is not in the SOAP 1.1 namespace",
        )
    if root.tag != ENVELOPE:
        raise _malformed("the document is not a SOAP 1.1 Envelope")
    header, body_el = _header_and_body(root)
    _check_understood(header)
    children = [c for c in body_el if isinstance(c.tag, str)]
    if len(children) != 1:
        raise _malformed("the Body must hold exactly one element")
    return header, children[0]


def _header_and_body(envelope):
    """An optional Header, then one Body, and nothing else: no other element (WS-I BP R1011),
    no second Header or Body, no text between them or beside their entries."""
    header = body = None
    for child in envelope:
        if child.tag == HEADER and header is None and body is None:
            header = child
        elif child.tag == BODY and body is None:
            body = child
        elif child.tag == HEADER:
            raise _malformed("the Envelope may hold one Header, before the Body")
        elif child.tag == BODY:
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


def _check_understood(header) -> None:
    """Every header entry is namespace-qualified (SOAP 1.1 §4.2), and one marked
    mustUnderstand and meant for us (no actor: the ultimate receiver, or the next one) is
    one we process (§4.2.2, §4.2.3)."""
    for h in () if header is None else header:
        qname = etree.QName(h)
        if qname.namespace is None:
            raise _malformed(f"header {shown(qname.localname)} must be namespace-qualified")
        mandatory = h.get(_MUST_UNDERSTAND, "").strip() in ("1", "true")
        if mandatory and h.get(_ACTOR, ACTOR_NEXT) == ACTOR_NEXT and h.tag not in _UNDERSTOOD:
            raise BusinessError(
                errors.MUST_UNDERSTAND, f"header {shown(qname.localname)} is not understood"
            )


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


def _envelope():
    envelope = etree.Element(f"{{{ENV}}}Envelope", nsmap={"soap": ENV})
    return envelope, etree.SubElement(envelope, f"{{{ENV}}}Body")


def faultcode(error: BusinessError) -> str:
    return FAULTCODES.get(error.code) or ("soap:Client" if error.error.client else "soap:Server")


def fault_document(error: BusinessError, rid: str) -> bytes:
    envelope, body = _envelope()
    fault = etree.SubElement(body, f"{{{ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = faultcode(error)
    message = carriable(error.message)  # it may echo what a caller sent
    etree.SubElement(fault, "faultstring").text = message
    detail = etree.SubElement(
        etree.SubElement(fault, "detail"), f"{{{COMMON_NS}}}BusinessFault", nsmap={"c": COMMON_NS}
    )
    for name, value in (("code", error.code), ("message", message), ("requestId", rid)):
        etree.SubElement(detail, f"{{{COMMON_NS}}}{name}").text = value
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def fault_response(error: BusinessError, rid: str, status: int | None = None, headers=()):
    """The Fault for ``error``: HTTP 500 unless ``status`` says otherwise or the HTTP
    request itself was refused."""
    if status is None:
        status = error.error.status if error.error.status in _HTTP_REFUSALS else 500
    return Response(
        fault_document(error, rid),
        status,
        content_type="text/xml; charset=utf-8",
        headers=[("X-Request-Id", rid), *error_headers(error).items(), *headers],
    )


def asks(request: Request, query: str) -> bool:
    """Whether the query string names ``query`` in any case: ``?wsdl``, or ``?doc`` (the
    facade's document, served by server/app.py)."""
    return query in {k.lower() for k in request.args}


class SoapEndpoint:
    """Serves every bound facade over SOAP 1.1 through the shared dispatcher."""

    def __init__(
        self,
        facades: list[BoundFacade],
        dispatcher: Dispatcher,
        proxies: Proxies,
        max_body_bytes: int,
    ):
        self._facades = {f.name: f for f in facades}
        self._wsdl = {f.name: Wsdl(f) for f in facades}
        self._dispatcher = dispatcher
        self._proxies = proxies
        self._max_body = max_body_bytes

    def wsdl(self, name: str, environ) -> bytes | None:
        w = self._wsdl.get(name)
        return w and w.render(self._proxies.base_url(environ), f"/services/{name}")

    def __call__(self, request: Request, name: str) -> Response:
        """GET or HEAD ``?wsdl`` is the WSDL (werkzeug sends no body for HEAD); anything else
        is a call, which the dispatcher refuses unless it is a POST."""
        rid = request_id(request.headers.get("X-Request-Id"))
        if request.method in ("GET", "HEAD") and asks(request, "wsdl"):
            document = self.wsdl(name, request.environ)
            if document is None:
                return fault_response(
                    BusinessError(errors.UNKNOWN_OPERATION, "no such service"), rid, 404
                )
            return Response(document, mimetype="text/xml", headers={"X-Request-Id": rid})
        allow: list[str] = []
        inv = Invocation(
            protocol="soap",
            request_id=rid,
            client_addr=self._proxies.client_addr(request.environ),
            resolve=lambda inv: self._resolve(inv, request, name, allow),
            render=_render,
        )
        try:
            return self._dispatcher.dispatch(inv)
        except BusinessError as e:
            return fault_response(e, rid, headers=[("Allow", ", ".join(allow))] if allow else ())

    def _resolve(self, inv: Invocation, request: Request, name: str, allow: list[str]):
        if request.method != "POST":
            documents = asks(request, "wsdl") or asks(request, "doc")
            allow.extend(("GET", "HEAD", "POST") if documents else ("POST",))
            raise BusinessError(
                errors.METHOD_NOT_ALLOWED,
                "POST SOAP 1.1 calls here; the WSDL is at ?wsdl, the document at ?doc",
            )
        bound = self._facades.get(name)
        if bound is None:
            raise BusinessError(errors.UNKNOWN_OPERATION, "no such service")
        _refuse_other_soap(request)
        header, call = parse_envelope(read_body(request, "text/xml", self._max_body))
        qname = etree.QName(call)
        op = bound.operation(qname.localname) if qname.namespace == bound.facade.namespace else None
        if op is None:
            raise BusinessError(
                errors.UNKNOWN_OPERATION, f"{bound.name} has no operation {shown(qname.localname)}"
            )
        inv.operation = op
        inv.credentials = read_credentials(header)
        return lambda: read_complex(call, op.request, "")


def _render(inv: Invocation, result) -> Response:
    """The response to a call that succeeded (run by the dispatcher, inside its error funnel)."""
    op = inv.operation
    envelope, body = _envelope()
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
    return Response(
        etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
        200,
        content_type="text/xml; charset=utf-8",
        headers={"X-Request-Id": inv.request_id, **success_headers(op)},
    )
