"""The facades' spyne declarations read into the compiled contract (server/contract.py).

:func:`discover_facades` finds every facade; :func:`compile_contract` reads their operations
and every type they name into binding descriptions (server/binding.py), checking each
declaration on the way. ``python -m server.declared`` writes that contract, pickled, on its
standard output: how ``p2p serve`` compiles it without importing spyne itself.
"""

import importlib
import inspect
import pickle
import pkgutil
import re
import sys
from decimal import Decimal
from functools import cache

from spyne import ComplexModel
from spyne.model.enum import EnumBase
from spyne.model.primitive import Boolean, Date, DateTime, Integer, Integer32, Long, Unicode
from spyne.model.primitive import Decimal as SpyneDecimal

import facade
from facade.contract import Facade, Operation
from facade.types import AuthToken, BusinessFault, PartnerSignature
from server.binding import SINGLE_LINE_PATTERN, Complex, Field, Simple, snake
from server.contract import CompiledFacade, CompiledOperation, Contract, Shared
from server.faults import fault_codes


def discover_facades() -> list[type[Facade]]:
    """Every Facade subclass in the facade package, ordered by name."""
    found = {}
    for info in pkgutil.iter_modules(facade.__path__, "facade."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Facade) and value is not Facade:
                found[value.__name__] = value
    return [found[name] for name in sorted(found)]


def compile_contract(facades: list[type[Facade]] | None = None) -> Contract:
    """The contract of ``facades`` (every facade when None); TypeError names a declaration
    the framework cannot serve."""
    if facades is None:
        facades = discover_facades()
    return Contract(
        facades=tuple(compile_facade(f) for f in facades),
        shared=Shared(
            fault=_complex(BusinessFault),
            token=_complex(AuthToken),
            signature=_complex(PartnerSignature),
        ),
    )


def compile_facade(facade_cls: type[Facade]) -> CompiledFacade:
    return CompiledFacade(
        name=facade_cls.__name__,
        namespace=facade_cls.namespace,
        service=facade_cls.service,
        doc=facade_cls.doc(),
        operations=tuple(_operation(facade_cls, op) for op in facade_cls.operations),
    )


def _operation(facade_cls: type[Facade], op: Operation) -> CompiledOperation:
    try:
        codes = fault_codes(op)
    except TypeError as e:
        raise TypeError(f"{facade_cls.__name__}.{op.name}: {e}") from None
    params = tuple(field(p.name, p.type) for p in op.params)
    returns = () if op.returns is None else (field("return", op.returns),)
    ns = facade_cls.namespace
    return CompiledOperation(
        terms=op.terms(),
        request=_wrapper(op.name, ns, params, op.doc),
        response=_wrapper(op.name + "Response", ns, returns, ""),
        fault_codes=codes,
    )


def _wrapper(name: str, namespace: str, fields: tuple[Field, ...], doc: str) -> Complex:
    return Complex(name, namespace, doc, fields, {f.name: f for f in fields})


def _infinite(x) -> bool:
    return x is None or (isinstance(x, Decimal) and x.is_infinite())


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


def main() -> None:
    pickle.dump(compile_contract(), sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    main()
