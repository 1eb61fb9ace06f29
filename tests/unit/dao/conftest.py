"""Fixtures for dao unit tests: an in-memory SQLite table using the exact types, a clock the
test moves, and caches of both kinds (Redis tests need P2P_TEST_REDIS_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy import Column, Integer, MetaData, Table, create_engine
from sqlalchemy.engine import Connection

from dao.cache import Cache, MemoryCache, RedisCache
from dao.types import FixedPoint, Money, UtcDateTime


@pytest.fixture
def typed_table() -> Table:
    """A throwaway table with one column of each exact type."""
    return Table(
        "typed",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("money", Money()),
        Column("rate", FixedPoint(4)),
        Column("at", UtcDateTime()),
    )


@pytest.fixture
def sqlite_conn(typed_table: Table) -> Iterator[Connection]:
    """A connection to a fresh in-memory SQLite database holding ``typed_table``."""
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as connection:
            typed_table.metadata.create_all(connection)
            yield connection
    finally:
        engine.dispose()


REDIS_URL_VARIABLE = "P2P_TEST_REDIS_URL"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_URL_VARIABLE)
    if not url:
        pytest.skip(f"Redis tests need {REDIS_URL_VARIABLE}=redis://host:port/db")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A random key prefix for one test; every key under it is deleted afterwards."""
    prefix = f"p2p-test-{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def shared_caches(request: pytest.FixtureRequest) -> Iterator[Callable[[], Cache]]:
    """Factory: caches of one kind sharing one fresh key prefix (several 'workers')."""
    if request.param == "memory":
        shared = MemoryCache(prefix="shared:")
        yield lambda: shared  # one process: its threads share one MemoryCache
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    opened: list[RedisCache] = []

    def factory() -> Cache:
        cache = RedisCache(url, prefix=prefix)
        opened.append(cache)
        return cache

    yield factory
    for cache in opened:
        cache.close()
