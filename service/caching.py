"""Declarative cache-aside on service reads: ``@cached(region, key=...)`` over a query.

A read looks in the shared cache first and, on a miss, runs the query and stores what it
returns for the region's TTL (read from the settings at call time). Commands evict with
``cache_aside.evict_after_commit(region, ...)``: the eviction runs only once their
transaction commits, so a rolled-back change evicts nothing.

Generations close the race between a reader and a writer: every key (or, for a region with
``shared_generation``, the whole region) has a generation, a random token kept in the cache;
a value is stored under the generation read *before* the database read, and an eviction
replaces the generation with a fresh token. A reader that read the old row before a commit
stores it under the old generation, where nobody looks any more. Random tokens rather than a
counter: a counter that expires or is lost with Redis restarts at numbers that old values
may still be stored under; a fresh token never does.

Stampede guard: on a miss one caller takes a short lock (``add``: SET NX EX in Redis) and
recomputes; the others poll for its value for up to ``wait_seconds`` and then read the
database themselves. The cache never fails a read: any error of the cache is logged and the
query answers from the database. Evictions that fail (the cache unreachable) are kept and
retried before this process's next cached read or eviction.

A hit is one round trip: the generation and the value under it are read together
(``Cache.get_versioned``). Values are the frozen value objects, serialised exactly by
:class:`VoCodec` (no pickle, no float); a text read again is decoded once per process. A
read inside a transaction bypasses the cache: it may see that transaction's own uncommitted
changes, which must never be cached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import inspect
import json
import logging
import secrets
import threading
import time
import types
import typing
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from dao.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

GENERATION_TTL_SECONDS = 86_400  # a lost generation only costs a miss: a fresh token follows
LOCK_TTL_SECONDS = 2  # the stampede lock: longer than a query takes, short if its holder dies
WAIT_SECONDS = 0.5  # how long the others wait for the holder's value before reading the database
POLL_SECONDS = 0.005
_KEY_LIMIT = 100  # longer canonical keys (many filters) are hashed
DECODED_TEXTS = 256  # per value type: the texts whose decoded value a process keeps


@dataclass(frozen=True)
class Region:
    """A family of cached values: its name (the key prefix), its TTL in seconds read from the
    settings in force at each call, and whether one generation covers the whole region
    (pages of a list, which any change may reorder) or each key has its own."""

    name: str
    ttl: Callable[[Any], int]
    shared_generation: bool = False


def cached(region: Region, key: Callable[..., object] | None = None):
    """Cache a query method's result in `region`. `key(self, **arguments)` gets every
    argument by name (defaults applied) and returns what identifies the result (ints,
    strings, Decimals, None, tuples, dicts); without it, every argument is the key. The
    return annotation (a frozen dataclass, possibly generic) says how values are decoded.
    Put it above ``@transactional``, so that the generation is read before the transaction
    starts. The object needs a ``cache_aside`` (:class:`CacheAside`)."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        codec = codec_for(typing.get_type_hints(method)["return"])
        arguments_of = _binder(inspect.signature(method))

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs) -> T:
            arguments = arguments_of(self, args, kwargs)
            identity = key(self, **arguments) if key is not None else arguments
            aside: CacheAside = self.cache_aside
            return aside.read(region, identity, codec, lambda: method(self, *args, **kwargs))

        return wrapper

    return decorate


def _binder(signature: inspect.Signature) -> Callable[[Any, tuple, dict], dict]:
    """What ``signature.bind`` with defaults applied gives, without the instance, made cheap
    for a call that names its arguments plainly (no ``*args`` or ``**kwargs`` in the method);
    any other call, or a wrong one, goes through ``Signature.bind`` and its errors."""
    params = list(signature.parameters.values())
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = frozenset(p.name for p in params[1:])
    positional = tuple(
        p.name for p in params[1:] if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    )
    defaults = {p.name: p.default for p in params[1:] if p.default is not p.empty}
    simple = all(p.kind in plain for p in params[1:])

    def slow(self: Any, args: tuple, kwargs: dict) -> dict:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments[params[0].name]
        return arguments

    def bind(self: Any, args: tuple, kwargs: dict) -> dict:
        if not simple or len(args) > len(positional):
            return slow(self, args, kwargs)
        arguments = dict(zip(positional, args, strict=False))
        if kwargs:
            if not names.issuperset(kwargs) or not arguments.keys().isdisjoint(kwargs):
                return slow(self, args, kwargs)
            arguments.update(kwargs)
        if len(arguments) < len(names):
            arguments = defaults | arguments
            if len(arguments) < len(names):
                return slow(self, args, kwargs)  # a required argument is missing: its error
        return arguments

    return bind


class CacheAside:
    """The cache-aside protocol over a Cache (see the module docstring). `tx` tells whether
    a transaction is active (reads in one bypass the cache) and carries after-commit hooks;
    `settings` is the LiveSettings the regions' TTLs are read from. Without a cache (None:
    none that every process writing the database shares) reads go to the database and
    evictions have nothing to do."""

    def __init__(
        self,
        cache: Cache | None,
        settings: Any,
        tx: Any,
        *,
        wait_seconds: float = WAIT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ):
        self._cache = cache
        self._settings = settings
        self.tx = tx
        self._wait = wait_seconds
        self._poll = poll_seconds
        self._pending: set[str] = set()  # generation keys whose eviction failed
        self._pending_lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether there is a cache to read (a shared one: see the class's docstring)."""
        return self._cache is not None

    # -- reading ---------------------------------------------------------------------------
    def read(self, region: Region, identity: object, codec: VoCodec, load: Callable[[], T]) -> T:
        if self._cache is None or self.tx.in_transaction():
            return load()
        ident = _canonical(identity)
        try:
            self._retry_pending()
            generation_key = _generation_key(region, ident)
            prefix = f"{region.name}:{codec.tag}:{ident}@"
            # The generation and the value under it in one round trip; a key without a
            # generation gets one, and its value (if another caller stored it meanwhile).
            generation, raw = self._cache.get_versioned(generation_key, prefix)
            if generation is None:
                generation = self._generation(generation_key)
                raw = self._cache.get(prefix + generation)
            value_key = prefix + generation
        except Exception as e:
            _cache_failed("read", region, e)
            return load()
        if raw is not None:
            value = self._decode(codec, raw, value_key)
            if value is not None:
                return value
        return self._recompute(region, value_key, codec, load)

    def read_many(
        self,
        region: Region,
        identities: Sequence[K],
        codec: VoCodec,
        load: Callable[[list[K]], Mapping[K, T]],
    ) -> dict[K, T]:
        """The values of many keys of a region, as :meth:`read` reads one: found in one round
        trip, and those missing loaded together by ``load(identities missing)`` (which leaves
        out any that no longer exist) and stored under the generation read before. No
        stampede guard: ``load`` reads rows by their keys, cheaper than the lock's round trips
        would be."""
        if self._cache is None or self.tx.in_transaction():
            return dict(load(list(identities)))
        found: dict[K, T] = {}
        missing: dict[K, str] = {}  # identity -> the key its value is stored under
        try:
            self._retry_pending()
            idents = [_canonical(i) for i in identities]
            generation_keys = [_generation_key(region, ident) for ident in idents]
            prefixes = [f"{region.name}:{codec.tag}:{ident}@" for ident in idents]
            versions = self._cache.get_versioned_many(generation_keys, prefixes)
            for identity, key, prefix, (generation, raw) in zip(
                identities, generation_keys, prefixes, versions, strict=True
            ):
                if generation is None:
                    generation = self._generation(key)
                    raw = None  # a new generation has no value yet
                value_key = prefix + generation
                value = None if raw is None else self._decode(codec, raw, value_key)
                if value is None:
                    missing[identity] = value_key
                else:
                    found[identity] = value
        except Exception as e:
            _cache_failed("read", region, e)
            return dict(load(list(identities)))
        if missing:
            loaded = load(list(missing))
            found.update(loaded)
            try:
                ttl = region.ttl(self._settings)
                for identity, value in loaded.items():
                    self._cache.set(missing[identity], codec.encode(value), ttl)
            except Exception as e:
                _cache_failed("store", region, e)
        return found

    def _recompute(self, region: Region, value_key: str, codec: VoCodec, load: Callable[[], T]):
        lock_key = f"lock:{value_key}"
        token = secrets.token_hex(8)
        try:
            mine = self._cache.add(lock_key, token, LOCK_TTL_SECONDS)
        except Exception as e:
            _cache_failed("lock", region, e)
            return load()
        if not mine:
            value = self._await(value_key, lock_key, codec)
            return load() if value is None else value
        try:
            value = load()
            try:
                encoded = codec.encode(value)
                self._cache.set(value_key, encoded, region.ttl(self._settings))
            except Exception as e:
                _cache_failed("store", region, e)
            return value
        finally:
            try:
                # Not compare-and-delete: if our lock expired and another caller took it, it
                # goes too, which costs at most one more database read, never a stale value.
                self._cache.delete(lock_key)
            except Exception as e:
                _cache_failed("unlock", region, e)

    def _await(self, value_key: str, lock_key: str, codec: VoCodec):
        """The lock holder's value once stored; None when it gave up (its query failed, or
        the lock expired) or after wait_seconds: the caller then reads the database."""
        deadline = time.monotonic() + self._wait
        while time.monotonic() < deadline:
            time.sleep(self._poll)
            try:
                raw, lock = self._cache.get_many([value_key, lock_key])
            except Exception as e:
                _cache_failed("wait", None, e)
                return None
            if raw is not None:
                return self._decode(codec, raw, value_key)
            if lock is None:
                return None
        return None

    def _generation(self, key: str) -> str:
        generation = self._cache.get_many([key])[0]
        if generation is None:
            fresh = secrets.token_hex(8)
            if self._cache.add(key, fresh, GENERATION_TTL_SECONDS):
                return fresh
            generation = self._cache.get_many([key])[0]
            if generation is None:
                raise LookupError(f"generation {key} vanished while it was created")
        return generation

    @staticmethod
    def _decode(codec: VoCodec, raw: str, value_key: str):
        try:
            return codec.decode(raw)
        except Exception:
            log.warning("cache: dropping an undecodable value at %s", value_key, exc_info=True)
            return None

    # -- evicting --------------------------------------------------------------------------
    def evict_after_commit(self, region: Region, identity: object = None) -> None:
        """Evict `identity` of `region` (a shared-generation region: all of it) once the
        current transaction commits; never if it rolls back."""
        key = _generation_key(region, _canonical(identity))
        self.tx.after_commit(functools.partial(self._evict, key))

    def evict(self, region: Region, identity: object = None) -> None:
        """Evict now (outside a transaction, or in a test)."""
        self._evict(_generation_key(region, _canonical(identity)))

    def _evict(self, key: str) -> None:
        if self._cache is None:
            return
        try:
            self._retry_pending()
            self._cache.set(key, secrets.token_hex(8), GENERATION_TTL_SECONDS)
        except Exception as e:
            with self._pending_lock:
                self._pending.add(key)
            log.warning("cache: eviction of %s failed, retried later: %s", key, _why(e))

    def _retry_pending(self) -> None:
        if not self._pending:
            return
        with self._pending_lock:
            pending, self._pending = self._pending, set()
        try:
            while pending:
                key = next(iter(pending))
                self._cache.set(key, secrets.token_hex(8), GENERATION_TTL_SECONDS)
                pending.discard(key)
        finally:
            if pending:
                with self._pending_lock:
                    self._pending |= pending


def _generation_key(region: Region, ident: str) -> str:
    return f"gen:{region.name}" if region.shared_generation else f"gen:{region.name}:{ident}"


def _cache_failed(step: str, region: Region | None, e: Exception) -> None:
    where = region.name if region is not None else "-"
    if isinstance(e, CacheUnavailable):
        log.debug("cache: %s in %s skipped: %s", step, where, e)
    else:
        log.warning("cache: %s in %s failed, answering from the database: %s", step, where, _why(e))


def _why(e: Exception) -> str:
    return f"{type(e).__name__}: {e}"


def _canonical(identity: object) -> str:
    """A stable text for a key: equal Decimals (5 and 5.00) give the same text."""

    def plain(value: object) -> object:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, Decimal):
            return f"d:{value.normalize()}"
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        raise TypeError(f"cache keys take ints, strings, Decimals, None and tuples, not {value!r}")

    text = json.dumps(plain(identity), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) > _KEY_LIMIT:
        return "h:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return text


# -- values ---------------------------------------------------------------------------------


class VoCodec:
    """Encodes a value object (a frozen dataclass, possibly generic, with nested value
    objects and tuples of them) as JSON and back, exactly: Decimal as its string (the
    exponent kept: 100.00 stays 100.00), datetime and date in ISO 8601 (offset kept), int,
    str, bool and None as themselves. Floats and anything else are refused when the codec
    is built. ``tag`` changes whenever the type's shape does, so a deployment that changes
    a value object never decodes what the previous one stored."""

    def __init__(self, tp: Any):
        self._encode, self._decode, shape = _converter(tp)
        self.tag = hashlib.sha256(shape.encode()).hexdigest()[:8]
        # The value is a function of the text alone, and value objects are immutable: a text
        # read again (the same cached value, by every caller until it is evicted) is not
        # rebuilt from JSON but shared.
        self.decode = functools.lru_cache(maxsize=DECODED_TEXTS)(self._decode_text)

    def encode(self, value: object) -> str:
        return json.dumps(self._encode(value), separators=(",", ":"), ensure_ascii=False)

    def _decode_text(self, text: str) -> Any:
        return self._decode(json.loads(text))


@functools.cache
def codec_for(tp: Any) -> VoCodec:
    """The one codec of value type `tp` in this process, so that every read of a type, by one
    key or many (:meth:`CacheAside.read_many`), shares the values decoded from the same text."""
    return VoCodec(tp)


Converter = tuple[Callable[[Any], Any], Callable[[Any], Any], str]


def _converter(tp: Any, bindings: dict | None = None) -> Converter:
    bindings = bindings or {}
    if isinstance(tp, TypeVar):
        return _converter(bindings[tp])
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"only X | None unions can be cached, not {tp}")
        enc, dec, shape = _converter(inner[0], bindings)
        return (
            lambda v: None if v is None else enc(v),
            lambda v: None if v is None else dec(v),
            f"{shape}?",
        )
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"only tuple[X, ...] can be cached, not {tp}")
        enc, dec, shape = _converter(args[0], bindings)
        return (
            lambda v: [enc(item) for item in _exact(v, tuple)],
            lambda v: tuple(dec(item) for item in _exact(v, list)),
            f"({shape})",
        )
    cls = origin or tp
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        return _dataclass_converter(cls, args)
    if tp in _SCALARS:
        return _SCALARS[tp]
    raise TypeError(f"{tp} cannot be cached exactly (no floats, no arbitrary objects)")


def _dataclass_converter(cls: type, args: tuple) -> Converter:
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} must be a frozen dataclass to be cached")
    bindings = dict(zip(getattr(cls, "__parameters__", ()), args, strict=True))
    hints = typing.get_type_hints(cls)
    parts = {f.name: _converter(hints[f.name], bindings) for f in dataclasses.fields(cls) if f.init}
    names = frozenset(parts)

    def encode(value: Any) -> dict:
        _exact(value, cls)
        return {name: enc(getattr(value, name)) for name, (enc, _, _) in parts.items()}

    def decode(data: Any) -> Any:
        if _exact(data, dict).keys() != names:
            raise ValueError(f"{cls.__name__}: fields {sorted(data)} != {sorted(names)}")
        return cls(**{name: dec(data[name]) for name, (_, dec, _) in parts.items()})

    shape = ",".join(f"{name}:{shape}" for name, (_, _, shape) in parts.items())
    return encode, decode, f"{cls.__qualname__}{{{shape}}}"


def _exact(value: Any, cls: type) -> Any:
    """`value` if it is exactly a `cls` (a bool is no int, a datetime no date)."""
    if type(value) is not cls:
        raise TypeError(f"expected {cls.__name__}, got {type(value).__name__}: {value!r}")
    return value


def _scalar(cls: type, encode: Callable, decode: Callable, wire: type) -> Converter:
    return (
        lambda v: encode(_exact(v, cls)),
        lambda v: decode(_exact(v, wire)),
        cls.__name__,
    )


def _same(v: Any) -> Any:
    return v


_SCALARS: dict[type, Converter] = {
    int: _scalar(int, _same, _same, int),
    str: _scalar(str, _same, _same, str),
    bool: _scalar(bool, _same, _same, bool),
    Decimal: _scalar(Decimal, str, Decimal, str),
    dt.datetime: _scalar(dt.datetime, dt.datetime.isoformat, dt.datetime.fromisoformat, str),
    dt.date: _scalar(dt.date, dt.date.isoformat, dt.date.fromisoformat, str),
}
