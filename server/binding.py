"""The data binding: what each spyne type means on the wire, compiled once per type.

spyne declares the contract; this module reads those declarations into small immutable
descriptions (:class:`Simple`, :class:`Complex`, :class:`Field`) that the XML and JSON codecs,
the XSD writer and the OpenAPI writer all share, so the two protocols validate alike.
"""

import datetime as dt
import inspect
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from spyne import ComplexModel
from spyne.model.enum import EnumBase
from spyne.model.primitive import Boolean, Date, DateTime, Integer, Integer32, Long, Unicode
from spyne.model.primitive import Decimal as SpyneDecimal

XS = "http://www.w3.org/2001/XMLSchema"

_DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)\Z")
_INTEGER_TEXT = re.compile(r"[+-]?\d+\Z")
_INTEGER_BOUNDS = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}


class InvalidValue(ValueError):
    """A value that does not fit its declared type; the codecs prefix the field's path."""


def _infinite(x) -> bool:
    return x is None or (isinstance(x, Decimal) and x.is_infinite())


@dataclass(frozen=True, eq=False)
class Simple:
    """A simple (leaf) type: an XSD built-in or a named restriction of one, with its facets."""

    kind: str  # string, decimal, long, int, boolean, dateTime, date, enum
    name: str | None  # a named type of ours (money, rate, an enum), else None
    namespace: str | None
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None
    total_digits: int | None = None
    fraction_digits: int | None = None
    ge: Decimal | None = None
    le: Decimal | None = None
    values: tuple[str, ...] = ()

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
        text = text.strip()
        if k == "decimal":
            if not _DECIMAL_TEXT.match(text):
                raise InvalidValue("must be a decimal number such as 1000.00")
            return self._check_number(Decimal(text))
        if k in ("long", "int"):
            if not _INTEGER_TEXT.match(text) or len(text) > 100:  # int() refuses 4300+ digits
                raise InvalidValue("must be a whole number")
            return self._check_number(int(text))
        if k == "boolean":
            if text in ("true", "1"):
                return True
            if text in ("false", "0"):
                return False
            raise InvalidValue("must be true or false")
        if k == "dateTime":
            try:
                value = dt.datetime.fromisoformat(text)
            except ValueError:
                raise InvalidValue("must be a date and time such as 2026-01-31T08:00:00Z") from None
            if value.tzinfo is None:
                raise InvalidValue("must carry a time zone, e.g. Z")
            return value.astimezone(dt.UTC)
        if k == "date":
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                raise InvalidValue("must be a date such as 2026-01-31") from None
        raise AssertionError(k)

    def from_json(self, value):
        """Read a JSON value. Money and rates come as strings; a JSON number is taken exactly
        (the parser hands it over as Decimal) and checked against the same facets."""
        k = self.kind
        if k in ("string", "enum", "dateTime", "date"):
            if not isinstance(value, str):
                raise InvalidValue("must be a string")
            return self.from_text(value)
        if k == "boolean":
            if not isinstance(value, bool):
                raise InvalidValue("must be true or false")
            return value
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
        if self.min_len is not None and len(text) < self.min_len:
            raise InvalidValue(f"must have at least {self.min_len} characters")
        if self.max_len is not None and len(text) > self.max_len:
            raise InvalidValue(f"must have at most {self.max_len} characters")
        if self.pattern is not None and not re.fullmatch(self.pattern, text):
            raise InvalidValue("has the wrong format")
        return text

    def _check_number(self, value):
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise InvalidValue("must be a finite number")
            # Count significant digits exactly: normalize() would round to the context's
            # precision (hiding decimals) and raise Overflow on a huge exponent.
            _, digits, exponent = value.as_tuple()
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
    return Simple(
        kind=kind,
        name=type_name if ours else None,
        namespace=namespace,
        min_len=_facet(cls, "min_len") or None,
        max_len=_facet(cls, "max_len"),
        pattern=_facet(cls, "pattern"),
        total_digits=_facet(cls, "total_digits"),
        fraction_digits=_facet(cls, "fraction_digits"),
        ge=_bound(cls, kind, "ge"),
        le=_bound(cls, kind, "le"),
        values=tuple(cls.__values__) if kind == "enum" else (),
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
