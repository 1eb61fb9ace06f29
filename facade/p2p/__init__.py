"""The p2p module's contract: LoanFacade and its DTOs."""

from facade.p2p.loan import (
    AuditRequest,
    LoanDto,
    LoanFacade,
    LoanPageDto,
    LoanRequest,
    LoanStatus,
    RepaymentMethod,
)

__all__ = [
    "AuditRequest",
    "LoanDto",
    "LoanFacade",
    "LoanPageDto",
    "LoanRequest",
    "LoanStatus",
    "RepaymentMethod",
]
