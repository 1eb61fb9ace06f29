"""Group commit: concurrent calls on one key in a process, run together by one of their threads.

A call submits its item under a key (a listing's id) and waits. When no call on that key is
running, the submitting thread leads: it takes what is waiting on the key, up to ``max_size``
items, itself first, and runs them with ``run`` (in one transaction, say), which gives every
item its outcome. Whatever arrived on the key meanwhile waits for that run to end; then the
first of it leads the next run, which takes it and everything behind it. So a call never waits
for a timer: alone, it runs at once, by itself; under load it waits at most for the run before
it, and each run takes what queued during that one. A thread only ever runs a group its own
item is in, so a caller's latency is never spent on others' later work.

``run`` is given the items and returns one outcome each, in order: a value, or an exception
that call raises. An exception out of ``run`` itself is every item's outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 (an item)
R = TypeVar("R")


@dataclass(eq=False)
class _Call(Generic[I]):
    item: I
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next run, not with an outcome
    outcome: object = None


@dataclass(eq=False)
class _Key(Generic[I]):
    waiting: list[_Call[I]] = field(default_factory=list)
    running: bool = False


class GroupCommit(Generic[K, I, R]):
    """Calls per key, run ``max_size`` at most at a time by one of their threads."""

    def __init__(
        self, run: Callable[[K, Sequence[I]], Sequence[R | BaseException]], max_size: int
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._run = run
        self._max_size = max_size
        self._lock = threading.Lock()
        self._keys: dict[K, _Key[I]] = {}

    def submit(self, key: K, item: I) -> R:
        """``item``'s outcome: its value, or its exception raised."""
        call: _Call[I] = _Call(item)
        with self._lock:
            queue = self._keys.setdefault(key, _Key())
            queue.waiting.append(call)
            wait = queue.running
            queue.running = True
        if wait:
            call.woken.wait()
        if not wait or call.lead:
            self._lead(key, queue)
        if isinstance(call.outcome, BaseException):
            raise call.outcome
        return call.outcome  # type: ignore[return-value]

    def _lead(self, key: K, queue: _Key[I]) -> None:
        with self._lock:
            calls = queue.waiting[: self._max_size]
            del queue.waiting[: self._max_size]
        try:
            outcomes: Sequence[object] = self._run(key, [c.item for c in calls])
            if len(outcomes) != len(calls):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(calls)} items")
        except BaseException as e:  # every item's, including this thread's own
            outcomes = [e] * len(calls)
        for c, outcome in zip(calls, outcomes, strict=True):
            c.outcome = outcome
        for c in calls[1:]:  # the run's callers go on before the next run is handed over
            c.woken.set()
        with self._lock:
            if queue.waiting:
                following = queue.waiting[0]
                following.lead = True
                following.woken.set()
            else:
                queue.running = False
                del self._keys[key]
