"""What the job workers' metrics read from the database at each scrape: the outbox's backlog
and the bank orders in doubt. Each read is one short read-only transaction over an index, so
a scrape every few seconds costs the database nothing worth counting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dao.ocp import BankOrderRepository
from dao.outbox import OutboxRepository
from service.transaction import transactional


@dataclass(frozen=True)
class OutboxBacklogVo:
    waiting: int  # rows not handed to the job engine yet, still being tried
    oldest_due_seconds: float  # how long ago the earliest waiting row became due; 0: none due
    given_up: int  # rows the sweeper gave up on (`p2p outbox`)


class WorkMonitor:
    """Read-only questions about work waiting in the database."""

    def __init__(self, tx, clock: Callable[[], datetime]):
        self.tx = tx
        self._clock = clock
        self._outbox = OutboxRepository(tx.session)
        self._orders = BankOrderRepository(tx.session)

    @transactional(read_only=True)
    def outbox_backlog(self) -> OutboxBacklogVo:
        waiting, oldest, given_up = self._outbox.backlog()
        late = 0.0 if oldest is None else (self._clock() - oldest).total_seconds()
        return OutboxBacklogVo(waiting, max(0.0, late), given_up)

    @transactional(read_only=True)
    def bank_orders_in_doubt(self) -> int:
        """Open bank orders handed to reconciliation (p2p_bank_orders_in_doubt)."""
        return self._orders.count_in_doubt()
