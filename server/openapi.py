"""The OpenAPI 3 document of every facade's REST binding, deterministic and self-contained.

Each path's operationId is the facade operation's name, so a client finds an operation by
the same name on either protocol. Money and rates are strings whose pattern accepts exactly
the decimal text the data binding accepts (server/binding.py), digit limits and bounds
included: what the WSDL says with totalDigits, fractionDigits and min/maxInclusive.
"""

import json
from decimal import Decimal
from http import HTTPStatus

from server.binding import MAX_NUMBER_LENGTH, TEXT_RULES, Complex, Field, Simple
from server.registry import BoundFacade
from server.rest import body_fields, openapi_path, path_params, query_fields
from service.errors import CATALOGUE, ErrorCode
from service.partner import signing

_INTEGER_FORMAT = {"int": "int32", "long": "int64"}
#: The request id in the example error answers (a fresh one is 32 hex digits).
EXAMPLE_REQUEST_ID = "4f9c2a7be1d04c3a9d0f6b8e5a2c1d37"


def _digits(low: int, high: int) -> str:
    """From `low` to `high` digits, as a regular expression."""
    if high == 0:
        return ""
    if low == high:
        return "[0-9]" if high == 1 else f"[0-9]{{{high}}}"
    return f"[0-9]{{{low},{high}}}"


def _whole(digits: int, most: int | None) -> str | None:
    """A regular expression for whole numbers written without leading zeros, from 1 to
    `most` (None: no bound) and of at most `digits` digits; None when there are none."""
    cap = 10**digits - 1
    if most is None or most >= cap:
        return None if digits == 0 else "[1-9]" + _digits(0, digits - 1)
    if most < 1:
        return None
    text = str(most)
    shorter = [f"[1-9]{_digits(0, len(text) - 2)}"] if len(text) > 1 else []
    same = []  # as long as `most`: equal to it up to a digit, smaller there, anything after
    for i, digit in enumerate(text):
        low, high = (1 if i == 0 else 0), int(digit) - 1
        if low <= high:
            span = str(low) if low == high else f"[{low}{'-' if high > low + 1 else ''}{high}]"
            same.append(text[:i] + span + _digits(len(text) - i - 1, len(text) - i - 1))
    return "|".join([*shorter, *same, text])


def _decimal_pattern(t: Simple) -> str:
    """What the binding accepts for `t`, as one regular expression.

    The binding reads xs:decimal's lexical form (a sign, digits, a point) and checks the
    value: totalDigits and fractionDigits count the digits of the value, so leading zeros
    and zeros ending the fraction are free, and a bound compares values. The pattern is
    built per number of significant decimals k: with k of them, at most total - k digits
    before the point (and the k-th decimal not 0). Bounds a pattern states: a lower bound of
    0 or of the smallest step (10**-fractionDigits, i.e. above 0), an upper bound that is a
    whole number; a declaration with any other bound is refused here.
    """
    total = t.total_digits
    fraction = total if t.fraction_digits is None else min(t.fraction_digits, total)
    step = Decimal(1).scaleb(-fraction)
    ge, le = t.ge, t.le
    if (ge is not None and ge not in (0, step)) or (
        le is not None and (le < 1 or le != le.to_integral_value())
    ):
        raise TypeError(f"decimal bounds {ge}..{le} of {t.name or 'a field'} fit no pattern")
    positive = ge == step

    def unsigned(most: int | None, nonzero: bool) -> str:
        forms = []
        whole = _whole(total, most)  # no decimals: the point may end the number
        if whole is not None:
            forms.append(rf"0*({whole})(\.0*)?")
        if not nonzero:
            forms.append(r"0+(\.0*)?|\.0+")
        for k in range(1, fraction + 1):
            below = _whole(total - k, None if most is None else most - 1)
            head = "0*" if below is None else f"0*({below})?"
            forms.append(rf"{head}\.{_digits(k - 1, k - 1)}[1-9]0*")
        return "|".join(forms)

    most = None if le is None else int(le)
    signed = [rf"\+?({unsigned(most, positive)})"]
    if ge is None:
        signed.append(f"-({unsigned(None, False)})")
    elif ge == 0:
        signed.append(r"-(0+(\.0*)?|\.0+)")  # minus zero is zero
    return "^(" + "|".join(signed) + ")$"


def _simple_schema(t: Simple) -> dict:
    k = t.kind
    if k == "decimal":
        fraction = t.fraction_digits
        return {
            "type": "string",
            "format": "decimal",
            "maxLength": MAX_NUMBER_LENGTH,  # the binding reads no longer number text
            "pattern": _decimal_pattern(t),
            "description": f"A decimal string: at most {t.total_digits} digits"
            + ("" if fraction is None else f", at most {fraction} after the point")
            + ("" if t.ge is None else f", at least {format(t.ge, 'f')}")
            + ("" if t.le is None else f", at most {format(t.le, 'f')}")
            + " (leading zeros and zeros ending the fraction are not counted).",
        }
    if k in _INTEGER_FORMAT:
        schema: dict[str, object] = {"type": "integer", "format": _INTEGER_FORMAT[k]}
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
    schema = {"type": "string"}  # typed by the first assignment above
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
            schema = _simple_schema(t)
            if self.schemas.setdefault(t.name, schema) != schema:
                # A named type customised with other facets would be published as the first
                # one met: declare a type of its own (as PositiveMoney beside Money).
                raise TypeError(f"{t.name} is declared with different facets in places")
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


LANGUAGE_RULES = (
    "Error messages and member messages are in English (en, the default) or Chinese (zh), as "
    "the request's Accept-Language prefers (q-values honoured; zh-CN, zh-Hans or zh-TW ask "
    "for zh); every answer names its language in Content-Language."
)


def _errors(codes: frozenset[str], examples: dict[str, dict]) -> dict[str, dict]:
    """The error responses of an operation that may raise ``codes``: one per HTTP status,
    naming its codes (also as ``x-error-codes``), with an example answer for each (kept once
    in ``examples``, the document's components, and referred to)."""
    by_status: dict[int, list[ErrorCode]] = {}
    for code in sorted(codes):
        error = CATALOGUE[code]
        by_status.setdefault(error.status, []).append(error)
    responses = {}
    for status, found in sorted(by_status.items()):
        listed = ", ".join(f"{e.code} ({e.message})" for e in found)
        responses[str(status)] = {
            "description": f"{HTTPStatus(status).phrase}: {listed}",
            "x-error-codes": [e.code for e in found],
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "examples": {e.code: _example(e, examples) for e in found},
                }
            },
        }
    return responses


def _example(error: ErrorCode, examples: dict[str, dict]) -> dict:
    examples[error.code] = {
        "summary": error.message,
        "value": {"code": error.code, "message": error.message, "requestId": EXAMPLE_REQUEST_ID},
    }
    return {"$ref": f"#/components/examples/{error.code}"}


#: A partner call's signature headers (README "Signed partner calls"), all sent together.
PARTNER_SCHEMES = {
    "partnerAppId": (signing.APP_ID_HEADER, "The partner app's id."),
    "partnerKeyId": (signing.KEY_ID_HEADER, "The id of the app's key that signed the request."),
    "partnerTimestamp": (
        signing.TIMESTAMP_HEADER,
        "Seconds since 1970-01-01T00:00:00Z (never milliseconds), within the window.",
    ),
    "partnerNonce": (signing.NONCE_HEADER, "16 to 64 letters, digits, '-' or '_'; new every call."),
    "partnerSignature": (
        signing.SIGNATURE_HEADER,
        "Base64 of HMAC-SHA256 or RSASSA-PKCS1-v1_5 SHA-256 of the canonical string: "
        "P2P-PARTNER-V1, the method, the path, the sorted query, the app id, key id, timestamp, "
        "nonce and the hex SHA-256 of the raw body, joined by line feeds.",
    ),
}


def build(facades: list[BoundFacade], title: str, version: str) -> dict:
    components = _Components()
    examples: dict[str, dict] = {}
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
            responses: dict[str, object] = {}
            if op.result is None:
                responses["204"] = {"description": "Done."}
            else:
                responses[str(rest.status)] = {
                    "description": "Success.",
                    "content": {"application/json": {"schema": components.field(op.result)}},
                }
            if op.operation.partner:
                o["security"] = [{name: [] for name in PARTNER_SCHEMES}]
                o["description"] += (
                    f"\n\nPartner apps only: a signed request (scope "
                    f"{op.operation.partner_scope}); the answer is signed too."
                )
            elif op.roles is not None:
                o["security"] = [{"bearerAuth": []}]
            responses.update(_errors(op.fault_codes, examples))
            o["responses"] = responses
            paths.setdefault(openapi_path(op), {})[rest.method.lower()] = o
    components.schemas["Error"] = {
        "type": "object",
        "required": ["code", "message", "requestId"],
        "properties": {
            "code": {"type": "string", "enum": sorted(CATALOGUE)},
            "message": {
                "type": "string",
                "description": "What is wrong and what to do, one sentence, in the language "
                "Accept-Language chose (Content-Language names it).",
            },
            "requestId": {"type": "string"},
            "detail": {
                "type": "string",
                "description": "What exactly, when known: the field and the rule, the id not "
                "found; English, for developers and support.",
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "JSON REST binding of the platform's facades; the same operations "
            "are served as SOAP 1.1 and 1.2 at /services. Money and rates are decimal strings.\n\n"
            + LANGUAGE_RULES
            + "\n\n"
            + TEXT_RULES,
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": b.name, "description": b.facade.doc} for b in facades],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "examples": dict(sorted(examples.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                **{
                    name: {"type": "apiKey", "in": "header", "name": header, "description": doc}
                    for name, (header, doc) in PARTNER_SCHEMES.items()
                },
            },
        },
    }


def render(document: dict) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
