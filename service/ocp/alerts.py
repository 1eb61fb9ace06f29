"""What a person must look at in the bank's dealings: conflicting information and orders in
doubt (batch items whose attempts are used up among them), logged as alerts and counted once
the transaction that found them commits.

Conflict kinds (a bounded label): ``status`` (another final status for a final order),
``amount`` (another amount), ``type`` (another order type), ``reversal`` (REVERSED for an
order that cannot be returned), ``lost`` (the bank says it never received an order it had
accepted). Services call
:class:`BankAlerts`; where the counts go is the recorder the composition root gives it
(Prometheus counters, server/metrics.py).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Protocol

from dao.ocp import BankOrderEntity

log = logging.getLogger("service.ocp.alerts")

CONFLICT_KINDS: tuple[str, ...] = ("status", "amount", "type", "reversal", "lost")


class BankRecorder(Protocol):
    """Receives committed bank events (never raises)."""

    def conflict(self, kind: str) -> None: ...


class NullBankRecorder:
    def conflict(self, kind: str) -> None:
        pass


class BankAlerts:
    """Raises alerts about bank orders after the current transaction commits: one that rolls
    back (and is retried) alerts never or once."""

    def __init__(self, tx, recorder: BankRecorder):
        self._tx = tx
        self._recorder = recorder

    def conflict(self, kind: str, order: BankOrderEntity, source: str, said: str) -> None:
        """The bank's ``source`` (a notification, a query, an answer) said ``said`` about
        ``order`` and it conflicts with what the platform holds: nothing was changed."""
        if kind not in CONFLICT_KINDS:
            raise ValueError(f"unknown conflict kind {kind!r}")
        text = (
            f"ALERT bank order {order.order_no} ({order.order_type}, {order.status}): "
            f"{source} says {said}; conflict ({kind}) kept as evidence, nothing changed"
        )
        self._tx.after_commit(partial(log.error, "%s", text))
        self._tx.after_commit(partial(self._recorder.conflict, kind))

    def exhausted(self, item: BankOrderEntity, attempts: int) -> None:
        """A batch item FAILED ``attempts`` times under as many numbers: no more re-issues
        unless a person re-issues it (the business leg stays in progress, its money where it
        is)."""
        text = (
            f"ALERT bank item {item.order_no} ({item.order_type}, batch {item.batch_no}) "
            f"FAILED ({item.reason}) on attempt {attempts}: not re-issued, handed to "
            "reconciliation; an operator may re-issue it (reissueBankOrder)"
        )
        self._tx.after_commit(partial(log.error, "%s", text))

    def needs_a_person(self, order: BankOrderEntity, what: str) -> None:
        """The bank's final word on ``order`` leaves its business where only a person can
        take it further (``what`` says where; no personal data)."""
        text = f"ALERT bank order {order.order_no} ({order.order_type}, {order.status}): {what}"
        self._tx.after_commit(partial(log.error, "%s", text))

    def in_doubt(self, order: BankOrderEntity, age_seconds: int) -> None:
        text = (
            f"ALERT bank order {order.order_no} ({order.order_type}) still {order.status} "
            f"{age_seconds} s after it was created: handed to reconciliation"
        )
        self._tx.after_commit(partial(log.error, "%s", text))
