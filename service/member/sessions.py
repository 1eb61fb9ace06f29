"""Members' sessions: login, refresh, logout, password change, SOAP API secrets, and the
authentication every call relies on.

Callers prove who they are with a login token, a WS-Security UsernameToken with the login
password (PasswordText), or one with a PasswordDigest made from the member's API secret (see
service/wsse.py for why a digest cannot use the Argon2id-hashed password).
"""

from dataclasses import dataclass

from service import errors
from service.errors import BusinessError, invalid
from service.member.base import MemberBase, check_password
from service.security import Principal, RefreshRefused, TokenPair
from service.transaction import transactional
from service.wsse import PasswordDigest


@dataclass(frozen=True)
class LoginRequest:
    mobile: str
    password: str


@dataclass(frozen=True)
class RefreshRequest:
    refresh_token: str


@dataclass(frozen=True)
class ChangePasswordRequest:
    old_password: str
    new_password: str


@dataclass(frozen=True)
class ApiSecretRequest:
    password: str


@dataclass(frozen=True)
class ApiSecretVo:
    api_secret: str
    username: str
    max_skew_seconds: int


@dataclass(frozen=True)
class TokenVo:
    token: str
    expires_in: int
    member_id: int
    role: str
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


def _token_vo(pair: TokenPair, member_id: int, role: str) -> TokenVo:
    return TokenVo(pair.access, pair.access_ttl, member_id, role, pair.refresh, pair.refresh_ttl)


class SessionOperations(MemberBase):
    def login(self, request: LoginRequest) -> TokenVo:
        principal = self._verify(request.mobile, request.password, errors.LOGIN_FAILED)
        pair = self._tokens.issue(principal.member_id, principal.role)
        return _token_vo(pair, principal.member_id, principal.role)

    def logout(self, caller: Principal) -> None:
        """Ends the session: the access token and its refresh token (its whole family)."""
        if caller.token:
            self._tokens.revoke(caller.token)

    def refresh_token(self, request: RefreshRequest) -> TokenVo:
        """Rotate: a new pair in the same family; the refresh token is good once. A reused one
        revokes the family (Tokens.redeem). The member must still be active."""
        try:
            member_id, _, family = self._tokens.redeem(request.refresh_token)
        except RefreshRefused as e:
            why = "the refresh token was already used" if e.reused else "invalid or expired"
            raise BusinessError(errors.UNAUTHENTICATED, f"refresh token: {why}") from None
        found = self._member_role(member_id)
        if found is None:
            self._tokens.revoke_family(family)
            raise BusinessError(errors.UNAUTHENTICATED, "refresh token: invalid or expired")
        return _token_vo(self._tokens.issue(member_id, found, family), member_id, found)

    def change_password(self, request: ChangePasswordRequest, caller: Principal) -> None:
        """Check the old password (it counts toward the lockout like a login), apply the
        policy, store a new Argon2id hash and revoke every token of the member, the caller's
        too: every session logs in again with the new password."""
        found = self._credentials(caller.member_id)
        self._check_caller_password(found, request.old_password)
        check_password(request.new_password, "newPassword")
        if request.new_password == request.old_password:
            raise invalid("newPassword", "must differ from the old password")
        password_hash = self._passwords.hash(request.new_password)
        self._store_password(caller.member_id, password_hash)
        self._tokens.revoke_member(caller.member_id)

    def _check_caller_password(self, found: tuple[str, str] | None, password: str) -> None:
        """The signed-in member's password, asked again; a failure counts toward the lockout
        of their mobile number."""
        mobile = found[0] if found else ""
        attempt = self._lockout.attempt(mobile)
        if not self._passwords.verify(found[1] if found else None, password) or found is None:
            raise self._lockout.failed(mobile, attempt, errors.LOGIN_FAILED)
        self._lockout.succeeded(mobile)

    @transactional
    def _store_password(self, member_id: int, password_hash: str) -> None:
        entity = self._members.get(member_id)
        if entity is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        entity.password_hash = password_hash

    @transactional(read_only=True)
    def _member_role(self, member_id: int) -> str | None:
        entity = self._members.get(member_id)
        return entity.role if entity is not None and entity.status == "ACTIVE" else None

    # -- the SOAP API secret (WS-Security PasswordDigest) -------------------------------
    def rotate_api_secret(self, request: ApiSecretRequest, caller: Principal) -> ApiSecretVo:
        """Issue the caller a new API secret, replacing any former one at once; the login
        password is asked again, so a stolen token cannot mint a lasting credential. The
        secret is returned here only: it is stored sealed and never shown again."""
        found = self._credentials(caller.member_id)
        self._check_caller_password(found, request.password)
        secret, sealed = self._api_secrets.issue(caller.member_id)
        self._store_api_secret(caller.member_id, sealed)
        return ApiSecretVo(secret, found[0], self._api_secrets.max_skew_seconds)

    def revoke_api_secret(self, caller: Principal) -> None:
        """PasswordDigest stops working for the caller at once."""
        self._store_api_secret(caller.member_id, None)

    @transactional(read_only=True)
    def _credentials(self, member_id: int) -> tuple[str, str] | None:
        entity = self._members.get(member_id)
        if entity is None or entity.status != "ACTIVE":
            return None
        return entity.mobile, entity.password_hash

    @transactional
    def _store_api_secret(self, member_id: int, sealed: str | None) -> None:
        entity = self._members.get(member_id)
        if entity is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        entity.api_secret_sealed = sealed

    # -- authentication, for the dispatcher ---------------------------------------------
    def authenticate_token(self, token: str) -> Principal:
        principal = self._tokens.resolve(token)
        if principal is None:
            raise BusinessError(errors.UNAUTHENTICATED, "the token is invalid or has expired")
        return principal

    def authenticate_password(self, mobile: str, password: str) -> Principal:
        return self._verify(mobile, password, errors.UNAUTHENTICATED)

    def authenticate_digest(self, mobile: str, token: PasswordDigest) -> Principal:
        checked = self._api_secrets.check(token)  # form and freshness, before any look-up
        found = self._find_api_secret(mobile)
        secret = self._api_secrets.open(found[0], found[2]) if found else None
        self._api_secrets.verify(checked, found[0] if found else None, secret)
        return Principal(member_id=found[0], role=found[1])

    @transactional(read_only=True)
    def _find_api_secret(self, mobile: str) -> tuple[int, str, str | None] | None:
        entity = self._members.find_by_mobile(mobile)
        if entity is None or entity.status != "ACTIVE":
            return None
        return entity.id, entity.role, entity.api_secret_sealed

    def _verify(self, mobile: str, password: str, failure) -> Principal:
        """Mobile number and password, behind the lockout: a locked number is refused before
        any look-up; unknown numbers count like known ones."""
        attempt = self._lockout.attempt(mobile)
        found = self._find_active(mobile)
        stored_hash = found[2] if found else None
        if not self._passwords.verify(stored_hash, password) or found is None:
            raise self._lockout.failed(mobile, attempt, failure)
        self._lockout.succeeded(mobile)
        if self._passwords.needs_rehash(found[2]):
            self._rehash(found[0], found[2], password)
        return Principal(member_id=found[0], role=found[1])

    def _rehash(self, member_id: int, checked_hash: str, password: str) -> None:
        """The password just proven, hashed again with today's parameters (the settings
        changed since it was stored). Stored only over the hash that was checked: a password
        changed meanwhile stays changed."""
        self._replace_password_hash(member_id, checked_hash, self._passwords.hash(password))

    @transactional
    def _replace_password_hash(self, member_id: int, checked_hash: str, new_hash: str) -> None:
        self._members.replace_password_hash(member_id, checked_hash, new_hash)

    @transactional(read_only=True)
    def _find_active(self, mobile: str) -> tuple[int, str, str] | None:
        entity = self._members.find_by_mobile(mobile)
        if entity is None or entity.status != "ACTIVE":
            return None
        return entity.id, entity.role, entity.password_hash
