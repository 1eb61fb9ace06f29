"""Per-operation fault codes: what each operation declares, what the framework adds, and how
both contracts publish them."""

# No "from __future__ import annotations": facade parameters are annotated with spyne types.

import re

import pytest
from lxml import etree
from spyne import Long, Unicode

from facade.contract import GET, INVESTOR, MEMBERS, OPERATOR, Facade, operation
from facade.types import required
from server.declared import compile_contract
from server.faults import EVERY_CALL, fault_codes
from server.openapi import build
from server.registry import bind
from server.wsdl import WSDL, Wsdl
from service.errors import CATALOGUE

NS = "urn:test:faults"


class ThingFacade(Facade):
    """A facade declared only for these tests."""

    namespace = NS
    service = "tests:ThingService"

    @operation(rest=GET("/things/{thingId}"), returns=Unicode, errors=("LOAN_NOT_FOUND",))
    def getThing(thingId: required(Long, "Id.")):
        """One thing."""

    @operation(rest=GET("/things"), returns=Unicode, roles=[OPERATOR])
    def listThings():
        """Things, for operators."""

    @operation(rest=GET("/mine"), returns=Unicode, roles=sorted(MEMBERS))
    def mine():
        """Any member's own."""


class ThingService:
    def get_thing(self, thing_id: int) -> str:
        return ""

    def list_things(self) -> str:
        return ""

    def mine(self) -> str:
        return ""


@pytest.fixture(scope="module")
def bound():
    return bind(compile_contract([ThingFacade]), {"tests:ThingService": ThingService()})[0]


def test_an_operation_may_raise_what_it_declares_and_what_every_call_may_meet(bound) -> None:
    codes = {op.name: op.fault_codes for op in bound.operations}
    assert codes["getThing"] == EVERY_CALL | {"LOAN_NOT_FOUND"}
    assert codes["listThings"] == EVERY_CALL | {"FORBIDDEN"}  # roles leave members out
    assert codes["mine"] == EVERY_CALL  # every member may call it


@pytest.mark.parametrize(
    ("errors", "refusal"),
    [(("NO_SUCH_CODE",), "not in the catalogue"), (("VALIDATION_FAILED",), "every such call")],
)
def test_a_declaration_of_an_unknown_or_implied_code_is_refused(errors, refusal) -> None:
    @operation(rest=GET("/x"), roles=[INVESTOR], errors=errors)
    def x():
        """X."""

    with pytest.raises(TypeError, match=refusal):
        fault_codes(x)


def test_the_wsdl_states_each_operation_s_codes(bound) -> None:
    wsdl = etree.fromstring(Wsdl(bound).render("http://h", "/services/ThingFacade"))
    docs = {
        op.get("name"): op.find(f"{{{WSDL}}}documentation").text
        for op in wsdl.iter(f"{{{WSDL}}}operation")
        if op.getparent().tag == f"{{{WSDL}}}portType"
    }
    for op in bound.operations:
        stated = re.search(r"Fault codes: ([A-Z_, ]+)\.", docs[op.name]).group(1).split(", ")
        assert set(stated) == op.fault_codes, op.name


def test_openapi_answers_each_status_with_its_codes_and_an_example_of_each(bound) -> None:
    document = build([bound], "t", "1.0.0")
    examples = document["components"]["examples"]
    for op in bound.operations:
        path = "/api/v1" + op.operation.rest.path
        responses = document["paths"][path]["get"]["responses"]
        stated = set()
        for status, response in responses.items():
            if status.startswith("2"):
                continue
            codes = response["x-error-codes"]
            stated |= set(codes)
            assert {CATALOGUE[c].status for c in codes} == {int(status)}
            content = response["content"]["application/json"]
            assert set(content["examples"]) == set(codes)
            for code, ref in content["examples"].items():
                example = examples[ref["$ref"].rsplit("/", 1)[1]]["value"]
                assert example["code"] == code
                assert example["message"] == CATALOGUE[code].message
        assert stated == op.fault_codes, op.name
        assert "default" not in responses


def test_every_code_an_operation_s_documentation_names_is_declared(platform) -> None:
    """What a docstring promises a caller may see, the contract declares."""
    for bound in platform.facades:
        for op in bound.operations:
            named = set(re.findall(r"\b[A-Z][A-Z_]{3,}\b", op.operation.doc)) & CATALOGUE.keys()
            assert named <= op.fault_codes, (bound.name, op.name, named - op.fault_codes)
