"""Cache.incr (an atomic failure counter with a TTL) and the token index sets
(add_to_set/set_members) on both caches. Redis tests need P2P_TEST_REDIS_URL."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from dao.cache import MemoryCache, RedisCache


def test_incr_counts_from_one_and_delete_starts_again(shared_caches) -> None:
    cache = shared_caches()
    assert [cache.incr("fails", 60) for _ in range(3)] == [1, 2, 3]
    assert cache.get("fails") == "3"
    assert cache.incr("other", 60) == 1
    cache.delete("fails")
    assert cache.incr("fails", 60) == 1


def test_threads_incrementing_one_key_lose_no_count(shared_caches) -> None:
    caches = [shared_caches() for _ in range(4)]
    seen: list[list[int]] = [[] for _ in caches]
    start = threading.Barrier(len(caches))

    def run(n: int) -> None:
        start.wait()
        seen[n].extend(caches[n].incr("race", 60) for _ in range(50))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(caches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(x for s in seen for x in s) == list(range(1, 201))  # each count once


def test_memory_incr_restarts_after_expiry_and_each_incr_renews_the_ttl(clock) -> None:
    cache = MemoryCache(prefix="p:", clock=clock)
    assert cache.incr("n", 10) == 1
    clock.now += 9
    assert cache.incr("n", 10) == 2  # renewed: 10 s from now
    clock.now += 9
    assert cache.incr("n", 10) == 3
    clock.now += 10
    assert cache.get("n") is None
    assert cache.incr("n", 10) == 1


@pytest.mark.redis
def test_redis_incr_sets_the_ttl_with_the_count(redis_url: str) -> None:
    prefix = f"p2p-test-{uuid.uuid4().hex}:"
    cache, raw = RedisCache(redis_url, prefix), redis.Redis.from_url(redis_url)
    try:
        assert cache.incr("n", 600) == 1
        assert 590_000 < raw.pttl(f"{prefix}n") <= 600_000
        raw.pexpire(f"{prefix}n", 1000)
        assert cache.incr("n", 600) == 2
        assert raw.pttl(f"{prefix}n") > 590_000  # renewed by the increment
    finally:
        raw.delete(f"{prefix}n")
        raw.close()
        cache.close()


def test_sets_collect_members_and_delete_removes_them(shared_caches) -> None:
    one, two = shared_caches(), shared_caches()
    assert one.set_members("idx") == frozenset()
    one.add_to_set("idx", "a", 60)
    two.add_to_set("idx", "b", 60)
    one.add_to_set("idx", "a", 60)
    assert one.set_members("idx") == two.set_members("idx") == {"a", "b"}
    two.delete("idx")
    assert one.set_members("idx") == frozenset()


def test_memory_set_expires_and_is_renewed_by_an_add(clock) -> None:
    cache = MemoryCache(clock=clock)
    cache.add_to_set("idx", "a", 10)
    clock.now += 9
    cache.add_to_set("idx", "b", 10)
    clock.now += 9
    assert cache.set_members("idx") == {"a", "b"}
    clock.now += 1
    assert cache.set_members("idx") == frozenset()


@pytest.mark.redis
def test_redis_set_has_the_ttl(redis_url: str) -> None:
    prefix = f"p2p-test-{uuid.uuid4().hex}:"
    cache, raw = RedisCache(redis_url, prefix), redis.Redis.from_url(redis_url)
    try:
        cache.add_to_set("idx", "a", 600)
        assert 590_000 < raw.pttl(f"{prefix}idx") <= 600_000
    finally:
        raw.delete(f"{prefix}idx")
        raw.close()
        cache.close()
