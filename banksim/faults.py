"""Faults the simulator injects on demand, per order type, from its options or /admin/faults.

A fault is armed for an order type ("*": any) with a count (None: every order) and consumed by
the new orders of that type the bank receives (a resubmitted order number is not new, so a
retry after a fault meets the order as the fault left it). Faults live in memory: a restart
keeps what each order already carries and re-arms only the options' faults.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace

from service.ocp import protocol

#: Every fault, and what it does to the next order of its type.
FAULTS = {
    "refuse": "answer REFUSED (REFUSED_BY_BANK); nothing moves",
    "fail": "accept, then finish FAILED (DECLINED_BY_BANK) and notify that",
    "delay": "finish as usual but send the first notification `seconds` later (default 30)",
    "never_notify": "finish as usual and never notify (only a query tells)",
    "notify_twice": "deliver the notification again after it was acknowledged (same notifyId)",
    "notify_out_of_order": (
        "WITHDRAW: succeed and be returned at once, delivering REVERSED before SUCCEEDED; other"
        " types: after SUCCEEDED deliver a stale conflicting FAILED event (SYSTEM_ERROR) of an"
        " earlier internal attempt; the second delivery `seconds` (default 2) after the first"
    ),
    "bad_signature": "sign the notification's first delivery wrongly (the retries are right)",
    "timeout_after_moving": (
        "finish the order at once (money moved, notification queued), then hold the answer"
        " past the client's read timeout"
    ),
    "timeout_without_moving": "hold the answer past the client's read timeout; record nothing",
    "reverse_after_success": "WITHDRAW only: succeed, then return it (REVERSED) `seconds` later",
    "http_5xx": "answer HTTP 503, unsigned; record nothing",
}
_WITHDRAW_ONLY = frozenset({"reverse_after_success"})


@dataclass(frozen=True)
class Fault:
    order_type: str
    name: str
    count: int | None = None
    seconds: float | None = None

    def applies_to(self, order_type: str) -> bool:
        if self.order_type not in ("*", order_type):
            return False
        return self.name not in _WITHDRAW_ONLY or order_type == protocol.WITHDRAW


def make_fault(order_type: object, name: object, count: object, seconds: object) -> Fault:
    """A checked Fault; ValueError saying what is wrong."""
    types = (*protocol.ORDER_FIELDS, *sorted(protocol.BATCH_TYPES))
    if order_type != "*" and order_type not in types:
        raise ValueError(f"orderType must be * or one of {', '.join(types)}")
    if name not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
    if name in _WITHDRAW_ONLY and order_type not in ("*", protocol.WITHDRAW):
        raise ValueError(f"{name} applies to WITHDRAW only")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError("count must be an integer >= 1 (omit it: every order)")
    if seconds is not None and (
        not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0
    ):
        raise ValueError("seconds must be a number >= 0")
    return Fault(order_type, name, count, None if seconds is None else float(seconds))


def parse_option(text: str) -> Fault:
    """A fault from the option form TYPE:FAULT[:COUNT[:SECONDS]] (COUNT empty or * = every)."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 4:
        raise ValueError("a fault is TYPE:FAULT[:COUNT[:SECONDS]]")
    count = parts[2] if len(parts) > 2 else ""
    seconds = parts[3] if len(parts) > 3 else ""
    try:
        return make_fault(
            parts[0],
            parts[1],
            None if count in ("", "*") else int(count),
            None if seconds == "" else float(seconds),
        )
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


class Faults:
    """The armed faults, first armed first used; safe across threads."""

    def __init__(self, armed: tuple[Fault, ...] = ()):
        self._lock = threading.Lock()
        self._armed = list(armed)

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def listed(self) -> list[dict]:
        with self._lock:
            return [asdict(fault) for fault in self._armed]

    def take(self, order_type: str, among: frozenset[str] | None = None) -> Fault | None:
        """The fault the next new order of ``order_type`` gets, one count used; or None.
        ``among``: only faults of these names (a batch's, or its items')."""
        with self._lock:
            for i, fault in enumerate(self._armed):
                if fault.applies_to(order_type) and (among is None or fault.name in among):
                    if fault.count is None:
                        return fault
                    if fault.count == 1:
                        del self._armed[i]
                    else:
                        self._armed[i] = replace(fault, count=fault.count - 1)
                    return fault
            return None
