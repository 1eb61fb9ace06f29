"""The breaking-change gate (server/compat/): each kind of break, made to the contracts the
platform really publishes, is found and called breaking; additions pass; releases follow the
versioning rules; and the committed contracts keep the last release's promises."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from server import compat
from server.cli import main
from server.compat.compare import compare
from server.compat.openapishape import read_openapi
from server.compat.wsdlshape import XS, read_wsdl
from server.wsdl import SOAP, WSDL

SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
ROOT = Path(__file__).resolve().parents[3]
FACADE = "PaymentFacade"
NS = {"wsdl": WSDL, "xs": XS, "soap": SOAP}


@pytest.fixture(scope="module")
def wsdl() -> bytes:
    return (ROOT / "wsdl" / f"{FACADE}.wsdl").read_bytes()


@pytest.fixture(scope="module")
def openapi() -> dict:
    return json.loads((ROOT / "swagger" / "openapi.json").read_text("utf-8"))


def soap_changes(wsdl: bytes, edit: Callable[[etree._Element], None]) -> list:
    tree = etree.fromstring(wsdl)
    edit(tree)
    return compare(read_wsdl(wsdl), read_wsdl(etree.tostring(tree)))


def rest_changes(openapi: dict, edit: Callable[[dict], None]) -> list:
    changed = copy.deepcopy(openapi)
    edit(changed)
    return compare(read_openapi(openapi), read_openapi(changed))


def one_break(changes: list) -> tuple[str, str]:
    breaking = [(c.where, c.what) for c in changes if c.breaking]
    assert len(breaking) == 1, changes
    return breaking[0]


def complex_type(tree, name: str):
    return tree.find(f".//xs:complexType[@name='{name}']", NS)


def field(tree, type_name: str, name: str):
    return complex_type(tree, type_name).find(f"xs:sequence/xs:element[@name='{name}']", NS)


# -- SOAP: each kind of break ------------------------------------------------------------


def test_an_unchanged_contract_has_no_changes(wsdl, openapi) -> None:
    assert compare(read_wsdl(wsdl), read_wsdl(wsdl)) == []
    assert compare(read_openapi(openapi), read_openapi(openapi)) == []


def test_an_operation_removed(wsdl) -> None:
    def edit(tree):
        port_type = tree.find("wsdl:portType", NS)
        port_type.remove(port_type.find("wsdl:operation[@name='getOrder']", NS))

    assert one_break(soap_changes(wsdl, edit)) == (
        f"{FACADE}.getOrder",
        "operation removed (or renamed)",
    )


def test_an_operation_renamed(wsdl) -> None:
    def edit(tree):
        tree.find("wsdl:portType/wsdl:operation[@name='getOrder']", NS).set("name", "fetchOrder")

    changes = soap_changes(wsdl, edit)
    assert one_break(changes) == (f"{FACADE}.getOrder", "operation removed (or renamed)")
    assert any(c.where == f"{FACADE}.fetchOrder" and not c.breaking for c in changes)


def test_a_request_field_renamed(wsdl) -> None:
    def edit(tree):
        field(tree, "withdraw", "cardId").set("name", "bankCardId")

    changes = soap_changes(wsdl, edit)
    assert ("PaymentFacade.withdraw input.cardId", "field removed (or renamed)") in [
        (c.where, c.what) for c in changes if c.breaking
    ]
    # ... and the new name is a new required field: a break of its own.
    assert [c.what for c in changes if c.where.endswith("bankCardId")] == ["required field added"]


def test_a_response_field_removed(wsdl) -> None:
    def edit(tree):
        sequence = complex_type(tree, "PaymentOrderDto").find("xs:sequence", NS)
        sequence.remove(field(tree, "PaymentOrderDto", "updatedAt"))

    breaking = [(c.where, c.what) for c in soap_changes(wsdl, edit) if c.breaking]
    # Every operation that returns the type is told.
    assert sorted(breaking) == [
        (f"{FACADE}.{op} output.return{items}.updatedAt", "field removed (or renamed)")
        for op, items in (
            ("getOrder", ""),
            ("listOrders", ".items"),
            ("recharge", ""),
            ("withdraw", ""),
        )
    ]


def test_a_type_narrowed(wsdl) -> None:
    def edit(tree):
        field(tree, "getOrder", "orderNo").find(".//xs:maxLength", NS).set("value", "20")

    assert one_break(soap_changes(wsdl, edit)) == (
        f"{FACADE}.getOrder input.orderNo",
        "maxLength 32 became 20 (narrowed)",
    )


def test_a_type_changed(wsdl) -> None:
    def edit(tree):
        field(tree, "withdraw", "cardId").set("type", "xs:int")

    assert one_break(soap_changes(wsdl, edit)) == (
        f"{FACADE}.withdraw input.cardId",
        "type xs:long became xs:int",
    )


def test_a_pattern_added_to_an_input(wsdl) -> None:
    def edit(tree):
        restriction = field(tree, "getOrder", "orderNo").find(".//xs:restriction", NS)
        restriction.find("xs:pattern", NS).set("value", "[A-Z0-9]*")

    where, what = one_break(soap_changes(wsdl, edit))
    assert where == f"{FACADE}.getOrder input.orderNo" and what.startswith("pattern")


def test_an_optional_field_made_required(wsdl) -> None:
    def edit(tree):
        field(tree, "listOrders", "page").set("minOccurs", "1")

    assert one_break(soap_changes(wsdl, edit)) == (
        f"{FACADE}.listOrders input.page",
        "optional field made required",
    )


def test_a_required_output_field_made_optional(wsdl) -> None:
    def edit(tree):
        field(tree, "PaymentOrderDto", "amount").set("minOccurs", "0")

    breaking = {(c.where, c.what) for c in soap_changes(wsdl, edit) if c.breaking}
    assert (f"{FACADE}.getOrder output.return.amount", "required field made optional") in breaking
    assert {what for _, what in breaking} == {"required field made optional"}


def test_a_new_required_request_field(wsdl) -> None:
    def edit(tree):
        sequence = complex_type(tree, "recharge").find("xs:sequence", NS)
        etree.SubElement(sequence, f"{{{XS}}}element", name="channel", type="xs:string")

    assert one_break(soap_changes(wsdl, edit)) == (
        f"{FACADE}.recharge input.channel",
        "required field added",
    )


def test_an_enumeration_value_removed(wsdl) -> None:
    def edit(tree):
        enum = tree.find(".//xs:simpleType[@name='PaymentOrderStatus']/xs:restriction", NS)
        enum.remove(enum.find("xs:enumeration[@value='REVERSED']", NS))

    changes = soap_changes(wsdl, edit)
    assert {c.what for c in changes if c.breaking} == {"enumeration value REVERSED removed"}


def test_a_fault_code_removed(wsdl) -> None:
    def edit(tree):
        doc = tree.find("wsdl:documentation", NS)
        doc.text = doc.text.replace("PAYMENT_ORDER_NOT_FOUND, ", "")

    changes = soap_changes(wsdl, edit)
    assert {c.what for c in changes if c.breaking} == {"fault code PAYMENT_ORDER_NOT_FOUND removed"}


def test_codes_an_operation_declares_for_the_first_time_pass_and_one_removed_breaks(wsdl) -> None:
    def undeclared(tree):  # as before operations declared their codes
        for op in tree.iterfind("wsdl:portType/wsdl:operation", NS):
            doc = op.find("wsdl:documentation", NS)
            doc.text = doc.text[: doc.text.index("\n\nFault codes:")]

    def fewer(tree):
        doc = tree.find("wsdl:portType/wsdl:operation[@name='getOrder']/wsdl:documentation", NS)
        doc.text = doc.text.replace("PAYMENT_ORDER_NOT_FOUND, ", "")

    before = read_wsdl(etree.tostring(_edited(wsdl, undeclared)))
    first = compare(before, read_wsdl(wsdl))
    assert {(c.what, c.breaking) for c in first} == {("its own fault codes declared", False)}
    assert one_break(soap_changes(wsdl, fewer)) == (
        f"{FACADE}.getOrder faults",
        "fault code PAYMENT_ORDER_NOT_FOUND removed",
    )


def test_a_new_binding_with_its_headers_passes(wsdl) -> None:
    """The SOAP 1.2 binding beside the 1.1 one, as it came: its headers are new to no
    existing client."""

    def without_soap12(tree):
        for binding in tree.findall("wsdl:binding", NS):
            if binding.find(f"{{{SOAP12}}}binding") is not None:
                tree.remove(binding)
        service = tree.find("wsdl:service", NS)
        for port in service.findall("wsdl:port", NS):
            if port.find(f"{{{SOAP12}}}address") is not None:
                service.remove(port)

    changes = compare(read_wsdl(etree.tostring(_edited(wsdl, without_soap12))), read_wsdl(wsdl))
    assert any("header soap12" in c.where for c in changes)
    assert any(c.where.endswith("(soap12)") for c in changes)
    assert not [c for c in changes if c.breaking], changes


def test_a_header_dropped_passes_and_a_header_required_breaks(wsdl) -> None:
    tree = etree.fromstring(wsdl)
    for header in tree.iterfind(".//wsdl:binding/wsdl:operation/wsdl:input/soap:header", NS):
        header.getparent().remove(header)
    without = read_wsdl(etree.tostring(tree))

    dropped = compare(read_wsdl(wsdl), without)
    assert dropped and not [c for c in dropped if c.breaking]
    required = compare(without, read_wsdl(wsdl))
    assert required and all(c.breaking and " header " in c.where for c in required)


def test_a_port_removed(wsdl) -> None:
    def edit(tree):
        service = tree.find("wsdl:service", NS)
        service.remove(service.find("wsdl:port", NS))

    where, what = one_break(soap_changes(wsdl, edit))
    assert where.startswith(f"{FACADE} port") and what == "removed"


# -- REST: each kind of break ------------------------------------------------------------


def test_a_rest_path_changed(openapi) -> None:
    def edit(doc):
        doc["paths"]["/api/v1/payment-orders/{orderNo}"] = doc["paths"].pop(
            "/api/v1/payments/{orderNo}"
        )

    assert one_break(rest_changes(openapi, edit)) == (
        f"{FACADE}.getOrder route",
        "GET /api/v1/payments/{orderNo} became GET /api/v1/payment-orders/{orderNo}",
    )


def test_a_rest_verb_changed(openapi) -> None:
    def edit(doc):
        item = doc["paths"]["/api/v1/payments/recharges"]
        item["put"] = item.pop("post")

    where, what = one_break(rest_changes(openapi, edit))
    assert where == f"{FACADE}.recharge route" and what.startswith("POST ")


def test_a_success_status_changed(openapi) -> None:
    def edit(doc):
        responses = doc["paths"]["/api/v1/payments/recharges"]["post"]["responses"]
        responses["200"] = responses.pop("201")

    assert one_break(rest_changes(openapi, edit)) == (
        f"{FACADE}.recharge success status",
        "201 became 200",
    )


def test_a_json_field_narrowed_and_required(openapi) -> None:
    def edit(doc):
        body = doc["paths"]["/api/v1/payments/recharges"]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        schema["properties"]["requestNo"]["maxLength"] = 32
        schema["properties"]["channel"] = {"type": "string"}
        schema["required"].append("channel")

    breaking = {(c.where, c.what) for c in rest_changes(openapi, edit) if c.breaking}
    assert breaking == {
        (f"{FACADE}.recharge input.body.requestNo", "maxLength 64 became 32 (narrowed)"),
        (f"{FACADE}.recharge input.body.channel", "required field added"),
    }


def test_a_query_parameter_made_required(openapi) -> None:
    def edit(doc):
        for parameter in doc["paths"]["/api/v1/payments"]["get"]["parameters"]:
            if parameter["name"] == "page":
                parameter["required"] = True

    assert one_break(rest_changes(openapi, edit)) == (
        f"{FACADE}.listOrders input.query page",
        "optional field made required",
    )


def test_a_json_enumeration_value_removed(openapi) -> None:
    def edit(doc):
        doc["components"]["schemas"]["PaymentOrderStatus"]["enum"].remove("REVERSED")

    breaking = {c.what for c in rest_changes(openapi, edit) if c.breaking}
    assert breaking == {"enumeration value REVERSED removed"}


def test_an_output_that_may_now_be_null(openapi) -> None:
    def edit(doc):
        doc["components"]["schemas"]["PaymentOrderDto"]["properties"]["amount"]["nullable"] = True

    breaking = {c.what for c in rest_changes(openapi, edit) if c.breaking}
    assert breaking == {"may now be empty (null)"}


# -- additions pass ------------------------------------------------------------------------


def test_additions_pass(wsdl, openapi) -> None:
    def soap(tree):
        sequence = complex_type(tree, "recharge").find("xs:sequence", NS)
        etree.SubElement(sequence, f"{{{XS}}}element", name="memo", type="xs:string").set(
            "minOccurs", "0"
        )
        out = complex_type(tree, "PaymentOrderDto").find("xs:sequence", NS)
        etree.SubElement(out, f"{{{XS}}}element", name="channel", type="xs:string")
        enum = tree.find(".//xs:simpleType[@name='PaymentOrderStatus']/xs:restriction", NS)
        etree.SubElement(enum, f"{{{XS}}}enumeration", value="CANCELLED")
        length = field(tree, "getOrder", "orderNo").find(".//xs:maxLength", NS)
        length.set("value", "64")  # widened

    def rest(doc):
        doc["paths"]["/api/v1/payments/quotes"] = {
            "get": {"operationId": "quote", "tags": [FACADE], "responses": {"200": {}}}
        }
        schema = doc["components"]["schemas"]["PaymentOrderDto"]
        schema["properties"]["channel"] = {"type": "string"}
        schema["required"].append("channel")

    for changes in (soap_changes(wsdl, soap), rest_changes(openapi, rest)):
        assert changes and not [c for c in changes if c.breaking], changes


# -- releases --------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding the committed contracts, nothing released."""
    shutil.copytree(ROOT / "wsdl", tmp_path / "wsdl")
    shutil.copytree(ROOT / "swagger", tmp_path / "swagger")
    return tmp_path


def set_version(repo: Path, version: str) -> None:
    path = repo / compat.OPENAPI
    doc = json.loads(path.read_text("utf-8"))
    doc["info"]["version"] = version
    path.write_text(json.dumps(doc), "utf-8")


def break_it(repo: Path) -> None:
    path = repo / "wsdl" / f"{FACADE}.wsdl"
    tree = etree.fromstring(path.read_bytes())
    port_type = tree.find("wsdl:portType", NS)
    port_type.remove(port_type.find("wsdl:operation[@name='getOrder']", NS))
    path.write_bytes(etree.tostring(tree))


def add_to_it(repo: Path) -> None:
    path = repo / compat.OPENAPI
    doc = json.loads(path.read_text("utf-8"))
    doc["components"]["schemas"]["PaymentOrderStatus"]["enum"].append("CANCELLED")
    path.write_text(json.dumps(doc), "utf-8")


def test_releases_follow_the_version_rules(repo: Path) -> None:
    set_version(repo, "1.0.0")
    assert compat.release(repo) == "1.0.0"
    assert compat.check(repo).changes == []
    with pytest.raises(compat.ReleaseRefused, match="not after the last release"):
        compat.release(repo)
    set_version(repo, "1.1.0")
    with pytest.raises(compat.ReleaseRefused, match="nothing changed"):
        compat.release(repo)

    add_to_it(repo)
    assert compat.check(repo).changes and not compat.check(repo).breaking
    assert compat.release(repo) == "1.1.0"

    break_it(repo)
    set_version(repo, "1.2.0")
    assert [c.where for c in compat.check(repo).breaking] == [f"{FACADE}.getOrder"]
    with pytest.raises(compat.ReleaseRefused, match="need a new major version"):
        compat.release(repo)
    set_version(repo, "2.0.0")
    with pytest.raises(compat.ReleaseRefused, match=r"contracts/NOTES\.md"):
        compat.release(repo)  # a major version tells the partners what to do
    (repo / compat.NOTES).parent.mkdir(exist_ok=True)
    (repo / compat.NOTES).write_text("getOrder is gone:\n\n- use listOrders\n", "utf-8")
    assert compat.release(repo) == "2.0.0"
    assert compat.check(repo).changes == []
    assert compat.released_versions(repo) == ["1.0.0", "1.1.0", "2.0.0"]
    assert not (repo / compat.NOTES).exists()  # moved into the release
    assert [r.notes for r in compat.history(repo)] == [
        "getOrder is gone:\n\n- use listOrders",
        None,
        None,
    ]

    log = (repo / compat.CHANGELOG).read_text("utf-8")
    assert log.index("## 2.0.0") < log.index("getOrder is gone:") < log.index("## 1.1.0")
    assert log.index("## 2.0.0") < log.index("## 1.1.0") < log.index("## 1.0.0")
    assert f"- {FACADE}.getOrder: operation removed (or renamed)" in log
    assert "PaymentOrderStatus" in log or "enumeration value CANCELLED added" in log


def test_a_version_that_is_not_major_minor_patch_is_refused(repo: Path) -> None:
    set_version(repo, "v1")
    with pytest.raises(ValueError, match=r"major\.minor\.patch"):
        compat.release(repo)


def test_the_committed_contracts_keep_the_last_release_s_promises() -> None:
    """The gate CI runs: nothing published breaks what the last release promised."""
    found = compat.check(ROOT)
    assert found.released is not None, "no contract released: run `p2p release-contracts`"
    assert not found.breaking, "\n".join(map(str, found.breaking))


def test_the_committed_changelog_is_what_the_releases_say() -> None:
    assert (ROOT / compat.CHANGELOG).read_text("utf-8") == compat.changelog(ROOT)


def test_the_commands_exit_1_on_a_break_and_a_refused_release(repo: Path, capsys) -> None:
    set_version(repo, "1.0.0")
    assert main(["release-contracts", "--root", str(repo)]) == 0
    assert main(["check-contracts", "--root", str(repo)]) == 0
    break_it(repo)
    assert main(["check-contracts", "--root", str(repo)]) == 1
    out = capsys.readouterr().out
    assert f"BREAKING: {FACADE}.getOrder: operation removed (or renamed)" in out
    assert "1 breaking" in out
    assert main(["release-contracts", "--root", str(repo)]) == 1
    assert "not after the last release" in capsys.readouterr().err


def _edited(wsdl: bytes, edit) -> etree._Element:
    tree = etree.fromstring(wsdl)
    edit(tree)
    return tree
