"""The WSDL of each facade, read back with lxml: WS-I order, required fields, faults, the SOAP
1.1 and SOAP 1.2 bindings and their ports at one address."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from facade.types import COMMON_NS
from server.binding import XS, Complex
from server.registry import BoundFacade
from server.wsdl import HTTP_TRANSPORT, SOAP, SOAP12, WSDL, Wsdl, soap_action
from server.wspolicy import OPTIONAL, PARTNER, REQUIRED, SP, WSP, WSU
from tests.xsd import strict_schemas, wsdl_schema

ROOT = Path(__file__).resolve().parents[3]
ADDRESS = "https://api.example.com"
#: Each binding's extension namespace, binding and port names after the facade's.
BINDINGS = [(SOAP, "SoapBinding", "Port"), (SOAP12, "Soap12Binding", "Soap12Port")]


@pytest.fixture(params=["LoanFacade", "MemberFacade"])
def bound(request: pytest.FixtureRequest, platform) -> BoundFacade:
    return next(f for f in platform.facades if f.name == request.param)


@pytest.fixture
def wsdl(bound: BoundFacade) -> etree._Element:
    return etree.fromstring(Wsdl(bound).render(ADDRESS, f"/services/{bound.name}"))


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def resolve(element: etree._Element, qname: str) -> tuple[str, str]:
    prefix, _, name = qname.partition(":")
    return element.nsmap[prefix], name


def reachable(bound: BoundFacade) -> dict[tuple[str, str], Complex]:
    found: dict[tuple[str, str], Complex] = {}

    def add(t) -> None:
        if isinstance(t, Complex) and (t.namespace, t.name) not in found:
            found[(t.namespace, t.name)] = t
            for f in t.fields:
                add(f.type)

    for op in bound.operations:
        add(op.request)
        add(op.response)
    return found


def test_children_of_definitions_in_ws_i_order(wsdl: etree._Element) -> None:
    """WSDL's own elements in WS-I order; the only others, the WS-Policy policies that the
    bindings refer to, come before the types."""
    children = [c for c in wsdl if isinstance(c.tag, str)]
    names = [local(c) for c in children if etree.QName(c).namespace == WSDL]
    others = [c.tag for c in children if etree.QName(c).namespace != WSDL]
    assert set(others) <= {f"{{{WSP}}}Policy"}, others
    first_policy = next(i for i, c in enumerate(children) if c.tag == f"{{{WSP}}}Policy")
    assert local(children[first_policy + len(others)]) == "types"
    order = {"documentation": 0, "types": 1, "message": 2, "portType": 3, "binding": 4}
    order["service"] = 5
    ranks = [order[n] for n in names]
    assert ranks == sorted(ranks), names
    assert names.count("types") == names.count("portType") == names.count("service") == 1
    assert names.count("binding") == 2
    assert names.count("message") >= 1
    assert names.count("documentation") <= 1


def test_required_fields_have_min_occurs_1(wsdl: etree._Element, bound: BoundFacade) -> None:
    schemas = {s.get("targetNamespace"): s for s in wsdl.iter(f"{{{XS}}}schema")}
    checked = 0
    for (namespace, name), t in reachable(bound).items():
        complex_type = schemas[namespace].find(f"{{{XS}}}complexType[@name='{name}']")
        assert complex_type is not None, name
        elements = {e.get("name"): e for e in complex_type.iter(f"{{{XS}}}element")}
        assert set(elements) == {f.name for f in t.fields}, name
        for f in t.fields:
            expected = "1" if f.required else "0"
            assert elements[f.name].get("minOccurs") == expected, f"{name}.{f.name}"
            checked += f.required
    assert checked > 5


def test_loan_request_fields_required_as_declared(platform) -> None:
    loans = next(f for f in platform.facades if f.name == "LoanFacade")
    root = etree.fromstring(Wsdl(loans).render(ADDRESS, "/services/LoanFacade"))
    ct = next(c for c in root.iter(f"{{{XS}}}complexType") if c.get("name") == "LoanRequest")
    occurs = {e.get("name"): e.get("minOccurs") for e in ct.iter(f"{{{XS}}}element")}
    assert occurs["amount"] == "1"
    assert occurs["maxInvestPerInvestor"] == "0"


def test_nothing_is_nillable(bound: BoundFacade) -> None:
    document = Wsdl(bound).render(ADDRESS, "/x")
    assert b"nillable" not in document
    root = etree.fromstring(document)
    assert all(e.get("nillable") in (None, "false") for e in root.iter(f"{{{XS}}}element"))


def test_port_type_operations_documented_with_the_business_fault(
    wsdl: etree._Element, bound: BoundFacade
) -> None:
    messages = {m.get("name"): m for m in wsdl.findall(f"{{{WSDL}}}message")}
    operations = wsdl.findall(f"{{{WSDL}}}portType/{{{WSDL}}}operation")
    assert {o.get("name") for o in operations} == {op.name for op in bound.operations}
    for o in operations:
        doc = o.find(f"{{{WSDL}}}documentation")
        assert doc is not None and doc.text.strip(), o.get("name")
        assert o[0] is doc  # documentation comes first in the operation
        faults = o.findall(f"{{{WSDL}}}fault")
        assert len(faults) == 1
        ns, message_name = resolve(o, faults[0].get("message"))
        assert ns == bound.facade.namespace
        part = messages[message_name].find(f"{{{WSDL}}}part")
        assert resolve(part, part.get("element")) == (COMMON_NS, "BusinessFault")


@pytest.mark.parametrize("extension", [SOAP, SOAP12], ids=["1.1", "1.2"])
def test_soap_binding_over_http(wsdl: etree._Element, extension: str) -> None:
    """The WSDL 1.1 binding extension for SOAP 1.2 names the same HTTP transport."""
    binding = wsdl.find(f"{{{WSDL}}}binding/{{{extension}}}binding")
    assert binding.get("transport") == HTTP_TRANSPORT == "http://schemas.xmlsoap.org/soap/http"
    assert binding.get("style") == "document"
    bodies = list(wsdl.iter(f"{{{extension}}}body"))
    assert bodies and all(body.get("use") == "literal" for body in bodies)


@pytest.mark.parametrize(("extension", "binding_name", "port_name"), BINDINGS, ids=["1.1", "1.2"])
def test_each_binding_has_every_operation_with_its_auth_header_and_the_fault(
    wsdl: etree._Element, bound: BoundFacade, extension, binding_name, port_name
) -> None:
    name = bound.name
    [binding] = wsdl.findall(f"{{{WSDL}}}binding[@name='{name}{binding_name}']")
    assert resolve(binding, binding.get("type")) == (bound.facade.namespace, name)
    operations = binding.findall(f"{{{WSDL}}}operation")
    assert [o.get("name") for o in operations] == [op.name for op in bound.operations]
    for o, op in zip(operations, bound.operations, strict=True):
        soap_operation = o.find(f"{{{extension}}}operation")
        assert soap_operation.get("style") == "document"
        action = soap_operation.get("soapAction")
        assert action == ("" if extension == SOAP else soap_action(op))
        for header in o.findall(f"{{{WSDL}}}input/{{{extension}}}header"):  # see below
            assert (header.get("part"), header.get("use")) == ("auth", "literal")
            assert resolve(header, header.get("message")) == (bound.facade.namespace, "AuthToken")
        assert o.find(f"{{{WSDL}}}input/{{{extension}}}body") is not None
        assert o.find(f"{{{WSDL}}}output/{{{extension}}}body") is not None
        fault = o.find(f"{{{WSDL}}}fault[@name='BusinessFault']/{{{extension}}}fault")
        assert (fault.get("name"), fault.get("use")) == ("BusinessFault", "literal")
        others = [e for e in o.iter() if etree.QName(e).namespace not in (WSDL, extension)]
        assert [e.tag for e in others] in ([], [f"{{{WSP}}}PolicyReference"])


def test_soap_1_2_actions_are_absolute_uris_one_an_operation(bound: BoundFacade) -> None:
    """RFC 3902: the action parameter is an absolute URI."""
    actions = [soap_action(op) for op in bound.operations]
    assert len(set(actions)) == len(actions)
    assert all(a.startswith(bound.facade.namespace + "/") and " " not in a for a in actions)
    op = bound.operations[0]
    assert soap_action(op) == f"{bound.facade.namespace}/{bound.name}/{op.name}Request"


def test_the_service_has_a_port_a_binding_at_the_facades_one_address(
    wsdl: etree._Element, bound: BoundFacade
) -> None:
    """SOAP 1.1's port first: clients that take the first port (zeep, PHP) keep taking it."""
    [service] = wsdl.findall(f"{{{WSDL}}}service")
    assert service.get("name") == f"{bound.name}Service"
    ports = service.findall(f"{{{WSDL}}}port")
    assert len(ports) == len(BINDINGS)
    for port, (extension, binding_name, port_name) in zip(ports, BINDINGS, strict=True):
        assert port.get("name") == bound.name + port_name
        assert resolve(port, port.get("binding")) == (
            bound.facade.namespace,
            bound.name + binding_name,
        )
        [address] = port
        assert address.tag == f"{{{extension}}}address"
        assert address.get("location") == f"{ADDRESS}/services/{bound.name}"


def test_every_facades_wsdl_is_valid_wsdl_1_1(platform) -> None:
    for bound in platform.facades:
        wsdl_schema().validate(etree.fromstring(Wsdl(bound).render(ADDRESS, "/services/X")))


def test_two_builds_are_byte_identical(bound: BoundFacade) -> None:
    first = Wsdl(bound).render(ADDRESS, "/services/X")
    assert Wsdl(bound).render(ADDRESS, "/services/X") == first
    # Another interpreter, with other string hashing: set or dict order must not leak out.
    script = (
        "import sys\n"
        "from conf import load_settings\n"
        "from server.app import create_platform\n"
        "from server.wsdl import Wsdl\n"
        "settings = load_settings({'P2P_ENV': 'test'}, {'database.url': 'sqlite://'})\n"
        f"bound = next(f for f in create_platform(settings).facades if f.name == {bound.name!r})\n"
        f"sys.stdout.buffer.write(Wsdl(bound).render({ADDRESS!r}, '/services/X'))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert out.stdout == first


def test_render_puts_the_address_escaped(bound: BoundFacade) -> None:
    base = 'https://lb.example.com/p2p&"a"<b>'  # conf allows these in public_url's path
    document = Wsdl(bound).render(base, f"/services/{bound.name}")
    root = etree.fromstring(document)
    for extension in (SOAP, SOAP12):
        addresses = root.findall(f"{{{WSDL}}}service/{{{WSDL}}}port/{{{extension}}}address")
        assert len(addresses) == 1
        assert addresses[0].get("location") == f"{base}/services/{bound.name}"
    assert b"urn:p2p:address-placeholder" not in document


def schemas_of(document: bytes) -> list[etree._Element]:
    return etree.fromstring(document).findall(f"{{{WSDL}}}types/{{{XS}}}schema")


def test_every_facades_schemas_compile_in_document_order_with_a_strict_compiler(platform):
    """As JAX-WS wsimport reads them: each xs:import must name a schema already met."""
    for bound in platform.facades:
        document = Wsdl(bound).render(ADDRESS, f"/services/{bound.name}")
        compiled = strict_schemas(document)
        for schema in schemas_of(document):
            assert schema.get("targetNamespace") in compiled.maps.namespaces, bound.name
        assert compiled.maps.elements[f"{{{COMMON_NS}}}BusinessFault"] is not None


def test_the_strict_compiler_refuses_a_schema_before_the_one_it_imports(platform) -> None:
    loans = next(f for f in platform.facades if f.name == "LoanFacade")
    root = etree.fromstring(Wsdl(loans).render(ADDRESS, "/services/LoanFacade"))
    types = root.find(f"{{{WSDL}}}types")
    common, _ = types
    assert common.get("targetNamespace") == COMMON_NS
    types.remove(common)
    types.append(common)  # the order AccountFacade's WSDL had, which wsimport warned about
    with pytest.raises(xmlschema.XMLSchemaParseError, match="unknown type"):
        strict_schemas(etree.tostring(root))


def test_each_schema_imports_exactly_the_namespaces_it_uses(wsdl: etree._Element) -> None:
    for schema in wsdl.iterfind(f"{{{WSDL}}}types/{{{XS}}}schema"):
        used = {
            resolve(e, e.get("type"))[0]
            for e in schema.iter(f"{{{XS}}}element")
            if e.get("type") and not e.get("type").startswith("xs:")
        }
        imported = {i.get("namespace") for i in schema.iterfind(f"{{{XS}}}import")}
        assert imported == used - {schema.get("targetNamespace")}


def test_each_binding_operation_refers_to_the_policy_of_the_credentials_it_takes(
    platform,
) -> None:
    """An operation with roles requires a member's credentials, a public one whose answer
    depends on who asks takes them optionally, a partner one the PartnerSignature header,
    any other takes none and declares no header."""
    seen = set()
    for bound in platform.facades:
        wsdl = etree.fromstring(Wsdl(bound).render(ADDRESS, f"/services/{bound.name}"))
        policies = {p.get(f"{{{WSU}}}Id"): p for p in wsdl.findall(f"{{{WSP}}}Policy")}
        for binding in wsdl.iter(f"{{{WSDL}}}binding"):
            for o in binding.findall(f"{{{WSDL}}}operation"):
                op = bound.operation(o.get("name"))
                refs = [r.get("URI") for r in o.findall(f"{{{WSP}}}PolicyReference")]
                headers = [h for h in o.find(f"{{{WSDL}}}input") if local(h) == "header"]
                if op.partner_scope:
                    expected = PARTNER
                    assert [h.get("message") for h in headers] == ["tns:PartnerSignature"]
                elif op.roles is not None:
                    expected = REQUIRED
                elif op.passes_caller:
                    expected = OPTIONAL
                else:
                    expected = None
                assert refs == ([] if expected is None else [f"#{expected}"]), op.name
                assert len(headers) == (0 if expected is None else 1), op.name
                if expected is not None:
                    assert expected in policies, (bound.name, expected)
                    seen.add(expected)
    assert seen == {REQUIRED, OPTIONAL, PARTNER}


def test_the_policy_offers_each_credential_the_endpoint_accepts(platform) -> None:
    loans = next(b for b in platform.facades if b.name == "LoanFacade")
    wsdl = etree.fromstring(Wsdl(loans).render(ADDRESS, "/services/LoanFacade"))
    policies = {p.get(f"{{{WSU}}}Id"): p for p in wsdl.findall(f"{{{WSP}}}Policy")}

    def alternatives(policy_id: str) -> list[set[str]]:
        one = policies[policy_id].find(f"{{{WSP}}}ExactlyOne")
        return [
            {etree.QName(e).localname for e in alternative.iter() if e is not alternative}
            - {"Policy"}
            for alternative in one.findall(f"{{{WSP}}}All")
        ]

    text = {"SupportingTokens", "UsernameToken", "WssUsernameToken10"}
    required = [text, text | {"HashPassword"}, {"AuthTokenHeader"}]
    assert alternatives(REQUIRED) == required
    assert alternatives(OPTIONAL) == [*required, set()]
    token = policies[REQUIRED].find(f".//{{{SP}}}UsernameToken")
    assert token.get(f"{{{SP}}}IncludeToken").endswith("/IncludeToken/AlwaysToRecipient")
