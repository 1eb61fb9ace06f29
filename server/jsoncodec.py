"""JSON reading and writing of wire values, with the same checks as the XML codec.

Numbers are parsed exactly (a JSON number for a money field arrives as Decimal, never as a
float) and only when short enough to parse; NaN, Infinity and duplicate keys are refused.
Money and rates are written as strings, and every string is written so that it can be
encoded, whatever it holds.
"""

import json
import re
import threading
from collections.abc import Callable
from decimal import Decimal

from server.binding import (
    LONG_NUMBER,
    MAX_NUMBER_LENGTH,
    Complex,
    Field,
    InvalidValue,
    Simple,
    carriable,
    shown,
)
from service import errors
from service.errors import BusinessError, invalid


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {shown(key)}")
        result[key] = value
    return result


def _bounded(parse):
    """A number parser that leaves a number longer than MAX_NUMBER_LENGTH unparsed, so the
    field it is given to refuses it by name (int() would fail on 4,300 digits)."""

    def read(text: str):
        return parse(text) if len(text) <= MAX_NUMBER_LENGTH else LONG_NUMBER

    return read


_INT = _bounded(int)
_DECIMAL = _bounded(Decimal)


def parse(body: bytes):
    try:
        return json.loads(
            body.decode("utf-8"),
            parse_int=_INT,
            parse_float=_DECIMAL,
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
            raise invalid(f"{path}.{shown(key)}" if path else shown(key), "is not a known field")
    return {
        f.attr: read_field(obj.get(f.name), f, f"{path}.{f.name}" if path else f.name)
        for f in t.fields
    }


def read_field(value, f: Field, path: str):
    """``value``, the JSON at ``path`` (the fields' names from the body down, ``""`` for
    the body itself, which errors call ``body``), read as ``f`` declares it."""
    if value is None:
        if f.required:
            raise invalid(path or "body", "is required")
        return [] if f.repeated else None
    if f.repeated:
        if not isinstance(value, list):
            raise invalid(path or "body", "must be a JSON array")
        return [read_one(v, f, f"{path or 'body'}[{i}]") for i, v in enumerate(value)]
    return read_one(value, f, path)


def read_one(value, f: Field, path: str):
    if isinstance(f.type, Complex):
        return read_complex(value, f.type, path)
    try:
        return f.type.from_json(value)
    except InvalidValue as e:
        raise invalid(path or "body", str(e)) from None


def read_text(text: str, f: Field, path: str):
    """A path or query-string value."""
    t = f.type
    assert isinstance(t, Simple), f"{f.name}: a path or query parameter is simple"
    try:
        return t.from_text(text)
    except InvalidValue as e:
        raise invalid(path, str(e)) from None


def to_json(value, t: Complex | Simple):
    """``value`` as JSON data of type ``t``: a Complex's fields by wire name (absent when
    None), a Simple's value as :meth:`Simple.to_json` writes it."""
    writer = _WRITERS.get(t)
    if writer is None:
        writer = _compile(t)
    return writer(value)


#: A writer per type, made on its first value: the walk over a type's fields is decided once,
#: not per value and field. Types are bound once and never change (eq=False: keyed by identity).
_WRITERS: dict[Complex | Simple, Callable] = {}
_COMPILING = threading.Lock()


def _compile(t: Complex | Simple) -> Callable:
    with _COMPILING:
        made: dict[Complex | Simple, Callable] = {}
        writer = _writer(t, made)
        _WRITERS.update(made)  # published whole: no thread sees a writer half made
    return writer


def _writer(t: Complex | Simple, made: dict) -> Callable:
    known = _WRITERS.get(t) or made.get(t)
    if known is not None:
        return known
    if isinstance(t, Simple):
        writer = made[t] = t.json_writer()
        return writer
    parts: list[tuple[str, str, bool, Callable]] = []

    def write(value) -> dict:
        out = {}
        for attr, name, repeated, field_writer in parts:
            v = getattr(value, attr)
            if v is None:
                continue
            out[name] = [field_writer(x) for x in v] if repeated else field_writer(v)
        return out

    made[t] = write  # before its fields: a type that contains itself finds it
    parts.extend((f.attr, f.name, f.repeated, _writer(f.type, made)) for f in t.fields)
    return write


#: In json.dumps' text (ensure_ascii=False), the escape of a control character XML cannot
#: carry (\b, \f, \u00XX; \t, \n and \r are carried). An escaped backslash before one of
#: those letters is a false alarm, which only costs the walk.
_ESCAPED_CONTROL = re.compile(r"\\[bfu]")


def _carried(obj):
    if isinstance(obj, str):
        return carriable(obj)
    if isinstance(obj, dict):
        return {carriable(k): _carried(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_carried(v) for v in obj]
    return obj


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def dumps(obj) -> bytes:
    """UTF-8 JSON of ``obj``. Text goes out as the XML writer sends it (:func:`carriable`): a
    lone surrogate could not be encoded at all, and both protocols show stored text alike.
    ``obj`` is walked only when its plain text shows a suspect (the walk is slow)."""
    text = _dumps(obj)
    if "\ufffe" not in text and "\uffff" not in text and not _ESCAPED_CONTROL.search(text):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            pass
    return _dumps(_carried(obj)).encode("utf-8")
