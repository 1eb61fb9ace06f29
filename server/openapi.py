"""The OpenAPI 3 document of every facade's REST binding, deterministic and self-contained.

Each path's operationId is the facade operation's name, so a client finds an operation by
the same name on either protocol. Money and rates are strings with exact decimal patterns.
"""

import json

from server.binding import TEXT_RULES, Complex, Field, Simple
from server.registry import BoundFacade
from server.rest import body_fields, openapi_path, path_params, query_fields
from service.errors import CATALOGUE

_INTEGER_FORMAT = {"int": "int32", "long": "int64"}


def _simple_schema(t: Simple) -> dict:
    k = t.kind
    if k == "decimal":
        # totalDigits bounds integer and fraction digits together, which a pattern cannot say:
        # the pattern bounds each part, the description states the total.
        total, fraction = t.total_digits or 28, t.fraction_digits
        tail = "" if fraction == 0 else rf"(\.\d{{1,{fraction or total}}})?"
        sign = "" if t.ge is not None and t.ge >= 0 else "-?"
        schema = {
            "type": "string",
            "format": "decimal",
            "pattern": rf"^{sign}\d{{1,{total}}}{tail}$",
            "description": f"A decimal string: at most {total} digits"
            + ("" if fraction is None else f", {fraction} after the point")
            + ("" if t.ge is None else f", at least {t.ge}")
            + ("" if t.le is None else f", at most {t.le}")
            + ".",
        }
        return schema
    if k in _INTEGER_FORMAT:
        schema = {"type": "integer", "format": _INTEGER_FORMAT[k]}
        if t.ge is not None:
            schema["minimum"] = int(t.ge)
        if t.le is not None:
            schema["maximum"] = int(t.le)
        return schema
    if k == "boolean":
        return {"type": "boolean"}
    if k == "dateTime":
        return {"type": "string", "format": "date-time"}
    if k == "date":
        return {"type": "string", "format": "date"}
    if k == "enum":
        return {"type": "string", "enum": list(t.values)}
    schema = {"type": "string"}
    if t.min_len is not None:
        schema["minLength"] = t.min_len
    if t.max_len is not None:
        schema["maxLength"] = t.max_len
    if t.pattern is not None:
        schema["pattern"] = f"^{t.pattern}$"
    return schema


class _Components:
    def __init__(self):
        self.schemas: dict[str, dict] = {}

    def ref(self, t: Complex | Simple) -> dict:
        if isinstance(t, Simple):
            if t.name is None:
                return _simple_schema(t)
            if t.name not in self.schemas:
                self.schemas[t.name] = _simple_schema(t)
            return {"$ref": f"#/components/schemas/{t.name}"}
        if t.name not in self.schemas:
            self.schemas[t.name] = {}  # placeholder against recursion
            self.schemas[t.name] = self.object(t)
        return {"$ref": f"#/components/schemas/{t.name}"}

    def field(self, f: Field) -> dict:
        schema = self.ref(f.type)
        if f.repeated:
            schema = {"type": "array", "items": schema}
        if f.doc:
            schema = (
                {"allOf": [schema], "description": f.doc}
                if "$ref" in schema
                else {**schema, "description": f.doc}
            )
        return schema

    def object(self, t: Complex, fields=None) -> dict:
        fields = t.fields if fields is None else fields
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {f.name: self.field(f) for f in fields},
        }
        required = [f.name for f in fields if f.required]
        if required:
            schema["required"] = required
        if t.doc:
            schema["description"] = t.doc
        return schema


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build(facades: list[BoundFacade], title: str, version: str) -> dict:
    components = _Components()
    paths: dict[str, dict] = {}
    for bound in facades:
        for op in bound.operations:
            rest = op.operation.rest
            o: dict = {
                "operationId": op.name,
                "tags": [bound.name],
                "summary": _first_sentence(op.operation.doc),
                "description": op.operation.doc
                + ("" if op.roles is None else f"\n\nRoles: {', '.join(sorted(op.roles))}."),
            }
            if op.operation.deprecated:
                o["deprecated"] = True
            params = []
            for name in sorted(path_params(op)):
                f = op.request.by_name[name]
                params.append(
                    {
                        "name": name,
                        "in": "path",
                        "required": True,
                        "description": f.doc,
                        "schema": components.ref(f.type),
                    }
                )
            for f in query_fields(op):
                schema = components.field(f)
                params.append(
                    {
                        "name": f.name,
                        "in": "query",
                        "required": f.required,
                        "description": f.doc,
                        "schema": schema,
                    }
                )
            if params:
                o["parameters"] = params
            if rest.body:
                f = op.request.by_name[rest.body]
                o["requestBody"] = {
                    "required": True,
                    "description": f.doc,
                    "content": {"application/json": {"schema": components.ref(f.type)}},
                }
            elif body_fields(op):
                schema = components.object(op.request, body_fields(op))
                o["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                }
            responses = {}
            if op.result is None:
                responses["204"] = {"description": "Done."}
            else:
                responses[str(rest.status)] = {
                    "description": "Success.",
                    "content": {"application/json": {"schema": components.field(op.result)}},
                }
            responses["400"] = _error("Invalid input (VALIDATION_FAILED, MALFORMED_REQUEST).")
            if op.roles is not None:
                o["security"] = [{"bearerAuth": []}]
                responses["401"] = _error("Not logged in (UNAUTHENTICATED).")
                responses["403"] = _error("Not allowed for the caller's role (FORBIDDEN).")
            responses["default"] = _error("Any other error in the catalogue.")
            o["responses"] = responses
            paths.setdefault(openapi_path(op), {})[rest.method.lower()] = o
    components.schemas["Error"] = {
        "type": "object",
        "required": ["code", "message", "requestId"],
        "properties": {
            "code": {"type": "string", "enum": sorted(CATALOGUE)},
            "message": {"type": "string"},
            "requestId": {"type": "string"},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "JSON REST binding of the platform's facades; the same operations "
            "are served as SOAP 1.1 at /services. Money and rates are decimal strings.\n\n"
            + TEXT_RULES,
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": b.name, "description": b.facade.doc()} for b in facades],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def render(document: dict) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
