"""WS-Security UsernameToken with PasswordDigest, verified against a member's API secret.

Why an API secret, and not the password. A PasswordDigest is Base64(SHA-1(nonce + created +
password)): the server must hold the password itself, or something that serves as well, to
check it. Login passwords are kept only as Argon2id hashes, and stay that way. So a member
who wants PasswordDigest (a partner's service account) asks for an *API secret*
(MemberFacade.rotateApiSecret, which wants the login password again): 256 random bits the
server generates and returns exactly once. It is the "password" of the digest; the login
password keeps working for login, the AuthToken header and PasswordText.

- Generated, never chosen: a digest travels in every message, and anyone who sees one can
  guess the password offline at SHA-1 speed; a human-chosen password would fall, 256 random
  bits do not.
- Stored sealed (service/secretbox.py: AES-256-GCM under a key derived from
  ``security.secret_key``, bound to the member id). A database dump alone does not let anyone
  compute a valid digest: that takes the dump *and* the configured key. Deriving the secret
  from the key (HMAC of the member id) would need no column, but could not be revoked or
  rotated on its own, and every secret would change with the key; sealing keeps both apart.
- Without ``security.secret_key`` (the embedded default) nothing is generated or accepted:
  PasswordDigest is refused and rotateApiSecret answers SERVICE_UNAVAILABLE. No silent,
  insecure fallback key exists. conf/test.toml holds a public key for tests only.

A token is accepted when, in this order: it is well-formed (Nonce Base64 of 16 to 64 bytes,
Created an xsd:dateTime with a zone, the digest Base64 of 20 bytes); Created is within
``security.wsse_max_skew_seconds`` of the server's clock either way; the member exists, is
active and has an API secret; the digest matches (``hmac.compare_digest``); and the nonce
was never seen for this member within the window. Nonces are remembered in the shared cache
(Redis when configured) for twice the window (long enough: a message is acceptable only while
now is within the window of its Created) with an atomic set-if-absent, so two workers racing
on one replayed envelope cannot both accept it. A nonce is recorded only once the digest is
right, so an anonymous caller cannot fill the cache or burn another member's nonces.

Every failure is UNAUTHENTICATED with one message that names no part, except an expired or
not-yet-valid Created: that says so (wsse:MessageExpired in the WS-Security fault list), as
the time is no secret and a partner's clock is the usual cause.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from dao.cache import Cache
from service import errors
from service.errors import BusinessError
from service.secretbox import SecretBox, SecretBoxError

PURPOSE = "wsse-api-secret"
NOT_ACCEPTED = "the UsernameToken was not accepted"
DISABLED = (
    "PasswordDigest is not enabled on this platform; use PasswordText over HTTPS or the "
    "AuthToken header"
)
# ASCII digits ([0-9], not \d): the token's Created is an xs:dateTime.
_CREATED = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})\Z"
)
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}\Z")


@dataclass(frozen=True)
class PasswordDigest:
    """A UsernameToken's PasswordDigest, Nonce and Created as the caller sent them."""

    digest: str
    nonce: str
    created: str


@dataclass(frozen=True)
class CheckedDigest:
    """A well-formed, fresh token, decoded."""

    digest: bytes
    nonce: bytes
    created: str


def compute_digest(nonce: bytes, created: str, secret: str) -> bytes:
    """SHA-1(nonce + created + secret), the raw PasswordDigest (Base64-encode to send it)."""
    return hashlib.sha1(nonce + created.encode() + secret.encode()).digest()  # noqa: S324


def _not_accepted() -> BusinessError:
    return BusinessError(errors.UNAUTHENTICATED, NOT_ACCEPTED)


def _b64(text: str, low: int, high: int) -> bytes:
    text = text.strip()
    if not _B64.match(text):
        raise _not_accepted()
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise _not_accepted() from None
    if not low <= len(raw) <= high:
        raise _not_accepted()
    return raw


class ApiSecrets:
    """Issues, seals and opens members' API secrets, and verifies PasswordDigest tokens."""

    def __init__(
        self,
        box: SecretBox | None,
        cache: Cache,
        clock: Callable[[], dt.datetime],
        max_skew_seconds: int,
    ):
        self._box = box
        self._cache = cache
        self._clock = clock
        self.max_skew_seconds = max_skew_seconds
        # The secret compared against when the member has none, so a miss costs the same.
        self._decoy = secrets.token_urlsafe(32)

    @classmethod
    def from_settings(cls, security, cache: Cache, clock: Callable[[], dt.datetime]) -> ApiSecrets:
        """On ``settings.security``: its secret_key (unset: PasswordDigest is off) and
        wsse_max_skew_seconds."""
        box = SecretBox.from_setting(security.secret_key, PURPOSE)
        return cls(box, cache, clock, security.wsse_max_skew_seconds)

    # -- the secret ----------------------------------------------------------------------
    def issue(self, member_id: int) -> tuple[str, str]:
        """A new secret and its sealed form for the member's row."""
        if self._box is None:
            raise BusinessError(errors.SERVICE_UNAVAILABLE, DISABLED)
        secret = secrets.token_urlsafe(32)
        return secret, self._box.seal(secret, self._bound(member_id))

    def open(self, member_id: int, sealed: str | None) -> str | None:
        """The member's secret, or None when there is none or it no longer opens (sealed
        under another key or copied from another row)."""
        if self._box is None or not sealed:
            return None
        try:
            return self._box.open(sealed, self._bound(member_id))
        except SecretBoxError:
            return None

    @staticmethod
    def _bound(member_id: int) -> str:
        return f"member:{member_id}"

    # -- a token -------------------------------------------------------------------------
    def check(self, token: PasswordDigest) -> CheckedDigest:
        """Form and freshness, before anything is looked up."""
        if self._box is None:
            raise BusinessError(errors.UNAUTHENTICATED, DISABLED)
        digest = _b64(token.digest, 20, 20)
        nonce = _b64(token.nonce, 16, 64)
        created = token.created.strip()
        if not _CREATED.match(created):
            raise _not_accepted()
        try:
            when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            raise _not_accepted() from None
        skew = abs((self._clock() - when).total_seconds())
        if skew > self.max_skew_seconds:
            raise BusinessError(
                errors.UNAUTHENTICATED,
                "wsse:MessageExpired: the UsernameToken's Created must be within "
                f"{self.max_skew_seconds} seconds of the server's clock (UTC)",
            )
        return CheckedDigest(digest, nonce, created)

    def verify(self, checked: CheckedDigest, member_id: int | None, secret: str | None) -> None:
        """The digest against `secret` (None: no such member or no secret), then the nonce."""
        expected = compute_digest(checked.nonce, checked.created, secret or self._decoy)
        if not hmac.compare_digest(expected, checked.digest) or secret is None:
            raise _not_accepted()
        key = f"wsse-nonce:{member_id}:{hashlib.sha256(checked.nonce).hexdigest()}"
        if not self._cache.add(key, "1", 2 * self.max_skew_seconds):
            raise _not_accepted()
