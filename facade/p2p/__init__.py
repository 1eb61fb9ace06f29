"""The p2p module's contract: LoanFacade, composed of its groups of operations."""

from facade.contract import Facade
from facade.p2p.investing import InvestingOperations
from facade.p2p.loan import NS, ListingOperations
from facade.p2p.repayment import RepaymentOperations


class LoanFacade(ListingOperations, InvestingOperations, RepaymentOperations, Facade):
    """Loan listings (标的): operators publish, modify and audit them; anyone may browse."""

    namespace = NS
    service = "service.p2p:LoanService"


__all__ = ["LoanFacade"]
