"""Passwords, tokens and the principal: who a caller is, proven once and shared by workers."""

import json
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError

from dao.cache import Cache


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as every service sees it."""

    member_id: int
    role: str
    token: str | None = None


class Passwords:
    """Argon2id hashing; parameters from settings.security."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int):
        self._argon2 = Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # A hash to verify against when the member does not exist, so a login takes as long
        # for an unknown mobile number as for a wrong password.
        self._decoy = self._argon2.hash(secrets.token_hex(16))

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash or self._decoy, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False


class Tokens:
    """Opaque login tokens kept in the shared cache with a TTL, so any worker accepts them."""

    def __init__(self, cache: Cache, ttl_seconds: int):
        self._cache = cache
        self.ttl_seconds = ttl_seconds

    def issue(self, member_id: int, role: str) -> str:
        token = secrets.token_urlsafe(32)
        value = json.dumps({"m": member_id, "r": role})
        self._cache.set(self._key(token), value, self.ttl_seconds)
        return token

    def resolve(self, token: str) -> Principal | None:
        if not token or len(token) > 128:
            return None
        value = self._cache.get(self._key(token))
        if value is None:
            return None
        data = json.loads(value)
        return Principal(member_id=data["m"], role=data["r"], token=token)

    def revoke(self, token: str) -> None:
        self._cache.delete(self._key(token))

    @staticmethod
    def _key(token: str) -> str:
        return f"token:{token}"


def mask_mobile(mobile: str) -> str:
    """138****5678: enough for the owner to recognise, useless to anyone else."""
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) >= 8 else "****"
