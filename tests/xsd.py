"""The schemas of a WSDL compiled as a strict client compiles them (JAX-WS wsimport, a strict
validator): one by one in document order, an xs:import resolved only from a schema already
met. xmlschema is a strict XSD 1.0 processor: an unknown type or a broken facet fails."""

from __future__ import annotations

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
