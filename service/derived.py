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

import operator
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
        self._keep(source, entry_key, made)
        return made

    def latest(self, source: object, key: Hashable, parts: tuple, make: Callable[[], T]) -> T:
        """What `make` makes from `source` and `parts` (objects compared by identity) for
        `key`: the same while none of them changes, made again (and the one kept replaced)
        when a part is another object. One is kept per `source` and `key`, whatever the
        parts were before."""
        entry_key = (id(source), key)
        entry = self._entries.get(entry_key)
        if entry is not None and entry[0]() is source:
            kept_parts, made = entry[1]
            if len(kept_parts) == len(parts) and all(map(operator.is_, kept_parts, parts)):
                return made
        made = make()
        self._keep(source, entry_key, (parts, made))
        return made

    def _keep(self, source: object, entry_key: tuple[int, Hashable], kept: Any) -> None:
        """Keep `kept` under `entry_key` for as long as `source` lives, if it is a frozen
        dataclass (replacing what was kept there)."""
        params = getattr(type(source), "__dataclass_params__", None)
        if params is None or not params.frozen:
            return
        try:
            ref = weakref.ref(source, self._dropper(entry_key))
        except TypeError:  # slots without a weak reference's
            return
        self._entries[entry_key] = (ref, kept)

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
