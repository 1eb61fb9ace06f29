"""The OpenAPI document: operation ids, money as decimal strings, security, and structure."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from server.app import openapi_document
from server.binding import Complex
from server.declared import discover_facades
from server.openapi import render

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def document(platform) -> dict:
    return openapi_document(platform)


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            assert method in HTTP_METHODS, (path, method)
            yield path, method, op


def deref(document: dict, schema: dict) -> dict:
    """Follow $ref and single-item allOf wrappers down to the schema they name."""
    while True:
        if "$ref" in schema:
            ref = schema["$ref"]
            assert ref.startswith("#/components/schemas/"), ref
            schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        elif list(schema.get("allOf", ())) and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_operation_ids_are_the_facade_operation_names(document: dict) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    expected = [op.name for f in discover_facades() for op in f.operations]
    assert sorted(ids) == sorted(expected)
    assert len(set(ids)) == len(ids)


def test_every_money_and_rate_field_is_a_decimal_string(document: dict, platform) -> None:
    schemas = document["components"]["schemas"]
    decimals = []
    for bound in platform.facades:
        for op in bound.operations:
            for t in (op.request, op.response):
                stack = [t]
                while stack:
                    c = stack.pop()
                    for f in c.fields:
                        if isinstance(f.type, Complex):
                            stack.append(f.type)
                        elif f.type.kind == "decimal" and c.name in schemas:
                            decimals.append((f, schemas[c.name]["properties"][f.name]))
    for _, _, op in operations(document):
        for p in op.get("parameters", ()):
            if p["name"] in ("minRate", "maxRate"):
                decimals.append((p["name"], p["schema"]))
    names = {getattr(f, "name", f) for f, _ in decimals}
    assert {"amount", "minInvest", "maxInvestPerInvestor", "annualRate", "minRate"} <= names
    for f, schema in decimals:
        resolved = deref(document, schema)
        assert resolved["type"] == "string", f
        pattern = re.compile(resolved["pattern"])
        assert pattern.search("30.00") and pattern.search("12.5"), f
        for bad in ("1e3", "1000.00001", "NaN", "1,000", "", " 1", "١٠"):
            assert not pattern.search(bad), (f, bad)
    money = deref(document, schemas["LoanRequest"]["properties"]["amount"])
    assert not re.search(money["pattern"], "1000.001")
    assert not re.search(money["pattern"], "0.00")  # positiveMoney: above 0
    assert not re.search(money["pattern"], "-1")
    rate = deref(document, schemas["LoanRequest"]["properties"]["annualRate"])
    assert re.search(rate["pattern"], "36") and not re.search(rate["pattern"], "36.0001")


def test_operations_with_roles_declare_bearer_auth(document: dict, platform) -> None:
    roles = {op.name: op.roles for f in platform.facades for op in f.operations}
    partner = {op.name for f in platform.facades for op in f.operations if op.partner_scope}
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    protected = 0
    for _, _, op in operations(document):
        if op["operationId"] in partner:
            continue
        if roles[op["operationId"]] is None:
            assert "security" not in op, op["operationId"]
        else:
            protected += 1
            assert {"bearerAuth": []} in op["security"], op["operationId"]
            assert "401" in op["responses"], op["operationId"]
    assert protected >= 4


def test_partner_operations_need_every_signature_header_and_no_bearer(
    document: dict, platform
) -> None:
    schemes = document["components"]["securitySchemes"]
    headers = {name: s["name"] for name, s in schemes.items() if s["type"] == "apiKey"}
    assert sorted(headers.values()) == [
        "X-P2P-App-Id",
        "X-P2P-Key-Id",
        "X-P2P-Nonce",
        "X-P2P-Signature",
        "X-P2P-Timestamp",
    ]
    partner = {op.name for f in platform.facades for op in f.operations if op.partner_scope}
    assert {"listPartnerListings", "getPartnerListing"} <= partner
    for _, _, op in operations(document):
        if op["operationId"] in partner:
            assert op["security"] == [{key: [] for key in headers}], op["operationId"]
            assert {"401", "403", "429"} <= set(op["responses"]), op["operationId"]
        elif "security" in op:
            assert not set(op["security"][0]) & set(headers), op["operationId"]


def test_document_is_structurally_valid(document: dict) -> None:
    assert document["openapi"].startswith("3.0.")
    assert document["info"]["title"] and document["info"]["version"]
    schemas = document["components"]["schemas"]
    all_refs = list(refs(document))
    assert all_refs
    for ref in all_refs:
        kind, _, name = ref.removeprefix("#/components/").partition("/")
        assert kind in ("schemas", "examples"), ref
        assert name in document["components"][kind], ref
    for name, schema in schemas.items():
        if schema.get("type") == "object":
            assert set(schema.get("required", ())) <= set(schema["properties"]), name
    for path, method, op in operations(document):
        assert path.startswith("/api/v1/")
        assert op["responses"], (path, method)
        for status in op["responses"]:
            assert status == "default" or re.fullmatch(r"[1-5]\d\d", status), status
        declared = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, method)
        for p in op.get("parameters", ()):
            assert p["in"] in ("path", "query", "header", "cookie")
            assert "schema" in p
            if p["in"] == "path":
                assert p["required"] is True
        if method in ("get", "delete"):
            assert "requestBody" not in op, (path, method)
    tags = {t["name"] for t in document["tags"]}
    assert all(set(op["tags"]) <= tags for _, _, op in operations(document))


def test_rendered_document_is_json_and_stable(document: dict, platform) -> None:
    text = render(document)
    assert json.loads(text) == document
    assert render(openapi_document(platform)) == text
