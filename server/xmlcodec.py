"""XML reading and writing of wire values, driven by the compiled type descriptions.

Reading is strict: an unknown, repeated or missing element, or a value that breaks its
facets, is refused with the field's path. Writing is total: text XML cannot carry is replaced
(U+FFFD). Elements are qualified (elementFormDefault "qualified"): a field lives in the
namespace of the type that declares it.
"""

import threading
from collections.abc import Callable

from lxml import etree

from server.binding import Complex, Field, InvalidValue, Simple, carriable, shown
from service.errors import invalid

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _local(tag) -> tuple[str | None, str]:
    if not isinstance(tag, str):
        return None, ""
    if tag[0] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def read_complex(element, t: Complex, path: str) -> dict:
    """The element's children as a dict of Python names; missing optional fields are None."""
    values: dict = {}
    for child in element:
        ns, local = _local(child.tag)
        if not local:
            continue  # comments and processing instructions are stripped by the parser
        f = t.by_name.get(local)
        if f is None or ns != t.namespace:
            name = shown(local)
            raise invalid(f"{path}.{name}" if path else name, "is not a known element here")
        where = f"{path}.{local}" if path else local
        value = read_value(child, f, where)
        if f.repeated:
            values.setdefault(f.attr, []).append(value)
        elif f.attr in values:
            raise invalid(where, "appears more than once")
        else:
            values[f.attr] = value
    if element.text and element.text.strip():
        raise invalid(path or t.name, "must not contain text")
    for f in t.fields:
        if f.attr not in values:
            if f.required:
                raise invalid(f"{path}.{f.name}" if path else f.name, "is required")
            values[f.attr] = [] if f.repeated else None
    return values


def read_value(element, f: Field, path: str):
    if element.get(XSI_NIL) in ("true", "1"):
        if f.required:
            raise invalid(path, "may not be nil")
        return None
    if isinstance(f.type, Complex):
        return read_complex(element, f.type, path)
    if len(element):
        raise invalid(path, "must be a simple value")
    try:
        return f.type.from_text(element.text or "")
    except InvalidValue as e:
        raise invalid(path, str(e)) from None


def write_complex(parent, t: Complex, value) -> None:
    """Append the fields of ``value`` (an object with the Python names) under ``parent``."""
    writer = _WRITERS.get(t)
    if writer is None:
        writer = _compile(lambda made: _complex_writer(t, made))
    writer(parent, value)


def write_value(parent, f: Field, ns: str, value) -> None:
    """Append ``value`` as the element of field ``f`` in namespace ``ns`` under ``parent``."""
    writer = _WRITERS.get((f, ns))
    if writer is None:
        writer = _compile(lambda made: _value_writer(f, ns, made))
    writer(parent, value)


#: Writers made on a type's first value (its fields' tags, attributes and text writers decided
#: once, not per value and field), by Complex and by (Field, namespace); types are bound once
#: and never change (eq=False: keyed by identity).
_WRITERS: dict = {}
_COMPILING = threading.Lock()


def _compile(make: Callable[[dict], Callable]) -> Callable:
    with _COMPILING:
        made: dict = {}
        writer = make(made)
        _WRITERS.update(made)  # published whole: no thread sees a writer half made
    return writer


def _complex_writer(t: Complex, made: dict) -> Callable:
    known = _WRITERS.get(t) or made.get(t)
    if known is not None:
        return known
    parts: list[tuple[str, bool, Callable]] = []

    def write(parent, value) -> None:
        for attr, repeated, write_one in parts:
            v = getattr(value, attr)
            if v is None:
                continue
            if repeated:
                for item in v:
                    write_one(parent, item)
            else:
                write_one(parent, v)

    made[t] = write  # before its fields: a type that contains itself finds it
    parts.extend((f.attr, f.repeated, _value_writer(f, t.namespace, made)) for f in t.fields)
    return write


def _value_writer(f: Field, ns: str, made: dict) -> Callable:
    known = _WRITERS.get((f, ns)) or made.get((f, ns))
    if known is not None:
        return known
    tag = f"{{{ns}}}{f.name}"
    sub = etree.SubElement
    if isinstance(f.type, Simple):
        text = f.type.text_writer()

        def write(parent, value) -> None:
            sub(parent, tag).text = carriable(text(value))  # stored before the text rules, or not

    else:
        inner = _complex_writer(f.type, made)

        def write(parent, value) -> None:
            inner(sub(parent, tag), value)

    made[(f, ns)] = write
    return write
