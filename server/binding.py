"""The data binding: what each type of the contract means on the wire.

spyne declares the contract; server/declared.py reads those declarations into the small
immutable descriptions defined here (:class:`Simple`, :class:`Complex`, :class:`Field`), which
the XML and JSON codecs, the XSD writer and the OpenAPI writer all share, so the two protocols
validate alike. This module does not import spyne: a serving worker holds the descriptions
alone (server/contract.py).

Text the contract accepts is what XML 1.0 carries and does not discourage: no C0 control but
TAB, LF and CR, no C1 control (U+007F-U+009F), no surrogate (a JSON "\\ud800"), no
noncharacter (U+FDD0-U+FDEF, U+nFFFE, U+nFFFF). A string field is a single line (no TAB, LF or
CR either) unless its declaration says ``multiline``. Numbers are ASCII digits only, and a
number's text is bounded before it is parsed. On the way out, :func:`carriable` makes any text
writable whatever was stored before these rules.
"""

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

XS = "http://www.w3.org/2001/XMLSchema"

#: The most characters a number's text may have (sign, digits, point), and the most digits it
#: may take written out in full: leading and trailing zeros are valid lexically, so the length
#: is bounded on its own, before anything is parsed (int() refuses 4,300 digits; a Decimal of
#: thousands of digits breaks whatever converts it next).
MAX_NUMBER_LENGTH = 100

# ASCII digits only: \d, int() and Decimal() also take Arabic-Indic, fullwidth and other digits.
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+\Z")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_INTEGER_BOUNDS = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}
#: XML Schema's whiteSpace="collapse" strips these four only (str.strip() takes U+3000 too).
_XML_SPACE = " \t\n\r"

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000, 0x10000)
)
#: What no text may hold: C0 controls but TAB, LF and CR, C1 controls, surrogates and
#: noncharacters. One class a regex, so a check is one search.
_NOT_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}]")
#: ... and what a single-line text may not hold on top: TAB, LF and CR.
_NOT_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}]")
#: What XML 1.0 cannot carry at all (its Char production), and UTF-8 cannot encode.
_UNCARRIABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: How the contract shows a single-line string that declares no pattern of its own; the same
#: in XML Schema, ECMAScript (OpenAPI) and Python.
SINGLE_LINE_PATTERN = r"[^\t\n\r]*"

#: The rules above as the contracts document them (OpenAPI's description, the common schema's).
TEXT_RULES = (
    "Text: a string may not hold C0 control characters other than TAB, LF and CR "
    "(U+0000-U+001F), C1 control characters (U+007F-U+009F), surrogates (U+D800-U+DFFF, as a "
    "JSON \\ud800 escape gives) or noncharacters (U+FDD0-U+FDEF, and U+nFFFE and U+nFFFF in "
    "every plane): what XML 1.0 cannot carry or discourages. A string is one line, without TAB, "
    "LF or CR, unless it is multi-line text; a single-line string that declares no pattern of "
    f"its own shows the pattern {SINGLE_LINE_PATTERN}. Numbers are written with the ASCII "
    f"digits 0-9 only, in at most {MAX_NUMBER_LENGTH} characters. Input that breaks these rules "
    "is refused with VALIDATION_FAILED naming the field. On output, a character XML cannot "
    "carry (in text stored before these rules) is replaced by U+FFFD, on both protocols."
)


class InvalidValue(ValueError):
    """A value that does not fit its declared type; the codecs prefix the field's path."""


class LongNumber:
    """A JSON number longer than MAX_NUMBER_LENGTH, left unparsed: the field refuses it."""

    __slots__ = ()


LONG_NUMBER = LongNumber()
_TOO_LONG = f"must have at most {MAX_NUMBER_LENGTH} characters"


def carriable(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry (and UTF-8 cannot encode) replaced by
    U+FFFD: what both writers send, so nothing stored or echoed can break a response."""
    if text.isprintable():  # the usual case, checked fast: none of those is printable
        return text
    return _UNCARRIABLE.sub("\ufffd", text)


def shown(text: str, limit: int = 40) -> str:
    """Caller text as an error message may quote it (an unknown name, a key): one line, only
    characters the contract accepts, at most ``limit`` characters."""
    cut = _NOT_LINE.sub("\ufffd", text[:limit])
    return cut if len(text) <= limit else cut[: limit - 1] + "\u2026"


def _refused_character(match: re.Match) -> InvalidValue:
    c = match.group()
    if c in "\t\n\r":
        return InvalidValue(f"must be a single line (it holds U+{ord(c):04X})")
    return InvalidValue(f"may not contain U+{ord(c):04X}")


def _iso(cls, form: re.Pattern, text: str):
    """``text`` as a ``cls`` (date or datetime) when it has the XML Schema ``form``, else None:
    fromisoformat alone takes ISO 8601 forms the contract does not (20260131, 2026-W05-6)."""
    if form.match(text):
        try:
            return cls.fromisoformat(text)
        except ValueError:
            pass
    return None


def _same(value):
    return value


@dataclass(frozen=True, eq=False)
class Simple:
    """A simple (leaf) type: an XSD built-in or a named restriction of one, with its facets."""

    kind: str  # string, decimal, long, int, boolean, dateTime, date, enum
    name: str | None  # a named type of ours (money, rate, an enum), else None
    namespace: str | None
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None  # as the contract shows it (a single line's, when none declared)
    total_digits: int | None = None
    fraction_digits: int | None = None
    ge: Decimal | None = None
    le: Decimal | None = None
    values: tuple[str, ...] = ()
    multiline: bool = False  # a string that may hold TAB, LF and CR
    matcher: re.Pattern | None = None  # the declared pattern, compiled

    @property
    def xsd_base(self) -> str:
        return "string" if self.kind == "enum" else self.kind

    # -- reading -------------------------------------------------------------------
    def from_text(self, text: str):
        """Parse XML text or a query-string value; raise InvalidValue on anything else."""
        k = self.kind
        if k == "string":
            return self._check_string(text)
        if k == "enum":
            if text not in self.values:
                raise InvalidValue(f"must be one of {', '.join(self.values)}")
            return text
        text = text.strip(_XML_SPACE)
        if k == "decimal":
            if len(text) > MAX_NUMBER_LENGTH:
                raise InvalidValue(_TOO_LONG)
            if not _DECIMAL_TEXT.match(text):
                raise InvalidValue("must be a decimal number such as 1000.00")
            return self._check_number(Decimal(text))
        if k in ("long", "int"):
            if len(text) > MAX_NUMBER_LENGTH:
                raise InvalidValue(_TOO_LONG)
            if not _INTEGER_TEXT.match(text):
                raise InvalidValue("must be a whole number")
            return self._check_number(int(text))
        if k == "boolean":
            if text in ("true", "1"):
                return True
            if text in ("false", "0"):
                return False
            raise InvalidValue("must be true or false")
        if k == "dateTime":
            value = _iso(dt.datetime, _DATETIME_TEXT, text)
            if value is None:
                raise InvalidValue("must be a date and time such as 2026-01-31T08:00:00Z")
            if value.tzinfo is None:
                raise InvalidValue("must carry a time zone, e.g. Z")
            return value.astimezone(dt.UTC)
        if k == "date":
            value = _iso(dt.date, _DATE_TEXT, text)
            if value is None:
                raise InvalidValue("must be a date such as 2026-01-31")
            return value
        raise AssertionError(k)

    def from_json(self, value):
        """Read a JSON value. Money and rates come as strings; a JSON number is taken exactly
        (the parser hands it over as Decimal, or as LONG_NUMBER when it is too long to parse)
        and checked against the same facets."""
        k = self.kind
        if k in ("string", "enum", "dateTime", "date"):
            if not isinstance(value, str):
                raise InvalidValue("must be a string")
            return self.from_text(value)
        if k == "boolean":
            if not isinstance(value, bool):
                raise InvalidValue("must be true or false")
            return value
        if value is LONG_NUMBER:
            raise InvalidValue(_TOO_LONG)
        if k in ("long", "int"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidValue("must be a whole number")
            return self._check_number(value)
        if isinstance(value, str):
            return self.from_text(value)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise InvalidValue('must be a decimal number written as a string, e.g. "1000.00"')
        return self._check_number(Decimal(value))

    def _check_string(self, text: str) -> str:
        refused = (_NOT_TEXT if self.multiline else _NOT_LINE).search(text)
        if refused is not None:
            raise _refused_character(refused)
        if self.min_len is not None and len(text) < self.min_len:
            raise InvalidValue(f"must have at least {self.min_len} characters")
        if self.max_len is not None and len(text) > self.max_len:
            raise InvalidValue(f"must have at most {self.max_len} characters")
        if self.matcher is not None and not self.matcher.fullmatch(text):
            raise InvalidValue("has the wrong format")
        return text

    def _check_number(self, value):
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise InvalidValue("must be a finite number")
            # Count significant digits exactly: normalize() would round to the context's
            # precision (hiding decimals) and raise Overflow on a huge exponent.
            _, digits, exponent = value.as_tuple()
            written = max(len(digits) + exponent, 1) + max(-exponent, 0)
            significant = "".join(map(str, digits)).rstrip("0")
            exponent += len(digits) - len(significant)
            if not significant:
                significant, exponent = "0", 0
            fraction = max(0, -exponent)
            whole = max(0, len(significant) + exponent)
            if self.fraction_digits is not None and fraction > self.fraction_digits:
                raise InvalidValue(f"must have at most {self.fraction_digits} decimal places")
            if self.total_digits is not None and whole + fraction > self.total_digits:
                raise InvalidValue(f"must have at most {self.total_digits} digits")
            # A zero, or trailing zeros, with a huge exponent (a JSON 0e999999999) passes the
            # digit counts but not what converts it next.
            if written > MAX_NUMBER_LENGTH:
                raise InvalidValue(f"must have at most {MAX_NUMBER_LENGTH} digits written out")
        else:
            low, high = _INTEGER_BOUNDS[self.kind]
            if not low <= value <= high:
                raise InvalidValue(f"must be between {low} and {high}")
        if self.ge is not None and value < self.ge:
            raise InvalidValue(f"must be at least {self.ge}")
        if self.le is not None and value > self.le:
            raise InvalidValue(f"must be at most {self.le}")
        return value

    # -- writing -------------------------------------------------------------------
    def to_text(self, value) -> str:
        k = self.kind
        if k == "decimal":
            if self.fraction_digits is not None:
                value = value.quantize(Decimal(1).scaleb(-self.fraction_digits))
            return format(value, "f")
        if k == "boolean":
            return "true" if value else "false"
        if k == "dateTime":
            return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        if k == "date":
            return value.isoformat()
        if k == "enum":
            return getattr(value, "value", value)
        return str(value)

    def to_json(self, value):
        if self.kind in ("long", "int", "boolean"):
            return value
        return self.to_text(value)

    def text_writer(self) -> Callable[[Any], str]:
        """:meth:`to_text` with what depends on the type alone decided once (the codecs'
        writers call it per value)."""
        k = self.kind
        if k == "decimal":
            if self.fraction_digits is None:
                return lambda value: format(value, "f")
            quantum = Decimal(1).scaleb(-self.fraction_digits)
            return lambda value: format(value.quantize(quantum), "f")
        if k == "enum":
            return lambda value: getattr(value, "value", value)
        if k in ("string", "long", "int"):
            return str
        return self.to_text

    def json_writer(self) -> Callable[[Any], Any]:
        """:meth:`to_json`, decided once as :meth:`text_writer` is."""
        if self.kind in ("long", "int", "boolean"):
            return _same
        return self.text_writer()


@dataclass(frozen=True, eq=False)
class Field:
    name: str  # the wire name (camelCase)
    attr: str  # the Python name (snake_case) on value objects and commands
    type: "Simple | Complex"
    required: bool
    repeated: bool
    doc: str


@dataclass(frozen=True, eq=False)
class Complex:
    name: str
    namespace: str
    doc: str
    fields: tuple[Field, ...]
    by_name: dict

    @property
    def kind(self) -> str:
        return "complex"


def snake(name: str) -> str:
    """loanId -> loan_id: how wire names map to Python names."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
