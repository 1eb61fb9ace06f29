"""The data binding: what each spyne type means on the wire, compiled once per type.

spyne declares the contract; this module reads those declarations into small immutable
descriptions (:class:`Simple`, :class:`Complex`, :class:`Field`) that the XML and JSON codecs,
the XSD writer and the OpenAPI writer all share, so the two protocols validate alike.

Text the contract accepts is what XML 1.0 carries and does not discourage: no C0 control but
TAB, LF and CR, no C1 control (U+007F-U+009F), no surrogate (a JSON "\\ud800"), no
noncharacter (U+FDD0-U+FDEF, U+nFFFE, U+nFFFF). A string field is a single line (no TAB, LF or
CR either) unless its declaration says ``multiline``. Numbers are ASCII digits only, and a
number's text is bounded before it is parsed. On the way out, :func:`carriable` makes any text
writable whatever was stored before these rules.
"""

import datetime as dt
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from spyne import ComplexModel
from spyne.model.enum import EnumBase
from spyne.model.primitive import Boolean, Date, DateTime, Integer, Integer32, Long, Unicode
from spyne.model.primitive import Decimal as SpyneDecimal

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


def _infinite(x) -> bool:
    return x is None or (isinstance(x, Decimal) and x.is_infinite())


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


def _named_base(cls):
    for klass in cls.__mro__:
        name = klass.__dict__.get("__type_name__")
        if isinstance(name, str):
            return klass, name
    raise TypeError(f"{cls} has no type name")


def _facet(cls, attr: str):
    value = getattr(cls.Attributes, attr, None)
    if _infinite(value):
        return None
    return value


def _kind(cls) -> str:
    if issubclass(cls, EnumBase):
        return "enum"
    if issubclass(cls, Boolean):
        return "boolean"
    if issubclass(cls, Integer32):
        return "int"
    if issubclass(cls, Long):
        return "long"
    if issubclass(cls, Integer):
        raise TypeError("declare whole numbers as Long or Integer32, not unbounded Integer")
    if issubclass(cls, SpyneDecimal):
        return "decimal"
    if issubclass(cls, Date):  # before DateTime: spyne's Date subclasses DateTime
        return "date"
    if issubclass(cls, DateTime):
        return "dateTime"
    if issubclass(cls, Unicode):
        return "string"
    raise TypeError(f"unsupported wire type {cls}")


def _bound(cls, kind: str, attr: str) -> Decimal | None:
    if kind not in ("decimal", "long", "int"):
        return None
    value = _facet(cls, attr)
    return None if value is None else Decimal(value)


@cache
def simple(cls) -> Simple:
    kind = _kind(cls)
    base, type_name = _named_base(cls)
    ours = base.__dict__.get("__namespace__") is not None or kind == "enum"
    namespace = cls.get_namespace() if ours else None
    pattern = _facet(cls, "pattern") if kind == "string" else None
    multiline = kind == "string" and bool(getattr(cls.Attributes, "multiline", False))
    return Simple(
        kind=kind,
        name=type_name if ours else None,
        namespace=namespace,
        min_len=_facet(cls, "min_len") or None,
        max_len=_facet(cls, "max_len"),
        pattern=pattern or (None if multiline or kind != "string" else SINGLE_LINE_PATTERN),
        total_digits=_facet(cls, "total_digits"),
        fraction_digits=_facet(cls, "fraction_digits"),
        ge=_bound(cls, kind, "ge"),
        le=_bound(cls, kind, "le"),
        values=tuple(cls.__values__) if kind == "enum" else (),
        multiline=multiline,
        # ASCII, so that \d and \s mean in Python what they mean in ECMAScript (OpenAPI).
        matcher=re.compile(pattern, re.ASCII) if pattern else None,
    )


def field(name: str, cls) -> Field:
    attrs = cls.Attributes
    return Field(
        name=name,
        attr=snake(name),
        type=describe(cls),
        required=attrs.min_occurs >= 1,
        repeated=_infinite(attrs.max_occurs) or attrs.max_occurs > 1,
        doc=cls.Annotations.doc or "",
    )


@cache
def _complex(cls) -> Complex:
    base, type_name = _named_base(cls)
    fields = tuple(field(n, t) for n, t in cls._type_info.items())
    return Complex(
        name=type_name,
        namespace=base.get_namespace(),
        doc=inspect.cleandoc(base.__doc__ or ""),
        fields=fields,
        by_name={f.name: f for f in fields},
    )


def describe(cls) -> "Simple | Complex":
    """The wire description of a spyne type (cached per class)."""
    if issubclass(cls, ComplexModel):
        return _complex(_named_base(cls)[0])
    return simple(cls)
