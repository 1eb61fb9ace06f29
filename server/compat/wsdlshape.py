"""A WSDL 1.1 document (document/literal, as server/wsdl.py writes them) read into the model
of server/compat/model.py: an operation per portType operation, keyed ``<Facade>.<operation>``;
its input and output the records of its messages' elements; its faults the codes its own
documentation declares (None when it declares none); its binding, per SOAP binding (1.1
``soap``, 1.2 ``soap12``), the SOAP action and the headers a client sends. The ports are the
endpoints; the fault codes the document names for every operation, its catalogue.

Only what a document of ours uses is read (xs:sequence of xs:element, named and anonymous
simple types by restriction, xs:import between the schemas of one document); anything else
is refused (:class:`Unreadable`) rather than read wrongly.
"""

from __future__ import annotations

import re
from decimal import Decimal

from lxml import etree

from server.compat.model import Again, Contract, Field, Operation, Record, Scalar, Shape

WSDL = "http://schemas.xmlsoap.org/wsdl/"
XS = "http://www.w3.org/2001/XMLSchema"
SOAP_BINDINGS = {
    "http://schemas.xmlsoap.org/wsdl/soap/": "soap",
    "http://schemas.xmlsoap.org/wsdl/soap12/": "soap12",
}
_NUMERIC_FACETS = frozenset(
    {"minLength", "maxLength", "totalDigits", "fractionDigits", "minInclusive", "maxInclusive"}
)
_TEXT_FACETS = frozenset({"pattern"})
#: Where a document lists the fault codes: the whole catalogue in the document's
#: documentation ("BusinessFault codes: A, B."), or an operation's own
#: ("Fault codes: A, B.") in its portType documentation, which then wins.
_CODES = re.compile(r"(?:BusinessFault|Fault) codes: ([A-Z0-9_, ]+)\.")


class Unreadable(ValueError):
    """The document uses something this reader does not know."""


def read_wsdl(document: bytes) -> Contract:
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    name = root.get("name")
    types = _Types(root)
    messages = {
        m.get("name"): _qname(m, m.find(f"{{{WSDL}}}part").get("element"))
        for m in root.iter(f"{{{WSDL}}}message")
    }
    catalogue = _codes(root.find(f"{{{WSDL}}}documentation"))
    bindings = _bindings(root, messages)
    operations = {}
    for port_type in root.iter(f"{{{WSDL}}}portType"):
        for op in port_type.iter(f"{{{WSDL}}}operation"):
            op_name = op.get("name")
            key = f"{name}.{op_name}"
            request = messages[_local(op.find(f"{{{WSDL}}}input").get("message"))]
            output = op.find(f"{{{WSDL}}}output")
            response = None if output is None else messages[_local(output.get("message"))]
            own = _codes(op.find(f"{{{WSDL}}}documentation"))
            operations[key] = Operation(
                key,
                types.element(request),
                None if response is None else types.element(response),
                own,
                bindings.get(op_name, {}),
            )
    endpoints = frozenset(
        f"port {port.get('name')} ({_binding_kind(port)})" for port in root.iter(f"{{{WSDL}}}port")
    )
    return Contract(name, operations, endpoints, catalogue or frozenset())


def _codes(documentation) -> frozenset[str] | None:
    if documentation is None or not documentation.text:
        return None
    found = _CODES.search(documentation.text)
    if found is None:
        return None
    return frozenset(c.strip() for c in found.group(1).split(",") if c.strip())


def _bindings(root, messages) -> dict[str, dict[str, str]]:
    """By operation name: ``<kind> action``, ``<kind> header <element>`` for each binding."""
    found: dict[str, dict[str, str]] = {}
    for binding in root.iter(f"{{{WSDL}}}binding"):
        found_ns = [ns for ns in SOAP_BINDINGS if binding.find(f"{{{ns}}}binding") is not None]
        if not found_ns:
            raise Unreadable(f"binding {binding.get('name')} is not a SOAP binding")
        ns = found_ns[0]
        kind = SOAP_BINDINGS[ns]
        for op in binding.iterfind(f"{{{WSDL}}}operation"):
            mine = found.setdefault(op.get("name"), {})
            soap_op = op.find(f"{{{ns}}}operation")
            action = "" if soap_op is None else soap_op.get("soapAction", "")
            mine[f"{kind} action"] = repr(action)
            for header in op.iterfind(f"{{{WSDL}}}input/{{{ns}}}header"):
                element = messages[_local(header.get("message"))]
                mine[f"header {kind} {element[1]}"] = "required"
    return found


def _binding_kind(port) -> str:
    for ns, kind in SOAP_BINDINGS.items():
        if port.find(f"{{{ns}}}address") is not None:
            return kind
    raise Unreadable(f"port {port.get('name')} has no SOAP address")


class _Types:
    """The named types and global elements of every schema in the document, by QName."""

    def __init__(self, root):
        self.complex: dict[tuple[str, str], etree._Element] = {}
        self.simple: dict[tuple[str, str], etree._Element] = {}
        self.elements: dict[tuple[str, str], etree._Element] = {}
        for schema in root.iter(f"{{{XS}}}schema"):
            ns = schema.get("targetNamespace")
            for child in schema:
                tag = etree.QName(child).localname if isinstance(child.tag, str) else None
                if tag == "complexType":
                    self.complex[(ns, child.get("name"))] = child
                elif tag == "simpleType":
                    self.simple[(ns, child.get("name"))] = child
                elif tag == "element":
                    self.elements[(ns, child.get("name"))] = child
                elif tag not in ("import", "annotation", None):
                    raise Unreadable(f"xs:{tag} in a schema")

    def element(self, qname: tuple[str, str]) -> Record:
        element = self.elements[qname]
        shape = self._type_of(element, set())
        if not isinstance(shape, Record):
            raise Unreadable(f"message element {qname[1]} is not a structure")
        return shape

    def _type_of(self, element, seen: set) -> Shape:
        type_name = element.get("type")
        if type_name is not None:
            return self._named(_qname(element, type_name), seen)
        inline = element.find(f"{{{XS}}}simpleType")
        if inline is not None:
            return self._simple(inline)
        inline = element.find(f"{{{XS}}}complexType")
        if inline is not None:
            return self._complex("", inline, seen)
        return Scalar("xs:anyType")

    def _named(self, qname: tuple[str, str], seen: set) -> Shape:
        if qname[0] == XS:
            return Scalar(f"xs:{qname[1]}")
        if qname in self.simple:
            return self._simple(self.simple[qname])
        if qname in self.complex:
            if qname in seen:
                return Again(qname[1])
            return self._complex(qname[1], self.complex[qname], seen | {qname})
        raise Unreadable(f"type {qname[1]} is not defined")

    def _complex(self, name: str, complex_type, seen: set) -> Record:
        fields = {}
        for child in complex_type:
            tag = etree.QName(child).localname
            if tag == "annotation":
                continue
            if tag != "sequence":
                raise Unreadable(f"xs:{tag} in complex type {name}")
            for element in child:
                if etree.QName(element).localname == "annotation":
                    continue
                if etree.QName(element).localname != "element":
                    raise Unreadable(f"xs:{etree.QName(element).localname} in a sequence")
                fields[element.get("name")] = Field(
                    self._type_of(element, seen),
                    required=element.get("minOccurs", "1") != "0",
                    many=element.get("maxOccurs", "1") != "1",
                    nullable=element.get("nillable") == "true",
                )
        return Record(name, fields)

    def _simple(self, simple_type) -> Scalar:
        restriction = simple_type.find(f"{{{XS}}}restriction")
        if restriction is None:
            raise Unreadable("a simple type other than a restriction")
        base = _qname(restriction, restriction.get("base"))
        scalar = Scalar(f"xs:{base[1]}") if base[0] == XS else self._simple(self.simple[base])
        facets = dict(scalar.facets)
        values = set()  # a restriction's own enumeration replaces its base's
        for facet in restriction:
            tag = etree.QName(facet).localname
            value = facet.get("value")
            if tag == "enumeration":
                values.add(value)
            elif tag in _NUMERIC_FACETS:
                facets[tag] = Decimal(value)
            elif tag in _TEXT_FACETS:
                facets[tag] = value
            elif tag != "annotation":
                raise Unreadable(f"xs:{tag} facet")
        return Scalar(scalar.base, facets, frozenset(values) if values else scalar.values)


def _qname(element, prefixed: str) -> tuple[str, str]:
    prefix, _, local = prefixed.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    if namespace is None:
        raise Unreadable(f"prefix {prefix!r} is not declared")
    return namespace, local


def _local(prefixed: str) -> str:
    return prefixed.rpartition(":")[2]
