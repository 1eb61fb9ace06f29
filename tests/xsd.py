"""The schemas of a WSDL compiled as a strict client compiles them (JAX-WS wsimport, a strict
validator): one by one in document order, an xs:import resolved only from a schema already
met. xmlschema is a strict XSD 1.0 processor: an unknown type or a broken facet fails. And
the WSDL document itself against the WSDL 1.1 schema."""

from __future__ import annotations

import functools
from pathlib import Path

import xmlschema
from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"


def strict_schemas(document: bytes) -> xmlschema.XMLSchema10:
    """All the schemas in the WSDL's types, compiled in document order; raises
    XMLSchemaParseError when a schema uses a namespace that no earlier schema defines."""
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    # Each schema on its own, with the namespace declarations it inherits from the WSDL.
    found = root.iterfind(f"{{{WSDL}}}types/{{{XS}}}schema")
    schemas = [etree.fromstring(etree.tostring(s)) for s in found]
    assert schemas, "the WSDL has no schema"
    compiled = None
    for i in range(len(schemas)):
        # The newest schema is the one compiled; only those before it can resolve its imports.
        compiled = xmlschema.XMLSchema10([schemas[i], *schemas[:i]], validation="strict")
    return compiled


@functools.cache
def wsdl_schema() -> xmlschema.XMLSchema10:
    """WSDL 1.1's schema with its SOAP 1.1 binding's, as xmlschema ships them (no network).
    Extension elements of other namespaces (the SOAP 1.2 binding's) it lets pass unchecked."""
    shipped = Path(xmlschema.__file__).parent / "schemas" / "WSDL"
    return xmlschema.XMLSchema10([shipped / "wsdl.xsd", shipped / "wsdl-soap.xsd"])
