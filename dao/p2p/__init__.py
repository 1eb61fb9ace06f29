"""The p2p module's tables: listings, investments and repayment plans."""

from dao.p2p.investment import INVESTMENT_STATUSES, InvestmentEntity, InvestmentRepository
from dao.p2p.loan import (
    LOAN_STATUSES,
    MAX_ANNUAL_RATE,
    RATE_SCALE,
    REPAYMENT_METHODS,
    LoanEntity,
    LoanRepository,
)
from dao.p2p.plan import (
    INSTALLMENT_STATUSES,
    RECEIPT_STATUSES,
    InstallmentEntity,
    PlanRepository,
    ReceiptEntity,
)

__all__ = [
    "INSTALLMENT_STATUSES",
    "INVESTMENT_STATUSES",
    "LOAN_STATUSES",
    "MAX_ANNUAL_RATE",
    "RATE_SCALE",
    "RECEIPT_STATUSES",
    "REPAYMENT_METHODS",
    "InstallmentEntity",
    "InvestmentEntity",
    "InvestmentRepository",
    "LoanEntity",
    "LoanRepository",
    "PlanRepository",
    "ReceiptEntity",
]
