"""MemberFacade's promotion operations (推广信息): invite codes and whom a member invited."""

from spyne import Boolean, ComplexModel, DateTime, Long, Unicode

from facade.contract import BORROWER, GET, INVESTOR, operation
from facade.member.account import NS
from facade.types import Money, PageParam, PageSizeParam, page_fields, required


class PromotionDto(ComplexModel):
    """The caller's invite code and how many registered with it."""

    __namespace__ = NS
    _type_info = [
        ("inviteCode", required(Unicode, "Give it to friends; they enter it on registering.")),
        ("invitedCount", required(Long(ge=0), "Members who registered with it.")),
    ]


class InviteeDto(ComplexModel):
    """A member the caller invited; their number is masked."""

    __namespace__ = NS
    _type_info = [
        ("mobile", required(Unicode, "Masked: 138****5678.")),
        ("registeredAt", required(DateTime, "When they registered (UTC).")),
        ("identityVerified", required(Boolean, "true once their real name is verified.")),
        (
            "rewards",
            required(
                Money,
                "Referral rewards their investments earned you, yuan (owed once each "
                "investment is lent).",
            ),
        ),
    ]


class InviteePageDto(ComplexModel):
    """One page of the members the caller invited."""

    __namespace__ = NS
    _type_info = page_fields(InviteeDto, "Invited members on this page, newest first.")


class PromotionOperations:
    """Inviting others."""

    @operation(
        rest=GET("/members/current/promotion"),
        returns=PromotionDto,
        roles=[INVESTOR, BORROWER],
        errors=("MEMBER_NOT_FOUND",),
    )
    def getPromotion():
        """Your invite code and how many members registered with it."""

    @operation(
        rest=GET("/members/current/invitees"),
        returns=InviteePageDto,
        roles=[INVESTOR, BORROWER],
        errors=("MEMBER_NOT_FOUND",),
    )
    def listInvitees(page: PageParam, pageSize: PageSizeParam):
        """The members who registered with your invite code, newest first, paged."""
