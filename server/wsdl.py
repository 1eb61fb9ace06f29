"""WSDL 1.1 for a facade: deterministic, in WS-I Basic Profile order, documented.

Document/literal wrapped, as CXF writes it: each operation has a request element named after
it and a response element ``<name>Response`` holding ``return``; every operation may fail with
the typed ``BusinessFault`` (its data inside the fault's detail); an operation that takes a
member's credentials declares the ``AuthToken`` header and refers to the WS-Policy saying which
credentials it takes (server/wspolicy.py). Required fields carry minOccurs="1" and nothing is
nillable. Two SOAP bindings of the one portType, SOAP 1.1 and SOAP 1.2 (the WSDL 1.1 binding
extension for SOAP 1.2), each with a port of the service at the facade's one address
(server/soap.py tells the versions apart by the Content-Type). The document is built once per
facade; only the addresses differ per caller, filled in by :meth:`Wsdl.render`.
"""

from collections.abc import Callable
from graphlib import TopologicalSorter
from typing import NamedTuple
from xml.sax.saxutils import escape

from lxml import etree

from facade.contract import COMMON_NS
from server import wspolicy
from server.binding import TEXT_RULES, XS, Complex, Simple
from server.registry import BoundFacade, BoundOperation
from service.errors import CATALOGUE

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
_ADDRESS = "urn:p2p:address-placeholder"

AUTH_DOC = (
    "Authentication: send the token from MemberFacade.login in the AuthToken SOAP header, or a "
    "WS-Security UsernameToken (wsse:Security/wsse:UsernameToken) whose Username is the "
    "member's mobile number, with either the login password as PasswordText (over HTTPS only) "
    "or a PasswordDigest = Base64(SHA-1(nonce + created + apiSecret)) with a wsse:Nonce (Base64, "
    "16 to 64 random bytes, never reused) and a wsu:Created (UTC, within 300 seconds of the "
    "server's clock by default). The apiSecret comes from MemberFacade.rotateApiSecret, shown "
    "once; the login password never makes a valid digest. A reused nonce or a stale Created is "
    "refused (UNAUTHENTICATED). Operations that name no roles are public. Each binding "
    "operation refers to the WS-Policy stating the credentials it takes: MemberAuthentication "
    "(required) or OptionalMemberAuthentication (a public operation whose answer depends on "
    "who asks); an operation with neither takes none and declares no AuthToken header."
)
PARTNER_DOC = (
    "Partner operations (policy PartnerSignature) are called by a partner app's server, never "
    "with a member's credentials: send the PartnerSignature SOAP header (appId, keyId, "
    "timestamp in seconds, nonce, signature). The signature is HMAC-SHA256 (an HMAC key) or "
    "RSASSA-PKCS1-v1_5 with SHA-256 (an RSA key), Base64, of the canonical string: the lines "
    "P2P-PARTNER-V1, POST, the endpoint's path, the query string (empty), appId, keyId, "
    "timestamp, nonce and the lower-case hex SHA-256 of the exclusive XML canonical form "
    "(C14N 1.0, no comments) of the soap:Body element, joined by line feeds. Answers carry "
    "X-P2P-Key-Id, X-P2P-Timestamp, X-P2P-Nonce and X-P2P-Signature HTTP headers signing the "
    "raw answer. The platform's README (Signed partner calls) has a worked example."
)


def soap_action(op: BoundOperation) -> str:
    """The SOAP 1.2 action of ``op``: the action WS-Addressing gives an input that names none,
    ``<namespace>/<portType>/<input name>`` with the input named ``<operation>Request``
    (WS-Addressing 1.0 Metadata §4.4.4, WSDL 1.1 §2.4.5), e.g.
    ``http://p2p.hry.com/facade/p2p/LoanFacade/getLoanRequest``. An absolute URI, as the action
    parameter of application/soap+xml is (RFC 3902), one an operation; and the one JAX-WS sends
    on a SOAP 1.2 port whatever the binding declares (its SEI holds SOAP 1.1's empty
    soapAction), so a generated Java client agrees with the WSDL."""
    return f"{op.namespace.rstrip('/')}/{op.facade_name}/{op.name}Request"


class _Binding(NamedTuple):
    """A SOAP binding of a facade's portType and its port."""

    namespace: str  # of the WSDL binding extension: soap or soap12
    binding: str  # the binding's name after the facade's
    port: str  # the port's name after the facade's: generated clients name methods after it
    action: Callable[[BoundOperation], str]  # an operation's soapAction


#: SOAP 1.1's binding and port keep the names they always had. Its soapAction is empty (WS-I
#: BP R2745: the Body names the operation); SOAP 1.2's is the operation's own action, which
#: server/soap.py checks when a caller sends one.
_BINDINGS = (
    _Binding(SOAP, "SoapBinding", "Port", lambda op: ""),
    _Binding(SOAP12, "Soap12Binding", "Soap12Port", soap_action),
)


def prefix(ns: str, tns: str) -> str:
    """The prefix a namespace has in the WSDL of the facade whose namespace is ``tns`` (and in
    the examples of its document): tns for its own, else the namespace's last segment."""
    return "tns" if ns == tns else ns.rstrip("/").rsplit("/", 1)[-1]


class _Types:
    """Collects the complex and named simple types a facade uses, by namespace."""

    def __init__(self):
        self.complex: dict[str, dict[str, Complex]] = {}
        self.simple: dict[str, dict[str, Simple]] = {}

    def add(self, t) -> None:
        if isinstance(t, Simple):
            if t.name:
                self.simple.setdefault(t.namespace, {})[t.name] = t
            return
        known = self.complex.setdefault(t.namespace, {})
        if t.name in known:
            return
        known[t.name] = t
        for f in t.fields:
            self.add(f.type)

    def namespaces(self) -> list[str]:
        return sorted(set(self.complex) | set(self.simple))


def _references(t: Complex) -> set[str]:
    """The namespaces of the named types that the fields of ``t`` use."""
    return {f.type.namespace for f in t.fields if isinstance(f.type, Complex) or f.type.name}


def _schema_order(uses: dict[str, set[str]]) -> list[str]:
    """The namespaces, each after those it imports (ties in namespace order), so that a client
    compiling the schemas one by one, as JAX-WS wsimport and strict validators do, has met
    every import before its use. Imports in a cycle have no such order: CycleError."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for ns in sorted(uses):
        sorter.add(ns, *sorted(uses[ns] - {ns}))
    return list(sorter.static_order())


def _doc(parent, text: str, ns: str = XS) -> None:
    if not text:
        return
    if ns == XS:
        annotation = etree.SubElement(parent, f"{{{XS}}}annotation")
        etree.SubElement(annotation, f"{{{XS}}}documentation").text = text
    else:
        etree.SubElement(parent, f"{{{WSDL}}}documentation").text = text


def _facets(restriction, t: Simple) -> None:
    facets = [
        ("minLength", t.min_len),
        ("maxLength", t.max_len),
        ("pattern", t.pattern),
        ("totalDigits", t.total_digits),
        ("fractionDigits", t.fraction_digits),
        ("minInclusive", t.ge),
        ("maxInclusive", t.le),
    ]
    for allowed in t.values:
        etree.SubElement(restriction, f"{{{XS}}}enumeration", value=allowed)
    for name, value in facets:
        if value is not None:
            etree.SubElement(restriction, f"{{{XS}}}{name}", value=str(value))


def _has_facets(t: Simple) -> bool:
    return any(
        v is not None
        for v in (t.min_len, t.max_len, t.pattern, t.total_digits, t.fraction_digits, t.ge, t.le)
    )


class _Writer:
    def __init__(self, tns: str):
        self.tns = tns

    def qname(self, ns: str, name: str) -> str:
        return f"{prefix(ns, self.tns)}:{name}"

    def element(self, parent, f) -> None:
        e = etree.SubElement(parent, f"{{{XS}}}element", name=f.name)
        e.set("minOccurs", "1" if f.required else "0")
        if f.repeated:
            e.set("maxOccurs", "unbounded")
        _doc(e, f.doc)
        t = f.type
        if isinstance(t, Complex) or t.name:
            e.set("type", self.qname(t.namespace, t.name))
        elif _has_facets(t):
            simple = etree.SubElement(e, f"{{{XS}}}simpleType")
            _facets(etree.SubElement(simple, f"{{{XS}}}restriction", base=f"xs:{t.xsd_base}"), t)
        else:
            e.set("type", f"xs:{t.xsd_base}")

    def complex_type(self, schema, t: Complex) -> None:
        ct = etree.SubElement(schema, f"{{{XS}}}complexType", name=t.name)
        _doc(ct, t.doc)
        sequence = etree.SubElement(ct, f"{{{XS}}}sequence")
        for f in t.fields:
            self.element(sequence, f)

    def simple_type(self, schema, t: Simple) -> None:
        st = etree.SubElement(schema, f"{{{XS}}}simpleType", name=t.name)
        _facets(etree.SubElement(st, f"{{{XS}}}restriction", base=f"xs:{t.xsd_base}"), t)


class Wsdl:
    """The WSDL of one bound facade."""

    def __init__(self, bound: BoundFacade):
        self._template = self._build(bound)

    def render(self, base_url: str, path: str) -> bytes:
        address = escape(base_url + path, {'"': "&quot;"})  # it sits in a "-quoted attribute
        return self._template.replace(_ADDRESS.encode(), address.encode())

    @staticmethod
    def _build(bound: BoundFacade) -> bytes:
        tns = bound.facade.namespace
        name = bound.name
        fault, header, signature = bound.shared.fault, bound.shared.token, bound.shared.signature
        partner = any(op.operation.partner for op in bound.operations)
        member = not all(op.operation.partner for op in bound.operations)
        types = _Types()
        wrappers = []
        for op in bound.operations:
            wrappers += [op.request, op.response]
            for f in op.request.fields + op.response.fields:
                types.add(f.type)
        types.add(fault)
        headers = [h for h, used in ((header, member), (signature, partner)) if used]
        for h in headers:
            types.add(h)
        namespaces = sorted(set(types.namespaces()) | {tns})
        nsmap = {"wsdl": WSDL, "soap": SOAP, "soap12": SOAP12, "xs": XS, **wspolicy.NAMESPACES}
        nsmap.update({prefix(ns, tns): ns for ns in namespaces})
        w = _Writer(tns)

        root = etree.Element(f"{{{WSDL}}}definitions", nsmap=nsmap, name=name, targetNamespace=tns)
        codes = ", ".join(sorted(CATALOGUE))
        ports = (
            f"Ports: {name}Port is SOAP 1.1 (Content-Type text/xml), {name}Soap12Port is SOAP "
            "1.2 (Content-Type application/soap+xml), at the same address."
        )
        auth = "\n\n".join(d for d, used in ((AUTH_DOC, member), (PARTNER_DOC, partner)) if used)
        _doc(
            root,
            f"{bound.facade.doc}\n\n{ports}\n\n{auth}\n\nBusinessFault codes: {codes}.",
            WSDL,
        )
        policies = {op.name: wspolicy.policy_of(op) for op in bound.operations}
        wspolicy.add_policies(root, set(policies.values()) - {None})

        # types: each schema imports exactly the namespaces it uses, and comes after them
        uses: dict[str, set[str]] = {ns: set() for ns in namespaces}
        for ns, complex_types in types.complex.items():
            for t in complex_types.values():
                uses[ns] |= _references(t)
        for t in wrappers:
            uses[tns] |= _references(t)
        types_el = etree.SubElement(root, f"{{{WSDL}}}types")
        for ns in _schema_order(uses):
            schema = etree.SubElement(
                types_el, f"{{{XS}}}schema", targetNamespace=ns, elementFormDefault="qualified"
            )
            for other in sorted(uses[ns] - {ns}):
                etree.SubElement(schema, f"{{{XS}}}import", namespace=other)
            for simple in sorted(types.simple.get(ns, {}).values(), key=lambda t: t.name):
                w.simple_type(schema, simple)
            for complex_ in sorted(types.complex.get(ns, {}).values(), key=lambda t: t.name):
                w.complex_type(schema, complex_)
            if ns == tns:
                for wrapper in wrappers:
                    w.complex_type(schema, wrapper)
                for wrapper in wrappers:
                    etree.SubElement(
                        schema, f"{{{XS}}}element", name=wrapper.name, type=f"tns:{wrapper.name}"
                    )
            if ns == COMMON_NS:
                for element in (fault, *headers):
                    etree.SubElement(
                        schema,
                        f"{{{XS}}}element",
                        name=element.name,
                        type=w.qname(ns, element.name),
                    )
                _doc(schema, TEXT_RULES)

        # messages
        def message(msg_name: str, part: str, element: str) -> None:
            m = etree.SubElement(root, f"{{{WSDL}}}message", name=msg_name)
            etree.SubElement(m, f"{{{WSDL}}}part", name=part, element=element)

        for op in bound.operations:
            message(op.request.name, "parameters", f"tns:{op.request.name}")
            message(op.response.name, "parameters", f"tns:{op.response.name}")
        message(fault.name, "fault", w.qname(COMMON_NS, fault.name))
        for h in headers:
            message(h.name, "auth", w.qname(COMMON_NS, h.name))

        # portType
        port_type = etree.SubElement(root, f"{{{WSDL}}}portType", name=name)
        for op in bound.operations:
            o = etree.SubElement(port_type, f"{{{WSDL}}}operation", name=op.name)
            if op.operation.partner:
                roles = f"partner apps, signed, scope {op.operation.partner_scope}"
            elif op.roles is None:
                roles = "public"
            else:
                roles = "roles: " + ", ".join(sorted(op.roles))
            deprecated = "Deprecated. " if op.operation.deprecated else ""
            codes = ", ".join(sorted(op.fault_codes))
            _doc(o, f"{deprecated}{op.operation.doc} ({roles})\n\nFault codes: {codes}.", WSDL)
            etree.SubElement(o, f"{{{WSDL}}}input", message=f"tns:{op.request.name}")
            etree.SubElement(o, f"{{{WSDL}}}output", message=f"tns:{op.response.name}")
            etree.SubElement(o, f"{{{WSDL}}}fault", name=fault.name, message=f"tns:{fault.name}")

        # bindings
        for b in _BINDINGS:
            binding = etree.SubElement(
                root, f"{{{WSDL}}}binding", name=f"{name}{b.binding}", type=f"tns:{name}"
            )
            etree.SubElement(
                binding, f"{{{b.namespace}}}binding", style="document", transport=HTTP_TRANSPORT
            )
            for op in bound.operations:
                o = etree.SubElement(binding, f"{{{WSDL}}}operation", name=op.name)
                policy = policies[op.name]
                if policy is not None:
                    wspolicy.refer(o, policy)
                etree.SubElement(
                    o, f"{{{b.namespace}}}operation", soapAction=b.action(op), style="document"
                )
                i = etree.SubElement(o, f"{{{WSDL}}}input")
                etree.SubElement(i, f"{{{b.namespace}}}body", use="literal")
                if policy is not None:
                    carried = signature if op.operation.partner else header
                    etree.SubElement(
                        i,
                        f"{{{b.namespace}}}header",
                        message=f"tns:{carried.name}",
                        part="auth",
                        use="literal",
                    )
                out = etree.SubElement(o, f"{{{WSDL}}}output")
                etree.SubElement(out, f"{{{b.namespace}}}body", use="literal")
                fl = etree.SubElement(o, f"{{{WSDL}}}fault", name=fault.name)
                etree.SubElement(fl, f"{{{b.namespace}}}fault", name=fault.name, use="literal")

        # service: SOAP 1.1's port first, where clients that take the first port look
        service = etree.SubElement(root, f"{{{WSDL}}}service", name=f"{name}Service")
        for b in _BINDINGS:
            port = etree.SubElement(
                service, f"{{{WSDL}}}port", name=f"{name}{b.port}", binding=f"tns:{name}{b.binding}"
            )
            etree.SubElement(port, f"{{{b.namespace}}}address", location=_ADDRESS)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
