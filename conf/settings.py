"""Settings of the platform, loaded once by the composition root.

Layers, each later one winning: conf/default.toml, conf/<P2P_ENV>.toml, the file named by
P2P_CONFIG, P2P_<SECTION>_<KEY> environment variables, PORT, then explicit overrides.
The Apollo configuration centre, when configured, sits between PORT and the overrides: it is
applied by conf/apollo.py on top of what load_settings returns, skipping overridden keys.
Every key is declared once below, as a dataclass field carrying its parser; its default
lives only in conf/default.toml. Nothing here runs at import time.
"""

import base64
import ipaddress
import math
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conf.loyalty import (
    CatalogueItem,
    LevelRule,
    parse_amount,
    parse_catalogue,
    parse_levels,
    parse_points_per_yuan,
    parse_points_table,
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A parser takes a raw value and whether it came as text (environment, PORT, a string
# override) rather than typed TOML; it returns the typed value or raises ValueError("must ...").
Parser = Callable[[object, bool], Any]

ENV_PREFIX = "P2P_"
# P2P_ variables that are not settings: the two that pick files, the test harness's own, and
# the production layout's addresses and counts (deploy/layout.env), read by supervisord and
# HAProxy from the environment the workers inherit.
_RESERVED_ENV = ("P2P_ENV", "P2P_CONFIG")
_RESERVED_ENV_PREFIXES = ("P2P_TEST_", "P2P_LAYOUT_")


class ConfigError(ValueError):
    """A configuration file, variable or value that cannot be used; str names the key."""


# --- parsers ---------------------------------------------------------------------------


def _integer(low: int, high: int | None = None) -> Parser:
    want = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def parse(raw: object, text: bool) -> int:
        value = raw
        if text and isinstance(raw, str):
            try:
                value = int(raw.strip())
            except ValueError:
                value = None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < low
            or (high is not None and value > high)
        ):
            raise ValueError(f"must be {want}, got {raw!r}")
        return value

    return parse


def _seconds(raw: object, text: bool) -> float:
    """A duration in seconds: any number > 0 (not money, so a float is fine)."""
    value = raw
    if text and isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"must be a number of seconds > 0, got {raw!r}")
    return float(value)


def _seconds_or_zero(raw: object, text: bool) -> float:
    """A duration in seconds >= 0 (0 turns the thing off)."""
    if (raw == 0 and not isinstance(raw, bool)) or (text and str(raw).strip() in ("0", "0.0")):
        return 0.0
    try:
        return _seconds(raw, text)
    except ValueError:
        raise ValueError(f"must be a number of seconds >= 0, got {raw!r}") from None


def _retry_schedule(raw: object, text: bool) -> tuple[int, ...]:
    """Whole seconds to wait before each retry, rising; text is a comma-separated list."""
    items = raw
    if text and isinstance(raw, str):
        try:
            items = [int(part.strip()) for part in raw.split(",")]
        except ValueError:
            items = None
    if (
        not isinstance(items, list | tuple)
        or not 1 <= len(items) <= 20
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in items)
        or list(items) != sorted(items)
    ):
        raise ValueError(f"must be 1 to 20 rising whole numbers of seconds >= 1, got {raw!r}")
    return tuple(items)


def _boolean(raw: object, text: bool) -> bool:
    if isinstance(raw, bool):
        return raw
    if text and isinstance(raw, str):
        word = raw.strip().lower()
        if word in ("true", "1", "yes"):
            return True
        if word in ("false", "0", "no"):
            return False
    allowed = "true/false/1/0/yes/no" if text else "true or false"
    raise ValueError(f"must be {allowed}, got {raw!r}")


def _text(*, empty: bool) -> Parser:
    def parse(raw: object, text: bool) -> str:
        if not isinstance(raw, str) or (not empty and not raw.strip()):
            raise ValueError(f"must be a {'' if empty else 'non-empty '}string, got {raw!r}")
        return raw if empty else raw.strip()

    return parse


def _choice(*options: str) -> Parser:
    def parse(raw: object, text: bool) -> str:
        if isinstance(raw, str) and raw.strip().upper() in options:
            return raw.strip().upper()
        raise ValueError(f"must be one of {', '.join(options)}, got {raw!r}")

    return parse


_CENT = Decimal("0.01")


def _exponent(finite: Decimal) -> int:
    """The exponent of a finite Decimal (an infinity's or a NaN's is a letter)."""
    exponent = finite.as_tuple().exponent
    if not isinstance(exponent, int):
        raise InvalidOperation
    return exponent


def _money(raw: object, text: bool) -> Decimal:
    """A positive amount with at most 2 decimals; never through float."""
    if isinstance(raw, float):
        raise ValueError(
            f'must be a quoted decimal string such as "100.00" '
            f"(a TOML float is inexact), got {raw!r}"
        )
    try:
        if isinstance(raw, str):
            amount = Decimal(raw.strip())
        elif isinstance(raw, Decimal | int) and not isinstance(raw, bool):
            amount = Decimal(raw)
        else:
            raise InvalidOperation
        if not amount.is_finite() or amount <= 0 or _exponent(amount) < -2:
            raise InvalidOperation
        return amount.quantize(_CENT)
    except InvalidOperation:
        raise ValueError(f"must be an amount > 0 with at most 2 decimals, got {raw!r}") from None


def _fraction(places: int) -> Parser:
    """A rate as a fraction (0.01 is 1%), 0 <= rate < 1, at most ``places`` decimals."""

    def parse(raw: object, text: bool) -> Decimal:
        if isinstance(raw, float):
            raise ValueError(f'must be a quoted decimal string such as "0.01", got {raw!r}')
        try:
            if not isinstance(raw, str | Decimal | int) or isinstance(raw, bool):
                raise InvalidOperation
            rate = Decimal(raw.strip() if isinstance(raw, str) else raw)
            if not rate.is_finite() or not 0 <= rate < 1 or _exponent(rate) < -places:
                raise InvalidOperation
            return rate
        except InvalidOperation:
            raise ValueError(
                f"must be a fraction >= 0 and < 1 with at most {places} decimals, got {raw!r}"
            ) from None

    return parse


def _networks(raw: object, text: bool) -> tuple[IPNetwork, ...]:
    """IP addresses or CIDR networks; text is a comma-separated list."""
    items = raw
    if text and isinstance(raw, str):
        items = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(items, list | tuple):
        raise ValueError(f"must be a list of IP addresses or networks, got {raw!r}")
    networks = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        try:
            if not isinstance(item, str):
                raise ValueError("not a string")
            networks.append(ipaddress.ip_network(item.strip()))
        except ValueError as exc:
            raise ValueError(
                f"must be IP addresses or networks such as '10.0.0.0/8', got {item!r} ({exc})"
            ) from None
    return tuple(networks)


def hide_password(url: str, *, whole_user_part: bool = False) -> str:
    """The URL with the password of its user part, if any, replaced by ***; with
    `whole_user_part` (a Sentry DSN, whose key is the user name) the whole user part."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    userinfo, _, host = parts.netloc.rpartition("@")
    if whole_user_part and "@" in parts.netloc:
        return url.replace(parts.netloc, f"***@{host}", 1)
    if password is None:
        return url
    user = userinfo.partition(":")[0]
    return url.replace(parts.netloc, f"{user}:***@{host}", 1)


def _url(*schemes: str, empty: bool = False, public: bool = False) -> Parser:
    """A URL with one of `schemes`; `public` ones are published, so no credentials or query."""
    want = " or ".join(f"{scheme}://" for scheme in schemes)

    def parse(raw: object, text: bool) -> str:
        if not isinstance(raw, str):
            raise ValueError(f"must be a URL string, got {raw!r}")
        url = raw.strip()
        if empty and not url:
            return ""
        shown = hide_password(url)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"must be a valid URL ({exc}), got {shown!r}") from None
        if parts.scheme not in schemes:
            raise ValueError(f"must be a URL starting {want}, got {shown!r}")
        if parts.scheme != "sqlite" and not parts.hostname:
            raise ValueError(f"must name a host, got {shown!r}")
        if public:
            if "@" in parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    f"must be an absolute URL without credentials, query or fragment, got {shown!r}"
                )
            return url.rstrip("/")
        return url

    return parse


def _base64_key(raw: object, text: bool) -> str:
    """An AES-256 key: standard Base64 of exactly 32 random bytes, or empty (no key)."""
    if not isinstance(raw, str):
        raise ValueError("must be a Base64 string of 32 bytes")
    value = raw.strip()
    if not value:
        return ""
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:  # never echo the value: it is a secret
        raise ValueError("must be the Base64 of exactly 32 bytes (head -c32 /dev/urandom | base64)")
    return value


def _identifier(max_length: int, pattern: str = r"[A-Za-z0-9_.-]") -> Parser:
    """A short name such as a merchant or key id: `pattern` characters, 1 to `max_length`."""

    def parse(raw: object, text: bool) -> str:
        value = raw.strip() if isinstance(raw, str) else raw
        if not isinstance(value, str) or not re.fullmatch(f"{pattern}{{1,{max_length}}}", value):
            raise ValueError(f"must be 1-{max_length} characters {pattern}, got {raw!r}")
        return value

    return parse


@dataclass(frozen=True)
class Pem:
    """A PEM key from configuration, given inline or in a file: ``source`` is its path, or
    "inline". The key itself (``data``) never shows in a repr, describe() or an error."""

    data: bytes = field(repr=False)
    source: str


def _read_pem(raw: object, *, private: bool) -> Pem | None:
    """An RSA key (>= 2048 bits) as PEM text or a path to a PEM file; None when empty.
    Neither the text nor the file's content is ever echoed (a private key is a secret)."""
    kind = "private" if private else "public"
    if isinstance(raw, Pem):
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"must be a PEM {kind} key or the path of one")
    value = raw.strip()
    if not value:
        return None
    if value.startswith("-----BEGIN"):
        # An environment variable may carry the PEM with its line breaks escaped as \n.
        source, data = "inline", value.replace("\\n", "\n").encode("ascii", "replace") + b"\n"
    else:
        source = value
        try:
            data = Path(value).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read the key file {value!r} ({exc.strerror})") from None
    # cryptography (about 8 MiB) is loaded only when a key is set.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key: object
    try:
        if private:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    wanted = rsa.RSAPrivateKey if private else rsa.RSAPublicKey
    if not isinstance(key, wanted) or key.key_size < 2048:
        shown = "the inline text" if source == "inline" else f"the file {source!r}"
        raise ValueError(
            f"must be an unencrypted PEM RSA {kind} key of 2048 bits or more, or the path of "
            f"one; {shown} is not"
        )
    return Pem(data, source)


def _private_key(raw: object, text: bool) -> Pem | None:
    return _read_pem(raw, private=True)


def _public_keys(raw: object, text: bool) -> tuple[tuple[str, Pem], ...]:
    """Public keys by key id: a table {key id = PEM or path}; text is id=PEM-or-path, ..."""
    items = raw
    if text and isinstance(raw, str):
        pairs = [part.strip().partition("=") for part in raw.split(",") if part.strip()]
        if not all(sep for _, sep, _ in pairs):
            raise ValueError("must be key-id=PEM-or-path pairs separated by commas")
        items = {key_id.strip(): value for key_id, _, value in pairs}
    if not isinstance(items, Mapping):
        raise ValueError("must be a table of key id = PEM public key or path")
    key_ids = _identifier(64)
    ring = {}
    for key_id, pem in items.items():
        checked = key_ids(key_id, text)
        key = _read_pem(pem, private=False)
        if key is None:
            raise ValueError(f"key {checked!r} needs a PEM public key or the path of one")
        ring[checked] = key
    return tuple(sorted(ring.items()))


def _names(raw: object, text: bool) -> tuple[str, ...]:
    """One or more names such as Apollo namespaces; text is a comma-separated list."""
    items = raw
    if text and isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    if (
        not isinstance(items, list | tuple)
        or not items
        or not all(isinstance(i, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", i) for i in items)
    ):
        raise ValueError(f"must be a non-empty list of names such as 'application', got {raw!r}")
    return tuple(items)


# The bounds of a crontab's fields: minute, hour, day of month, month, day of week (0 is Sunday).
_CRON_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _cron_field(text: str, low: int, high: int) -> bool:
    """One crontab field: ``*``, ``n``, ``a-b``, each optionally ``/step``, comma-separated."""
    for item in text.split(","):
        span, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            return False
        if span == "*":
            continue
        first, _, last = span.partition("-")
        bounds = [first, last] if last else [first]
        if not all(b.isdigit() and low <= int(b) <= high for b in bounds):
            return False
        if last and int(first) > int(last):
            return False
    return True


def crontab_fields(spec: str) -> tuple[str, ...] | None:
    """The five fields of a crontab string ("5 0 * * *"), or None when it is not one."""
    parts = spec.split()
    if len(parts) != len(_CRON_FIELDS):
        return None
    ok = all(_cron_field(p, *bounds) for p, bounds in zip(parts, _CRON_FIELDS, strict=True))
    return tuple(parts) if ok else None


def _schedule(raw: object, text: bool) -> dict[str, int | str]:
    """Periodic jobs: job name -> seconds between runs (an integer >= 1) or a crontab string
    ("minute hour day month weekday"); text is "name=spec;name=spec". Whether a job of that
    name exists is checked where the jobs are known (server/worker.py, at start-up)."""
    items: object = raw
    if text and isinstance(raw, str):
        parsed: dict[str, int | str] = {}
        for part in filter(None, (p.strip() for p in raw.split(";"))):
            name, sep, spec = part.partition("=")
            if not sep:
                raise ValueError(
                    f"must be name=seconds-or-crontab items separated by ';', got {raw!r}"
                )
            spec = spec.strip()
            parsed[name.strip()] = int(spec) if spec.isdigit() else spec
        items = parsed
    if not isinstance(items, dict):
        raise ValueError(f"must be a table of job name = seconds or crontab string, got {raw!r}")
    schedule: dict[str, int | str] = {}
    for name, spec in items.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", name):
            raise ValueError(f"must name jobs such as 'loan.close_expired', got {name!r}")
        if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 1:
            schedule[name] = spec
        elif isinstance(spec, str) and crontab_fields(spec.strip()):
            schedule[name] = " ".join(spec.split())
        else:
            raise ValueError(
                f"{name}: must be seconds (an integer >= 1) or a crontab string such as "
                f"'5 0 * * *' (minute hour day month weekday), got {spec!r}"
            )
    return schedule


def _time_zone(raw: object, text: bool) -> str:
    """An IANA time zone name such as Asia/Shanghai."""
    if isinstance(raw, str) and raw.strip():
        try:
            zoneinfo.ZoneInfo(raw.strip())
            return raw.strip()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(f"must be a time zone name such as 'Asia/Shanghai', got {raw!r}")


def _key(
    parse: Parser, *, secret: bool = False, secret_user: bool = False, reloadable: bool = False
) -> Any:
    """Declare one setting: its parser, whether describe() must hide its password, or its
    URL's whole user part (`secret_user`: a Sentry DSN's key), and whether a new value from
    the configuration centre may replace it while the platform runs (`reloadable`; the
    services read such keys at call time, see conf/live.py)."""
    return field(
        metadata={
            "parse": parse,
            "secret": secret,
            "secret_user": secret_user,
            "reloadable": reloadable,
        }
    )


# --- the settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    host: str = _key(_text(empty=False))
    port: int = _key(_integer(1, 65535))
    threads: int = _key(_integer(1))
    max_body_bytes: int = _key(_integer(1024))
    public_url: str = _key(_url("http", "https", empty=True, public=True))
    trusted_proxies: tuple[IPNetwork, ...] = _key(_networks)
    drain_seconds: float = _key(_seconds_or_zero)
    shutdown_timeout: float = _key(_seconds)
    connection_limit: int = _key(_integer(10, 10_000))
    channel_timeout: int = _key(_integer(1, 3600))
    request_timeout: float = _key(_seconds)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = _key(_url("sqlite", "mysql+mysqldb"), secret=True)
    pool_size: int = _key(_integer(1))
    max_overflow: int = _key(_integer(0))
    pool_timeout: float = _key(_seconds)
    pool_recycle: int = _key(_integer(-1))  # SQLAlchemy's -1 turns recycling off
    echo: bool = _key(_boolean)
    slow_sql_ms: int = _key(_integer(0))


@dataclass(frozen=True)
class CacheSettings:
    url: str = _key(_url("redis", "rediss", empty=True), secret=True)
    key_prefix: str = _key(_text(empty=True))
    loan_ttl_seconds: int = _key(_integer(1, 86_400), reloadable=True)
    loan_list_ttl_seconds: int = _key(_integer(1, 86_400), reloadable=True)
    breaker_seconds: float = _key(_seconds)


@dataclass(frozen=True)
class SecuritySettings:
    token_ttl_seconds: int = _key(_integer(60, 2_592_000))
    refresh_ttl_seconds: int = _key(_integer(60, 7_776_000))
    max_failed_logins: int = _key(_integer(1, 100))
    lockout_seconds: int = _key(_integer(1, 86_400))
    argon2_time_cost: int = _key(_integer(1))
    argon2_memory_kib: int = _key(_integer(8))
    argon2_parallelism: int = _key(_integer(1))
    argon2_concurrency: int = _key(_integer(1, 64))
    secret_key: str = _key(_base64_key, secret=True)
    wsse_max_skew_seconds: int = _key(_integer(30, 3600))

    def __post_init__(self) -> None:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ConfigError(
                f"security.argon2_memory_kib: must be at least 8 x argon2_parallelism "
                f"({8 * self.argon2_parallelism}), got {self.argon2_memory_kib}"
            )


@dataclass(frozen=True)
class VerificationSettings:
    sender: str = _key(_choice("SANDBOX"))
    outbox_file: str = _key(_text(empty=True))
    code_ttl_seconds: int = _key(_integer(60, 1800))
    resend_seconds: int = _key(_integer(10, 600))
    max_per_day: int = _key(_integer(1, 100))
    max_attempts: int = _key(_integer(1, 20))


@dataclass(frozen=True)
class MemberSettings:
    max_bound_cards: int = _key(_integer(1, 20))


@dataclass(frozen=True)
class LoanSettings:
    min_amount: Decimal = _key(_money, reloadable=True)  # noqa: RUF009
    max_amount: Decimal = _key(_money, reloadable=True)  # noqa: RUF009
    max_raise_days: int = _key(_integer(1, 365), reloadable=True)
    platform_fee_rate: Decimal = _key(_fraction(4), reloadable=True)  # noqa: RUF009
    auto_disburse: bool = _key(_boolean)
    invest_group_size: int = _key(_integer(1, 500))

    def __post_init__(self) -> None:
        if self.min_amount > self.max_amount:
            raise ConfigError(
                f"loan.min_amount: must not exceed loan.max_amount ({self.max_amount}), "
                f"got {self.min_amount}"
            )


#: The contract's largest pageSize (facade.types.MAX_PAGE_SIZE, published as its maximum):
#: api.max_page_size may lower the page size served, never raise it above what the contract
#: promises. (conf imports nothing of ours; a test keeps the two equal.)
CONTRACT_MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class ApiSettings:
    default_page_size: int = _key(_integer(1), reloadable=True)
    max_page_size: int = _key(_integer(1, CONTRACT_MAX_PAGE_SIZE), reloadable=True)

    def __post_init__(self) -> None:
        if self.default_page_size > self.max_page_size:
            raise ConfigError(
                f"api.default_page_size: must not exceed api.max_page_size "
                f"({self.max_page_size}), got {self.default_page_size}"
            )


@dataclass(frozen=True)
class LoggingSettings:
    level: str = _key(_choice("DEBUG", "INFO", "WARNING", "ERROR"), reloadable=True)
    format: str = _key(_choice("PLAIN", "JSON"))


@dataclass(frozen=True)
class RepaymentSettings:
    penalty_daily_rate: Decimal = _key(_fraction(8), reloadable=True)  # noqa: RUF009
    penalty_to: str = _key(_choice("INVESTORS", "PLATFORM"), reloadable=True)
    early_settlement_interest: str = _key(_choice("CURRENT_PERIOD", "NONE"), reloadable=True)
    interest_fee_rate: Decimal = _key(_fraction(4), reloadable=True)  # noqa: RUF009


@dataclass(frozen=True)
class PaymentSettings:
    gateway: str = _key(_choice("SANDBOX", "BANK"))


@dataclass(frozen=True)
class BankSettings:
    """The depository bank over HTTP (docs/depository-protocol.md), for payment.gateway BANK."""

    url: str = _key(_url("http", "https", empty=True, public=True))
    merchant_id: str = _key(_identifier(32, "[A-Za-z0-9]"))
    platform_key_id: str = _key(_identifier(64))
    platform_private_key: Pem | None = _key(_private_key, secret=True)  # noqa: RUF009
    bank_public_keys: tuple[tuple[str, Pem], ...] = _key(_public_keys)
    timestamp_window_seconds: int = _key(_integer(30, 3600))
    connect_timeout_seconds: float = _key(_seconds)
    read_timeout_seconds: float = _key(_seconds)
    max_connections: int = _key(_integer(1, 1000))
    notify_url: str = _key(_url("http", "https", empty=True, public=True))
    return_url: str = _key(_url("http", "https", empty=True))
    query_first_after_seconds: int = _key(_integer(1))
    query_min_interval_seconds: int = _key(_integer(1))
    query_max_interval_seconds: int = _key(_integer(1))
    doubt_age_seconds: int = _key(_integer(60))
    simulator: bool = _key(_boolean)
    simulator_dir: str = _key(_text(empty=False))
    simulator_delay_seconds: float = _key(_seconds_or_zero)
    simulator_auto_authorize: bool = _key(_boolean)
    reconcile_catch_up_days: int = _key(_integer(1, 31))
    item_attempts: int = _key(_integer(1, 10))
    item_retry_seconds: int = _key(_integer(1))

    def __post_init__(self) -> None:
        if self.query_min_interval_seconds > self.query_max_interval_seconds:
            raise ConfigError(
                f"bank.query_min_interval_seconds: must not exceed "
                f"bank.query_max_interval_seconds ({self.query_max_interval_seconds}), "
                f"got {self.query_min_interval_seconds}"
            )
        if self.doubt_age_seconds < self.query_first_after_seconds:
            raise ConfigError(
                f"bank.doubt_age_seconds: must be at least bank.query_first_after_seconds "
                f"({self.query_first_after_seconds}), got {self.doubt_age_seconds}"
            )


@dataclass(frozen=True)
class PartnerSettings:
    """The partner open API's signed calls (README "Signed partner calls") and callbacks
    (README "Partner operations and callbacks")."""

    timestamp_window_seconds: int = _key(_integer(30, 3600))
    platform_key_id: str = _key(_identifier(64))
    platform_private_key: Pem | None = _key(_private_key, secret=True)  # noqa: RUF009
    callback_retry_seconds: tuple[int, ...] = _key(_retry_schedule)
    callback_connect_timeout_seconds: float = _key(_seconds)
    callback_read_timeout_seconds: float = _key(_seconds)
    idempotency_key_days: int = _key(_integer(1, 3650))
    callback_retention_days: int = _key(_integer(1, 3650))


@dataclass(frozen=True)
class SentrySettings:
    dsn: str = _key(_url("http", "https", empty=True), secret=True, secret_user=True)
    environment: str = _key(_text(empty=False))
    release: str = _key(_text(empty=True))


@dataclass(frozen=True)
class ClockSettings:
    adjustable: bool = _key(_boolean)


@dataclass(frozen=True)
class TransactionSettings:
    max_retries: int = _key(_integer(0, 10))


@dataclass(frozen=True)
class ApolloSettings:
    meta_url: str = _key(_url("http", "https", empty=True, public=True))
    app_id: str = _key(_text(empty=True))
    cluster: str = _key(_text(empty=False))
    namespaces: tuple[str, ...] = _key(_names)
    cache_dir: str = _key(_text(empty=False))
    poll_timeout_seconds: float = _key(_seconds)

    def __post_init__(self) -> None:
        if self.meta_url and not self.app_id.strip():
            raise ConfigError("apollo.app_id: must be set when apollo.meta_url is, got ''")


@dataclass(frozen=True)
class JobsSettings:
    broker_url: str = _key(_url("redis", "rediss", empty=True), secret=True)
    broker_key_prefix: str = _key(_text(empty=True))
    embedded_broker_file: str = _key(_text(empty=False))
    embedded_worker: bool = _key(_boolean)
    concurrency: int = _key(_integer(1, 64))
    timezone: str = _key(_time_zone)
    schedule: dict[str, int | str] = _key(_schedule)  # noqa: RUF009
    beat_schedule_file: str = _key(_text(empty=False))
    max_retries: int = _key(_integer(0, 1000))
    retry_backoff_seconds: int = _key(_integer(1, 3600))
    retry_backoff_max_seconds: int = _key(_integer(1, 86_400))
    visibility_timeout_seconds: int = _key(_integer(5, 604_800))
    max_eta_seconds: int = _key(_integer(0, 86_400))
    outbox_batch: int = _key(_integer(1, 10_000))
    outbox_grace_seconds: int = _key(_integer(1, 3600))
    outbox_max_attempts: int = _key(_integer(1, 1000))
    outbox_retention_days: int = _key(_integer(1, 3650))
    metrics_port: int = _key(_integer(0, 65535))

    def __post_init__(self) -> None:
        # A job waiting for its time (a retry's backoff, a not_before) sits unacknowledged in
        # a worker; Redis hands it to another worker once visibility_timeout passes.
        longest = max(self.retry_backoff_max_seconds, self.max_eta_seconds)
        if self.visibility_timeout_seconds <= longest:
            raise ConfigError(
                f"jobs.visibility_timeout_seconds: must exceed jobs.retry_backoff_max_seconds "
                f"and jobs.max_eta_seconds ({longest}), got {self.visibility_timeout_seconds}"
            )
        if self.retry_backoff_seconds > self.retry_backoff_max_seconds:
            raise ConfigError(
                f"jobs.retry_backoff_seconds: must not exceed jobs.retry_backoff_max_seconds "
                f"({self.retry_backoff_max_seconds}), got {self.retry_backoff_seconds}"
            )


@dataclass(frozen=True)
class LoyaltySettings:
    """Member levels, check-in and points, experience gold, referral rewards (conf/loyalty.py
    parses the structured values)."""

    levels: tuple[LevelRule, ...] = _key(parse_levels)
    level_basis: str = _key(_choice("CUMULATIVE", "ROLLING"))
    level_rolling_days: int = _key(_integer(1, 3650))
    levels_can_drop: bool = _key(_boolean)
    checkin_points: tuple[int, ...] = _key(parse_points_table)
    points_per_yuan: Decimal = _key(parse_points_per_yuan)  # noqa: RUF009
    points_ttl_days: int = _key(_integer(1, 3650))
    catalogue: tuple[CatalogueItem, ...] = _key(parse_catalogue)
    experience_on_registration: Decimal = _key(parse_amount)  # noqa: RUF009
    experience_annual_rate: Decimal = _key(_fraction(4))  # noqa: RUF009
    experience_term_days: int = _key(_integer(1, 365))
    referral_annual_rate: Decimal = _key(_fraction(4))  # noqa: RUF009
    referral_cap: Decimal = _key(_money)  # noqa: RUF009


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    database: DatabaseSettings
    cache: CacheSettings
    security: SecuritySettings
    verification: VerificationSettings
    member: MemberSettings
    loan: LoanSettings
    repayment: RepaymentSettings
    payment: PaymentSettings
    bank: BankSettings
    partner: PartnerSettings
    api: ApiSettings
    logging: LoggingSettings
    sentry: SentrySettings
    transaction: TransactionSettings
    clock: ClockSettings
    jobs: JobsSettings
    apollo: ApolloSettings
    loyalty: LoyaltySettings

    def __post_init__(self) -> None:
        if self.payment.gateway == "BANK":
            bank = self.bank
            # The simulator's development keys stand in for unset keys (server/embeddedbank.py).
            keys = (
                ()
                if bank.simulator
                else (
                    ("platform_private_key", bank.platform_private_key),
                    ("bank_public_keys", bank.bank_public_keys),
                )
            )
            for key, value in (("url", bank.url), *keys, ("notify_url", bank.notify_url)):
                if not value:
                    raise ConfigError(f"bank.{key}: must be set when payment.gateway is BANK")

    def describe(self) -> dict[str, object]:
        """A flat {"section.key": value} view for a startup log line, passwords hidden."""
        view: dict[str, object] = {}
        for section in fields(self):
            group = getattr(self, section.name)
            for key in fields(group):
                value = getattr(group, key.name)
                if key.metadata["secret"] and key.metadata["parse"] is _base64_key:
                    value = "***" if value else ""
                elif isinstance(value, Pem) or value is None:
                    value = value.source if value else ""
                elif key.metadata["secret"]:
                    value = hide_password(value, whole_user_part=key.metadata["secret_user"])
                elif isinstance(value, Decimal):
                    value = str(value)
                elif key.metadata["parse"] is _public_keys:
                    value = {key_id: pem.source for key_id, pem in value}
                elif isinstance(value, tuple):
                    value = [str(item) for item in value]
                view[f"{section.name}.{key.name}"] = value
        return view


_SECTIONS: dict[str, Any] = {section.name: section.type for section in fields(Settings)}
_KEYS = {f"{name}.{key.name}": key for name, cls in _SECTIONS.items() for key in fields(cls)}
_ENV_NAMES = {ENV_PREFIX + dotted.replace(".", "_").upper(): dotted for dotted in _KEYS}


# --- loading ---------------------------------------------------------------------------


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Read every layer and return checked settings, or raise ConfigError."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    package = resources.files(__package__)
    _apply_file(values, package.joinpath("default.toml"))
    if env_name := environ.get("P2P_ENV"):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", env_name):
            raise ConfigError(f"P2P_ENV: must be a plain name such as 'test', got {env_name!r}")
        # Errors are filed under the environment the platform runs as, unless a layer says.
        values["sentry.environment"] = env_name
        _apply_file(values, package.joinpath(f"{env_name}.toml"), named_by="P2P_ENV")
    if operator_file := environ.get("P2P_CONFIG"):
        _apply_file(values, Path(operator_file), named_by="P2P_CONFIG")
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or _reserved(name):
            continue
        # A name matching no key still gets a dotted guess, so the error names section and key.
        dotted = _ENV_NAMES.get(name) or name[len(ENV_PREFIX) :].lower().replace("_", ".", 1)
        _put(values, dotted, environ[name], text=True, source=name)
    if environ.get("PORT"):  # empty means unset, as a Makefile passing PORT=$(PORT) sends
        _put(values, "server.port", environ["PORT"], text=True, source="PORT")
    for dotted, value in (overrides or {}).items():
        _put(values, dotted, value, text=isinstance(value, str), source="overrides")
    settings = _build(values)
    if env_name == "production" and settings.clock.adjustable:
        raise ConfigError("clock.adjustable: production's clock is the wall clock, got true")
    return settings


def is_reloadable(dotted: str) -> bool:
    """Whether `dotted` names a key that may change while the platform runs."""
    key = _KEYS.get(dotted)
    return key is not None and key.metadata["reloadable"]


def parse_text(dotted: str, raw: str, *, source: str) -> object:
    """The typed value of `dotted` from text (e.g. the configuration centre), checked by the
    key's own parser; ConfigError naming the key and `source` when it is unknown or bad."""
    values: dict[str, object] = {}
    _put(values, dotted, raw, text=True, source=source)
    return values[dotted]


def flat_values(settings: Settings) -> dict[str, object]:
    """{"section.key": typed value} of every key, the input build_settings takes back."""
    return {
        f"{section.name}.{key.name}": getattr(getattr(settings, section.name), key.name)
        for section in fields(settings)
        for key in fields(getattr(settings, section.name))
    }


def build_settings(values: Mapping[str, object]) -> Settings:
    """Settings from typed {"section.key": value}, every cross-key check run; ConfigError."""
    return _build(values)


def _reserved(name: str) -> bool:
    return name in _RESERVED_ENV or name.startswith(_RESERVED_ENV_PREFIXES)


def _apply_file(values: dict[str, object], path: Any, named_by: str = "") -> None:
    """Merge one TOML file (a Path or a package resource) into `values`."""
    origin = f"{named_by}={path}" if named_by else str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{origin}: no such configuration file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{origin}: cannot read configuration ({exc})") from None
    for section, table in document.items():
        if not isinstance(table, dict):
            problem = "must be a table" if section in _SECTIONS else "unknown section"
            raise ConfigError(f"{section}: {problem} (from {path})")
        for key, value in table.items():
            _put(values, f"{section}.{key}", value, text=False, source=str(path))


def _put(values: dict[str, object], dotted: str, raw: object, *, text: bool, source: str) -> None:
    """Parse one value for `dotted` and store it, or raise ConfigError naming key and source."""
    key = _KEYS.get(dotted)
    if key is None:
        section = dotted.partition(".")[0]
        problem = "unknown key" if section in _SECTIONS else f"unknown section {section!r}"
        raise ConfigError(f"{dotted}: {problem} (from {source})")
    try:
        values[dotted] = key.metadata["parse"](raw, text)
    except ValueError as exc:
        raise ConfigError(f"{dotted}: {exc} (from {source})") from None


def _build(values: Mapping[str, object]) -> Settings:
    groups = {}
    for name, cls in _SECTIONS.items():
        missing = [
            f"{name}.{key.name}" for key in fields(cls) if f"{name}.{key.name}" not in values
        ]
        if missing:
            raise ConfigError(f"{missing[0]}: missing (every key needs a default in default.toml)")
        groups[name] = cls(**{key.name: values[f"{name}.{key.name}"] for key in fields(cls)})
    return Settings(**groups)
