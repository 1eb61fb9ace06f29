"""A field as the contract documents describe it: its type as each protocol names it, whether
it must be sent, and its facets in words (the WSDL and OpenAPI state the same facets as
schema; server/binding.py checks them)."""

from __future__ import annotations

from server.binding import SINGLE_LINE_PATTERN, Complex, Field, Simple

_JSON = {
    "decimal": "string (decimal)",
    "long": "integer (int64)",
    "int": "integer (int32)",
    "boolean": "boolean",
    "dateTime": "string (date-time)",
    "date": "string (date)",
    "enum": "string",
    "string": "string",
}


def xs_type(t: Simple | Complex) -> str:
    """The XML Schema type: a structure's name, a named simple type with its base, or the
    built-in type a field restricts in place."""
    if isinstance(t, Complex):
        return t.name
    return f"{t.name} (xs:{t.xsd_base})" if t.name else f"xs:{t.xsd_base}"


def json_type(t: Simple | Complex) -> str:
    return "object" if isinstance(t, Complex) else _JSON[t.kind]


def occurrence(f: Field) -> str:
    if f.repeated:
        return "list, 0 or more"
    return "required" if f.required else "optional"


def _lengths(t: Simple) -> str | None:
    low, high = t.min_len, t.max_len
    if low is not None and low == high:
        return f"exactly {low} characters"
    if low is not None and high is not None:
        return f"{low} to {high} characters"
    if high is not None:
        return f"at most {high} characters"
    return None if low is None else f"at least {low} characters"


def _digits(t: Simple) -> str | None:
    if t.total_digits is None:
        return None
    after = "" if t.fraction_digits is None else f", at most {t.fraction_digits} after the point"
    return f"at most {t.total_digits} digits{after}"


def constraints(t: Simple | Complex) -> list[tuple[str, str | None]]:
    """The facets of ``t`` in words, each as (words, code or None): the code part (a pattern,
    the enumeration's values) is shown as code after the words."""
    if isinstance(t, Complex):
        return []
    found: list[tuple[str, str | None]] = []
    if t.kind == "enum":
        found.append(("one of", ", ".join(t.values)))
    if t.kind == "string":
        found.append(("may span lines (TAB, LF, CR)", None) if t.multiline else ("one line", None))
        lengths = _lengths(t)
        if lengths:
            found.append((lengths, None))
        if t.pattern is not None and t.pattern != SINGLE_LINE_PATTERN:
            found.append(("matches the whole pattern", t.pattern))
    digits = _digits(t)
    if digits:
        found.append((digits, None))
    if t.ge is not None:
        found.append((f"at least {format(t.ge, 'f')}", None))
    if t.le is not None:
        found.append((f"at most {format(t.le, 'f')}", None))
    if t.kind == "dateTime":
        found.append(("with a time zone", "2026-01-31T08:00:00Z"))
    if t.kind == "date":
        found.append(("a calendar date", "2026-01-31"))
    return found
