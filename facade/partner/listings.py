"""The listings a partner may show on its site: RAISING listings, without personal data."""

from spyne import ComplexModel, DateTime, Integer32, Long, Unicode

from facade.contract import GET, operation
from facade.p2p.loan import RepaymentMethod
from facade.types import Money, PageParam, PageSizeParam, Rate, optional, page_fields, required

NS = "http://p2p.hry.com/facade/partner"
#: The scope every operation of this group needs (service/partner/scopes.py).
LISTING_READ = "LISTING_READ"
#: Calls a minute and burst of each app for each operation here, beyond the app's own limit.
LISTING_RATE = (600, 60)


class PartnerListingDto(ComplexModel):
    """A listing open for investment, as a partner may show it: its terms and progress, never
    the borrower or the description they wrote."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "Listing id, as LoanFacade names it.")),
        ("title", required(Unicode, "Title.")),
        ("amount", required(Money, "Amount to raise, in yuan.")),
        ("raised", required(Money, "Amount invested so far, in yuan.")),
        ("annualRate", required(Rate, "Yearly rate as a percentage.")),
        ("termMonths", required(Integer32, "Term in months.")),
        ("repaymentMethod", required(RepaymentMethod, "How the borrower repays.")),
        ("minInvest", required(Money, "Smallest investment.")),
        ("maxInvestPerInvestor", optional(Money, "Most one investor may put in; absent: no cap.")),
        ("raiseDeadline", required(DateTime, "When raising ends (UTC).")),
    ]


class PartnerListingPageDto(ComplexModel):
    """One page of the listings open for investment."""

    __namespace__ = NS
    _type_info = page_fields(PartnerListingDto, "The listings on this page.")


class PartnerListingOperations:
    """The listings open for investment (scope LISTING_READ)."""

    @operation(
        rest=GET("/partner/listings"),
        returns=PartnerListingPageDto,
        partner_scope=LISTING_READ,
        partner_rate=LISTING_RATE,
    )
    def listPartnerListings(page: PageParam, pageSize: PageSizeParam):
        """The listings open for investment (RAISING), newest first, paged: terms and progress
        only, never the borrower. Signed partner call, scope LISTING_READ."""

    @operation(
        rest=GET("/partner/listings/{loanId}"),
        returns=PartnerListingDto,
        errors=("LOAN_NOT_FOUND",),
        partner_scope=LISTING_READ,
        partner_rate=LISTING_RATE,
    )
    def getPartnerListing(loanId: required(Long(ge=1), "Listing id.")):
        """One listing open for investment, by id; LOAN_NOT_FOUND for any listing that is not
        RAISING, exactly as for one that does not exist. Signed partner call, scope
        LISTING_READ."""
