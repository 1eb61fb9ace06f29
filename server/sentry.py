"""Unexpected errors to Sentry: the error funnel's reporter, and the scrubbing of personal data.

The error funnel (server/dispatcher.py) hands every unexpected exception, and only those, to an
:class:`ErrorReporter` with the call's tags (request id, facade, operation, protocol). With
``sentry.dsn`` empty that is a :class:`NullReporter` and the SDK is never touched; with a DSN
the composition root calls :func:`error_reporter` once, which initialises the SDK and returns
a :class:`SentryReporter`. Nothing happens at import, and the SDK is imported only then: a
worker without a DSN never loads it (about 20 MiB and 0.1 s of its start).

The SDK runs with no integration that captures anything on its own (no logging, threading,
excepthook or auto-enabled library integrations), so the funnel is the one place that
reports; without local variables; and every event passes :func:`scrub_event`, which removes
passwords, tokens, credentials, WS-Security elements, ID, card and mobile numbers from
everything it sends. If scrubbing fails the SDK drops the event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from server import DISTRIBUTION, package_version

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

log = logging.getLogger("server.sentry")

FILTERED = "[Filtered]"


class ErrorReporter(Protocol):
    """Where the error funnel sends an unexpected exception; must never raise."""

    def report(self, exc: BaseException, tags: Mapping[str, str]) -> None: ...


class NullReporter:
    """Sentry is off (no DSN): errors are only logged, by the funnel."""

    def report(self, exc: BaseException, tags: Mapping[str, str]) -> None:
        pass


class SentryReporter:
    """Sends one event per unexpected exception, tagged with the call, to the SDK's client."""

    def report(self, exc: BaseException, tags: Mapping[str, str]) -> None:
        import sentry_sdk  # loaded by error_reporter already

        try:
            with sentry_sdk.new_scope() as scope:
                for name, value in tags.items():
                    scope.set_tag(name, value)
                facade, operation = tags.get("facade", "-"), tags.get("operation", "-")
                if operation != "-":
                    scope.set_transaction_name(f"{facade}.{operation}", source="component")
                scope.capture_exception(exc)
        except Exception:  # reporting must never change what the caller receives
            log.warning("could not report an error to Sentry", exc_info=True)


def error_reporter(settings) -> ErrorReporter:
    """The reporter for the ``sentry.*`` settings; initialises the SDK when a DSN is set."""
    if not settings.dsn:
        return NullReporter()
    import sentry_sdk
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.modules import ModulesIntegration

    sentry_sdk.init(
        dsn=settings.dsn,
        environment=settings.environment,
        release=settings.release or default_release(),
        # Only what we list: flush on exit, drop a duplicate, installed versions. Logging would
        # send every logger.exception (a second, untagged event per error), excepthook and
        # threading capture on their own, argv carries --set values, stdlib and the
        # auto-enabled ones (SQLAlchemy, Redis) record statements and keys as breadcrumbs.
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[AtexitIntegration(), DedupeIntegration(), ModulesIntegration()],
        # send_default_pii is left at its default, off (the SDK now deprecates setting it).
        include_local_variables=False,
        max_breadcrumbs=0,
        before_send=scrub_event,
        traces_sample_rate=None,
    )
    return SentryReporter()


def default_release() -> str:
    return f"{DISTRIBUTION}@{package_version()}"


# -- scrubbing ----------------------------------------------------------------------------

# Values under these keys (a dict key or header name, case and separators ignored) are replaced
# whole: "newPassword", "X-Auth-Token", "Authorization", "id_number", "bankCardNo" ...
_SENSITIVE_KEY = re.compile(
    r"password|passwd|pwd|secret|token|auth|cookie|apikey|dsn|credential|session|nonce"
    r"|mobile|phone|idnumber|idcard|idno|cardno|cardnumber"
)
# Parts of an event the SDK itself fills with ids, times and versions: not personal, and long
# digit runs in them (a trace id, a timestamp) are not card numbers.
_STRUCTURAL = frozenset(
    {"event_id", "timestamp", "start_timestamp", "platform", "level", "sdk", "modules"}
)
_SERVER_REQUEST_ID = re.compile(r"[0-9a-f]{32}\Z")

_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # A whole WS-Security header, then credential elements anywhere in XML.
    (
        re.compile(r"<((?:[\w.-]+:)?Security)\b[^>]*>.*?</\1\s*>", re.S),
        rf"<\1>{FILTERED}</\1>",
    ),
    (
        re.compile(
            r"(<((?:[\w.-]+:)?(?:Password|Username|Nonce|token|BinarySecurityToken|mobile"
            r"|idNumber|cardNo))\b[^>]*>).*?(</\2\s*>)",
            re.S | re.I,
        ),
        rf"\1{FILTERED}\3",
    ),
    # "Authorization: Bearer abc", "Basic dXNlcjpwYXNz".
    (re.compile(r"\b(Bearer|Basic|Digest)\s+[\w.~+/=-]+", re.I), rf"\1 {FILTERED}"),
    # password=..., 'token': '...', "secret": "...", apiKey: ... (quoted values whole).
    (
        re.compile(
            r"""((?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|credentials?|authorization)"""
            r"""[\w-]*['"]?\s*[:=]\s*)(?:(['"])(?:\\.|(?!\2).)*\2|[^\s'",;&<>)}\]]+)""",
            re.I | re.S,
        ),
        rf"\1{FILTERED}",
    ),
    # The user part of a URL: scheme://user:password@host, a DSN's key.
    (re.compile(r"(\b[a-z][\w+.-]*://)[^\s/@]+@", re.I), rf"\1{FILTERED}@"),
    # Resident ID (18 characters, the last a digit or X), card (12-19 digits, maybe grouped
    # by spaces or dashes), mobile (11 digits starting with 1, maybe grouped 3-4-4).
    (re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])"), FILTERED),
    (re.compile(r"(?<!\d)\d(?:[ -]?\d){11,18}(?!\d)"), FILTERED),
    (re.compile(r"(?<!\d)1\d{2}[ -]?\d{4}[ -]?\d{4}(?!\d)"), FILTERED),
)


def scrub_text(text: str) -> str:
    """``text`` with every credential and personal number it contains replaced."""
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def _sensitive(key: object) -> bool:
    return isinstance(key, str) and bool(
        _SENSITIVE_KEY.search(key.lower().replace("_", "").replace("-", ""))
    )


def scrub(value: Any) -> Any:
    """A deep copy of ``value`` with sensitive keys' values replaced and every string scrubbed."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: FILTERED if _sensitive(k) and v not in (None, "") else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def scrub_event(event: Event, hint: Hint | None = None) -> Event:
    """The SDK's ``before_send``: every part of the event but the SDK's own ids, scrubbed."""
    clean: dict[str, object] = {}
    for key, value in event.items():
        if key in _STRUCTURAL:
            clean[key] = value
        elif key == "contexts" and isinstance(value, Mapping):
            clean[key] = {k: v if k == "trace" else scrub(v) for k, v in value.items()}
        elif key == "tags" and isinstance(value, Mapping):
            clean[key] = {
                k: v if k == "request_id" and _SERVER_REQUEST_ID.match(str(v)) else scrub(v)
                for k, v in value.items()
            }
        elif key == "request" and isinstance(value, Mapping):
            # A request body is never sent, not even scrubbed; headers and query by key.
            clean[key] = scrub({k: v for k, v in value.items() if k not in ("data", "cookies")})
        else:
            clean[key] = scrub(value)
    return cast("Event", clean)
