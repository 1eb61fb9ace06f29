"""The shared cache: Redis in production, an in-process one for the embedded default.

Both keep one interface, so the platform picks one by configuration (``cache.url``).
Values are strings; callers encode what they store.

A dead Redis costs little: RedisCache's circuit breaker fails every call at once for
``breaker_seconds`` after a connection error or timeout (raising CacheUnavailable), then lets
one call through to probe; redis-py reconnects by itself when Redis is back.
"""

import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import redis

T = TypeVar("T")


class Cache(Protocol):
    def get(self, key: str) -> str | None: ...
    def get_many(self, keys: list[str]) -> list[str | None]:
        """The values of `keys` in one round trip (None where absent)."""
        ...

    def get_versioned(self, generation_key: str, prefix: str) -> tuple[str | None, str | None]:
        """The generation at `generation_key` and, when there is one, the value at `prefix`
        followed by that generation, in one round trip: (None, None) without a generation."""
        ...

    def set(self, key: str, value: str, ttl_seconds: int) -> None: ...
    def add(self, key: str, value: str, ttl_seconds: int) -> bool:
        """Set `key` only if it is absent (or expired), atomically across every worker;
        True when this call set it. One caller wins a race: a replay guard, a lock."""
        ...

    def incr(self, key: str, ttl_seconds: int) -> int:
        """Add 1 to the integer at `key` (0 when absent or expired) and give it `ttl_seconds`
        to live from now, atomically across every worker; the new count. A failure counter."""
        ...

    def add_to_set(self, key: str, member: str, ttl_seconds: int) -> None:
        """Put `member` in the set at `key` and give the set `ttl_seconds` to live from now."""
        ...

    def set_members(self, key: str) -> frozenset[str]:
        """The members of the set at `key` (empty when absent or expired)."""
        ...

    def delete(self, key: str) -> None: ...
    def ping(self) -> bool: ...


class MemoryCache:
    """A thread-safe in-process cache with expiry, for a single process."""

    def __init__(self, prefix: str = "", clock=time.monotonic):
        self._prefix = prefix
        self._clock = clock
        self._data: dict[str, tuple[str, float]] = {}
        self._sets: dict[str, tuple[set[str], float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        key = self._prefix + key
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[1] <= self._clock():
                del self._data[key]
                return None
            return item[0]

    def get_many(self, keys: list[str]) -> list[str | None]:
        return [self.get(key) for key in keys]

    def get_versioned(self, generation_key: str, prefix: str) -> tuple[str | None, str | None]:
        generation = self.get(generation_key)
        return (None, None) if generation is None else (generation, self.get(prefix + generation))

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        with self._lock:
            self._data[self._prefix + key] = (value, self._clock() + ttl_seconds)

    def add(self, key: str, value: str, ttl_seconds: int) -> bool:
        key = self._prefix + key
        with self._lock:
            now = self._clock()
            item = self._data.get(key)
            if item is not None and item[1] > now:
                return False
            self._data[key] = (value, now + ttl_seconds)
            return True

    def incr(self, key: str, ttl_seconds: int) -> int:
        key = self._prefix + key
        with self._lock:
            now = self._clock()
            item = self._data.get(key)
            count = int(item[0]) + 1 if item is not None and item[1] > now else 1
            self._data[key] = (str(count), now + ttl_seconds)
            return count

    def add_to_set(self, key: str, member: str, ttl_seconds: int) -> None:
        key = self._prefix + key
        with self._lock:
            now = self._clock()
            item = self._sets.get(key)
            members = item[0] if item is not None and item[1] > now else set()
            members.add(member)
            self._sets[key] = (members, now + ttl_seconds)

    def set_members(self, key: str) -> frozenset[str]:
        key = self._prefix + key
        with self._lock:
            item = self._sets.get(key)
            if item is None or item[1] <= self._clock():
                self._sets.pop(key, None)
                return frozenset()
            return frozenset(item[0])

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(self._prefix + key, None)
            self._sets.pop(self._prefix + key, None)

    def ping(self) -> bool:
        return True


#: get_versioned in Redis: the value's key is made from the generation read in the same script,
#: so it cannot be declared in KEYS; the platform's Redis is one server (no cluster), where a
#: script may read any key.
_GET_VERSIONED = """
local generation = redis.call('GET', KEYS[1])
if not generation then return {false, false} end
return {generation, redis.call('GET', ARGV[1] .. generation)}
"""


class RedisCache:
    """Redis through a connection pool; every worker process sees the same keys."""

    def __init__(self, url: str, prefix: str = "", breaker_seconds: float = 5.0):
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        self._prefix = prefix
        self._breaker = CircuitBreaker(breaker_seconds)
        self._get_versioned = self._redis.register_script(_GET_VERSIONED)  # EVALSHA

    def get(self, key: str) -> str | None:
        return self._breaker.call(self._redis.get, self._prefix + key)

    def get_versioned(self, generation_key: str, prefix: str) -> tuple[str | None, str | None]:
        keys, args = [self._prefix + generation_key], [self._prefix + prefix]
        generation, value = self._breaker.call(self._get_versioned, keys=keys, args=args)
        return generation, value

    def get_many(self, keys: list[str]) -> list[str | None]:
        return self._breaker.call(self._redis.mget, [self._prefix + key for key in keys])

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._breaker.call(self._redis.set, self._prefix + key, value, ex=ttl_seconds)

    def add(self, key: str, value: str, ttl_seconds: int) -> bool:
        # SET NX EX: one command, so Redis decides the race between workers.
        return bool(
            self._breaker.call(self._redis.set, self._prefix + key, value, ex=ttl_seconds, nx=True)
        )

    def incr(self, key: str, ttl_seconds: int) -> int:
        # INCR and EXPIRE in one MULTI/EXEC: no worker sees a count without its TTL.
        return int(self._breaker.call(self._transaction, "incr", key, ttl_seconds)[0])

    def add_to_set(self, key: str, member: str, ttl_seconds: int) -> None:
        self._breaker.call(self._transaction, "sadd", key, ttl_seconds, member)

    def set_members(self, key: str) -> frozenset[str]:
        return frozenset(self._breaker.call(self._redis.smembers, self._prefix + key))

    def _transaction(self, command: str, key: str, ttl_seconds: int, *args: str) -> list:
        pipe = self._redis.pipeline(transaction=True)
        getattr(pipe, command)(self._prefix + key, *args)
        pipe.expire(self._prefix + key, ttl_seconds)
        return pipe.execute()

    def delete(self, key: str) -> None:
        self._breaker.call(self._redis.delete, self._prefix + key)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._redis.close()


#: What a cache call raises when the cache cannot answer (Redis down, timed out, breaker open).
CacheError = redis.RedisError


class CacheUnavailable(redis.ConnectionError):
    """Redis failed moments ago and the circuit breaker is open: not tried at all."""


class CircuitBreaker:
    """Skips Redis for `open_seconds` after a connection error or timeout, so a dead or
    unreachable Redis adds nothing to a call (rather than a connect timeout each time).
    Then one call probes: success closes the breaker, failure opens it again."""

    def __init__(self, open_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._probing = False

    def call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        with self._lock:
            probe = self._open_until is not None
            if probe and (self._probing or self._clock() < self._open_until):
                raise CacheUnavailable("cache unreachable moments ago; not tried")
            self._probing = probe
        failed = True
        try:
            result = fn(*args, **kwargs)
            failed = False
            return result
        except (redis.ConnectionError, redis.TimeoutError):
            with self._lock:
                self._open_until = self._clock() + self._open_seconds
            raise
        finally:
            if probe:
                with self._lock:
                    self._probing = False
                    if not failed:
                        self._open_until = None


def create_cache(url: str, prefix: str, breaker_seconds: float = 5.0) -> Cache:
    return RedisCache(url, prefix, breaker_seconds) if url else MemoryCache(prefix)
