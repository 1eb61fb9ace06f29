"""The shared cache: MemoryCache and RedisCache keep one behaviour (get, set, TTL, delete,
key prefix). Redis tests need P2P_TEST_REDIS_URL (redis://host:port/db)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from dao.cache import Cache, MemoryCache, RedisCache, create_cache


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_cache(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Cache]]:
    """Factory: a cache of one kind whose keys live under a unique base prefix plus ``sub``."""
    opened: list[RedisCache] = []
    if request.param == "memory":
        yield lambda sub="": MemoryCache(prefix=f"base:{sub}")
        return
    url = request.getfixturevalue("redis_url")
    base = request.getfixturevalue("redis_prefix")

    def factory(sub: str = "") -> Cache:
        cache = RedisCache(url, prefix=base + sub)
        opened.append(cache)
        return cache

    yield factory
    for cache in opened:
        cache.close()


def test_set_get_overwrite(make_cache) -> None:
    cache = make_cache("")
    assert cache.get("k") is None
    cache.set("k", "v1", 60)
    assert cache.get("k") == "v1"
    cache.set("k", "值2", 60)
    assert cache.get("k") == "值2"
    assert cache.get("other") is None
    assert cache.ping() is True


def test_delete(make_cache) -> None:
    cache = make_cache("")
    cache.set("a", "1", 60)
    cache.set("b", "2", 60)
    cache.delete("a")
    assert cache.get("a") is None
    assert cache.get("b") == "2"
    cache.delete("never-set")  # no error


def test_prefixes_keep_keys_apart(make_cache) -> None:
    first, second = make_cache("one:"), make_cache("two:")
    first.set("token:x", "first", 60)
    second.set("token:x", "second", 60)
    assert first.get("token:x") == "first"
    assert second.get("token:x") == "second"
    second.delete("token:x")
    assert first.get("token:x") == "first"


def test_memory_cache_expires_at_its_ttl(clock) -> None:
    cache = MemoryCache(prefix="p:", clock=clock)
    cache.set("k", "v", 30)
    clock.advance(29.9)
    assert cache.get("k") == "v"
    clock.advance(0.1)
    assert cache.get("k") is None
    cache.set("k", "again", 5)  # an expired key can be set anew
    assert cache.get("k") == "again"


def test_memory_cache_ttl_restarts_on_set(clock) -> None:
    cache = MemoryCache(clock=clock)
    cache.set("k", "v", 10)
    clock.advance(8)
    cache.set("k", "v2", 10)
    clock.advance(8)
    assert cache.get("k") == "v2"


@pytest.mark.redis
def test_redis_cache_sets_the_ttl_and_expires(redis_url: str, redis_prefix: str) -> None:
    cache = RedisCache(redis_url, prefix=redis_prefix)
    raw = redis.Redis.from_url(redis_url)
    try:
        cache.set("long", "v", 3600)
        assert 3500_000 < raw.pttl(f"{redis_prefix}long") <= 3600_000
        cache.set("short", "v", 1)
        assert cache.get("short") == "v"
        deadline = time.monotonic() + 10
        while cache.get("short") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache.get("short") is None  # gone: Redis expired it
        assert cache.get("long") == "v"
    finally:
        raw.close()
        cache.close()


@pytest.mark.redis
def test_redis_cache_is_shared_between_instances(redis_url: str, redis_prefix: str) -> None:
    one, two = RedisCache(redis_url, redis_prefix), RedisCache(redis_url, redis_prefix)
    try:
        one.set("shared", "yes", 60)
        assert two.get("shared") == "yes"
        two.delete("shared")
        assert one.get("shared") is None
    finally:
        one.close()
        two.close()


def test_redis_ping_is_false_when_unreachable() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0")
    try:
        assert cache.ping() is False
    finally:
        cache.close()


def test_create_cache_picks_by_url() -> None:
    assert isinstance(create_cache("", "p:"), MemoryCache)
    cache = create_cache("redis://127.0.0.1:1/0", "p:")
    assert isinstance(cache, RedisCache)
    cache.close()


def test_get_versioned_reads_the_generation_and_the_value_under_it(make_cache) -> None:
    cache = make_cache("v:")
    assert cache.get_versioned("gen:loan:7", "loan:t:7@") == (None, None)
    cache.set("loan:t:7@g1", "old", 60)  # a value with no generation naming it is not read
    assert cache.get_versioned("gen:loan:7", "loan:t:7@") == (None, None)
    cache.set("gen:loan:7", "g2", 60)
    assert cache.get_versioned("gen:loan:7", "loan:t:7@") == ("g2", None)
    cache.set("loan:t:7@g2", '{"x":"周"}', 60)
    assert cache.get_versioned("gen:loan:7", "loan:t:7@") == ("g2", '{"x":"周"}')
    other = make_cache("w:")  # the prefix applies to both keys
    assert other.get_versioned("gen:loan:7", "loan:t:7@") == (None, None)
