"""The platform's bank orders (CREATED -> SENT -> ACCEPTED -> SUCCEEDED | FAILED, UNKNOWN,
REVERSED), one object: created with the business change that needs them
(service/ocp/machine.py), sent by the ``bank.send`` job (sending.py), settled by the bank's
notifications (notifications.py) and, on doubt, by the ``bank.query_due`` job (queries.py);
batch items (DISBURSE, REPAY) are written and sent by batch (batches.py).
Built by the composition root when ``payment.gateway`` is BANK (the "bank" component)."""

from service.ocp.batches import SEND_BATCH_JOB, Item, item_fields
from service.ocp.machine import SEND_JOB, BankResult, Effects, new_order_no
from service.ocp.notifications import Acknowledgement, NotificationOperations, NotificationRefused
from service.ocp.queries import QUERY_JOB, QueryOperations
from service.ocp.sending import SendOperations


class BankOrders(SendOperations, QueryOperations, NotificationOperations):
    """The bank order machinery, composed of its parts."""


__all__ = [
    "QUERY_JOB",
    "SEND_BATCH_JOB",
    "SEND_JOB",
    "Acknowledgement",
    "BankOrders",
    "BankResult",
    "Effects",
    "Item",
    "NotificationRefused",
    "item_fields",
    "new_order_no",
]
