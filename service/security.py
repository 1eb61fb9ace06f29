"""Passwords, tokens and the principal: who a caller is, proven once and shared by workers."""

import hashlib
import json
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError

from dao.cache import Cache, CacheError
from service import errors
from service.errors import BusinessError, ErrorCode


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as every service sees it."""

    member_id: int
    role: str
    token: str | None = None


class Passwords:
    """Argon2id hashing; parameters from settings.security.

    A hash holds ``memory_kib`` of memory while it runs (Argon2id fills all of it), so a
    worker runs at most ``at_once`` at a time and further logins wait their turn: a burst of
    logins, or of SOAP calls with a PasswordText token, cannot multiply a worker's memory.
    """

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int, at_once: int = 1):
        self._argon2 = Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._turns = threading.BoundedSemaphore(at_once)
        self._decoy_made = threading.Lock()
        self._decoy: str | None = None

    def hash(self, password: str) -> str:
        with self._turns:
            return self._argon2.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        decoy = self._decoy_hash()
        try:
            with self._turns:
                matches = self._argon2.verify(password_hash or decoy, password)
        except (VerificationError, InvalidHashError):
            return False
        return matches and bool(password_hash)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than today's (argon2 records them
        in the hash): a login that proves the password stores a new one."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    def _decoy_hash(self) -> str:
        """A hash to verify against when the member does not exist, so a login takes as long
        for an unknown mobile number as for a wrong password. Made by the worker's first
        verify, whoever it is for, rather than at start, where a hash's memory would be the
        worker's peak."""
        decoy = self._decoy
        if decoy is None:
            with self._decoy_made:
                if self._decoy is None:
                    self._decoy = self.hash(secrets.token_hex(16))
                decoy = self._decoy
        return decoy


@dataclass(frozen=True)
class TokenPair:
    """What a login or a refresh hands out: an access token and the refresh token that
    replaces it, both opaque."""

    access: str
    access_ttl: int
    refresh: str
    refresh_ttl: int


class RefreshRefused(Exception):
    """The refresh token is unknown, expired or already used (``reused``: its family has
    just been revoked)."""

    def __init__(self, reused: bool):
        super().__init__("refresh token reused" if reused else "refresh token unknown")
        self.reused = reused


class Tokens:
    """Opaque login tokens kept in the shared cache with a TTL, so any worker accepts them.

    Keys: ``token:<access>`` and ``refresh:<refresh>`` hold the member, role and the token's
    *family* (one login and every refresh that descends from it); ``family:<id>`` and
    ``member-tokens:<member id>`` are sets of the keys of a family's and of a member's
    tokens, so a logout revokes its family and a password change every token of the member;
    ``refresh-used:<refresh>`` remembers a refresh token that was traded in, so presenting it
    again (a stolen copy, or the thief's copy after the owner refreshed) revokes the family.
    """

    def __init__(self, cache: Cache, ttl_seconds: int, refresh_ttl_seconds: int | None = None):
        self._cache = cache
        self.ttl_seconds = ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds or ttl_seconds
        self._index_ttl = max(self.ttl_seconds, self.refresh_ttl_seconds)

    def issue(self, member_id: int, role: str, family: str | None = None) -> TokenPair:
        family = family or secrets.token_urlsafe(16)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        data = {"m": member_id, "r": role, "f": family}
        access_key, refresh_key = self._key(access), self._refresh_key(refresh)
        # Indexed first: a token the index misses could outlive a revocation.
        for index in (self._family_key(family), self._member_key(member_id)):
            self._cache.add_to_set(index, access_key, self._index_ttl)
            self._cache.add_to_set(index, refresh_key, self._index_ttl)
        self._cache.set(access_key, json.dumps(data), self.ttl_seconds)
        self._cache.set(refresh_key, json.dumps({**data, "a": access}), self.refresh_ttl_seconds)
        return TokenPair(access, self.ttl_seconds, refresh, self.refresh_ttl_seconds)

    def resolve(self, token: str) -> Principal | None:
        if not token or len(token) > 128:
            return None
        value = self._cache.get(self._key(token))
        if value is None:
            return None
        data = json.loads(value)
        return Principal(member_id=data["m"], role=data["r"], token=token)

    def redeem(self, refresh: str) -> tuple[int, str, str]:
        """Trade in a refresh token, once: (member id, role, family). The token and the access
        token issued with it stop working. Raises RefreshRefused; when the token had already
        been traded in, its whole family is revoked first."""
        if not refresh or len(refresh) > 128:
            raise RefreshRefused(reused=False)
        value = self._cache.get(self._refresh_key(refresh))
        if value is None:
            family = self._cache.get(self._used_key(refresh))
            if family is not None:
                self.revoke_family(family)
            raise RefreshRefused(reused=family is not None)
        data = json.loads(value)
        # Set-if-absent decides a race between two workers redeeming one token: one wins.
        if not self._cache.add(self._used_key(refresh), data["f"], self.refresh_ttl_seconds):
            self.revoke_family(data["f"])
            raise RefreshRefused(reused=True)
        self._cache.delete(self._refresh_key(refresh))
        self._cache.delete(self._key(data["a"]))
        return data["m"], data["r"], data["f"]

    def revoke(self, token: str) -> None:
        """End the session of an access token: it and every token of its family."""
        value = self._cache.get(self._key(token))
        self._cache.delete(self._key(token))
        if value is not None and "f" in (data := json.loads(value)):
            self.revoke_family(data["f"])

    def revoke_family(self, family: str) -> None:
        self._delete_all(self._family_key(family))

    def revoke_member(self, member_id: int) -> None:
        """Every token the member holds, on every worker."""
        self._delete_all(self._member_key(member_id))

    def _delete_all(self, index: str) -> None:
        for key in self._cache.set_members(index):
            self._cache.delete(key)
        self._cache.delete(index)

    @staticmethod
    def _key(token: str) -> str:
        return f"token:{token}"

    @staticmethod
    def _refresh_key(token: str) -> str:
        return f"refresh:{token}"

    @staticmethod
    def _used_key(token: str) -> str:
        return f"refresh-used:{token}"

    @staticmethod
    def _family_key(family: str) -> str:
        return f"family:{family}"

    @staticmethod
    def _member_key(member_id: int) -> str:
        return f"member-tokens:{member_id}"


class Lockout:
    """Failed password checks per mobile number, in the shared cache, so every worker agrees.

    ``attempt(mobile)`` comes before a password is checked and reserves one attempt (an atomic
    INCR); more than ``max_failures`` attempts in flight or failed, or a lock, refuse with
    ACCOUNT_LOCKED before any password is looked at. ``failed`` locks the number for
    ``lockout_seconds`` once the reserved attempt was the last allowed; ``succeeded`` clears
    the count. Unknown numbers are counted alike, so a lock tells nothing about who exists.
    Keys hold a hash of the number, not the number. When the cache cannot answer, the check
    fails closed: SERVICE_UNAVAILABLE, never an unlimited guess.
    """

    def __init__(self, cache: Cache, max_failures: int, lockout_seconds: int):
        self._cache = cache
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds

    def attempt(self, mobile: str) -> int:
        """Reserve an attempt: its number within the current count."""
        h = self._hash(mobile)
        with _fail_closed():
            # get_many: a bookkeeping read, not a lookup of cached data (see server/metrics)
            if self._cache.get_many([f"login-lock:{h}"])[0] is not None:
                raise BusinessError(errors.ACCOUNT_LOCKED)
            count = self._cache.incr(f"login-fail:{h}", self.lockout_seconds)
        if count > self.max_failures:  # others' attempts in flight have used them up
            raise BusinessError(errors.ACCOUNT_LOCKED)
        return count

    def failed(self, mobile: str, attempt: int, failure: ErrorCode) -> BusinessError:
        """The error to raise for a failed check: ``failure``, or ACCOUNT_LOCKED when this
        attempt was the last allowed (the number is then locked)."""
        if attempt < self.max_failures:
            return BusinessError(failure)
        h = self._hash(mobile)
        with _fail_closed():
            self._cache.add(f"login-lock:{h}", "1", self.lockout_seconds)
            self._cache.delete(f"login-fail:{h}")
        return BusinessError(errors.ACCOUNT_LOCKED)

    def succeeded(self, mobile: str) -> None:
        """A proven owner of the number (a right password, or a password reset with a code
        sent to it): the count of failures and any lock end. A locked number never gets here
        through a password check, which attempt() refuses first."""
        with _fail_closed():
            self._cache.delete(f"login-fail:{self._hash(mobile)}")
            self._cache.delete(f"login-lock:{self._hash(mobile)}")

    @staticmethod
    def _hash(mobile: str) -> str:
        return hashlib.sha256(mobile.encode()).hexdigest()[:32]


@contextmanager
def _fail_closed():
    try:
        yield
    except CacheError:
        raise BusinessError(
            errors.SERVICE_UNAVAILABLE, "sign-in is unavailable for a moment; try again later"
        ) from None
