"""What is made from an immutable value, made once for as long as that value lives.

A cached read hands every caller the same value object (service/caching.py decodes a text
once per process), so what is made from it (the view one audience may see, the bytes of an
answer) is the same every time too: :class:`Derived` keeps it beside the value and finds it
by the value's identity and a key that says what else it depends on (an audience, a
protocol). Identity, never equality: equal values may differ in what is written of them
(``Decimal("1.0") == Decimal("1.00")``, one instant in two offsets), and an identical object
is the same value exactly, since value objects are frozen.

What is kept goes with its value: an entry is dropped when the value is collected (a weak
reference's callback), so a value made for one call only (an uncached read) leaves nothing
behind, and a cached value evicted from the read cache takes what was made from it along.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Derived:
    """Values made from immutable objects, by the object's identity and a key; thread-safe
    (one dictionary operation at a time, under the GIL). Only what is made from a frozen
    dataclass is kept: from anything else (a list, a mutable object) it is made every time."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, Hashable], tuple[weakref.ref, Any]] = {}

    def get(self, source: object, key: Hashable, make: Callable[[], T]) -> T:
        """What `make` makes from `source` for `key`, made on the first call only."""
        entry_key = (id(source), key)
        entry = self._entries.get(entry_key)
        if entry is not None and entry[0]() is source:
            return entry[1]
        made = make()
        params = getattr(type(source), "__dataclass_params__", None)
        if params is None or not params.frozen:
            return made
        try:
            ref = weakref.ref(source, self._dropper(entry_key))
        except TypeError:  # slots without a weak reference's
            return made
        self._entries[entry_key] = (ref, made)
        return made

    def __len__(self) -> int:
        return len(self._entries)

    def _dropper(self, entry_key: tuple[int, Hashable]) -> Callable[[weakref.ref], None]:
        entries = self._entries

        def drop(ref: weakref.ref) -> None:
            # Only this reference's entry: another may have replaced it under the same key
            # (a source collected and a new one at its address, once this entry was stale).
            entry = entries.get(entry_key)
            if entry is not None and entry[0] is ref:
                entries.pop(entry_key, None)

        return drop
