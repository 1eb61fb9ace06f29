"""Who a signed partner request comes from (README "Signed partner calls"): its signature
checked, its timestamp and nonce fresh, its app active and granted the operation's scope, and
the signature of the answer.

The checks run in an order that tells a caller without the app's key nothing it could not
know already:

1. the signature fields are all there and well formed (PARTNER_SIGNATURE_MISSING);
2. the timestamp is within ``partner.timestamp_window_seconds`` of our clock, either way
   (PARTNER_TIMESTAMP_STALE; a timestamp in milliseconds is named as such) - before any
   lookup, so a stale capture costs the platform nothing;
3. the app exists (PARTNER_APP_UNKNOWN): app ids are 96 random bits, public to nobody but
   the partner, so this names a typo rather than opening an enumeration;
4. the app has an ACTIVE key of that id (PARTNER_KEY_UNKNOWN, the same for a key that never
   existed and one revoked, so a revoked key's id tells nothing more than a guess);
5. the signature verifies (PARTNER_SIGNATURE_INVALID, in constant time for HMAC);

and only then, to the proven app itself: 6. it is not suspended (PARTNER_APP_SUSPENDED);
7. its nonce is new (PARTNER_NONCE_REPLAYED): set-if-absent in the shared cache for twice the
window, so no worker accepts it twice (claimed after the signature, so nobody without the key
can burn an app's nonces); 8. it holds the operation's scope (PARTNER_SCOPE_MISSING); then the
rate limits (service/partner/ratelimit.py), after the signature for the same reason: nobody
else can spend an app's tokens. Answers from step 6 on are signed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from dao.cache import Cache, CacheError
from dao.partner import PartnerRepository
from service import errors
from service.errors import BusinessError
from service.partner import signing
from service.partner.keys import HMAC_SHA256, PartnerKeys
from service.partner.signing import PlatformKey
from service.transaction import transactional

log = logging.getLogger("service.partner.auth")

ACTIVE = "ACTIVE"
#: The form of each field of a signed request, and what a message says of it.
_FIELDS = {
    "app_id": (re.compile(r"[A-Za-z0-9]{1,32}\Z"), "the app id must be 1 to 32 letters or digits"),
    "key_id": (
        re.compile(r"[A-Za-z0-9._-]{1,32}\Z"),
        "the key id must be 1 to 32 letters, digits, '.', '_' or '-'",
    ),
    "timestamp": (
        re.compile(r"[0-9]{1,19}\Z"),
        "the timestamp must be whole seconds since 1970-01-01T00:00:00Z, in digits",
    ),
    "nonce": (
        re.compile(r"[A-Za-z0-9_-]{16,64}\Z"),
        "the nonce must be 16 to 64 letters, digits, '-' or '_'",
    ),
    "signature": (re.compile(r"[A-Za-z0-9+/=]{1,1024}\Z"), "the signature must be Base64"),
}
#: A timestamp this large is milliseconds (seconds reach it in the year 5138).
_MILLISECONDS = 10**11


@dataclass(frozen=True)
class SignedRequest:
    """What a request presented (None: absent) and what the endpoint computed of it."""

    app_id: str | None
    key_id: str | None
    timestamp: str | None
    nonce: str | None
    signature: str | None
    method: str
    path: bytes
    query: bytes
    body_sha256: str

    def canonical(self) -> str:
        return signing.canonical_request(
            self.method,
            self.path,
            self.query,
            self.app_id or "",
            self.key_id or "",
            self.timestamp or "",
            self.nonce or "",
            self.body_sha256,
        )


@dataclass(frozen=True)
class PartnerPrincipal:
    """The app a request was proven to come from, and the key that proved it."""

    app_id: str
    key_id: str
    algorithm: str
    status: str
    scopes: frozenset[str]
    rate_per_minute: int
    burst: int
    nonce: str
    secret: str | None = field(default=None, repr=False)  # an HMAC key's: signs the answer


@dataclass(frozen=True)
class _Key:
    app_status: str
    scopes: frozenset[str]
    rate_per_minute: int
    burst: int
    algorithm: str
    public_key: str | None
    secret_sealed: str | None


class PartnerAuthenticator:
    """Checks signed partner requests and signs the answers (see the module's docstring)."""

    def __init__(
        self,
        tx,
        clock,
        cache: Cache,
        partner_keys: PartnerKeys,
        window_seconds: int,
        platform_key: PlatformKey | None,
    ):
        self.tx = tx
        self._clock = clock
        self._cache = cache
        self._keys = partner_keys
        self._window = window_seconds
        self._platform_key = platform_key
        self._repo = PartnerRepository(tx.session)

    @property
    def platform_key(self) -> PlatformKey | None:
        return self._platform_key

    def verify(self, request: SignedRequest) -> PartnerPrincipal:
        """Steps 1 to 5: the principal of a request whose signature verifies."""
        for name, (pattern, problem) in _FIELDS.items():
            value = getattr(request, name)
            if value is None:
                raise BusinessError(errors.PARTNER_SIGNATURE_MISSING)
            if not pattern.match(value):
                raise BusinessError(errors.PARTNER_SIGNATURE_MISSING, problem)
        self._check_time(int(request.timestamp))
        key = self._key(request.app_id, request.key_id)
        if key.algorithm == HMAC_SHA256:
            secret = self._keys.open_secret(request.app_id, request.key_id, key.secret_sealed)
            if secret is None:  # security.secret_key changed or unset since it was issued
                log.error("partner app %s: key %s does not open", request.app_id, request.key_id)
                raise BusinessError(errors.SERVICE_UNAVAILABLE)
            valid = signing.verify_hmac(secret, request.canonical(), request.signature)
        else:
            if self._platform_key is None:  # no way to sign the answer
                raise BusinessError(
                    errors.SERVICE_UNAVAILABLE, "RSA keys are not served here at the moment"
                )
            secret = None
            valid = signing.verify_rsa(key.public_key, request.canonical(), request.signature)
        if not valid:
            raise BusinessError(errors.PARTNER_SIGNATURE_INVALID)
        return PartnerPrincipal(
            app_id=request.app_id,
            key_id=request.key_id,
            algorithm=key.algorithm,
            status=key.app_status,
            scopes=key.scopes,
            rate_per_minute=key.rate_per_minute,
            burst=key.burst,
            nonce=request.nonce,
            secret=secret,
        )

    def admit(self, principal: PartnerPrincipal, scope: str) -> None:
        """Steps 6 to 8, for a verified request to an operation needing ``scope``."""
        if principal.status != ACTIVE:
            raise BusinessError(errors.PARTNER_APP_SUSPENDED)
        claim = f"partner-nonce:{principal.app_id}:{principal.nonce}"
        try:
            fresh = self._cache.add(claim, "1", 2 * self._window)
        except CacheError:  # fail closed: without the cache a replay could not be told
            raise BusinessError(errors.SERVICE_UNAVAILABLE) from None
        if not fresh:
            raise BusinessError(errors.PARTNER_NONCE_REPLAYED)
        if scope not in principal.scopes:
            raise BusinessError(
                errors.PARTNER_SCOPE_MISSING, f"this operation needs the scope {scope}"
            )

    def answer_headers(self, principal: PartnerPrincipal, status: int, body: bytes) -> dict:
        """The headers that sign an answer to ``principal``'s request: with the key that
        signed it (HMAC), or with the platform's key (RSA)."""
        timestamp = str(int(self._clock().timestamp()))
        key_id = principal.key_id if principal.secret is not None else self._platform_key.key_id
        text = signing.canonical_response(
            status, principal.app_id, principal.nonce, key_id, timestamp, signing.sha256_hex(body)
        )
        if principal.secret is not None:
            signature = signing.sign_hmac(principal.secret, text)
        else:
            signature = self._platform_key.sign(text)
        return {
            signing.KEY_ID_HEADER: key_id,
            signing.TIMESTAMP_HEADER: timestamp,
            signing.NONCE_HEADER: principal.nonce,
            signing.SIGNATURE_HEADER: signature,
        }

    def _check_time(self, timestamp: int) -> None:
        if timestamp >= _MILLISECONDS:
            raise BusinessError(
                errors.PARTNER_TIMESTAMP_STALE,
                "the timestamp is in milliseconds; send seconds since 1970-01-01T00:00:00Z",
            )
        skew = timestamp - self._clock().timestamp()
        if abs(skew) > self._window:
            raise BusinessError(
                errors.PARTNER_TIMESTAMP_STALE,
                f"the timestamp is {abs(int(skew))} seconds {'ahead of' if skew > 0 else 'behind'}"
                f" the platform's clock; at most {self._window} are accepted",
            )

    @transactional(read_only=True)
    def _key(self, app_id: str, key_id: str) -> _Key:
        app = self._repo.app(app_id)
        if app is None:
            raise BusinessError(errors.PARTNER_APP_UNKNOWN)
        key = self._repo.key(app, key_id)
        if key is None or key.status != ACTIVE:
            raise BusinessError(errors.PARTNER_KEY_UNKNOWN)
        return _Key(
            app.status,
            frozenset(app.scopes.split()),
            app.rate_per_minute,
            app.burst,
            key.algorithm,
            key.public_key,
            key.secret_sealed,
        )
