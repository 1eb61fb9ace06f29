"""Cache.take: token buckets taken all or none, atomically, on both caches (Redis: one Lua
script on Redis's clock). Redis tests need P2P_TEST_REDIS_URL."""

from __future__ import annotations

import threading

import pytest
import redis

from dao.cache import Bucket, MemoryCache, RedisCache

PER_MINUTE = 1 / 60


def test_a_bucket_gives_its_burst_then_refuses_with_the_wait(shared_caches) -> None:
    cache = shared_caches()
    bucket = Bucket("app", 3, PER_MINUTE)
    taken = [cache.take([bucket]) for _ in range(4)]
    assert [t.allowed for t in taken] == [True, True, True, False]
    assert [round(t.levels[0]) for t in taken] == [2, 1, 0, 0]
    assert taken[-1].wait_seconds == pytest.approx(60, abs=1)
    assert all(t.wait_seconds == 0 for t in taken[:3])


def test_an_empty_bucket_takes_nothing_from_the_others(shared_caches) -> None:
    cache = shared_caches()
    app, operation = Bucket("app", 5, PER_MINUTE), Bucket("app:op", 1, PER_MINUTE)
    assert cache.take([app, operation]).allowed
    refused = cache.take([app, operation])
    assert not refused.allowed
    assert round(refused.levels[0]) == 4  # the app's token was not spent on a refusal
    other = cache.take([app, Bucket("app:other", 1, PER_MINUTE)])
    assert other.allowed and round(other.levels[0]) == 3


def test_threads_take_exactly_the_burst(shared_caches) -> None:
    caches = [shared_caches() for _ in range(4)]
    bucket = Bucket("race", 25, PER_MINUTE)
    allowed: list[list[bool]] = [[] for _ in caches]
    start = threading.Barrier(len(caches))

    def run(n: int) -> None:
        start.wait()
        allowed[n].extend(caches[n].take([bucket]).allowed for _ in range(20))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(caches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(x for a in allowed for x in a) == 25  # 80 tries, the burst exactly


def test_memory_buckets_refill_at_their_rate_up_to_the_burst(clock) -> None:
    cache = MemoryCache(prefix="p:", clock=clock)
    bucket = Bucket("b", 2, 0.5)  # a token every 2 seconds
    assert cache.take([bucket]).allowed and cache.take([bucket]).allowed
    assert not cache.take([bucket]).allowed
    clock.now += 2
    assert cache.take([bucket]).allowed
    assert not cache.take([bucket]).allowed
    clock.now += 3600
    assert cache.take([bucket]).levels == (1.0,)  # full again, never beyond the burst


@pytest.mark.redis
def test_redis_buckets_expire_once_full_again(redis_url: str, redis_prefix: str) -> None:
    cache, raw = RedisCache(redis_url, redis_prefix), redis.Redis.from_url(redis_url)
    try:
        cache.take([Bucket("b", 10, 2.0)])  # one token short: full again in half a second
        assert 0 < raw.pttl(f"{redis_prefix}b") <= 1500
        assert raw.hget(f"{redis_prefix}b", "tokens") == b"9"
    finally:
        raw.close()
        cache.close()
