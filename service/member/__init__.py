"""The member module: registration, sessions, real-name identity, bank cards, promotion, the
partner app a member authorised, and the depository fund account (MemberFacade, and the
deprecated FundFacade)."""

from service.member.cards import BankCardVo, BindCardRequest, CardOperations
from service.member.fund import FundAccountFlagVo, FundAccountOperations, FundAccountVo
from service.member.partners import PartnerAuthorisationOperations
from service.member.profile import IdentityRequest, ProfileOperations, ProfileVo
from service.member.promotion import InviteeVo, PromotionOperations, PromotionVo
from service.member.registration import (
    CodeSentVo,
    MemberVo,
    RegisterRequest,
    RegistrationOperations,
    ResetPasswordRequest,
    VerificationCodeRequest,
)
from service.member.sessions import (
    ApiSecretRequest,
    ChangePasswordRequest,
    LoginRequest,
    RefreshRequest,
    SessionOperations,
    TokenVo,
)


class MemberService(
    RegistrationOperations,
    SessionOperations,
    ProfileOperations,
    CardOperations,
    FundAccountOperations,
    PromotionOperations,
    PartnerAuthorisationOperations,
):
    """MemberFacade's (and FundFacade's) implementation, composed of the module's parts."""


__all__ = [
    "ApiSecretRequest",
    "BankCardVo",
    "BindCardRequest",
    "ChangePasswordRequest",
    "CodeSentVo",
    "FundAccountFlagVo",
    "FundAccountVo",
    "IdentityRequest",
    "InviteeVo",
    "LoginRequest",
    "MemberService",
    "MemberVo",
    "ProfileVo",
    "PromotionVo",
    "RefreshRequest",
    "RegisterRequest",
    "ResetPasswordRequest",
    "TokenVo",
    "VerificationCodeRequest",
]
