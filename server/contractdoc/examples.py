"""Example calls for the contract documents, generated from the types and written by the
server's own writers, so that an example is what the platform reads and answers.

Every value satisfies its field's facets: money "100.00", ids 1001, a date and a time, an
enumeration's first value, a rate of 8.5, and for text "Example <field name>" where the facets
allow it, else a string written from the field's pattern at the length its facets ask. A value
is checked with the binding (:meth:`Simple.from_text`) as it is made: a declaration no example
can satisfy fails here, at start-up, as a decimal bound no pattern can state fails the OpenAPI
writer. Rules the services check beyond the facets (a card number's Luhn digit, a listing's
amount within the settings) are not the examples' business.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from dataclasses import dataclass
from decimal import Decimal

# The parser re itself uses (the pattern as re reads it); private, so typeshed has no stubs.
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from types import SimpleNamespace
from urllib.parse import quote, urlencode

from lxml import etree

from facade.contract import COMMON_NS
from server import jsoncodec
from server.binding import Complex, Field, InvalidValue, Simple
from server.registry import BoundOperation
from server.rest import body_fields, openapi_path, path_params, query_fields
from server.soap import ENV
from server.wsdl import prefix
from server.xmlcodec import write_complex, write_value

#: What a document shows where a caller's login token goes (MemberFacade.login gives it).
LOGIN_PLACEHOLDER = "TOKEN"
#: What stands for a partner call's signature fields, by SOAP element and REST header.
PARTNER_FIELDS = (
    ("appId", "X-P2P-App-Id", "APP_ID"),
    ("keyId", "X-P2P-Key-Id", "KEY_ID"),
    ("timestamp", "X-P2P-Timestamp", "TIMESTAMP"),
    ("nonce", "X-P2P-Nonce", "NONCE"),
    ("signature", "X-P2P-Signature", "SIGNATURE"),
)
PARTNER_PLACEHOLDERS = ", ".join(placeholder for _, _, placeholder in PARTNER_FIELDS)

_DATE = dt.date(2026, 1, 31)
_DATETIME = dt.datetime(2026, 1, 31, 8, 0, tzinfo=dt.UTC)
_ID = 1001
_RATE = Decimal("8.5")
_MONEY = Decimal("100")

_DIGITS = "1234567890"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_OTHERS = _LETTERS.upper() + " -_.:/+"


class NoExample(TypeError):
    """A declaration no example value can satisfy (a pattern longer than its maxLength)."""


# -- strings from patterns ---------------------------------------------------------------


def _category(name, ch: str) -> bool:
    """re's \\d, \\s and \\w and their negations, read in ASCII as the binding compiles them."""
    tests = {
        sre.CATEGORY_DIGIT: ch in "0123456789",
        sre.CATEGORY_SPACE: ch in " \t\n\r\f\v",
        sre.CATEGORY_WORD: ch.isascii() and (ch.isalnum() or ch == "_"),
    }
    negated = {
        sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT,
        sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE,
        sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
    }
    if name in negated:
        return not tests[negated[name]]
    if name not in tests:
        raise NoExample(f"the class {name} has no example")
    return tests[name]


def _in_class(items, ch: str) -> bool:
    negate = hit = False
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            hit = hit or ord(ch) == av
        elif op is sre.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op is sre.CATEGORY:
            hit = hit or _category(av, ch)
        else:
            raise NoExample(f"the class item {op} has no example")
    return hit != negate


class _Sampler:
    """Writes a string a pattern matches, of a chosen length where the pattern allows it.

    Lengths are handed out from left to right: each part gets its shortest, then the first
    parts take what is left up to their longest. A character is a digit counting up with its
    position where the class takes one (so "[0-9]{6}" gives 123456), else a letter. Only what
    facet patterns are made of: literals, classes, groups, alternatives and repeats; anything
    else is NoExample.
    """

    def __init__(self, pattern: str):
        self._parsed = sre_parse.parse(pattern)
        self._out: list[str] = []

    def width(self, items) -> tuple[int, int]:
        return sre_parse.SubPattern(self._parsed.state, list(items)).getwidth()

    def bounds(self) -> tuple[int, int]:
        """The shortest and the longest string the whole pattern matches."""
        return self._parsed.getwidth()

    def write(self, length: int) -> str:
        self._sequence(list(self._parsed), length)
        return "".join(self._out)

    def _sequence(self, items, length: int) -> None:
        widths = [self.width([item]) for item in items]
        spare = length - sum(low for low, _ in widths)
        for item, (low, high) in zip(items, widths, strict=True):
            extra = max(0, min(spare, high - low))
            spare -= extra
            self._item(item, low + extra)

    def _item(self, item, length: int) -> None:
        op, av = item
        if op is sre.LITERAL:
            self._out.append(chr(av))
        elif op in (sre.IN, sre.NOT_LITERAL, sre.ANY):
            self._out.append(self._char(op, av))
        elif op is sre.SUBPATTERN:
            self._sequence(list(av[-1]), length)
        elif op is sre.BRANCH:
            alternatives = [list(a) for a in av[1]]
            fits = [a for a in alternatives if self.width(a)[0] <= length <= self.width(a)[1]]
            self._sequence((fits or alternatives)[0], length)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, repeated = av
            self._repeat(low, high, repeated, length)
        elif op is not sre.AT:  # an anchor writes nothing
            raise NoExample(f"the pattern construct {op} has no example")

    def _repeat(self, low: int, high: int, sub, length: int) -> None:
        sub = list(sub)
        most = self.width(sub)[1]
        times = low if most == 0 else min(high, max(low, -(-length // most)))
        for i in range(times):
            self._sequence(sub, length // times + (1 if i < length % times else 0))

    def _char(self, op, av) -> str:
        position = len(self._out)
        preferred = _DIGITS[position % 10] + _LETTERS + _DIGITS + _OTHERS
        for ch in preferred:
            if op is sre.ANY or (op is sre.NOT_LITERAL and ord(ch) != av):
                return ch
            if op is sre.IN and _in_class(av, ch):
                return ch
        raise NoExample("a character class with none of the usual characters has no example")


def _words(name: str) -> str:
    """requestNo -> request no: a field's name as words."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _accepted(t: Simple, text: str) -> bool:
    try:
        t.from_text(text)
    except InvalidValue:
        return False
    return True


def _string(t: Simple, name: str) -> str:
    natural = f"Example {_words(name)}"
    if _accepted(t, natural):
        return natural
    if t.matcher is None:  # only lengths refused it: the words cut or stretched to fit
        return (natural * ((t.min_len or 0) // len(natural) + 1))[: t.max_len or t.min_len]
    sampler = _Sampler(t.matcher.pattern)
    low, high = sampler.bounds()
    length = max(low, t.min_len or 0)
    if length > min(high, t.max_len or high):
        raise NoExample(f"{name}: its pattern and lengths leave no string")
    return sampler.write(length)


# -- values ------------------------------------------------------------------------------


def _number(t: Simple, name: str):
    if t.kind == "decimal":
        preferred: list[Decimal | int] = [_RATE if "rate" in name.lower() else _MONEY, Decimal(1)]
    else:
        preferred = [_ID if name == "id" or name.endswith("Id") else 1]
    for value in [*preferred, t.ge, t.le]:
        if value is not None and _accepted(t, t.to_text(value)):
            return t.from_text(t.to_text(value))
    raise NoExample(f"{name}: no example between {t.ge} and {t.le}")


def simple_value(t: Simple, name: str):
    """An example value of ``t`` for the field ``name``, as the binding reads it."""
    if t.kind in ("decimal", "long", "int"):
        return _number(t, name)
    if t.kind == "boolean":
        return True
    if t.kind == "date":
        return _DATE
    if t.kind == "dateTime":
        return _DATETIME
    if t.kind == "enum":
        return t.values[0]
    value = _string(t, name)
    if not _accepted(t, value):
        raise NoExample(f"{name}: no example of its pattern fits its facets")
    return value


def field_value(f: Field):
    """The example of a field: one item of a list, every field of a structure (optional ones
    too, so an example shows them all)."""
    value = value_of(f.type, f.name)
    return [value] if f.repeated else value


def value_of(t: Simple | Complex, name: str):
    if isinstance(t, Simple):
        return simple_value(t, name)
    return SimpleNamespace(**{f.attr: field_value(f) for f in t.fields})


# -- SOAP --------------------------------------------------------------------------------


def _namespaces(t: Complex) -> set[str]:
    """The namespaces the elements of ``t`` are written in: its own and those of every
    structure in it, at any depth (a field lives in the namespace of the type declaring it)."""
    found: set[str] = set()
    todo, seen = [t], set()
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            found.add(t.namespace)
            todo += [f.type for f in t.fields if isinstance(f.type, Complex)]
    return found


def _envelope(op: BoundOperation, used: set[str]):
    nsmap = {"soap": ENV}
    nsmap.update({prefix(ns, op.namespace): ns for ns in sorted(used | {op.namespace})})
    return etree.Element(f"{{{ENV}}}Envelope", nsmap=nsmap)


def _text(envelope) -> str:
    etree.indent(envelope, space="  ")
    return etree.tostring(envelope, encoding="unicode")


@dataclass(frozen=True)
class Example:
    """One operation's example call on both protocols, as text to show."""

    soap_request: str
    soap_response: str
    rest_request: str  # a curl command
    rest_status: int
    rest_response: str | None  # JSON, None for an answer with no body (204)


def soap_request(op: BoundOperation, args: SimpleNamespace) -> str:
    """The request envelope: the AuthToken header when the operation needs a login, and the
    request element holding every parameter."""
    used = _namespaces(op.request)
    if not op.operation.public:
        used.add(COMMON_NS)
    envelope = _envelope(op, used)
    if op.operation.partner:
        header = etree.SubElement(envelope, f"{{{ENV}}}Header")
        signature = etree.SubElement(header, f"{{{COMMON_NS}}}PartnerSignature")
        for element, _, placeholder in PARTNER_FIELDS:
            etree.SubElement(signature, f"{{{COMMON_NS}}}{element}").text = placeholder
    elif not op.operation.public:
        header = etree.SubElement(envelope, f"{{{ENV}}}Header")
        auth = etree.SubElement(header, f"{{{COMMON_NS}}}AuthToken")
        etree.SubElement(auth, f"{{{COMMON_NS}}}token").text = LOGIN_PLACEHOLDER
    body = etree.SubElement(envelope, f"{{{ENV}}}Body")
    write_complex(etree.SubElement(body, f"{{{op.namespace}}}{op.request.name}"), op.request, args)
    return _text(envelope)


def soap_response(op: BoundOperation, result) -> str:
    """The response envelope, written as server/soap.py writes a success."""
    envelope = _envelope(op, _namespaces(op.response))
    body = etree.SubElement(envelope, f"{{{ENV}}}Body")
    wrapper = etree.SubElement(body, f"{{{op.namespace}}}{op.response.name}")
    if op.result is not None:
        write_value(wrapper, op.result, op.namespace, result)
    return _text(envelope)


# -- REST --------------------------------------------------------------------------------


def _json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _query_text(f: Field, value) -> list[str]:
    t = f.type
    assert isinstance(t, Simple), f"{f.name}: a query parameter is simple"
    return [t.to_text(v) for v in (value if f.repeated else [value])]


def rest_body(op: BoundOperation, args: SimpleNamespace):
    """The JSON body of the call (None for none): the named body parameter, or the
    parameters that are not in the path, as fields."""
    rest = op.operation.rest
    if rest.body:
        f = op.request.by_name[rest.body]
        return jsoncodec.to_json(getattr(args, f.attr), f.type)
    body = {}
    for f in body_fields(op):
        value = getattr(args, f.attr)
        body[f.name] = (
            [jsoncodec.to_json(v, f.type) for v in value]
            if f.repeated
            else jsoncodec.to_json(value, f.type)
        )
    return body or None


def rest_target(op: BoundOperation, args: SimpleNamespace) -> str:
    """The path under the base URL, path parameters filled in and the query string after."""
    path = openapi_path(op)
    for name in path_params(op):
        f = op.request.by_name[name]
        path = path.replace(f"{{{name}}}", quote(f.type.to_text(getattr(args, f.attr)), safe=""))
    query = [
        (f.name, text) for f in query_fields(op) for text in _query_text(f, getattr(args, f.attr))
    ]
    return path + ("?" + urlencode(query, quote_via=quote) if query else "")


def curl(op: BoundOperation, args: SimpleNamespace, base_url: str) -> str:
    """The call as a curl command; $TOKEN stands for the login token, as the shell reads it."""
    rest = op.operation.rest
    # Quoted whatever it holds: the target is percent-encoded, so only the base URL (a
    # configured or checked host, server/proxy.py) could hold a quote, and it holds none.
    lines = [f"curl -X {rest.method} '{base_url}{rest_target(op, args)}'"]
    if op.operation.partner:
        lines += [f'-H "{header}: ${placeholder}"' for _, header, placeholder in PARTNER_FIELDS]
    elif not op.operation.public:
        lines.append(f'-H "Authorization: Bearer ${LOGIN_PLACEHOLDER}"')
    body = rest_body(op, args)
    if body is not None:
        lines.append("-H 'Content-Type: application/json'")
        lines.append(f"-d {shlex.quote(_json(body))}")
    return " \\\n  ".join(lines)


def example(op: BoundOperation, base_url: str) -> Example:
    """The example call of ``op``, its URLs under ``base_url``; the answers are written as
    server/soap.py and server/rest.py write a success."""
    args = SimpleNamespace(**{f.attr: field_value(f) for f in op.request.fields})
    f = op.result
    result = None if f is None else value_of(f.type, f.name)
    response = None if f is None else _json(jsoncodec.to_json(result, f.type))
    return Example(
        soap_request=soap_request(op, args),
        soap_response=soap_response(op, result),
        rest_request=curl(op, args, base_url),
        rest_status=204 if f is None else op.operation.rest.status,
        rest_response=response,
    )
