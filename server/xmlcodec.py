"""XML reading and writing of wire values, driven by the compiled type descriptions.

Reading is strict: an unknown, repeated or missing element, or a value that breaks its
facets, is refused with the field's path. Writing is total: text XML cannot carry is replaced
(U+FFFD). Elements are qualified (elementFormDefault "qualified"): a field lives in the
namespace of the type that declares it.
"""

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
    ns = t.namespace
    for f in t.fields:
        v = getattr(value, f.attr)
        if v is None:
            continue
        for item in v if f.repeated else (v,):
            write_value(parent, f, ns, item)


def write_value(parent, f: Field, ns: str, value) -> None:
    child = etree.SubElement(parent, f"{{{ns}}}{f.name}")
    if isinstance(f.type, Simple):
        child.text = carriable(f.type.to_text(value))  # stored before the text rules, or not
    else:
        write_complex(child, f.type, value)
