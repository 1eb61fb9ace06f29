"""The p2p module: loan listings, investing, disbursement and repayment (LoanFacade)."""

from service.p2p.hotlisting import HotListing
from service.p2p.listing import AuditRequest, ListingService, LoanRequest, LoanVo
from service.p2p.repayment import RepaymentService


class LoanService(ListingService, HotListing, RepaymentService):
    """LoanFacade's implementation, composed of the module's parts."""


__all__ = ["AuditRequest", "LoanRequest", "LoanService", "LoanVo"]
