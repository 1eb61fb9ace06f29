"""FundFacade: the original platform's one-operation ``fund`` module, kept for partners who
still call it. Deprecated: MemberFacade.getFundAccount tells the same and more."""

from spyne import Boolean, ComplexModel

from facade.contract import BORROWER, GET, INVESTOR, Facade, operation
from facade.types import required

NS = "http://p2p.hry.com/facade/fund"


class FundAccountFlagDto(ComplexModel):
    """Whether the caller has a fund account."""

    __namespace__ = NS
    _type_info = [
        ("hasFundAccount", required(Boolean, "true once the depository account is open.")),
    ]


class FundFacade(Facade):
    """Deprecated: whether the caller has a fund account; use MemberFacade.getFundAccount."""

    namespace = NS
    service = "service.member:MemberService"

    @operation(
        rest=GET("/fund/account-exists"),
        returns=FundAccountFlagDto,
        roles=[INVESTOR, BORROWER],
        deprecated=True,
        errors=("MEMBER_NOT_FOUND",),
    )
    def hasFundAccount():
        """Deprecated, use MemberFacade.getFundAccount: true when the caller has opened a
        fund account at the depository."""
