"""RedisCache's reads on each thread's own connection: answers never cross between threads,
and a connection Redis dropped, a script Redis forgot or a fork cost a read nothing."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest
import redis

from dao.cache import RedisCache

pytestmark = pytest.mark.redis


@pytest.fixture
def cache(redis_url: str, redis_prefix: str):
    cache = RedisCache(redis_url, prefix=redis_prefix)
    yield cache
    cache.close()


def test_threads_read_their_own_answers(cache: RedisCache) -> None:
    for n in range(8):
        cache.set(f"gen:{n}", f"g{n}", 60)
        cache.set(f"value:{n}@g{n}", f"value of {n}", 60)
    wrong: list[str] = []
    start = threading.Barrier(8)

    def read(n: int) -> None:
        start.wait()
        for _ in range(300):
            if cache.get(f"gen:{n}") != f"g{n}":
                wrong.append(f"get {n}")
            if cache.get_versioned(f"gen:{n}", f"value:{n}@") != (f"g{n}", f"value of {n}"):
                wrong.append(f"get_versioned {n}")

    threads = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_a_connection_redis_closed_is_replaced_without_failing_a_read(
    cache: RedisCache, redis_url: str
) -> None:
    cache.set("k", "v", 60)
    assert cache.get("k") == "v"
    _, connection = cache._own.connection
    host, port = connection._sock.getsockname()[:2]
    raw = redis.Redis.from_url(redis_url)
    try:
        assert raw.client_kill(f"{host}:{port}")  # Redis drops this thread's connection
    finally:
        raw.close()
    assert cache.get("k") == "v"  # through the client, which reconnects
    assert cache.get_versioned("k", "none@") == ("v", None)
    assert cache._own.connection[1] is not connection  # a new one for the next reads
    assert cache.get("k") == "v"


def test_a_script_redis_forgot_is_loaded_again(cache: RedisCache, redis_url: str) -> None:
    cache.set("gen", "g1", 60)
    cache.set("value@g1", "one", 60)
    assert cache.get_versioned("gen", "value@") == ("g1", "one")
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.script_flush()  # as after a restart of Redis: EVALSHA answers NOSCRIPT
    finally:
        raw.close()
    assert cache.get_versioned("gen", "value@") == ("g1", "one")
    assert cache.get_versioned("gen", "value@") == ("g1", "one")


def _read_in_child(cache: RedisCache, answers) -> None:
    read = (cache.get("k"), cache.get_versioned("gen", "value@"))
    pid, connection = cache._own.connection
    answers.put((read, pid == os.getpid(), connection._sock.getsockname()))


def test_a_forked_process_reads_on_a_connection_of_its_own(cache: RedisCache) -> None:
    cache.set("k", "v", 60)
    cache.set("gen", "g1", 60)
    cache.set("value@g1", "one", 60)
    assert cache.get("k") == "v"  # the parent's connection exists before the fork
    parents = cache._own.connection
    fork = multiprocessing.get_context("fork")
    answers = fork.Queue()
    child = fork.Process(target=_read_in_child, args=(cache, answers))
    child.start()
    read, own, address = answers.get(timeout=30)
    assert read == ("v", ("g1", "one"))
    assert own and address != parents[1]._sock.getsockname()  # not the parent's socket
    child.join(30)
    assert child.exitcode == 0
    assert cache._own.connection is parents  # the child's exit left it open
    assert cache.get("k") == "v"
    assert cache.get_versioned("gen", "value@") == ("g1", "one")
