"""Entity -> value object mapping: automatic by field name, explicit where names differ."""

import dataclasses


def to_vo(vo_cls, source, **explicit):
    """Build ``vo_cls`` from ``source``'s attributes of the same names, overridden by
    ``explicit`` (e.g. ``loan_id=entity.id``)."""
    values = {
        f.name: explicit[f.name] if f.name in explicit else getattr(source, f.name)
        for f in dataclasses.fields(vo_cls)
    }
    return vo_cls(**values)
