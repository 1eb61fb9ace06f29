"""The p2p module's contract: LoanFacade, composed of its groups of operations."""

from facade.contract import Facade
from facade.p2p.loan import NS, ListingOperations


class LoanFacade(ListingOperations, Facade):
    """Loan listings (标的): operators publish, modify and audit them; anyone may browse."""

    namespace = NS
    service = "service.p2p:LoanService"


__all__ = ["LoanFacade"]
