"""Verification codes sent by SMS, for registration and password reset.

A code is six random digits, valid ``verification.code_ttl_seconds``; only its SHA-256 is kept,
in the shared cache, so every worker can check it. Sending is throttled per number and
purpose (one per ``resend_seconds``) and per number (``max_per_day`` in any 24 hours: each
send holds one of that many slots for a day, so the window slides); a code survives
``max_attempts`` wrong entries, each attempt reserved atomically before the comparison so
parallel guesses cannot overshoot, and a right one is consumed once (set-if-absent), so two
requests with the same code cannot both use it. Every step fails closed: when the cache
cannot answer, SERVICE_UNAVAILABLE, never an unthrottled send or an unchecked code. The code
and the number are never logged or returned by the API: the code leaves the platform only
through the :class:`CodeSender`, and cache keys hold a hash of the number.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dao.cache import Cache, CacheError
from service import errors
from service.errors import BusinessError

log = logging.getLogger("service.verification")

REGISTER = "REGISTER"
RESET_PASSWORD = "RESET_PASSWORD"  # noqa: S105 (a purpose, not a password)
PURPOSES = (REGISTER, RESET_PASSWORD)
CODE_DIGITS = 6
DAY_SECONDS = 86_400
_TEXT = {
    REGISTER: "Your registration code is {code}, valid {minutes} minutes. Never share it.",
    RESET_PASSWORD: "Your password reset code is {code}, valid {minutes} minutes. "
    "If you did not ask for it, ignore this message.",
}


@dataclass(frozen=True)
class SentMessage:
    mobile: str
    purpose: str
    code: str
    text: str
    sent_at: datetime

    def __repr__(self) -> str:  # the code and the number stay out of every log
        return f"SentMessage(purpose={self.purpose!r}, sent_at={self.sent_at!r})"


class CodeSender(abc.ABC):
    """Delivers a verification message to a mobile number (an SMS provider's client).

    A provider's sender should hand the message to a queue rather than wait for delivery: a
    password-reset request for an unregistered number sends nothing, and a slow ``send``
    would let its answer time tell registered numbers apart."""

    @abc.abstractmethod
    def send(self, message: SentMessage) -> None:
        """Deliver `message`, or raise: the caller is told the code could not be sent."""


class SandboxSender(CodeSender):
    """Delivers nothing: keeps the last message of each number and purpose in memory (for
    tests and the embedded platform) and, with an outbox file, appends each as a JSON line
    there (the development outbox, readable by a developer or another process)."""

    MAX_KEPT = 10_000

    def __init__(self, outbox_file: str = ""):
        self._outbox = Path(outbox_file) if outbox_file else None
        self._lock = threading.Lock()
        self._last: OrderedDict[tuple[str, str], SentMessage] = OrderedDict()

    def send(self, message: SentMessage) -> None:
        with self._lock:
            self._last.pop((message.mobile, message.purpose), None)
            self._last[(message.mobile, message.purpose)] = message
            while len(self._last) > self.MAX_KEPT:
                self._last.popitem(last=False)
            if self._outbox is not None:
                self._outbox.parent.mkdir(parents=True, exist_ok=True)
                line = {
                    "sentAt": message.sent_at.isoformat(),
                    "mobile": message.mobile,
                    "purpose": message.purpose,
                    "code": message.code,
                    "text": message.text,
                }
                with self._outbox.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")

    def last_code(self, mobile: str, purpose: str) -> str | None:
        """The code last sent to `mobile` for `purpose`, if this process sent one."""
        with self._lock:
            message = self._last.get((mobile, purpose))
        return message.code if message else None


@dataclass(frozen=True)
class CodeSent:
    """What the caller is told: how long the code lives and when another may be asked for."""

    expires_in: int
    resend_after: int


class VerificationCodes:
    def __init__(
        self,
        cache: Cache,
        sender: CodeSender,
        clock,
        *,
        code_ttl_seconds: int,
        resend_seconds: int,
        max_per_day: int,
        max_attempts: int,
    ):
        self.sender = sender
        self._cache = cache
        self._clock = clock
        self._ttl = code_ttl_seconds
        self._resend = resend_seconds
        self._per_day = max_per_day
        self._attempts = max_attempts

    @classmethod
    def from_settings(cls, settings, cache: Cache, clock) -> VerificationCodes:
        """On the ``verification`` section; ``sender`` names the sender (the settings allow
        SANDBOX only until an SMS provider's sender is added)."""
        return cls(
            cache,
            SandboxSender(settings.outbox_file),
            clock,
            code_ttl_seconds=settings.code_ttl_seconds,
            resend_seconds=settings.resend_seconds,
            max_per_day=settings.max_per_day,
            max_attempts=settings.max_attempts,
        )

    def send(self, mobile: str, purpose: str, *, deliver: bool = True) -> CodeSent:
        """A new code for `mobile` and `purpose`, replacing any former one;
        VERIFICATION_CODE_TOO_SOON inside the resend interval or over the daily count.

        ``deliver=False`` takes every step but the delivery: the throttle and the daily
        count are spent and a code is stored, which nobody will ever learn. It answers for a
        number that must not be told apart from a registered one, down to what a later
        wrong code is told (:meth:`consume` finds a code to compare with either way)."""
        key = _key(mobile, purpose)
        now = self._clock().timestamp()
        stamp = repr(now)  # each throttle key holds when it was taken, to tell the wait
        try:
            if not self._cache.add("vcode-sent:" + key, stamp, self._resend):
                # get_many: a bookkeeping read, not a lookup of cached data (see server/metrics)
                taken = self._cache.get_many(["vcode-sent:" + key])[0]
                raise BusinessError(
                    errors.VERIFICATION_CODE_TOO_SOON,
                    f"a code was sent less than {self._resend} seconds ago",
                    retry_after=_wait(taken, self._resend, now),
                )
            wait = self._take_daily_slot(mobile, stamp, now)
            if wait is not None:
                raise BusinessError(
                    errors.VERIFICATION_CODE_TOO_SOON,
                    f"at most {self._per_day} codes a day are sent to one number",
                    retry_after=wait,
                )
            code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
            nonce = secrets.token_hex(8)  # names this code: a used one is remembered by it
            self._cache.set("vcode:" + key, f"{nonce}.{_digest(key, nonce, code)}", self._ttl)
            self._cache.delete("vcode-tries:" + key)
        except CacheError:
            raise _unavailable() from None
        if deliver:
            self._deliver(
                key, SentMessage(mobile, purpose, code, self._text(purpose, code), self._clock())
            )
        return CodeSent(self._ttl, self._resend)

    def _take_daily_slot(self, mobile: str, stamp: str, now: float) -> int | None:
        """One of the number's ``max_per_day`` slots, each held for 24 hours from the send
        that took it: at most that many sends in any 24 hours, exactly, however many workers
        send at once (set-if-absent decides each slot). A refused send holds none. None when
        a slot is taken, else the seconds until the first held one is free again."""
        prefix = f"vcode-day:{_hash(mobile)}:"
        keys = [f"{prefix}{slot}" for slot in range(self._per_day)]
        # get_many: a bookkeeping read, not a lookup of cached data (see server/metrics)
        held = self._cache.get_many(keys)
        if any(
            value is None and self._cache.add(key, stamp, DAY_SECONDS)
            for key, value in zip(keys, held, strict=True)
        ):
            return None
        return min(_wait(value, DAY_SECONDS, now) for value in held)

    def _text(self, purpose: str, code: str) -> str:
        return _TEXT[purpose].format(code=code, minutes=max(1, self._ttl // 60))

    def _deliver(self, key: str, message: SentMessage) -> None:
        """Hand `message` to the sender. When it fails, the code (never delivered) is void
        and the resend interval released, so the caller may ask again at once; the log line
        names the purpose and the error's type only, for a sender's error may quote the
        number or the text."""
        try:
            self.sender.send(message)
        except Exception as e:
            log.error(
                "the verification code could not be sent (purpose %s): %s",
                message.purpose,
                type(e).__name__,
            )
            with suppress(CacheError):  # at worst the caller waits out the interval
                self._cache.delete("vcode:" + key)
                self._cache.delete("vcode-sent:" + key)
            raise BusinessError(
                errors.SERVICE_UNAVAILABLE, "the code could not be sent; try again later"
            ) from None

    def consume(self, mobile: str, purpose: str, code: str, field: str) -> None:
        """Accept `code` once; VERIFICATION_CODE_INVALID (naming `field`) when it is wrong,
        expired, used, or its attempts are spent (the code is then void)."""
        key = _key(mobile, purpose)
        try:
            # get_many: a bookkeeping read, not a lookup of cached data (see server/metrics)
            stored = self._cache.get_many(["vcode:" + key])[0]
            if stored is None:
                raise _invalid(field, "no valid code: ask for a new one")
            if self._cache.incr("vcode-tries:" + key, self._ttl) > self._attempts:
                self._cache.delete("vcode:" + key)
                raise _invalid(field, "too many wrong entries: ask for a new one")
            nonce, _, digest = stored.partition(".")
            if not hmac.compare_digest(digest, _digest(key, nonce, code.strip())):
                raise _invalid(field, "the code is wrong")
            if not self._cache.add("vcode-used:" + nonce, "1", self._ttl):
                raise _invalid(field, "the code was already used")
            self._cache.delete("vcode:" + key)
            self._cache.delete("vcode-tries:" + key)
        except CacheError:
            raise _unavailable() from None


def _hash(mobile: str) -> str:
    """Cache keys hold a hash of the number, never the number."""
    return hashlib.sha256(mobile.encode()).hexdigest()[:32]


def _key(mobile: str, purpose: str) -> str:
    return f"{purpose}:{_hash(mobile)}"


def _wait(taken: str | None, window: int, now: float) -> int:
    """Whole seconds until a throttle taken at `taken` (epoch seconds, as stored) for `window`
    seconds ends, at least 1; the whole window when the stamp is missing (a slot another
    send took at this moment) or is no time inside the window."""
    try:
        left = float(taken) + window - now
    except (TypeError, ValueError):
        return window
    return max(1, math.ceil(left)) if 0 <= left <= window else window


def _digest(key: str, nonce: str, code: str) -> str:
    return hashlib.sha256(f"{key}:{nonce}:{code}".encode()).hexdigest()


def _invalid(field: str, problem: str) -> BusinessError:
    return BusinessError(errors.VERIFICATION_CODE_INVALID, f"{field}: {problem}")


def _unavailable() -> BusinessError:
    return BusinessError(
        errors.SERVICE_UNAVAILABLE, "verification codes are unavailable for a moment; try again"
    )
