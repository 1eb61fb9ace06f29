"""@cached and CacheAside on the in-process cache: exact values, keys, eviction after commit
only, the reader/writer race, the stampede guard, TTLs from settings, a failing cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

import pytest
import redis

from dao.cache import CacheUnavailable, CircuitBreaker, MemoryCache
from service.caching import CacheAside, Region, VoCodec, cached, codec_for
from service.paging import PageVo


@dataclass(frozen=True)
class LineVo:
    amount: Decimal
    due: dt.date


@dataclass(frozen=True)
class EveryTypeVo:
    id: int
    name: str
    flag: bool
    amount: Decimal
    rate: Decimal
    at: dt.datetime
    naive: dt.datetime
    day: dt.date
    nothing: Decimal | None
    something: dt.datetime | None
    lines: tuple[LineVo, ...]


def every_type() -> EveryTypeVo:
    return EveryTypeVo(
        id=2**53 + 1,
        name='周转 "借款"\n',
        flag=False,
        amount=Decimal("100.00"),
        rate=Decimal("-0.00012345678901234567890"),
        at=dt.datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=dt.UTC),
        naive=dt.datetime(2026, 3, 1, 8, 30),
        day=dt.date(2026, 2, 28),
        nothing=None,
        something=dt.datetime(2026, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        lines=(LineVo(Decimal("1E+3"), dt.date(2026, 4, 1)), LineVo(Decimal("0.10"), dt.date.max)),
    )


def test_codec_round_trips_every_field_type_exactly() -> None:
    codec = VoCodec(EveryTypeVo)
    value = every_type()
    back = codec.decode(codec.encode(value))
    assert back == value
    for name in vars(value):  # equal is not enough: 100.00 == 100, but must stay 100.00
        assert repr(getattr(back, name)) == repr(getattr(value, name)), name
    assert type(back.lines) is tuple
    assert '"100.00"' in codec.encode(value)  # a string, never a JSON number


def test_codec_round_trips_a_generic_page() -> None:
    codec = VoCodec(PageVo[LineVo])
    page = PageVo((LineVo(Decimal("5.50"), dt.date(2026, 1, 31)),), 41, 3, 20)
    assert codec.decode(codec.encode(page)) == page
    assert codec.decode(codec.encode(PageVo((), 0, 1, 20))) == PageVo((), 0, 1, 20)


def test_codec_refuses_floats_and_wrong_types() -> None:
    @dataclass(frozen=True)
    class FloatVo:
        x: float

    with pytest.raises(TypeError, match="exactly"):
        VoCodec(FloatVo)
    codec = VoCodec(LineVo)
    with pytest.raises(TypeError):
        codec.encode(LineVo(1.5, dt.date(2026, 1, 1)))  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a datetime where the type says date
        codec.encode(LineVo(Decimal(1), dt.datetime(2026, 1, 1)))
    with pytest.raises((TypeError, ValueError)):
        codec.decode('{"amount": 1.5, "due": "2026-01-01"}')
    with pytest.raises(ValueError):
        codec.decode('{"amount": "1", "due": "2026-01-01", "extra": 1}')


def test_the_codec_tag_follows_the_shape() -> None:
    @dataclass(frozen=True)
    class LineVo2:
        amount: Decimal
        due: dt.datetime

    assert VoCodec(LineVo).tag == VoCodec(LineVo).tag
    assert VoCodec(LineVo).tag != VoCodec(LineVo2).tag


def test_a_text_read_again_is_decoded_once_and_its_value_shared() -> None:
    codec = VoCodec(EveryTypeVo)
    text = codec.encode(every_type())
    first = codec.decode(text)
    again = codec.decode("".join(list(text)))  # an equal text, another object (as from Redis)
    other = codec.decode(codec.encode(dataclasses.replace(every_type(), id=7)))

    assert again is first
    assert other is not first and other.id == 7 and first.id == 2**53 + 1
    with pytest.raises(ValueError):  # a text that does not decode still fails, every time
        codec.decode(text.replace('"id"', '"ident"'))
    with pytest.raises(ValueError):
        codec.decode(text.replace('"id"', '"ident"'))


KEYED = Region("keyed", ttl=lambda s: 60)


class Keyed:
    """Methods of every shape: @cached gets their arguments by name, defaults applied."""

    def __init__(self) -> None:
        self.cache_aside = CacheAside(None, None, FakeTx())
        self.seen: list[dict] = []

    def _key(self, **arguments):
        self.seen.append(arguments)
        return 0

    @cached(KEYED, key=_key)
    def plain(self, a: int, b: int = 2, *, c: int = 3) -> LineVo:
        return LineVo(Decimal(a + b + c), dt.date(2026, 1, 1))

    @cached(KEYED, key=_key)
    def star(self, a: int, *rest: int, **extra: int) -> LineVo:
        return LineVo(Decimal(a + sum(rest) + sum(extra.values())), dt.date(2026, 1, 1))


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((1,), {}, {"a": 1, "b": 2, "c": 3}),
        ((1, 5), {}, {"a": 1, "b": 5, "c": 3}),
        ((), {"a": 1, "c": 9}, {"a": 1, "b": 2, "c": 9}),
        ((1,), {"b": 4, "c": 9}, {"a": 1, "b": 4, "c": 9}),
    ],
)
def test_cached_gets_every_argument_by_name_with_defaults(args, kwargs, expected) -> None:
    k = Keyed()
    assert k.plain(*args, **kwargs).amount == sum(expected.values())
    assert k.seen == [expected]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, 3), {}), ((1,), {"a": 1}), ((1,), {"d": 1}), ((), {"b": 1})],
)
def test_a_wrong_call_of_a_cached_method_fails_as_the_method_would(args, kwargs) -> None:
    k = Keyed()
    with pytest.raises(TypeError):
        k.plain(*args, **kwargs)
    assert k.seen == []


def test_a_method_with_star_arguments_is_bound_by_its_signature() -> None:
    k = Keyed()
    assert k.star(1, 2, 3, x=4).amount == 10
    assert k.seen == [{"a": 1, "rest": (2, 3), "extra": {"x": 4}}]


# --- a service over a fake database ------------------------------------------------------


class FakeTx:
    """in_transaction and after_commit as TransactionManager has them; `scope()` runs a
    function 'in a transaction' that commits (hooks run) or raises (hooks dropped)."""

    def __init__(self) -> None:
        self.hooks: list | None = None

    def in_transaction(self) -> bool:
        return self.hooks is not None

    def after_commit(self, fn) -> None:
        if self.hooks is None:
            fn()
        else:
            self.hooks.append(fn)

    def scope(self, fn):
        self.hooks = []
        try:
            result = fn()
        except BaseException:
            self.hooks = None
            raise
        hooks, self.hooks = self.hooks, None
        for hook in hooks:
            hook()
        return result


ITEM = Region("item", ttl=lambda s: s.cache.item_ttl)
ITEMS = Region("items", ttl=lambda s: s.cache.item_ttl, shared_generation=True)


class ItemService:
    """A service whose 'database' is a dict; every read is counted."""

    def __init__(self, cache, settings, tx) -> None:
        self.tx = tx
        self.cache_aside = CacheAside(cache, settings, tx, wait_seconds=2.0)
        self.rows: dict[int, Decimal] = {1: Decimal("1.00"), 2: Decimal("2.00")}
        self.reads = 0
        self.batches: list[list[int]] = []  # the keys each read of many was asked for
        self.during_read = lambda: None  # a test's hook inside the "database read"

    @cached(ITEM, key=lambda self, item_id: item_id)
    def get(self, item_id: int) -> LineVo:
        self.reads += 1
        amount = self.rows[item_id]
        self.during_read()
        return LineVo(amount, dt.date(2026, 1, item_id))

    @cached(ITEMS)
    def page(self, min_amount: Decimal | None = None, size: int = 10) -> PageVo[LineVo]:
        self.reads += 1
        rows = [a for a in self.rows.values() if min_amount is None or a >= min_amount]
        return PageVo(
            tuple(LineVo(a, dt.date(2026, 1, 1)) for a in rows[:size]), len(rows), 1, size
        )

    def many(self, item_ids: list[int]) -> dict[int, LineVo]:
        """Items by their own keys (get's), those missing read together."""
        return self.cache_aside.read_many(ITEM, item_ids, codec_for(LineVo), self._load_many)

    def _load_many(self, item_ids: list[int]) -> dict[int, LineVo]:
        self.reads += 1
        self.batches.append(sorted(item_ids))
        found = {i: LineVo(self.rows[i], dt.date(2026, 1, i)) for i in item_ids if i in self.rows}
        self.during_read()
        return found

    def change(self, item_id: int, amount: Decimal, fail: bool = False) -> None:
        def command():
            self.rows[item_id] = amount
            self.cache_aside.evict_after_commit(ITEM, item_id)
            self.cache_aside.evict_after_commit(ITEMS)
            if fail:
                self.rows[item_id] = old
                raise RuntimeError("rolled back")

        old = self.rows[item_id]
        self.tx.scope(command)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> SimpleNamespace:
    return SimpleNamespace(cache=SimpleNamespace(item_ttl=60))


@pytest.fixture
def service(clock, settings) -> ItemService:
    return ItemService(MemoryCache("t:", clock=clock), settings, FakeTx())


def test_a_second_read_is_a_hit(service) -> None:
    assert service.get(1) == LineVo(Decimal("1.00"), dt.date(2026, 1, 1))
    assert service.get(1) == service.get(item_id=1)
    assert service.reads == 1
    service.get(2)
    assert service.reads == 2


def test_pages_are_keyed_by_every_argument(service) -> None:
    service.page()
    service.page(None, 10)
    service.page(min_amount=Decimal("2"))
    service.page(min_amount=Decimal("2.00"))  # the same filter
    service.page(min_amount=Decimal("2"), size=1)
    assert service.reads == 3


def test_a_commit_evicts_the_key_and_every_page(service) -> None:
    service.get(1), service.get(2), service.page()
    service.change(1, Decimal("9.99"))
    assert service.get(1).amount == Decimal("9.99")
    assert service.page().items[0].amount == Decimal("9.99")
    service.get(2)
    assert service.reads == 3 + 2  # listing 2 stayed cached


def test_a_rollback_evicts_nothing(service) -> None:
    service.get(1), service.page()
    with pytest.raises(RuntimeError):
        service.change(1, Decimal("9.99"), fail=True)
    assert service.get(1).amount == Decimal("1.00")
    service.page()
    assert service.reads == 2


def test_a_reader_that_read_before_a_commit_never_caches_the_old_row(service) -> None:
    """Reader reads the old row; the writer commits and evicts; the reader then stores.
    The stored old value sits under the old generation, so the next read misses."""
    service.during_read = lambda: (
        setattr(service, "during_read", lambda: None),
        service.change(1, Decimal("7.77")),
    )
    assert service.get(1).amount == Decimal("1.00")  # what the reader read, before the commit
    assert service.get(1).amount == Decimal("7.77")
    assert service.get(1).amount == Decimal("7.77")
    assert service.reads == 2


def test_reads_inside_a_transaction_bypass_the_cache(service) -> None:
    service.get(1)
    seen = service.tx.scope(lambda: (service.rows.__setitem__(1, Decimal("5")), service.get(1)))
    assert seen[1].amount == Decimal("5")  # its own uncommitted change, not the cached one
    assert service.reads == 2
    service.rows[1] = Decimal("1.00")
    assert service.get(1).amount == Decimal("1.00")  # nothing of the transaction was cached


def test_many_keys_are_read_at_once_and_the_missing_loaded_together(service) -> None:
    one = service.get(1)
    found = service.many([1, 2, 3])  # 3 is not in the "database"
    assert found == {1: one, 2: LineVo(Decimal("2.00"), dt.date(2026, 1, 2))}
    assert found[1] is service.get(1)  # one codec a type: the same text, the same value
    assert service.batches == [[2, 3]]
    assert service.many([2, 1]) == {1: one, 2: found[2]}
    assert service.get(2) == found[2]  # stored under get's key: a hit
    assert (service.reads, service.batches) == (2, [[2, 3]])


def test_many_after_a_commit_reads_the_changed_key_alone(service) -> None:
    service.many([1, 2])
    service.change(1, Decimal("9.99"))
    assert service.many([1, 2])[1].amount == Decimal("9.99")
    assert service.batches == [[1, 2], [1]]


def test_many_racing_a_commit_never_caches_the_old_value(service) -> None:
    service.during_read = lambda: (
        setattr(service, "during_read", lambda: None),
        service.change(1, Decimal("7.77")),
    )
    assert service.many([1, 2])[1].amount == Decimal("1.00")  # read before the commit
    assert service.many([1, 2])[1].amount == Decimal("7.77")
    assert service.many([1, 2])[1].amount == Decimal("7.77")
    assert service.batches == [[1, 2], [1]]


def test_many_inside_a_transaction_or_on_a_broken_cache_reads_the_database(settings) -> None:
    service = ItemService(MemoryCache("m:"), settings, FakeTx())
    service.many([1, 2])
    seen = service.tx.scope(lambda: service.many([1, 2]))
    assert seen[1].amount == Decimal("1.00")
    broken = ItemService(BrokenCache(), settings, FakeTx())
    assert broken.many([1, 2])[2].amount == Decimal("2.00")
    assert (service.batches, broken.batches) == ([[1, 2], [1, 2]], [[1, 2]])


def test_ttl_is_read_from_the_settings_at_each_store(service, clock, settings) -> None:
    settings.cache.item_ttl = 5
    service.get(1)
    clock.now += 4
    service.get(1)
    assert service.reads == 1
    clock.now += 2
    settings.cache.item_ttl = 100
    service.get(1)
    assert service.reads == 2
    clock.now += 50
    service.get(1)
    assert service.reads == 2


class LockCountingCache(MemoryCache):
    """Counts attempts at the stampede lock, so a test knows when every caller has tried."""

    def __init__(self) -> None:
        super().__init__()
        self.lock_attempts = 0
        self.attempted = threading.Condition()

    def add(self, key, value, ttl_seconds):
        won = super().add(key, value, ttl_seconds)
        if key.startswith("lock:"):
            with self.attempted:
                self.lock_attempts += 1
                self.attempted.notify_all()
        return won


def test_a_stampede_reads_the_database_once(settings) -> None:
    callers = 12
    cache = LockCountingCache()
    service = ItemService(cache, settings, FakeTx())

    def slow_read():  # the winner holds the lock until every caller has missed
        with cache.attempted:
            assert cache.attempted.wait_for(lambda: cache.lock_attempts == callers, timeout=10)

    service.during_read = slow_read
    results: list[LineVo] = []
    threads = [
        threading.Thread(target=lambda: results.append(service.get(1))) for _ in range(callers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [LineVo(Decimal("1.00"), dt.date(2026, 1, 1))] * callers
    assert service.reads == 1


def test_waiters_read_the_database_when_the_recompute_fails(settings) -> None:
    cache = LockCountingCache()
    service = ItemService(cache, settings, FakeTx())
    failed = threading.Event()

    def failing_read():
        with cache.attempted:
            cache.attempted.wait_for(lambda: cache.lock_attempts == 2, timeout=10)
        if not failed.is_set():
            failed.set()
            raise KeyError("holder failed")

    service.during_read = failing_read
    outcomes: list[object] = []

    def call():
        try:
            outcomes.append(service.get(1).amount)
        except KeyError as e:
            outcomes.append(e)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(map(str, outcomes)) == ["'holder failed'", "1.00"]
    assert service.reads == 2  # the holder's failed read, then the waiter's own


class BrokenCache:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise redis.ConnectionError("down")

        return fail


def test_a_broken_cache_never_fails_a_read_and_retries_evictions(settings) -> None:
    service = ItemService(BrokenCache(), settings, FakeTx())
    assert service.get(1).amount == Decimal("1.00")
    assert service.page().total == 2
    service.change(1, Decimal("3.00"))  # the eviction fails: kept for later
    assert service.cache_aside._pending
    assert service.get(1).amount == Decimal("3.00")
    service.cache_aside._cache = MemoryCache()  # the cache is back
    service.get(1)
    assert not service.cache_aside._pending


# --- the circuit breaker -----------------------------------------------------------------


def test_the_breaker_opens_on_a_connection_error_then_probes(clock) -> None:
    breaker = CircuitBreaker(5, clock=clock)
    calls = []

    def down():
        calls.append("down")
        raise redis.ConnectionError("refused")

    with pytest.raises(redis.ConnectionError):
        breaker.call(down)
    with pytest.raises(CacheUnavailable):
        breaker.call(calls.append, "skipped")
    clock.now += 5
    with pytest.raises(redis.ConnectionError):  # the probe fails: open again
        breaker.call(down)
    clock.now += 4.9
    with pytest.raises(CacheUnavailable):
        breaker.call(calls.append, "skipped")
    clock.now += 0.1
    breaker.call(calls.append, "probe")
    breaker.call(calls.append, "closed")
    assert calls == ["down", "down", "probe", "closed"]


def test_the_breaker_ignores_errors_that_are_not_about_reaching_redis(clock) -> None:
    breaker = CircuitBreaker(5, clock=clock)

    def wrong_type():
        raise redis.ResponseError("WRONGTYPE")

    with pytest.raises(redis.ResponseError):
        breaker.call(wrong_type)
    assert breaker.call(lambda: 1) == 1


def test_without_a_shared_cache_every_read_goes_to_the_database(settings) -> None:
    """No cache that every writing process shares: what another process changed (the job
    worker settling a listing) is read at once, never an old copy."""
    service = ItemService(None, settings, FakeTx())
    assert service.get(1).amount == Decimal("1.00")
    service.rows[1] = Decimal("7.00")  # changed behind this process's back
    assert service.get(1).amount == Decimal("7.00")
    service.change(2, Decimal("9.00"))  # an eviction has nothing to do
    assert [line.amount for line in service.page().items] == [Decimal("7.00"), Decimal("9.00")]
    assert service.reads == 3
