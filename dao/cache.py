"""The shared cache: Redis in production, an in-process one for the embedded default.

Both keep one interface, so the platform picks one by configuration (``cache.url``).
Values are strings; callers encode what they store.
"""

import threading
import time
from typing import Protocol

import redis


class Cache(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl_seconds: int) -> None: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> bool: ...


class MemoryCache:
    """A thread-safe in-process cache with expiry, for a single process."""

    def __init__(self, prefix: str = "", clock=time.monotonic):
        self._prefix = prefix
        self._clock = clock
        self._data: dict[str, tuple[str, float]] = {}
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

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        with self._lock:
            self._data[self._prefix + key] = (value, self._clock() + ttl_seconds)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(self._prefix + key, None)

    def ping(self) -> bool:
        return True


class RedisCache:
    """Redis through a connection pool; every worker process sees the same keys."""

    def __init__(self, url: str, prefix: str = ""):
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        self._prefix = prefix

    def get(self, key: str) -> str | None:
        return self._redis.get(self._prefix + key)

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._redis.set(self._prefix + key, value, ex=ttl_seconds)

    def delete(self, key: str) -> None:
        self._redis.delete(self._prefix + key)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._redis.close()


def create_cache(url: str, prefix: str) -> Cache:
    return RedisCache(url, prefix) if url else MemoryCache(prefix)
