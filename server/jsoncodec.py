"""JSON reading and writing of wire values, with the same checks as the XML codec.

Numbers are parsed exactly (a JSON number for a money field arrives as Decimal, never as a
float); NaN, Infinity and duplicate keys are refused. Money and rates are written as strings.
"""

import json
from decimal import Decimal

from server.binding import Complex, Field, InvalidValue, Simple
from service import errors
from service.errors import BusinessError, invalid


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key}")
        result[key] = value
    return result


def parse(body: bytes):
    try:
        return json.loads(
            body.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicates,
        )
    except (ValueError, RecursionError) as e:
        message = str(e) if "duplicate key" in str(e) else "the body is not valid JSON"
        raise BusinessError(errors.MALFORMED_REQUEST, message[:200]) from None


def read_complex(obj, t: Complex, path: str) -> dict:
    if not isinstance(obj, dict):
        raise invalid(path or "body", "must be a JSON object")
    for key in obj:
        if key not in t.by_name:
            raise invalid(f"{path}.{key}" if path else key, "is not a known field")
    return {
        f.attr: read_field(obj.get(f.name), f, f"{path}.{f.name}" if path else f.name)
        for f in t.fields
    }


def read_field(value, f: Field, path: str):
    if value is None:
        if f.required:
            raise invalid(path, "is required")
        return [] if f.repeated else None
    if f.repeated:
        if not isinstance(value, list):
            raise invalid(path, "must be a JSON array")
        return [read_one(v, f, f"{path}[{i}]") for i, v in enumerate(value)]
    return read_one(value, f, path)


def read_one(value, f: Field, path: str):
    if isinstance(f.type, Complex):
        return read_complex(value, f.type, path)
    try:
        return f.type.from_json(value)
    except InvalidValue as e:
        raise invalid(path, str(e)) from None


def read_text(text: str, f: Field, path: str):
    """A path or query-string value."""
    try:
        return f.type.from_text(text)
    except InvalidValue as e:
        raise invalid(path, str(e)) from None


def to_json(value, t: Complex | Simple):
    if isinstance(t, Simple):
        return t.to_json(value)
    out = {}
    for f in t.fields:
        v = getattr(value, f.attr)
        if v is None:
            continue
        out[f.name] = [to_json(x, f.type) for x in v] if f.repeated else to_json(v, f.type)
    return out


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
