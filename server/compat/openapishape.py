"""An OpenAPI 3 document (as server/openapi.py writes it) read into the model of
server/compat/model.py: an operation per operationId, keyed ``<tag>.<operationId>`` so that a
route that changes is a changed binding, not an operation removed and another added.

Its input is one record: a field per path and query parameter (``path <name>``, ``query
<name>``) and the JSON body as the field ``body``; its output the success response's body;
its faults the catalogue codes its responses declare (``x-error-codes`` by status, when the
document has them); its binding the verb and path, and the success status.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from server.compat.model import Again, Contract, Field, Operation, Record, Scalar, Shape

_VERBS = ("get", "put", "post", "delete", "patch", "head", "options")
_NUMERIC = ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "multipleOf")
_TEXT = ("pattern", "format")
_REF = "#/components/schemas/"


class Unreadable(ValueError):
    """The document uses something this reader does not know."""


def read_openapi(document: Mapping) -> Contract:
    schemas = document.get("components", {}).get("schemas", {})
    reader = _Schemas(schemas)
    operations = {}
    for path, item in document.get("paths", {}).items():
        for verb in _VERBS:
            op = item.get(verb)
            if op is None:
                continue
            tag = (op.get("tags") or ["api"])[0]
            key = f"{tag}.{op['operationId']}"
            fields = {}
            for parameter in op.get("parameters", []):
                if "$ref" in parameter:
                    raise Unreadable("a parameter by reference")
                field = reader.field(parameter.get("schema", {}), set())
                fields[f"{parameter['in']} {parameter['name']}"] = Field(
                    field.shape, bool(parameter.get("required")), field.many, field.nullable
                )
            body = op.get("requestBody")
            if body is not None:
                schema = body.get("content", {}).get("application/json", {}).get("schema", {})
                field = reader.field(schema, set())
                fields["body"] = Field(field.shape, bool(body.get("required")), field.many)
            status, output = _success(op, reader)
            declared = [
                response["x-error-codes"]
                for response in op.get("responses", {}).values()
                if "x-error-codes" in response
            ]
            faults = frozenset(c for codes in declared for c in codes) if declared else None
            binding = {"route": f"{verb.upper()} {path}", "success status": status}
            operations[key] = Operation(key, Record("", fields), output, faults, binding)
    return Contract(document.get("info", {}).get("title", "openapi"), operations)


def _success(op: Mapping, reader: _Schemas) -> tuple[str, Record | None]:
    for status, response in sorted(op.get("responses", {}).items()):
        if status.startswith("2"):
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                return status, None
            field = reader.field(schema, set())
            return status, Record("", {"body": field})
    raise Unreadable(f"operation {op.get('operationId')} has no success response")


class _Schemas:
    def __init__(self, schemas: Mapping):
        self._schemas = schemas

    def field(self, schema: Mapping, seen: set) -> Field:
        """The field a schema describes: a list is a repeated field of its items."""
        nullable = bool(schema.get("nullable"))
        types = schema.get("type")
        if isinstance(types, list):  # OpenAPI 3.1: ["string", "null"]
            nullable = nullable or "null" in types
            rest = [t for t in types if t != "null"]
            schema = {**schema, "type": rest[0] if len(rest) == 1 else rest}
        if schema.get("type") == "array":
            items = self.field(schema.get("items", {}), seen)
            return Field(items.shape, True, True, nullable)
        return Field(self.shape(schema, seen), True, False, nullable)

    def shape(self, schema: Mapping, seen: set) -> Shape:
        if "$ref" in schema:
            return self._named(schema["$ref"], seen)
        if "allOf" in schema:
            parts = schema["allOf"]
            if len(parts) != 1:
                raise Unreadable("allOf of more than one schema")
            return self.shape(parts[0], seen)
        if any(k in schema for k in ("oneOf", "anyOf")):
            raise Unreadable("oneOf or anyOf")
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            required = set(schema.get("required", ()))
            fields = {}
            for name, prop in schema.get("properties", {}).items():
                field = self.field(prop, seen)
                fields[name] = Field(field.shape, name in required, field.many, field.nullable)
            return Record("", fields)
        if not isinstance(kind, str):
            raise Unreadable(f"a schema of type {kind!r}")
        facets: dict[str, Decimal | str] = {
            name: Decimal(str(schema[name])) for name in _NUMERIC if name in schema
        }
        facets.update({name: schema[name] for name in _TEXT if name in schema})
        for bound, facet in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if bound in schema and not isinstance(schema[bound], bool):
                raise Unreadable(f"{bound} as a number")
            if schema.get(bound):
                facets[f"exclusive {facet}"] = "true"
        values = schema.get("enum")
        return Scalar(kind, facets, None if values is None else frozenset(map(str, values)))

    def _named(self, ref: str, seen: set) -> Shape:
        if not ref.startswith(_REF):
            raise Unreadable(f"a reference outside the document's schemas: {ref}")
        name = ref[len(_REF) :]
        if name in seen:
            return Again(name)
        shape = self.shape(self._schemas[name], seen | {name})
        if isinstance(shape, Record):
            return Record(name, shape.fields)
        return shape
