"""The bank's notifications, once their signature, merchant and timestamp have been verified
(server/banknotify.py): recorded, applied exactly once with their business effect, and only
then acknowledged, all in one transaction.

A notifyId is accepted once (bank_notification): a delivery of an event already taken is
acknowledged again and changes nothing if its content (all but the timestamp) is the same, and
refused if it is not. A new event is recorded as evidence and applied to its order, its row
locked (service/ocp/machine.py: a query answer racing it for the same order finds its status).
It changes the order, confirms what is known, or conflicts with it (alerted, acknowledged so
the bank stops retrying: a person looks). Refused, never acknowledged, so that the bank keeps
retrying and the alert stays visible: a notification for an order the platform does not have,
one whose amount or order type differs from the order's (kept as evidence, alerted), and a
reused notifyId with other content.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from dao.ocp import BankNotificationEntity, BankOrderEntity
from service.ocp import protocol
from service.ocp.evidence import Message
from service.ocp.machine import MISMATCH, BankResult, OrderMachine
from service.transaction import RetryTransaction, transactional

log = logging.getLogger("service.ocp")

REFUSED = "REFUSED"


class NotificationRefused(Exception):
    """A verified notification the platform does not acknowledge; ``outcome`` is its label
    in p2p_bank_notifications_total, ``http_status`` the answer's status."""

    def __init__(self, outcome: str, http_status: int, text: str):
        super().__init__(text)
        self.outcome = outcome
        self.http_status = http_status


@dataclass(frozen=True)
class Acknowledgement:
    """The signed answer to a notification taken: ``outcome`` is applied, confirmed,
    conflict or repeat."""

    outcome: str
    body: bytes
    headers: dict[str, str]


class NotificationOperations(OrderMachine):
    @transactional(no_rollback_for=(NotificationRefused,))
    def notify(self, body: bytes, message: dict, key_id: str | None) -> Acknowledgement:
        """Take the verified notification ``message`` (``body`` its exact bytes, signed with
        ``key_id``): the acknowledgement to answer, or NotificationRefused. What a refusal
        recorded is committed with it."""
        notify_id, order_no = message["notifyId"], message["orderNo"]
        order = self._orders.lock(order_no)
        if order is None:
            raise NotificationRefused(
                "unknown_order", 404, f"notification {notify_id}: no order {order_no}"
            )
        digest = _digest(message)
        seen = self._notifications.notification(notify_id)
        if seen is not None:
            return self._again(order, seen, digest)
        result = BankResult.read(message, "notification")
        now = self._clock()
        notification = Message(body, now, http_status=None, signature="VALID", key_id=key_id)
        self._evidence.record(order, "NOTIFICATION", notify_id, notification)
        outcome = self.settle(order, result)
        self._taken(notify_id, order, result, digest, REFUSED if outcome == MISMATCH else outcome)
        if outcome == MISMATCH:
            raise NotificationRefused(
                "mismatch",
                409,
                f"notification {notify_id}: amount or type differs from order {order_no}",
            )
        return self._acknowledge(order, notify_id, outcome.lower())

    def _again(
        self, order: BankOrderEntity, seen: BankNotificationEntity, digest: str
    ) -> Acknowledgement:
        """A notifyId delivered before: the same event is answered as it was the first time
        (acknowledged, or refused), another content under its id is refused."""
        notify_id = seen.notify_id
        if seen.order_id != order.id or seen.digest != digest:
            log.error(
                "ALERT bank notification %s delivered again with other content (order %s)",
                notify_id,
                order.order_no,
            )
            raise NotificationRefused(
                "replayed", 409, f"notification {notify_id}: its id was used for other content"
            )
        if seen.outcome == REFUSED:
            raise NotificationRefused(
                "mismatch", 409, f"notification {notify_id}: refused when first delivered"
            )
        return self._acknowledge(order, notify_id, "repeat")

    def _taken(
        self,
        notify_id: str,
        order: BankOrderEntity,
        result: BankResult,
        digest: str,
        outcome: str,
    ) -> None:
        entity = BankNotificationEntity(
            notify_id=notify_id,
            order_id=order.id,
            status=result.status,
            amount=result.amount,
            digest=digest,
            outcome=outcome,
            received_at=self._clock(),
        )
        try:
            self._notifications.add_notification(entity)
        except IntegrityError:  # the same notifyId taken for another order at this moment
            raise RetryTransaction(f"notification {notify_id} taken concurrently") from None

    def _acknowledge(self, order: BankOrderEntity, notify_id: str, outcome: str) -> Acknowledgement:
        body, headers = self._client.acknowledgement(notify_id)
        self._evidence.record(order, "ACK", notify_id, Message(body, self._clock()))
        return Acknowledgement(outcome, body, headers)


def _digest(message: dict) -> str:
    """SHA-256 of the event's content: the message without its timestamp (a retry of the
    event is signed again with a fresh one)."""
    content = {k: v for k, v in message.items() if k != "timestamp"}
    return hashlib.sha256(protocol.encode(content)).hexdigest()
