"""Who a member is: their own profile, real-name verification (实名认证) and the operators'
masked view of a member.

The name and ID number are stored sealed to the member (service/pii.py) and the ID number's
keyed hash keeps one ID number to one member; the member sees them in full, operators masked.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from dao.member import MemberEntity
from service import errors, pii
from service.errors import BusinessError
from service.mapping import to_vo
from service.member.base import MemberBase
from service.security import Principal
from service.transaction import transactional


@dataclass(frozen=True)
class IdentityRequest:
    # repr=False here and below: personal data stays out of every repr, so of every log line
    # and traceback that shows one.
    real_name: str = field(repr=False)
    id_number: str = field(repr=False)


@dataclass(frozen=True)
class ProfileVo:
    member_id: int
    mobile: str = field(repr=False)
    role: str
    created_at: datetime
    identity_verified: bool
    real_name: str | None = field(repr=False)
    id_number: str | None = field(repr=False)
    identity_verified_at: datetime | None
    fund_account_open: bool
    invite_code: str | None


class ProfileOperations(MemberBase):
    @transactional(read_only=True)
    def get_profile(self, caller: Principal) -> ProfileVo:
        member = self._member(caller.member_id)
        return self._profile_vo(member, masked=False)

    @transactional
    def verify_identity(self, request: IdentityRequest, caller: Principal) -> ProfileVo:
        box = self._pii  # SERVICE_UNAVAILABLE first: without the key nothing can be stored
        name = pii.real_name(request.real_name)
        resident = pii.resident_id(request.id_number)
        pii.check_adult(resident.birth_date, pii.china_today(self._clock()))
        id_hash = box.lookup_hash(pii.ID_NUMBER, resident.number)
        # The row lock makes a member's verifications take turns: the second sees the first.
        member = self._members.lock(caller.member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        if member.identity_verified_at is not None:
            raise BusinessError(errors.IDENTITY_ALREADY_VERIFIED)
        if self._members.find_by_id_number_hash(id_hash) is not None:
            raise BusinessError(errors.ID_NUMBER_TAKEN)
        member.real_name_sealed = box.seal(pii.REAL_NAME, name, member.id)
        member.id_number_sealed = box.seal(pii.ID_NUMBER, resident.number, member.id)
        member.id_number_hash = id_hash
        member.identity_verified_at = self._clock()
        try:
            self.tx.session().flush()
        except IntegrityError:  # another member verified the same number at the same moment
            raise BusinessError(errors.ID_NUMBER_TAKEN) from None
        return self._profile_vo(member, masked=False)

    @transactional(read_only=True)
    def get_member(self, member_id: int) -> ProfileVo:
        """Operators only (the facade's roles): personal data masked."""
        member = self._member(member_id)
        return self._profile_vo(member, masked=True)

    @transactional(read_only=True)
    def find_member_by_mobile(self, mobile: str) -> ProfileVo:
        """Operators only (the facade's roles): personal data masked. The error names no
        number: the mobile is personal data."""
        member = self._members.find_by_mobile(mobile)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND, "no member has this mobile number")
        return self._profile_vo(member, masked=True)

    def _member(self, member_id: int) -> MemberEntity:
        member = self._members.get(member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND, f"member {member_id} does not exist")
        return member

    def _profile_vo(self, member: MemberEntity, *, masked: bool) -> ProfileVo:
        name = id_number = None
        if member.identity_verified_at is not None:
            name = self._pii.open(pii.REAL_NAME, member.real_name_sealed, member.id)
            id_number = self._pii.open(pii.ID_NUMBER, member.id_number_sealed, member.id)
            if masked:
                name, id_number = pii.mask_name(name), pii.mask_id_number(id_number)
        return to_vo(
            ProfileVo,
            member,
            member_id=member.id,
            mobile=pii.mask_mobile(member.mobile) if masked else member.mobile,
            identity_verified=member.identity_verified_at is not None,
            real_name=name,
            id_number=id_number,
            fund_account_open=member.fund_account_no is not None,
        )
