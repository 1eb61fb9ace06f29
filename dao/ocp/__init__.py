"""The depository bank's orders as the platform keeps them: the orders themselves, the evidence
of every exchange with the bank, and the notifications it sent (service/ocp/ runs them)."""

from dao.ocp.batch import (
    BATCH_STATUSES,
    BATCH_TYPES,
    BankBatchEntity,
    BankBatchRepository,
)
from dao.ocp.evidence import (
    EVIDENCE_KINDS,
    NOTIFICATION_OUTCOMES,
    BankEvidenceEntity,
    BankNotificationEntity,
    EvidenceRepository,
)
from dao.ocp.order import (
    BANK_ORDER_STATUSES,
    BANK_ORDER_TYPES,
    FINAL_STATUSES,
    OPEN_STATUSES,
    QUERIED_STATUSES,
    BankOrderEntity,
    BankOrderRepository,
)

__all__ = [
    "BANK_ORDER_STATUSES",
    "BANK_ORDER_TYPES",
    "BATCH_STATUSES",
    "BATCH_TYPES",
    "EVIDENCE_KINDS",
    "FINAL_STATUSES",
    "NOTIFICATION_OUTCOMES",
    "OPEN_STATUSES",
    "QUERIED_STATUSES",
    "BankBatchEntity",
    "BankBatchRepository",
    "BankEvidenceEntity",
    "BankNotificationEntity",
    "BankOrderEntity",
    "BankOrderRepository",
    "EvidenceRepository",
]
