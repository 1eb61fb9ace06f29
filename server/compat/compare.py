"""The rules: what in a newer contract breaks a client generated from a released one.

A client sends inputs and reads outputs, so the two are judged in opposite directions:

* an input must still accept everything it accepted: a field removed or renamed (the client
  still sends it and a strict server refuses it), a new required field, an optional field
  made required, a type narrowed (another base type, a shorter maximum length, a longer
  minimum, a new or changed pattern or format, a tighter bound or fewer digits), or a value
  no longer allowed to be empty break it;
* an output must still give everything it gave: a field removed or renamed, a required field
  made optional, another base type, or a value that may now be empty break it (a facet
  widened on an output is a change, not a break: the client only reads what it gets);
* on both sides a field that becomes repeated or stops being so, and an enumeration value
  removed (generated code names each value), break it;
* an operation removed or renamed, another binding (SOAP action, message element, a new
  header; REST verb, path or success status), a fault code removed, and a SOAP port removed
  break it.

Everything else a newer contract adds (operations, optional input fields, output fields,
enumeration values, fault codes, ports) passes, and is listed as a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from server.compat.model import Again, Change, Contract, Field, Operation, Record, Scalar, Shape

INPUT, OUTPUT = "input", "output"
#: Facets whose larger value accepts more, and those whose smaller value does.
_UPPER = frozenset({"maxLength", "maximum", "maxInclusive", "totalDigits", "fractionDigits"})
_LOWER = frozenset({"minLength", "minimum", "minInclusive"})
#: A header a binding lists is one the client must send; so is a route's verb and path.
_HEADER = "header "


def compare(old: Contract, new: Contract) -> list[Change]:
    """Every change from ``old`` (released) to ``new``, breaking ones and others."""
    changes: list[Change] = []
    for code in sorted(old.catalogue - new.catalogue):
        changes.append(Change(f"{old.name} faults", f"fault code {code} removed", True))
    for code in sorted(new.catalogue - old.catalogue):
        changes.append(Change(f"{new.name} faults", f"fault code {code} added", False))
    for endpoint in sorted(old.endpoints - new.endpoints):
        changes.append(Change(f"{old.name} {endpoint}", "removed", True))
    for endpoint in sorted(new.endpoints - old.endpoints):
        changes.append(Change(f"{new.name} {endpoint}", "added", False))
    for key in sorted(old.operations.keys() - new.operations.keys()):
        changes.append(Change(key, "operation removed (or renamed)", True))
    for key in sorted(new.operations.keys() - old.operations.keys()):
        changes.append(Change(key, "operation added", False))
    for key in sorted(old.operations.keys() & new.operations.keys()):
        changes.extend(_operation(old.operations[key], new.operations[key]))
    return changes


def _operation(old: Operation, new: Operation) -> Iterator[Change]:
    key = old.key
    for name in sorted(old.binding.keys() | new.binding.keys()):
        was, now = old.binding.get(name), new.binding.get(name)
        if was == now:
            continue
        if was is None:
            yield Change(f"{key} {name}", f"{now} added", _required_header(name, old))
        elif now is None:
            yield Change(f"{key} {name}", f"{was} removed", not name.startswith(_HEADER))
        else:
            yield Change(f"{key} {name}", f"{was} became {now}", True)
    if old.faults is not None and new.faults is not None:
        for code in sorted(old.faults - new.faults):
            yield Change(f"{key} faults", f"fault code {code} removed", True)
        for code in sorted(new.faults - old.faults):
            yield Change(f"{key} faults", f"fault code {code} added", False)
    elif old.faults != new.faults:
        what = "declared" if new.faults is not None else "no longer declared"
        yield Change(f"{key} faults", f"its own fault codes {what}", False)
    yield from _record(f"{key} input", old.input, new.input, INPUT, set())
    if old.output is not None and new.output is None:
        yield Change(f"{key} output", "removed", True)
    elif old.output is None and new.output is not None:
        yield Change(f"{key} output", "added", False)
    elif old.output is not None and new.output is not None:
        yield from _record(f"{key} output", old.output, new.output, OUTPUT, set())


def _required_header(name: str, old: Operation) -> bool:
    """Whether binding entry ``name`` is a header the operation's clients must now send: one
    of a binding they already use (``header <binding> <element>``), not of a new binding."""
    if not name.startswith(_HEADER):
        return False
    kind = name[len(_HEADER) :].split(" ", 1)[0]
    return f"{kind} action" in old.binding


def _record(where: str, old: Record, new: Record, side: str, seen: set) -> Iterator[Change]:
    for name in sorted(old.fields.keys() - new.fields.keys()):
        yield Change(f"{where}.{name}", "field removed (or renamed)", True)
    for name in sorted(new.fields.keys() - old.fields.keys()):
        required = new.fields[name].required
        breaking = side == INPUT and required
        what = "required field added" if required else "optional field added"
        yield Change(f"{where}.{name}", what, breaking)
    for name in sorted(old.fields.keys() & new.fields.keys()):
        yield from _field(f"{where}.{name}", old.fields[name], new.fields[name], side, seen)


def _field(where: str, old: Field, new: Field, side: str, seen: set) -> Iterator[Change]:
    if old.required != new.required:
        if new.required:
            yield Change(where, "optional field made required", side == INPUT)
        else:
            yield Change(where, "required field made optional", side == OUTPUT)
    if old.many != new.many:
        yield Change(where, "repeated" if new.many else "no longer repeated", True)
    if old.nullable != new.nullable:
        if new.nullable:
            yield Change(where, "may now be empty (null)", side == OUTPUT)
        else:
            yield Change(where, "may no longer be empty (null)", side == INPUT)
    yield from _shape(where, old.shape, new.shape, side, seen)


def _shape(where: str, old: Shape, new: Shape, side: str, seen: set) -> Iterator[Change]:
    if isinstance(old, Scalar) and isinstance(new, Scalar):
        yield from _scalar(where, old, new, side)
    elif isinstance(old, Record) and isinstance(new, Record):
        pair = (old.name, new.name, side)
        if old.name and pair in seen:  # a named record compared once per side
            return
        seen.add(pair)
        if old.name and new.name and old.name != new.name:  # the wire does not name types
            yield Change(where, f"type {old.name} renamed {new.name}", False)
        yield from _record(where, old, new, side, seen)
    elif isinstance(old, Again) and isinstance(new, Again):
        if old.name != new.name:
            yield Change(where, f"type {old.name} became {new.name}", True)
    else:
        yield Change(where, f"type {_kind(old)} became {_kind(new)}", True)


def _scalar(where: str, old: Scalar, new: Scalar, side: str) -> Iterator[Change]:
    if old.base != new.base:
        yield Change(where, f"type {old.base} became {new.base}", True)
        return
    old_values, new_values = old.values or frozenset(), new.values or frozenset()
    if old.values is not None and new.values is None:
        yield Change(where, "no longer an enumeration", side == OUTPUT)
    elif old.values is None and new.values is not None:
        yield Change(where, "became an enumeration", True)
    else:
        for value in sorted(old_values - new_values):
            yield Change(where, f"enumeration value {value} removed", True)
        for value in sorted(new_values - old_values):
            yield Change(where, f"enumeration value {value} added", False)
    for facet in sorted(old.facets.keys() | new.facets.keys()):
        was, now = old.facets.get(facet), new.facets.get(facet)
        if was == now:
            continue
        narrowed = _narrows(facet, was, now)
        what = f"{facet} {_shown(was)} became {_shown(now)}"
        yield Change(where, what + (" (narrowed)" if narrowed else ""), narrowed and side == INPUT)


def _narrows(facet: str, was, now) -> bool:
    """Whether the facet's change accepts less than before."""
    if now is None:
        return False  # a facet dropped accepts more
    if was is None:
        return True  # a new restriction
    if facet in _UPPER:
        return Decimal(now) < Decimal(was)
    if facet in _LOWER:
        return Decimal(now) > Decimal(was)
    return True  # another pattern or format: no way to know it accepts as much


def _shown(value) -> str:
    return "none" if value is None else str(value)


def _kind(shape: Shape) -> str:
    if isinstance(shape, Scalar):
        return shape.base
    return f"record {shape.name or '(anonymous)'}"
