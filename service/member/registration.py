"""Registration and password reset, both proven by a code sent to the mobile number; investors
and borrowers sign themselves up (or a partner app signs an investor up for them, joint
registration), operators come from the ``p2p create-operator`` command.

The order of a registration's checks is chosen so that no refusal found without the code
spends it: everything cheap first (role, number, password, invite code, a number already
taken), then the code, then the slow Argon2id hash (a wrong code costs no hashing), then the
insert. A password reset answers for an unknown or disabled number exactly as for a
registered one: the same throttle, the same errors, the same work.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from dao.cache import CacheError
from dao.member import MemberEntity
from service import errors
from service.errors import BusinessError, invalid
from service.mapping import to_vo
from service.member.base import MemberBase, check_mobile, check_password
from service.member.promotion import INVITING_ROLES, new_invite_code
from service.pii import mask_mobile
from service.transaction import transactional
from service.verification import PURPOSES, REGISTER, RESET_PASSWORD

SELF_SERVICE_ROLES = ("INVESTOR", "BORROWER")
# Fresh invite codes tried when the one drawn is taken; 40 random bits make even a second try
# rare until there are hundreds of millions of members.
INVITE_CODE_TRIES = 5


class _InviteCodeTaken(Exception):
    """The invite code drawn for a new member is another's: roll back, draw again."""


@dataclass(frozen=True)
class VerificationCodeRequest:
    mobile: str
    purpose: str


@dataclass(frozen=True)
class CodeSentVo:
    expires_in: int
    resend_after: int


@dataclass(frozen=True)
class RegisterRequest:
    mobile: str
    password: str
    role: str
    verification_code: str
    invite_code: str | None = None


@dataclass(frozen=True)
class ResetPasswordRequest:
    mobile: str
    verification_code: str
    new_password: str


@dataclass(frozen=True)
class MemberVo:
    member_id: int
    mobile: str
    role: str
    created_at: datetime
    invite_code: str | None  # the member's own, to share; operators have none


def _member_vo(entity: MemberEntity) -> MemberVo:
    return to_vo(MemberVo, entity, member_id=entity.id, mobile=mask_mobile(entity.mobile))


def _code_invalid() -> BusinessError:
    """What a reset for an unknown number is told: the words of a wrong code."""
    return BusinessError(errors.VERIFICATION_CODE_INVALID, "verificationCode: the code is wrong")


class RegistrationOperations(MemberBase):
    # -- verification codes ---------------------------------------------------------------
    def send_verification_code(self, request: VerificationCodeRequest) -> CodeSentVo:
        """REGISTER: MOBILE_TAKEN for a registered number, before any throttle is spent.
        RESET_PASSWORD: an unknown or disabled number spends the throttle and gets a code
        stored like a registered one, only nothing is delivered (VerificationCodes.send), so
        neither the answer nor the next answers tell whether the number is registered."""
        check_mobile(request.mobile)
        if request.purpose not in PURPOSES:
            raise invalid("purpose", "must be REGISTER or RESET_PASSWORD")
        if request.purpose == REGISTER:
            if self._mobile_taken(request.mobile):
                raise BusinessError(errors.MOBILE_TAKEN)
            sent = self._codes.send(request.mobile, REGISTER)
        else:
            known = self._active_member_id(request.mobile) is not None
            sent = self._codes.send(request.mobile, RESET_PASSWORD, deliver=known)
        return CodeSentVo(sent.expires_in, sent.resend_after)

    # -- registration -----------------------------------------------------------------------
    def register(self, request: RegisterRequest) -> MemberVo:
        if request.role not in SELF_SERVICE_ROLES:
            raise invalid("role", "must be INVESTOR or BORROWER")
        check_mobile(request.mobile)
        check_password(request.password)
        invite_code = request.invite_code.strip().upper() if request.invite_code else None
        referrer_id = self._check_signup(request.mobile, invite_code)
        self._codes.consume(request.mobile, REGISTER, request.verification_code, "verificationCode")
        # Hash outside the transaction: it is slow on purpose and holds no lock.
        password_hash = self._passwords.hash(request.password)
        for _ in range(INVITE_CODE_TRIES):
            try:
                return self._insert(
                    request.mobile, password_hash, request.role, new_invite_code(), referrer_id
                )
            except _InviteCodeTaken:
                continue  # a new transaction, a new code: the registration goes on
        raise BusinessError(
            errors.SERVICE_UNAVAILABLE, "no free invite code: ask for a new code and try again"
        )

    def register_attributed(
        self, mobile: str, verification_code: str, attribute: Callable[[MemberEntity], None]
    ) -> MemberVo:
        """An INVESTOR signed up by a partner app for the member (joint registration), proven
        by the REGISTER code sent to the member's mobile, with no password anyone knows: the
        member sets one with resetPassword and completes onboarding on the platform.
        ``attribute`` writes the member's attribution in the registration's transaction,
        before the lifecycle is told."""
        check_mobile(mobile)
        self._check_signup(mobile, None)
        self._codes.consume(mobile, REGISTER, verification_code, "verificationCode")
        password_hash = self._passwords.hash(secrets.token_urlsafe(32))
        for _ in range(INVITE_CODE_TRIES):
            try:
                return self._insert(
                    mobile, password_hash, "INVESTOR", new_invite_code(), None, attribute
                )
            except _InviteCodeTaken:
                continue
        raise BusinessError(
            errors.SERVICE_UNAVAILABLE, "no free invite code: ask for a new code and try again"
        )

    def create_operator(self, mobile: str, password: str) -> MemberVo:
        """An operator account; only the ``p2p create-operator`` command calls this.
        Operators do not invite: they get no invite code."""
        check_mobile(mobile)
        check_password(password)
        return self._insert(mobile, self._passwords.hash(password), "OPERATOR", None, None)

    @transactional(read_only=True)
    def _check_signup(self, mobile: str, invite_code: str | None) -> int | None:
        """MOBILE_TAKEN or INVITE_CODE_INVALID before the code is spent; the referrer's id."""
        if self._members.find_by_mobile(mobile) is not None:
            raise BusinessError(errors.MOBILE_TAKEN)
        if invite_code is None:
            return None
        referrer = self._members.find_by_invite_code(invite_code)
        if referrer is None or referrer.role not in INVITING_ROLES:
            raise BusinessError(errors.INVITE_CODE_INVALID)
        return referrer.id

    @transactional
    def _insert(
        self,
        mobile: str,
        password_hash: str,
        role: str,
        invite_code: str | None,
        referrer_id: int | None,
        attribute: Callable[[MemberEntity], None] | None = None,
    ) -> MemberVo:
        if self._members.find_by_mobile(mobile) is not None:
            raise BusinessError(errors.MOBILE_TAKEN)
        entity = MemberEntity(
            mobile=mobile,
            password_hash=password_hash,
            role=role,
            invite_code=invite_code,
            referrer_id=referrer_id,
        )
        try:
            self._members.add(entity)
        except IntegrityError as e:
            # The statement's error names the violated column (the message is never shown:
            # it quotes the values, the mobile number among them).
            if "invite_code" in str(e.orig):
                raise _InviteCodeTaken from None
            # a concurrent registration of the same number won the race
            raise BusinessError(errors.MOBILE_TAKEN) from None
        self._ledger.open_account(entity.id)
        if attribute is not None:
            attribute(entity)
        if role != "OPERATOR":
            self._lifecycle.member_registered(entity)
        return _member_vo(entity)

    # -- password reset ---------------------------------------------------------------------
    def reset_password(self, request: ResetPasswordRequest) -> None:
        """The policy first (a weak password spends no code), then the code; an unknown or
        disabled number fails as a wrong code does, after the same work. Then every token and
        the SOAP API secret of the member end, and so does a lockout of the number."""
        check_mobile(request.mobile)
        check_password(request.new_password, "newPassword")
        self._codes.consume(
            request.mobile, RESET_PASSWORD, request.verification_code, "verificationCode"
        )
        password_hash = self._passwords.hash(request.new_password)
        member_id = self._store_reset(request.mobile, password_hash)
        if member_id is None:
            raise _code_invalid()
        try:
            self._tokens.revoke_member(member_id)
        except CacheError:
            raise BusinessError(
                errors.SERVICE_UNAVAILABLE,
                "the new password is set, but other sessions could not be ended: reset again",
            ) from None
        self._lockout.succeeded(request.mobile)

    @transactional
    def _store_reset(self, mobile: str, password_hash: str) -> int | None:
        """The new hash, and no API secret, for the active member of `mobile`; their id."""
        entity = self._members.find_by_mobile(mobile)
        if entity is None or entity.status != "ACTIVE":
            return None
        entity.password_hash = password_hash
        entity.api_secret_sealed = None
        return entity.id

    # -- look-ups ---------------------------------------------------------------------------
    @transactional(read_only=True)
    def _mobile_taken(self, mobile: str) -> bool:
        return self._members.find_by_mobile(mobile) is not None

    @transactional(read_only=True)
    def _active_member_id(self, mobile: str) -> int | None:
        entity = self._members.find_by_mobile(mobile)
        return entity.id if entity is not None and entity.status == "ACTIVE" else None
