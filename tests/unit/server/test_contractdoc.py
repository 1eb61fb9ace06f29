"""The contract documents (server/contractdoc/): every operation, field, role and fault code of
each facade, checked against the facade's own WSDL; examples the platform's own endpoints read
and its schemas accept; escaping; a facade that needs no login; the changelog page."""

# No "from __future__ import annotations": facade parameters are annotated with spyne types.

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from decimal import Decimal as Exact
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html
from spyne import ComplexModel, Decimal, Long, Unicode
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from facade.contract import GET, MEMBERS, Facade, operation
from facade.types import COMMON_NS, Money, required
from server import compat
from server.binding import XS
from server.contractdoc import Links, changelog_document, facade_document
from server.contractdoc.examples import LOGIN_PLACEHOLDER, NoExample, simple_value
from server.declared import compile_contract, simple
from server.dispatcher import BindArguments, Dispatcher, Resolve
from server.jsoncodec import read_field
from server.proxy import Proxies
from server.registry import BoundFacade, BoundOperation, bind
from server.rest import RestEndpoint
from server.soap import ENV, SoapEndpoint
from server.wsdl import WSDL, Wsdl, soap_action
from server.xmlcodec import read_complex
from service.errors import CATALOGUE
from tests.xsd import strict_schemas

ROOT = Path(__file__).resolve().parents[3]
BASE = "http://127.0.0.1:8080"
VERSION = "9.8.7"


def document(bound: BoundFacade, names=("Other",)) -> etree._Element:
    text = facade_document(bound, VERSION, Links(BASE, static=True), [bound.name, *names])
    return lxml_html.document_fromstring(text)


@pytest.fixture(scope="module")
def facades(platform) -> list[BoundFacade]:
    return platform.facades


@pytest.fixture(scope="module")
def documents(facades) -> dict[str, etree._Element]:
    return {f.name: document(f) for f in facades}


@pytest.fixture(scope="module")
def wsdls(facades) -> dict[str, etree._Element]:
    return {f.name: etree.fromstring(Wsdl(f).render(BASE, f"/services/{f.name}")) for f in facades}


def every_operation(facades) -> list[tuple[BoundFacade, BoundOperation]]:
    return [(f, op) for f in facades for op in f.operations]


def section(doc: etree._Element, ident: str) -> etree._Element:
    found = doc.get_element_by_id(ident, None)
    assert found is not None, f"no element #{ident}"
    return found


def words(element: etree._Element) -> str:
    return " ".join(element.text_content().split())


def rows(table: etree._Element) -> dict[str, list[etree._Element]]:
    """A field table's rows by field name: its cells (field, type, use, constraints, text)."""
    return {tr.get("data-field"): tr.findall("td") for tr in table.iterfind(".//tr[@data-field]")}


def following_table(heading: etree._Element) -> etree._Element | None:
    for sibling in heading.itersiblings():
        if sibling.tag == "table":
            return sibling
        if sibling.tag == "h3":
            return None
    return None


def heading(op_section: etree._Element, title: str) -> etree._Element:
    return next(h for h in op_section.iter("h3") if h.text_content() == title)


# -- structure, against the WSDL ---------------------------------------------------------


def test_every_operation_has_a_section_with_roles_and_both_bindings(facades, documents) -> None:
    for bound, op in every_operation(facades):
        s = section(documents[bound.name], f"op-{op.name}")
        text = words(s)
        assert s.find("h2").text_content().startswith(op.name)
        if op.partner_scope:
            roles = f"partner apps: a signed request, scope {op.partner_scope}"
        elif op.roles is None:
            roles = "public"
        else:
            roles = "roles: " + ", ".join(sorted(op.roles))
        assert roles in text, op.name
        rest = op.operation.rest
        assert f"{rest.method} /api/v1{rest.path}" in text, op.name
        status = 204 if op.result is None else rest.status
        assert re.search(rf"answered {status} \w", text), op.name
        assert f"{BASE}/services/{bound.name}" in text
        assert f"body element {op.name}, answered by {op.name}Response" in text
        assert (
            f"as application/soap+xml; its action parameter, optional, is {soap_action(op)}" in text
        )
        assert ("deprecated" in s.find("h2").text_content()) == op.operation.deprecated
        assert ("Cache-Control: no-store" in text) == op.operation.sensitive
        contents = section(documents[bound.name], "contents")
        assert contents.find(f".//a[@href='#op-{op.name}']") is not None


def _wsdl_types(wsdl: etree._Element) -> dict[tuple[str, str], etree._Element]:
    found = {}
    for schema in wsdl.iter(f"{{{XS}}}schema"):
        for t in schema:
            if t.tag in (f"{{{XS}}}complexType", f"{{{XS}}}simpleType"):
                found[(schema.get("targetNamespace"), t.get("name"))] = t
    return found


def _resolve(element: etree._Element, qname: str) -> tuple[str, str]:
    prefix, _, name = qname.partition(":")
    return element.nsmap[prefix], name


def _facets(element: etree._Element, types) -> tuple[str, list[str]]:
    """The type an element of the WSDL names (as its local name, or xs:base for a restriction
    in place) and the values of its facets."""
    if element.get("type"):
        ns, name = _resolve(element, element.get("type"))
        if ns == XS:
            return f"xs:{name}", []
        restriction = types[(ns, name)].find(f"{{{XS}}}restriction")
    else:
        restriction = element.find(f"{{{XS}}}simpleType/{{{XS}}}restriction")
        name = "xs:" + restriction.get("base").partition(":")[2]
    if restriction is None:
        return name, []
    return name, [f.get("value") for f in restriction]


def _check_rows(table, complex_type, types, where: str) -> None:
    """The document's rows of a structure are the WSDL's elements of it, in order, each with
    the same type, occurrence and facets."""
    elements = complex_type.findall(f"{{{XS}}}sequence/{{{XS}}}element")
    found = rows(table)
    assert list(found) == [e.get("name") for e in elements], where
    for e in elements:
        _, type_cell, use, limits, _ = found[e.get("name")]
        kind, facets = _facets(e, types)
        assert kind in words(type_cell), f"{where}.{e.get('name')}: {kind}"
        assert "JSON: " in words(type_cell)
        expected = (
            "list, 0 or more"
            if e.get("maxOccurs") == "unbounded"
            else "required"
            if e.get("minOccurs") == "1"
            else "optional"
        )
        assert words(use) == expected, f"{where}.{e.get('name')}"
        stated = limits.text_content()
        for value in facets:
            if value != r"[^\t\n\r]*":  # the single-line rule, said in words: "one line"
                assert value in stated, f"{where}.{e.get('name')}: {value} not in {stated!r}"


def test_every_field_of_every_input_output_and_structure_as_the_wsdl_has_it(
    facades, documents, wsdls
) -> None:
    checked = 0
    for bound in facades:
        doc, wsdl = documents[bound.name], wsdls[bound.name]
        types = _wsdl_types(wsdl)
        tns = bound.facade.namespace
        for op in bound.operations:
            s = section(doc, f"op-{op.name}")
            for title, wrapper in (("Input", op.request), ("Output", op.response)):
                table = following_table(heading(s, title))
                if not wrapper.fields:
                    assert table is None, f"{op.name} {title}"
                    continue
                _check_rows(table, types[(tns, wrapper.name)], types, f"{op.name} {title}")
                checked += 1
        structures = doc.get_element_by_id("types").iterfind("section")
        listed = {s.get("id"): s for s in structures}
        for (ns, name), t in types.items():
            wrappers = {w.name for op in bound.operations for w in (op.request, op.response)}
            if t.tag != f"{{{XS}}}complexType" or (ns == tns and name in wrappers):
                continue
            if ns == COMMON_NS and name in ("BusinessFault", "AuthToken", "PartnerSignature"):
                continue
            ident = f"type-{ns.rstrip('/').rsplit('/', 1)[-1]}-{name}"
            assert ident in listed, f"{bound.name}: {name} has no section"
            assert listed[ident].find("h3").text_content() == name
            assert ns in words(listed[ident])
            _check_rows(listed[ident].find("table"), t, types, name)
            checked += 1
    assert checked > 100


def limits(cell: etree._Element) -> list[str]:
    return [words(li) for li in cell.iter("li")]


def test_constraints_are_said_in_words(documents) -> None:
    loan = rows(section(documents["LoanFacade"], "type-p2p-LoanRequest").find("table"))
    assert limits(loan["title"][3]) == [
        "one line",
        "1 to 100 characters",
        r"matches the whole pattern [^\t\n\r]*[^ \t\n\r][^\t\n\r]*",
    ]
    assert words(loan["amount"][1]) == "positiveMoney (xs:decimal)JSON: string (decimal)"
    assert limits(loan["amount"][3]) == [
        "at most 15 digits, at most 2 after the point",
        "at least 0.01",
    ]
    assert limits(loan["termMonths"][3]) == ["at least 1", "at most 60"]
    assert limits(loan["repaymentMethod"][3]) == [
        "one of EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, MONTHLY_INTEREST, BULLET"
    ]
    assert limits(loan["description"][3]) == [
        "may span lines (TAB, LF, CR)",
        "at most 2000 characters",
    ]
    member = rows(section(documents["MemberFacade"], "type-member-RegisterRequest").find("table"))
    assert limits(member["mobile"][3]) == [
        "one line",
        "exactly 11 characters",
        "matches the whole pattern 1[3-9][0-9]{9}",
    ]
    page = rows(section(documents["LoanFacade"], "type-p2p-LoanPageDto").find("table"))
    assert words(page["items"][1]) == "LoanDtoJSON: array of object"
    assert words(page["items"][2]) == "list, 0 or more"
    assert page["items"][1].find(".//a").get("href") == "#type-p2p-LoanDto"
    publish = rows(
        following_table(heading(section(documents["LoanFacade"], "op-publishLoan"), "Input"))
    )
    assert words(publish["request"][0]) == "requestREST: the whole JSON body"
    get = rows(following_table(heading(section(documents["LoanFacade"], "op-getLoan"), "Input")))
    assert words(get["loanId"][0]) == "loanIdREST: in the path"


# -- faults ------------------------------------------------------------------------------


def test_fault_codes_are_those_the_contracts_publish_declared_first(facades, documents) -> None:
    for bound, op in every_operation(facades):
        s = section(documents[bound.name], f"op-{op.name}")
        table = following_table(heading(s, "Faults"))
        listed = [tr.get("data-code") for tr in table.iterfind(".//tr[@data-code]")]
        assert set(listed) == op.fault_codes, op.name
        declared = sorted(op.operation.errors)
        assert listed[: len(declared)] == declared, op.name
        assert ("FORBIDDEN" in listed) == (
            "FORBIDDEN" in declared or (op.roles is not None and op.roles != MEMBERS)
        ), op.name
        for tr in table.iterfind(".//tr[@data-code]"):
            code, cells = tr.get("data-code"), tr.findall("td")
            assert words(cells[1]) == str(CATALOGUE[code].status)
            assert words(cells[2]) == CATALOGUE[code].message
            when = words(cells[3])
            assert (when == "declared by the operation") == (code in declared), (op.name, code)
            assert when != "any call may meet it", f"{code}: no words for when it is met"
            assert cells[0].find("a").get("href") == f"#error-{code}"
            assert documents[bound.name].get_element_by_id(f"error-{code}") is not None
        assert "The codes this operation declares, then those any call may meet" in words(s)


def test_the_error_catalogue_has_every_code_with_both_protocols(documents) -> None:
    doc = documents["PaymentFacade"]
    catalogue = {
        tr.get("id")[len("error-") :]: [words(td) for td in tr.findall("td")]
        for tr in section(doc, "errors").iterfind(".//tr[@id]")
    }
    assert set(catalogue) == set(CATALOGUE)
    assert catalogue["LOAN_NOT_FOUND"] == [
        "LOAN_NOT_FOUND",
        CATALOGUE["LOAN_NOT_FOUND"].message + CATALOGUE["LOAN_NOT_FOUND"].zh,
        "404",
        "500",
        "soap:Client",
        "400",
        "env:Sender",
    ]
    assert catalogue["INTERNAL_ERROR"][2:] == ["500", "500", "soap:Server", "500", "env:Receiver"]
    assert catalogue["MUST_UNDERSTAND"][3:] == [
        "500",
        "soap:MustUnderstand",
        "500",
        "env:MustUnderstand",
    ]
    assert catalogue["PAYLOAD_TOO_LARGE"][2:] == ["413", "413", "soap:Client", "413", "env:Sender"]


# -- examples ----------------------------------------------------------------------------


class Captured:
    """The dispatcher's last step in these tests: keeps what the endpoint read, calls no
    service."""

    def __init__(self):
        self.calls = []

    def __call__(self, inv, proceed) -> Response:
        self.calls.append(inv)
        return Response("read")


@dataclass
class Readers:
    soap: SoapEndpoint
    rest: RestEndpoint
    captured: Captured

    def read(self, endpoint, *args):
        self.captured.calls.clear()
        response = endpoint(*args)
        assert response.status_code == 200, response.get_data(as_text=True)
        (inv,) = self.captured.calls
        return inv


@pytest.fixture(scope="module")
def readers(facades) -> Readers:
    captured = Captured()
    dispatcher = Dispatcher([Resolve(), BindArguments(), captured])
    proxies = Proxies([])
    return Readers(
        SoapEndpoint(facades, dispatcher, proxies, 1_000_000),
        RestEndpoint(facades, dispatcher, proxies, 1_000_000),
        captured,
    )


def example(s: etree._Element, kind: str) -> str:
    found = s.find(f".//pre[@data-example='{kind}']")
    assert found is not None, kind
    return found.text_content()


def soap_call(bound: BoundFacade, envelope: str) -> Request:
    return Request(
        EnvironBuilder(
            path=f"/services/{bound.name}",
            method="POST",
            data=envelope.encode(),
            content_type="text/xml; charset=utf-8",
        ).get_environ()
    )


def rest_call(command: str) -> Request:
    """The request a curl command of a document sends (its $TOKEN, or a partner call's
    $APP_ID ..., as the shell reads them)."""
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:2] == ["curl", "-X"]
    method, url, rest = argv[2], argv[3], argv[4:]
    headers, data = {}, None
    while rest:
        option, value, *rest = rest
        if option == "-H":
            name, _, header = value.partition(": ")
            headers[name] = header.removeprefix("$") if header.isupper() else header
            headers[name] = headers[name].replace(f"${LOGIN_PLACEHOLDER}", LOGIN_PLACEHOLDER)
        else:
            assert option == "-d"
            data = value.encode()
    assert url.startswith(BASE)
    path, _, query = url[len(BASE) :].partition("?")
    builder = EnvironBuilder(
        path=path, query_string=query, method=method, headers=headers, data=data
    )
    return Request(builder.get_environ())


def test_every_example_request_is_read_alike_by_both_endpoints(facades, documents, readers) -> None:
    for bound, op in every_operation(facades):
        s = section(documents[bound.name], f"op-{op.name}")
        soap = readers.read(readers.soap, soap_call(bound, example(s, "soap-request")), bound.name)
        rest = readers.read(readers.rest, rest_call(example(s, "rest-request")))
        assert soap.operation is rest.operation is op
        assert soap.args == rest.args, op.name
        assert all(v is not None and v != [] for v in soap.args.values()), op.name
        if op.partner_scope:  # the placeholders of a signed call, read alike
            assert soap.credentials.token is rest.credentials.token is None, op.name
            fields = ("app_id", "key_id", "timestamp", "nonce", "signature")
            signed = [
                tuple(getattr(r.credentials.partner, f) for f in fields) for r in (soap, rest)
            ]
            assert signed[0] == signed[1] == ("APP_ID", "KEY_ID", "TIMESTAMP", "NONCE", "SIGNATURE")
            continue
        token = None if op.operation.public else LOGIN_PLACEHOLDER
        assert soap.credentials.token == rest.credentials.token == token, op.name


def test_every_example_answer_is_read_alike_on_both_protocols(facades, documents) -> None:
    for bound, op in every_operation(facades):
        s = section(documents[bound.name], f"op-{op.name}")
        envelope = etree.fromstring(example(s, "soap-response").encode())
        (answer,) = envelope.find(f"{{{ENV}}}Body")
        assert answer.tag == f"{{{bound.facade.namespace}}}{op.response.name}"
        from_soap = read_complex(answer, op.response, "")
        answer_text = s.find(".//pre[@data-example='rest-response']")
        if op.result is None:
            assert answer_text is None and from_soap == {}
            assert "204 No Content, no body" in words(s)
            continue
        from_rest = read_field(json.loads(answer_text.text_content()), op.result, "return")
        assert from_soap == {"return": from_rest}, op.name


def test_every_example_envelope_is_valid_by_the_wsdl_schema(facades, documents, wsdls) -> None:
    for bound in facades:
        schema = strict_schemas(etree.tostring(wsdls[bound.name]))
        for op in bound.operations:
            s = section(documents[bound.name], f"op-{op.name}")
            for kind in ("soap-request", "soap-response"):
                envelope = etree.fromstring(example(s, kind).encode())
                header = envelope.find(f"{{{ENV}}}Header")
                (body,) = envelope.find(f"{{{ENV}}}Body")
                schema.validate(body)
                for entry in () if header is None else header:
                    schema.validate(entry)
                assert (header is not None) == (
                    kind == "soap-request" and not op.operation.public
                ), op.name


# -- escaping, and a facade every caller may use ----------------------------------------

NS = "urn:test:contractdoc"


class NoteDto(ComplexModel):
    """A note <b>bold</b> & "quoted", 备注 in Chinese."""

    __namespace__ = NS
    _type_info = [  # noqa: RUF012 - spyne style
        ("text", required(Unicode(max_len=40), "The <text> & what it says (内容).")),
    ]


class OpenFacade(Facade):
    """Public <script>alert("x")</script> & notes (公告) for these tests."""

    namespace = NS
    service = "tests:NoteService"

    @operation(rest=GET("/notes/{noteId}"), returns=NoteDto, errors=("LOAN_NOT_FOUND",))
    def getNote(noteId: required(Long(ge=1), "The note's id, <1> or more.")):
        """A note by id: <i>any</i> caller & LOAN_NOT_FOUND for none (标的)."""


class NoteService:
    def get_note(self, note_id: int):
        raise AssertionError("never called")


@pytest.fixture(scope="module")
def open_facade() -> BoundFacade:
    return bind(compile_contract([OpenFacade]), {OpenFacade.service: NoteService()})[0]


def test_everything_from_the_contract_is_escaped(open_facade) -> None:
    text = facade_document(open_facade, VERSION, Links(BASE, static=True), ["OpenFacade"])
    assert "<script" not in text and "<b>" not in text and "<i>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; notes" in text
    assert "The &lt;text&gt; &amp; what it says" in text
    assert '<span lang="zh-Hans">公告</span>' in text
    assert '(<span lang="zh-Hans">内容</span>)' in text
    doc = lxml_html.document_fromstring(text)
    assert doc.get("lang") == "en"
    assert doc.find(".//meta[@charset]").get("charset") == "utf-8"
    assert 'Public <script>alert("x")</script> & notes (公告)' in words(doc.find(".//main"))
    # The example answer's text is escaped inside its envelope, and reads back.
    answer = example(doc.get_element_by_id("op-getNote"), "soap-response")
    assert "<tns:text>Example text</tns:text>" in answer


def test_a_facade_with_no_operation_needing_a_login(open_facade) -> None:
    doc = document(open_facade)
    auth = words(section(doc, "authentication"))
    assert "Every operation of this facade is public: no credentials are needed." in auth
    assert "AuthToken" not in auth and "Bearer" not in auth
    s = section(doc, "op-getNote")
    assert "public: anyone, logged in or not" in words(s)
    assert "Header" not in example(s, "soap-request")
    assert "Authorization" not in example(s, "rest-request")
    faults = {tr.get("data-code"): tr for tr in s.iterfind(".//tr[@data-code]")}
    assert "FORBIDDEN" not in faults
    assert words(faults["UNAUTHENTICATED"].findall("td")[3]) == (
        "credentials were sent and are not valid"
    )
    assert words(faults["LOAN_NOT_FOUND"].findall("td")[3]) == "declared by the operation"


def test_a_document_stands_alone_for_screen_and_print(facades, documents) -> None:
    doc = documents["LoanFacade"]
    text = lxml_html.tostring(doc, encoding="unicode")
    assert doc.find(".//script") is None and doc.find(".//link") is None
    assert not doc.xpath("//@src")
    external = [a for a in doc.xpath("//a/@href") if re.match(r"[a-z]+:", a)]
    assert external == []  # the static copy links to files beside it, relative
    assert {"changelog.html", "LoanFacade.html", "../../wsdl/LoanFacade.wsdl"} <= set(
        doc.xpath("//a/@href")
    )
    assert "../../swagger/openapi.json" in doc.xpath("//a/@href")
    style = doc.find(".//style").text
    assert "@media print" in style and "break-before: page" in style
    assert 'content: " <" attr(href) ">"' in style
    assert "font-family" in style and "#ffffff" in style
    loan = next(f for f in facades if f.name == "LoanFacade")
    assert text.count('class="operation"') == len(loan.operations)


def test_the_served_links_carry_the_base_url(facades) -> None:
    bound = next(f for f in facades if f.name == "FundFacade")
    doc = lxml_html.document_fromstring(
        facade_document(bound, VERSION, Links("https://api.example.com"), ["FundFacade"])
    )
    hrefs = set(doc.xpath("//a/@href"))
    assert {
        "https://api.example.com/services",
        "https://api.example.com/services/changelog",
        "https://api.example.com/services/FundFacade?doc",
        "https://api.example.com/services/FundFacade?wsdl",
        "https://api.example.com/openapi.json",
    } <= hrefs
    curl = example(doc.get_element_by_id("op-hasFundAccount"), "rest-request")
    assert curl.startswith("curl -X GET 'https://api.example.com/api/v1/fund/account-exists'")


# -- the changelog -----------------------------------------------------------------------


def changelog_text(root: Path) -> str:
    return changelog_document(compat.history(root), Links(BASE, static=True), ["PaymentFacade"])


def changelog(root: Path) -> etree._Element:
    return lxml_html.document_fromstring(changelog_text(root))


def test_the_changelog_before_any_release(tmp_path: Path) -> None:
    doc = changelog(tmp_path)
    main = words(doc.find(".//main"))
    assert "No release yet." in main
    assert doc.find(".//section[@class='release']") is None
    assert doc.find(".//a[@href='PaymentFacade.html']") is not None
    assert doc.find(".//a[@href='../contracts.md']") is not None


def test_the_changelog_lists_each_release_newest_first(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "wsdl", tmp_path / "wsdl")
    shutil.copytree(ROOT / "swagger", tmp_path / "swagger")

    def release(version: str) -> None:
        path = tmp_path / compat.OPENAPI
        document = json.loads(path.read_text("utf-8"))
        document["info"]["version"] = version
        path.write_text(json.dumps(document), "utf-8")
        assert compat.release(tmp_path) == version

    release("1.0.0")
    path = tmp_path / compat.OPENAPI
    document = json.loads(path.read_text("utf-8"))
    document["components"]["schemas"]["PaymentOrderStatus"]["enum"].append("<CANCELLED>")
    path.write_text(json.dumps(document), "utf-8")
    release("1.1.0")
    wsdl = tmp_path / "wsdl" / "PaymentFacade.wsdl"
    tree = etree.fromstring(wsdl.read_bytes())
    port_type = tree.find(f"{{{WSDL}}}portType")
    port_type.remove(port_type.find(f"{{{WSDL}}}operation[@name='getOrder']"))
    wsdl.write_bytes(etree.tostring(tree))
    (tmp_path / compat.NOTES).parent.mkdir(exist_ok=True)
    (tmp_path / compat.NOTES).write_text(
        "Read <this>:\n\n- getOrder is gone;\n  use listOrders\n- nothing else\n", "utf-8"
    )
    release("2.0.0")
    doc = changelog(tmp_path)
    releases = doc.findall(".//section[@class='release']")
    assert [s.find("h2").text_content() for s in releases] == ["2.0.0", "1.1.0", "1.0.0"]
    newest, middle, first = (words(s) for s in releases)
    assert "Breaking (1), a new major version" in newest
    notes = releases[0].find("div[@class='notes']")
    assert notes.find("p").text_content() == "Read <this>:"
    assert [li.text_content() for li in notes.findall("ul/li")] == [
        "getOrder is gone; use listOrders",
        "nothing else",
    ]
    assert "Read &lt;this&gt;:" in changelog_text(tmp_path)
    assert "PaymentFacade.getOrder: operation removed (or renamed)" in newest
    assert "Breaking" not in middle and "Compatible changes" in middle
    assert "enumeration value <CANCELLED> added" in middle
    assert "enumeration value &lt;CANCELLED&gt; added" in changelog_text(tmp_path)
    assert "The first released version." in first and "Compatible" not in first
    assert "No release yet" not in words(doc)


# -- example values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "name", "expected"),
    [
        (Long, "loanId", 1001),
        (Long(ge=1), "count", 1),
        (Money, "amount", Exact("100.00")),
        (Decimal(total_digits=7, fraction_digits=4, le=36), "annualRate", Exact("8.5")),
        (Decimal(total_digits=3, fraction_digits=2, ge=Exact(2), le=Exact(3)), "x", 2),
        (Unicode(max_len=20), "bankName", "Example bank name"),
        (Unicode(max_len=5), "bankName", "Examp"),
        (Unicode(min_len=30), "bankName", "Example bank nameExample bank "),
        (Unicode(min_len=6, max_len=6, pattern="[0-9]{6}"), "code", "123456"),
        (Unicode(min_len=16, max_len=23, pattern="( *[0-9]){16,19} *"), "card", "1234567890123456"),
        (Unicode(min_len=3, pattern="(ab|c)+"), "x", "abc"),
        (Unicode(pattern=r"\d-\w\s?[^a-z]"), "x", "1-34"),
    ],
)
def test_an_example_value_satisfies_its_declaration(declared, name, expected) -> None:
    t = simple(declared)
    value = simple_value(t, name)
    assert value == expected
    assert t.from_text(t.to_text(value)) == value


def test_a_declaration_no_value_satisfies_fails_loudly() -> None:
    for declared in (
        Unicode(max_len=3, pattern="[0-9]{4}"),
        Long(ge=5, le=4),
        Unicode(pattern=r"(?=a)a"),
    ):
        with pytest.raises(NoExample):
            simple_value(simple(declared), "x")
