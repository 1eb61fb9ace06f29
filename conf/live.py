"""The settings the platform runs on now: one frozen Settings, replaced whole.

The composition root hands the services a LiveSettings (the "settings" component) instead of
a Settings. A reader takes one snapshot per call, so a call never sees half of an update:

* ``live.current()`` is the whole Settings in force now;
* ``live.loan`` (any section, or ``describe()``) is that section of the current snapshot, so
  code written against a plain Settings keeps working, and a service that reads a section
  once per call (``bounds = self._settings.loan``) reads one consistent snapshot of it.

A service must not keep a section or a value past the call it was read for: keys marked
``reloadable`` in conf/settings.py change while the platform runs (conf/apollo.py). Writers
build a complete new Settings, every cross-key check passing, and swap one reference.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from conf.settings import Settings


class LiveSettings:
    """Holds the current Settings; `base` is what conf/, the environment and the command-line
    overrides gave at start-up, and `pinned` the keys those overrides set (which win over the
    configuration centre)."""

    def __init__(self, settings: Settings, *, pinned: Iterable[str] = ()) -> None:
        self._base = settings
        self._current = settings
        self._pinned = frozenset(pinned)
        self._write = threading.Lock()

    @property
    def base(self) -> Settings:
        return self._base

    @property
    def pinned(self) -> frozenset[str]:
        return self._pinned

    def current(self) -> Settings:
        """The Settings in force now: one frozen snapshot, never changed in place."""
        return self._current

    def __getattr__(self, name: str) -> Any:
        # Only for names LiveSettings lacks: the sections and methods of the current Settings.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._current, name)

    def replace(self, make: Callable[[Settings], Settings]) -> tuple[Settings, Settings]:
        """Swap in ``make(current)`` (which may return current itself); writers are serialised
        so none builds on a snapshot another has just replaced. Returns (old, new)."""
        with self._write:
            old = self._current
            new = make(old)
            self._current = new
        return old, new
