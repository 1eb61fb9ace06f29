"""The member module's contract: MemberFacade, composed of its groups of operations."""

from facade.contract import Facade
from facade.member.account import NS, AccountOperations
from facade.member.cards import CardOperations
from facade.member.fund import FundAccountOperations
from facade.member.partners import PartnerAuthorisationOperations
from facade.member.profile import ProfileOperations
from facade.member.promotion import PromotionOperations


class MemberFacade(
    AccountOperations,
    ProfileOperations,
    CardOperations,
    FundAccountOperations,
    PromotionOperations,
    PartnerAuthorisationOperations,
    Facade,
):
    """Members of the platform: investors, borrowers and operators."""

    namespace = NS
    service = "service.member:MemberService"


__all__ = ["MemberFacade"]
