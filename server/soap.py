"""SOAP 1.1 endpoint: ``/services/<Facade>`` (POST a call, GET ``?wsdl``).

Only a plain ``text/xml`` UTF-8 envelope is read, with a parser that loads no DTD, resolves
no entity and touches no network; any DOCTYPE is refused, so neither XXE nor entity expansion
nor silently dropped entity references can reach a service. SwA/MTOM (``multipart/related``)
and SOAP 1.2 are refused. Faults carry the catalogue code inside ``<detail>``.
"""

import logging

from lxml import etree
from werkzeug.wrappers import Request, Response

from facade.types import COMMON_NS
from server.binding import carriable, shown
from server.body import read_body
from server.dispatcher import Credentials, Dispatcher, Invocation, request_id
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
        log.info("unreadable SOAP request: %s", str(e)[:200])
        raise _malformed("the request is not well-formed XML") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _malformed("a DOCTYPE is not allowed")
    if root.tag == f"{{{ENV12}}}Envelope":
        raise _malformed("SOAP 1.2 envelopes are not supported; use SOAP 1.1")
    if root.tag != f"{{{ENV}}}Envelope":
        raise _malformed("the document is not a SOAP 1.1 Envelope")
    header = root.find(f"{{{ENV}}}Header")
    body_el = root.find(f"{{{ENV}}}Body")
    if body_el is None:
        raise _malformed("the Envelope has no Body")
    children = [c for c in body_el if isinstance(c.tag, str)]
    if len(children) != 1:
        raise _malformed("the Body must hold exactly one element")
    return header, children[0]


def read_credentials(header) -> Credentials:
    if header is None:
        return Credentials()
    for h in header:
        if h.get(f"{{{ENV}}}mustUnderstand") in ("1", "true") and h.tag not in _UNDERSTOOD:
            raise _malformed(f"header {shown(etree.QName(h).localname)} is not understood")
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


def fault_document(error: BusinessError, rid: str) -> bytes:
    envelope, body = _envelope()
    fault = etree.SubElement(body, f"{{{ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = (
        "soap:Client" if error.error.client else "soap:Server"
    )
    message = carriable(error.message)  # it may echo what a caller sent
    etree.SubElement(fault, "faultstring").text = message
    detail = etree.SubElement(
        etree.SubElement(fault, "detail"), f"{{{COMMON_NS}}}BusinessFault", nsmap={"c": COMMON_NS}
    )
    for name, value in (("code", error.code), ("message", message), ("requestId", rid)):
        etree.SubElement(detail, f"{{{COMMON_NS}}}{name}").text = value
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


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
        rid = request_id(request.headers.get("X-Request-Id"))
        if request.method == "GET" and "wsdl" in {k.lower() for k in request.args}:
            document = self.wsdl(name, request.environ)
            if document is None:
                return Response("no such service\n", 404, mimetype="text/plain")
            return Response(document, mimetype="text/xml", headers={"X-Request-Id": rid})
        if request.method != "POST":
            return Response(
                "POST SOAP 1.1 calls here; the WSDL is at ?wsdl\n",
                405,
                mimetype="text/plain",
                headers={"Allow": "GET, POST"},
            )
        bound = self._facades.get(name)
        inv = Invocation(
            protocol="soap",
            request_id=rid,
            client_addr=self._proxies.client_addr(request.environ),
            resolve=lambda inv: self._resolve(inv, request, bound),
        )
        try:
            result = self._dispatcher.dispatch(inv)
        except BusinessError as e:
            status = e.error.status if e.error.status in (413, 415) else 500
            return Response(
                fault_document(e, rid),
                status,
                content_type="text/xml; charset=utf-8",
                headers={"X-Request-Id": rid},
            )
        return Response(
            self._response(inv.operation, result),
            200,
            content_type="text/xml; charset=utf-8",
            headers={"X-Request-Id": rid},
        )

    def _resolve(self, inv: Invocation, request: Request, bound: BoundFacade | None):
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

    @staticmethod
    def _response(op, result) -> bytes:
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
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
