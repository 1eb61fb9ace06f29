"""Delivering callbacks to partner apps: a signed POST per attempt, on the published retry
schedule, until the app acknowledges (README "Partner operations and callbacks").

The job ``partner.deliver_callback(callback_id, attempt)`` (service/jobs.py; written by
service/partner/callbacks.py through the outbox) POSTs the callback's body, exactly as
written when the event happened, to the app's callback URL with urllib3, within
``partner.callback_connect_timeout_seconds`` and ``partner.callback_read_timeout_seconds``,
never following a redirect (urllib3 and its pool are made by the first POST: a process that
delivers nothing does not load them). A 2xx answer acknowledges it (ACKED). Anything else
(another status, a timeout, a refused connection, no callback URL, an app suspended, no key
to sign with) is recorded as the attempt's outcome, and the next attempt is written to the outbox
``partner.callback_retry_seconds[n-1]`` seconds later; after the last one the callback is
EXPIRED. Each attempt is a row of ``partner_callback_attempt``.

The POST is made outside any transaction. Before it, the job checks the callback still waits
for this attempt; after it, it records the outcome only if no other run of the same job
(the engine delivers at least once) recorded it first. Two runs of one job may both POST:
partners recognise a repeat by its event id (``X-P2P-Event-Id``), as they do a replay.

A callback is signed as the platform signs its answers (service/partner/signing.py), over::

    P2P-PARTNER-CALLBACK-V1
    <app id>
    <event id>
    <timestamp, seconds since 1970-01-01T00:00:00Z>
    <lower-case hex SHA-256 of the body bytes>

with every ACTIVE HMAC key of the app and, when the app has an ACTIVE RSA key, with the
platform's key; ``X-P2P-Signature`` lists them all as ``<key id>:<Base64 signature>`` joined
by ``,`` so a partner in the middle of a rotation verifies with whichever key it holds.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from dao.partner import PartnerRepository
from dao.partner_callback import PartnerCallbackAttemptEntity, PartnerCallbackRepository
from service.jobs import job
from service.partner import signing
from service.partner.callbacks import DELIVER_JOB
from service.partner.keys import HMAC_SHA256, PartnerKeys
from service.partner.signing import PlatformKey
from service.transaction import transactional

log = logging.getLogger("service.partner.delivery")

CALLBACK_VERSION = "P2P-PARTNER-CALLBACK-V1"
EVENT_ID_HEADER = "X-P2P-Event-Id"
#: What an attempt found, recorded with it.
ACKED = "ACKED"
HTTP_ERROR = "HTTP_ERROR"
TIMEOUT = "TIMEOUT"
CONNECTION_FAILED = "CONNECTION_FAILED"
NO_CALLBACK_URL = "NO_CALLBACK_URL"
APP_SUSPENDED = "APP_SUSPENDED"
NO_SIGNING_KEY = "NO_SIGNING_KEY"
#: How much of a partner's answer is read (and thrown away): it only needs a status.
MAX_ANSWER_BYTES = 4096


def canonical_callback(app_id: str, event_id: str, timestamp: str, body_sha256: str) -> str:
    """The string each signature of a callback signs (see the module's docstring)."""
    return "\n".join((CALLBACK_VERSION, app_id, event_id, timestamp, body_sha256))


@dataclass(frozen=True)
class CallbackPolicy:
    """The published schedule and each attempt's limits (conf: [partner] callback_*)."""

    retry_seconds: tuple[int, ...]
    connect_timeout: float
    read_timeout: float

    @classmethod
    def from_settings(cls, partner) -> CallbackPolicy:
        return cls(
            partner.callback_retry_seconds,
            partner.callback_connect_timeout_seconds,
            partner.callback_read_timeout_seconds,
        )


@dataclass(frozen=True)
class _Post:
    url: str
    headers: dict[str, str]
    body: bytes


class CallbackDelivery:
    """The delivery job (see the module's docstring)."""

    def __init__(
        self,
        tx,
        clock,
        outbox,
        partner_keys: PartnerKeys,
        platform_key: PlatformKey | None,
        policy: CallbackPolicy,
    ):
        self.tx = tx
        self._clock = clock
        self._outbox = outbox
        self._keys = partner_keys
        self._platform_key = platform_key
        self._policy = policy
        self._apps = PartnerRepository(tx.session)
        self._callbacks = PartnerCallbackRepository(tx.session)

    @functools.cached_property
    def _http(self):
        import urllib3

        policy = self._policy
        return urllib3.PoolManager(
            retries=False,
            timeout=urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout),
        )

    @job(DELIVER_JOB)
    def deliver_callback(self, callback_id: int, attempt: int) -> None:
        """Attempt ``attempt`` (1 the first) at delivering the callback, unless it was made."""
        prepared = self._prepare(callback_id, attempt)
        if prepared is None:
            return
        outcome, status = prepared if isinstance(prepared, tuple) else self._post(prepared)
        self._record(callback_id, attempt, outcome, status)

    @transactional(read_only=True)
    def _prepare(self, callback_id: int, attempt: int) -> _Post | tuple[str, None] | None:
        row = self._callbacks.get(callback_id)
        if row is None or row.status != "PENDING" or row.attempts != attempt - 1:
            return None  # delivered, expired, or this attempt made by another run
        app = self._apps.by_pk(row.app_id)
        if app.status != "ACTIVE":
            return APP_SUSPENDED, None
        if not app.callback_url:
            return NO_CALLBACK_URL, None
        body = row.body.encode()
        timestamp = str(int(self._clock().timestamp()))
        text = canonical_callback(app.app_id, row.event_id, timestamp, signing.sha256_hex(body))
        signatures = []
        rsa = False
        for key in self._apps.keys(app):
            if key.status != "ACTIVE":
                continue
            if key.algorithm != HMAC_SHA256:
                rsa = True
                continue
            secret = self._keys.open_secret(app.app_id, key.key_id, key.secret_sealed)
            if secret is not None:
                signatures.append(f"{key.key_id}:{signing.sign_hmac(secret, text)}")
        if rsa and self._platform_key is not None:
            signatures.append(f"{self._platform_key.key_id}:{self._platform_key.sign(text)}")
        if not signatures:
            return NO_SIGNING_KEY, None
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            signing.APP_ID_HEADER: app.app_id,
            EVENT_ID_HEADER: row.event_id,
            signing.TIMESTAMP_HEADER: timestamp,
            signing.SIGNATURE_HEADER: ",".join(signatures),
        }
        return _Post(app.callback_url, headers, body)

    def _post(self, post: _Post) -> tuple[str, int | None]:
        import urllib3

        try:
            answer = self._http.request(
                "POST",
                post.url,
                body=post.body,
                headers=post.headers,
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.TimeoutError:
            return TIMEOUT, None
        except urllib3.exceptions.HTTPError:
            return CONNECTION_FAILED, None
        try:
            answer.read(MAX_ANSWER_BYTES)
        except urllib3.exceptions.TimeoutError:
            return TIMEOUT, answer.status
        except urllib3.exceptions.HTTPError:
            pass  # the status came: what follows it does not matter
        finally:
            answer.release_conn()
        return (ACKED if 200 <= answer.status < 300 else HTTP_ERROR), answer.status

    @transactional
    def _record(self, callback_id: int, attempt: int, outcome: str, status: int | None) -> None:
        row = self._callbacks.get(callback_id, lock=True)
        if row.status != "PENDING" or row.attempts != attempt - 1:
            return  # another run of this job recorded the attempt first
        now = self._clock()
        self._callbacks.add(
            PartnerCallbackAttemptEntity(
                callback_id=row.id, number=attempt, at=now, http_status=status, outcome=outcome
            )
        )
        row.attempts = attempt
        schedule = self._policy.retry_seconds
        if outcome == ACKED:
            row.status, row.finished_at, row.next_attempt_at = "ACKED", now, None
        elif attempt > len(schedule):
            row.status, row.finished_at, row.next_attempt_at = "EXPIRED", now, None
            log.warning(
                "callback %d (event %s) expired after %d attempts", row.id, row.event_id, attempt
            )
        else:
            row.next_attempt_at = now + timedelta(seconds=schedule[attempt - 1])
            self._outbox.add(
                DELIVER_JOB,
                {"callback_id": row.id, "attempt": attempt + 1},
                not_before=row.next_attempt_at,
            )
