"""The p2p module: loan listings, investing, disbursement and repayment (LoanFacade)."""

from service.p2p.listing import AuditRequest, ListingService, LoanPageVo, LoanRequest, LoanVo


class LoanService(ListingService):
    """LoanFacade's implementation, composed of the module's parts."""


__all__ = ["AuditRequest", "LoanPageVo", "LoanRequest", "LoanService", "LoanVo"]
