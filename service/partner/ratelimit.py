"""Rate limits of partner calls: token buckets in the shared cache (README "Signed partner
calls").

Each app has a bucket of ``burst`` tokens refilled at ``ratePerMinute`` a minute (its row in
partner_app), and each of its operations that declares a limit has one more, of that app and
that operation alone. A call takes a token from both or, when one is empty, from neither
(PARTNER_RATE_LIMITED, with the seconds until both hold one again). With Redis the buckets
are hashes updated by one Lua script on Redis's clock, so every worker and process spends
the same tokens; without it (the embedded default, one process) they are in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dao.cache import Bucket, Cache, CacheError
from service import errors
from service.errors import BusinessError
from service.partner.auth import PartnerPrincipal


@dataclass(frozen=True)
class RateState:
    """Where the app's bucket stands after a call: what the RateLimit headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the app's bucket is full again
    retry_after: int | None  # when refused: seconds until a call would pass

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class PartnerRateLimiter:
    def __init__(self, cache: Cache):
        self._cache = cache

    def take(
        self,
        principal: PartnerPrincipal,
        operation: str,
        operation_limit: tuple[int, int] | None,
    ) -> RateState:
        """Take a token for one call of ``operation`` (its limit: per minute, burst)."""
        app = Bucket(
            f"partner-rate:{principal.app_id}", principal.burst, principal.rate_per_minute / 60
        )
        buckets = [app]
        if operation_limit is not None:
            per_minute, burst = operation_limit
            key = f"partner-rate:{principal.app_id}:{operation}"
            buckets.append(Bucket(key, burst, per_minute / 60))
        try:
            taken = self._cache.take(buckets)
        except CacheError:  # fail closed, as the nonce check does
            raise BusinessError(errors.SERVICE_UNAVAILABLE) from None
        level = taken.levels[0]
        return RateState(
            allowed=taken.allowed,
            limit=app.capacity,
            remaining=max(0, math.floor(level)),
            reset_seconds=math.ceil((app.capacity - level) / app.per_second),
            retry_after=None if taken.allowed else max(1, math.ceil(taken.wait_seconds)),
        )
