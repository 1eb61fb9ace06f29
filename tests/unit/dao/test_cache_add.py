"""Cache.add, the atomic set-if-absent (a replay guard's nonce record), on both caches: it sets
only an absent or expired key, keeps the first value and TTL, and of many threads racing on
one key exactly one wins. Redis tests need P2P_TEST_REDIS_URL (redis://host:port/db)."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from dao.cache import MemoryCache, RedisCache


def test_add_sets_only_an_absent_key_and_keeps_the_first_value(shared_caches) -> None:
    cache = shared_caches()
    assert cache.add("nonce:a", "first", 60) is True
    assert cache.add("nonce:a", "second", 60) is False
    assert cache.get("nonce:a") == "first"
    assert cache.add("nonce:b", "other", 60) is True  # another key is another key
    cache.delete("nonce:a")
    assert cache.add("nonce:a", "again", 60) is True


def test_add_after_set_is_refused(shared_caches) -> None:
    cache = shared_caches()
    cache.set("k", "v", 60)
    assert cache.add("k", "w", 60) is False
    assert cache.get("k") == "v"


def test_memory_add_succeeds_again_once_the_key_expired(clock) -> None:
    cache = MemoryCache(prefix="p:", clock=clock)
    assert cache.add("n", "1", 10) is True
    clock.now += 9.9
    assert cache.add("n", "2", 10) is False  # a refused add does not extend the TTL
    clock.now += 0.1
    assert cache.add("n", "3", 10) is True
    assert cache.get("n") == "3"


@pytest.mark.redis
def test_redis_add_sets_the_ttl(redis_url: str) -> None:
    prefix = f"p2p-test-{uuid.uuid4().hex}:"
    cache, raw = RedisCache(redis_url, prefix), redis.Redis.from_url(redis_url)
    try:
        assert cache.add("n", "1", 600) is True
        assert 590_000 < raw.pttl(f"{prefix}n") <= 600_000
        assert cache.add("n", "2", 5) is False
        assert raw.pttl(f"{prefix}n") > 590_000  # the loser changed nothing
    finally:
        raw.delete(f"{prefix}n")
        raw.close()
        cache.close()


@pytest.mark.parametrize("round_", range(5))
def test_two_threads_racing_on_one_key_exactly_one_wins(shared_caches, round_: int) -> None:
    """Each thread has its own cache object (its own Redis connection, as two workers
    would) and both start at the same instant; over many keys exactly one add wins each."""
    keys = [f"race:{round_}:{i}" for i in range(200)]
    caches = [shared_caches(), shared_caches()]
    won: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def run(n: int) -> None:
        start.wait()
        for key in keys:
            if caches[n].add(key, f"thread-{n}", 60):
                won[n].append(key)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert sorted(won[0] + won[1]) == sorted(keys)  # every key won exactly once
    assert not set(won[0]) & set(won[1])
    for n in range(2):  # and the stored value is the winner's
        assert all(caches[0].get(key) == f"thread-{n}" for key in won[n])
