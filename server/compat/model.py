"""What a client generated from a contract depends on, read from the published documents
(wsdl/*.wsdl, swagger/openapi.json) into one model, so that both kinds of contract are
compared by the same rules (server/compat/compare.py).

An operation is what a client calls: its input (what the client sends) and output (what it
reads) as records of fields, the fault codes it is told to expect, and its binding (how it is
reached: SOAP action, message elements and headers; REST verb, path and success status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Scalar:
    """A value: its base type (``xs:string``, ``string/date-time``, ...), its facets by name
    (bounds and lengths as Decimal, patterns and formats as text) and, for an enumeration,
    its values."""

    base: str
    facets: Mapping[str, Decimal | str] = field(default_factory=dict)
    values: frozenset[str] | None = None


@dataclass(frozen=True)
class Record:
    """A structure: its fields by name. ``name`` is the type's name where it has one (for
    messages only)."""

    name: str
    fields: Mapping[str, Field]


@dataclass(frozen=True)
class Again:
    """A record met again inside itself: compared by name only."""

    name: str


Shape = Scalar | Record | Again


@dataclass(frozen=True)
class Field:
    shape: Shape
    required: bool
    many: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Operation:
    """One operation of one contract; ``binding`` holds what reaches it, each a short text;
    ``faults`` the codes it declares, None when it declares none of its own (any code of the
    contract's catalogue)."""

    key: str
    input: Record
    output: Record | None
    faults: frozenset[str] | None
    binding: Mapping[str, str]


@dataclass(frozen=True)
class Contract:
    """One published document: its operations by key, what else a client is bound to (SOAP
    ports) by name, and the fault codes it names for all its operations (its catalogue)."""

    name: str
    operations: Mapping[str, Operation]
    endpoints: frozenset[str] = frozenset()
    catalogue: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Change:
    """One difference between a released contract and a newer one: where, what, and whether
    it breaks a client generated from the released one."""

    where: str
    what: str
    breaking: bool

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'added/changed'}: {self.where}: {self.what}"
