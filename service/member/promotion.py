"""Promotion (推广信息): each member's invite code and the members who registered with it.

Investors and borrowers get an invite code when they register; operators do not invite and
have none (the promotion operations are for investors and borrowers only). Each invitee is
listed with the referral rewards their investments earned the caller (service/loyalty/
referral.py: those owed once the investment was lent).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dao.loyalty import LoyaltyRepository
from dao.member import MemberEntity
from service import errors
from service.errors import BusinessError
from service.member.base import MemberBase
from service.paging import PageVo, page_window
from service.pii import mask_mobile
from service.security import Principal
from service.transaction import transactional

# No 0/O, 1/I: a code read aloud or copied from a screen is not mistaken. Migration 0007
# backfilled existing members' codes with this alphabet.
INVITE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
INVITE_LENGTH = 8
INVITING_ROLES = ("INVESTOR", "BORROWER")


def new_invite_code() -> str:
    """A random invite code (40 bits); the UNIQUE column decides a rare collision."""
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))


@dataclass(frozen=True)
class PromotionVo:
    invite_code: str
    invited_count: int


@dataclass(frozen=True)
class InviteeVo:
    mobile: str
    registered_at: datetime
    identity_verified: bool
    #: What the invitee's investments earned the inviter in referral rewards.
    rewards: Decimal


def _invitee_vo(entity: MemberEntity, rewards: Decimal) -> InviteeVo:
    return InviteeVo(
        mask_mobile(entity.mobile),
        entity.created_at,
        entity.identity_verified_at is not None,
        rewards,
    )


class PromotionOperations(MemberBase):
    @transactional(read_only=True)
    def get_promotion(self, caller: Principal) -> PromotionVo:
        inviter = self._inviter(caller)
        return PromotionVo(inviter.invite_code, self._members.count_invitees(inviter.id))

    @transactional(read_only=True)
    def list_invitees(
        self, caller: Principal, page: int | None = None, page_size: int | None = None
    ) -> PageVo[InviteeVo]:
        """The caller's invitees only, newest first; their numbers masked."""
        page, page_size = page_window(page, page_size, self._settings.api)
        inviter = self._inviter(caller)
        rows, total = self._members.invitees(
            inviter.id, offset=(page - 1) * page_size, limit=page_size
        )
        earned = LoyaltyRepository(self.tx.session).reward_totals(inviter.id, [r.id for r in rows])
        zero = Decimal("0.00")
        items = tuple(_invitee_vo(r, earned.get(r.id, zero)) for r in rows)
        return PageVo(items, total, page, page_size)

    def _inviter(self, caller: Principal) -> MemberEntity:
        member = self._members.get(caller.member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        if member.role not in INVITING_ROLES:
            raise BusinessError(errors.FORBIDDEN, "only investors and borrowers invite")
        return member
