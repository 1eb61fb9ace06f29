"""The shared cache: Redis in production, an in-process one for the embedded default.

Both keep one interface, so the platform picks one by configuration (``cache.url``).
Values are strings; callers encode what they store.

A dead Redis costs little: RedisCache's circuit breaker fails every call at once for
``breaker_seconds`` after a connection error or timeout (raising CacheUnavailable), then lets
one call through to probe; redis-py reconnects by itself when Redis is back.
"""

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import redis

T = TypeVar("T")


@dataclass(frozen=True)
class Bucket:
    """A token bucket: at most ``capacity`` tokens, refilled at ``per_second`` tokens a
    second; a call takes one."""

    key: str
    capacity: int
    per_second: float


@dataclass(frozen=True)
class Taken:
    """What ``take`` decided: whether every bucket gave its token (then each gave one, else
    none did), the tokens left in each after that, in the order asked, and, when refused,
    the seconds until every bucket holds a token again."""

    allowed: bool
    levels: tuple[float, ...]
    wait_seconds: float


class Cache(Protocol):
    def get(self, key: str) -> str | None: ...
    def get_many(self, keys: list[str]) -> list[str | None]:
        """The values of `keys` in one round trip (None where absent)."""
        ...

    def get_versioned(self, generation_key: str, prefix: str) -> tuple[str | None, str | None]:
        """The generation at `generation_key` and, when there is one, the value at `prefix`
        followed by that generation, in one round trip: (None, None) without a generation."""
        ...

    def get_versioned_many(
        self, generation_keys: Sequence[str], prefixes: Sequence[str]
    ) -> list[tuple[str | None, str | None]]:
        """:meth:`get_versioned` of each pair of `generation_keys` and `prefixes`, in order,
        in one round trip."""
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

    def take(self, buckets: Sequence[Bucket]) -> Taken:
        """Take one token from every bucket, or from none when one is empty, atomically across
        every worker (a rate limit that holds whichever process answers)."""
        ...

    def delete(self, key: str) -> None: ...
    def ping(self) -> bool: ...


def _refill(bucket: Bucket, level: float | None, at: float | None, now: float) -> float:
    """A bucket's tokens at ``now``: full when never used (or expired)."""
    if level is None or at is None:
        return float(bucket.capacity)
    return min(float(bucket.capacity), level + max(0.0, now - at) * bucket.per_second)


def _decide(buckets: Sequence[Bucket], levels: list[float]) -> Taken:
    allowed = all(level >= 1 for level in levels)
    wait = max(
        ((1 - level) / b.per_second for b, level in zip(buckets, levels, strict=True)),
        default=0.0,
    )
    after = tuple(level - 1 if allowed else level for level in levels)
    return Taken(allowed, after, 0.0 if allowed else max(wait, 0.0))


class MemoryCache:
    """A thread-safe in-process cache with expiry, for a single process."""

    def __init__(self, prefix: str = "", clock=time.monotonic):
        self._prefix = prefix
        self._clock = clock
        self._data: dict[str, tuple[str, float]] = {}
        self._sets: dict[str, tuple[set[str], float]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # key: (tokens, when counted)
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

    def get_versioned_many(
        self, generation_keys: Sequence[str], prefixes: Sequence[str]
    ) -> list[tuple[str | None, str | None]]:
        return [self.get_versioned(k, p) for k, p in zip(generation_keys, prefixes, strict=True)]

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

    def take(self, buckets: Sequence[Bucket]) -> Taken:
        with self._lock:
            now = self._clock()
            levels = []
            for b in buckets:
                item = self._buckets.get(self._prefix + b.key)
                levels.append(_refill(b, *(item or (None, None)), now))
            taken = _decide(buckets, levels)
            for b, level in zip(buckets, taken.levels, strict=True):
                self._buckets[self._prefix + b.key] = (level, now)
            return taken

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(self._prefix + key, None)
            self._sets.pop(self._prefix + key, None)

    def ping(self) -> bool:
        return True


#: Token buckets in one script, so Redis decides every worker's take atomically, on its own
#: clock (TIME), never the workers'. KEYS: the buckets (hashes of tokens and the time they
#: were counted at); ARGV: each bucket's capacity and tokens a second. Answers whether the
#: tokens were taken, the wait when not, and each bucket's tokens after; as strings, since
#: Redis truncates a Lua number to an integer.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels, allowed, wait = {}, 1, 0
for i = 1, #KEYS do
  local cap, rate = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local level = cap
  if v[1] and v[2] then
    level = math.min(cap, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * rate)
  end
  levels[i] = level
  if level < 1 then
    allowed = 0
    wait = math.max(wait, (1 - level) / rate)
  end
end
local answer = {allowed, tostring(wait)}
for i = 1, #KEYS do
  local cap, rate = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local level = levels[i] - allowed
  redis.call('HSET', KEYS[i], 'tokens', tostring(level), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil((cap - level) / rate * 1000) + 1000)
  answer[i + 2] = tostring(level)
end
return answer
"""

#: get_versioned in Redis: the value's key is made from the generation read in the same script,
#: so it cannot be declared in KEYS; the platform's Redis is one server (no cluster), where a
#: script may read any key.
_GET_VERSIONED = """
local generation = redis.call('GET', KEYS[1])
if not generation then return {false, false} end
return {generation, redis.call('GET', ARGV[1] .. generation)}
"""


#: get_versioned_many in Redis: each generation key's generation and the value under it, a
#: pair per key, in KEYS' order (ARGV: each key's value prefix); false (nil) where absent, so
#: the table has no holes.
_GET_VERSIONED_MANY = """
local found = {}
for i = 1, #KEYS do
  local generation = redis.call('GET', KEYS[i])
  found[2 * i - 1] = generation
  found[2 * i] = generation and redis.call('GET', ARGV[i] .. generation)
end
return found
"""


class RedisCache:
    """Redis through a connection pool; every worker process sees the same keys.

    The reads made on every call (``get``, ``get_versioned``) go over a connection of the
    calling thread's own, taken from the pool once: one round trip without what the client
    does around each command (the pool's checkout and return, its retry wrapper, its
    instrumentation), which cost as much CPU as the round trip itself. A read that finds that
    connection broken drops it and goes through the client, which reconnects and retries as
    it does for every other command.
    """

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
        self._take = self._redis.register_script(_TAKE)
        self._get_versioned = self._redis.register_script(_GET_VERSIONED)  # EVALSHA
        self._get_versioned_many = self._redis.register_script(_GET_VERSIONED_MANY)
        self._own = threading.local()  # per thread: (pid, connection) for the reads

    def get(self, key: str) -> str | None:
        key = self._prefix + key
        found = self._breaker.call(self._read, lambda: self._redis.get(key), "GET", key)
        # decode_responses: Redis's answers are str, where redis-py's types allow bytes too.
        return cast(str | None, found)

    def _read(self, through_client: Callable[[], T], *command: str | int) -> T:
        """``command``'s answer over this thread's own connection, or ``through_client()``'s
        when that connection is broken (then dropped) or Redis does not know the script
        (EVALSHA before the client has loaded it)."""
        pid = os.getpid()
        own = getattr(self._own, "connection", None)
        if own is None or own[0] != pid:  # none yet, or one made before this process forked
            own = self._own.connection = (pid, self._redis.connection_pool.get_connection())
        connection = own[1]
        try:
            connection.send_command(*command)
            return cast(T, connection.read_response())
        except redis.exceptions.NoScriptError:
            return through_client()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            # Its state is unknown (an answer may be half read): never used again.
            connection.disconnect()
            self._own.connection = None
            return through_client()

    def get_versioned(self, generation_key: str, prefix: str) -> tuple[str | None, str | None]:
        key, arg = self._prefix + generation_key, self._prefix + prefix
        script = self._get_versioned
        generation, value = self._breaker.call(
            self._read,
            lambda: script(keys=[key], args=[arg]),
            "EVALSHA",
            script.sha,
            1,
            key,
            arg,
        )
        return generation, value

    def get_versioned_many(
        self, generation_keys: Sequence[str], prefixes: Sequence[str]
    ) -> list[tuple[str | None, str | None]]:
        if len(generation_keys) != len(prefixes):
            raise ValueError("one value prefix a generation key")
        if not generation_keys:
            return []
        keys = [self._prefix + k for k in generation_keys]
        args = [self._prefix + p for p in prefixes]
        script = self._get_versioned_many
        found = self._breaker.call(
            self._read,
            lambda: script(keys=keys, args=args),
            "EVALSHA",
            script.sha,
            len(keys),
            *keys,
            *args,
        )
        # Lua's false (no such key) is answered as nil: None.
        return [(found[2 * i], found[2 * i + 1]) for i in range(len(keys))]

    def get_many(self, keys: list[str]) -> list[str | None]:
        found = self._breaker.call(self._redis.mget, [self._prefix + key for key in keys])
        return cast(list[str | None], found)

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
        return frozenset(
            cast(set[str], self._breaker.call(self._redis.smembers, self._prefix + key))
        )

    def _transaction(self, command: str, key: str, ttl_seconds: int, *args: str) -> list:
        pipe = self._redis.pipeline(transaction=True)
        getattr(pipe, command)(self._prefix + key, *args)
        pipe.expire(self._prefix + key, ttl_seconds)
        return pipe.execute()

    def take(self, buckets: Sequence[Bucket]) -> Taken:
        keys = [self._prefix + b.key for b in buckets]
        args = [str(x) for b in buckets for x in (b.capacity, repr(float(b.per_second)))]
        allowed, wait, *levels = self._breaker.call(self._take, keys=keys, args=args)
        return Taken(bool(int(allowed)), tuple(map(float, levels)), float(wait))

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
