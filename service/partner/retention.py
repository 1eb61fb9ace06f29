"""How long the partner API keeps what only serves a while: the Idempotency-Keys of writes
(a retry must come within ``partner.idempotency_key_days``; after that the same key is a new
request) and the callbacks delivered or given up, with their attempts and replays
(``partner.callback_retention_days``: as long as partners and operators may list and replay
them). Pending callbacks are never purged. The periodic job ``partner.purge`` deletes them in
batches, each its own short transaction, oldest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from dao.partner_callback import PartnerCallbackRepository
from dao.partner_member import PartnerMemberRepository
from service.jobs import job

log = logging.getLogger(__name__)

PURGE_JOB = "partner.purge"
#: A callback in these is finished: acknowledged, or its schedule run out.
FINISHED = ("ACKED", "EXPIRED")
#: Rows one transaction deletes at most.
BATCH = 500


@dataclass(frozen=True)
class RetentionPolicy:
    idempotency_key_days: int
    callback_days: int

    @classmethod
    def from_settings(cls, partner) -> RetentionPolicy:
        return cls(partner.idempotency_key_days, partner.callback_retention_days)


@dataclass(frozen=True)
class PurgedVo:
    idempotency_keys: int
    callbacks: int


class PartnerRetention:
    def __init__(self, tx, clock, policy: RetentionPolicy):
        self.tx = tx
        self._clock = clock
        self._policy = policy
        self._requests = PartnerMemberRepository(tx.session)
        self._callbacks = PartnerCallbackRepository(tx.session)

    @job(PURGE_JOB)
    def purge(self) -> PurgedVo:
        """Delete what is older than its retention (module docstring); how much."""
        now = self._clock()
        keys_before = now - timedelta(days=self._policy.idempotency_key_days)
        callbacks_before = now - timedelta(days=self._policy.callback_days)
        keys = self._drain(lambda: self._requests.purge_requests(keys_before, BATCH))
        callbacks = self._drain(
            lambda: self._callbacks.purge_finished(FINISHED, callbacks_before, BATCH)
        )
        if keys or callbacks:
            log.info("partner purge: %d idempotency keys, %d callbacks deleted", keys, callbacks)
        return PurgedVo(keys, callbacks)

    def _drain(self, batch) -> int:
        total = 0
        while deleted := self.tx.run(batch):
            total += deleted
        return total
