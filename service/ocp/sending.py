"""Submitting an order to the bank: the ``bank.send`` job.

Never inside a transaction that holds a row: the job locks the order, marks it SENT and
commits before the bank is called, then records the exchange and applies the answer in a
second transaction. A retry (the job delivered twice, an UNKNOWN order sent again after a
query found the bank never got it) sends the same order number, so the bank never makes a
second order of it. An order that is SENT, ACCEPTED or final is not sent again by this job:
a SENT one left behind by a worker that died mid-call is found by the query job
(service/ocp/queries.py) once its first query is due.

Answers: ACCEPTED (the bank will notify; the member-authorised page's URL is kept), REFUSED
(final: FAILED, with its business effect), anything else (timeout, 5xx, unsigned, forged,
about another order) UNKNOWN: nothing is known, a query will ask.
"""

from __future__ import annotations

from datetime import timedelta

from dao.ocp import BankOrderEntity
from service.jobs import job
from service.ocp import protocol
from service.ocp.evidence import received, sent
from service.ocp.machine import (
    ACCEPTED,
    CREATED,
    FAILED,
    SEND_JOB,
    SENT,
    UNKNOWN,
    BankResult,
    OrderMachine,
)
from service.transaction import IllegalTransactionStateError, transactional

#: Statuses the send job submits: a new order, or one the bank's answer left in doubt.
SENDABLE = (CREATED, UNKNOWN)
_URL_WIDTH = 500
_REF_WIDTH = 64


class SendOperations(OrderMachine):
    @job(SEND_JOB)
    def send(self, order_no: str) -> None:
        """Submit order ``order_no`` to the bank (the ``bank.send`` job), if it is new or in
        doubt; record what happened and apply the answer."""
        if self.tx.in_transaction():
            raise IllegalTransactionStateError("the bank is never called inside a transaction")
        claimed = self._claim_send(order_no)
        if claimed is None:
            return
        attempt, message = claimed
        exchange = self._client.submit(message)
        self._record_answer(order_no, attempt, exchange)

    @transactional
    def _claim_send(self, order_no: str) -> tuple[int, dict[str, str]] | None:
        """Mark the order SENT (first query due after bank.query_first_after_seconds) and
        return its attempt number and message; None when it is not to be sent."""
        order = self._orders.lock(order_no)
        if order is None or order.status not in SENDABLE or order.batch_no is not None:
            return None  # a batch item goes with its batch (service/ocp/batches.py)
        message = {
            "orderNo": order.order_no,
            "orderType": order.order_type,
            **self._effects[order.order_type].request_fields(order),
        }
        now = self._clock()
        order.send_count += 1
        order.status = SENT
        order.next_query_at = now + timedelta(seconds=self._settings.bank.query_first_after_seconds)
        order.updated_at = now
        self.tx.session().flush()
        return order.send_count, message

    @transactional
    def _record_answer(self, order_no: str, attempt: int, exchange) -> None:
        order = self._orders.lock(order_no)
        key = str(attempt)
        self._evidence.record(order, "REQUEST", key, sent(exchange))
        self._evidence.record(order, "RESPONSE", key, received(exchange))
        answer = exchange.answer if exchange.error is None else None
        result = answer.get("result") if answer else None
        if result == protocol.ACCEPTED:
            self._accepted(order, answer)
        elif result == protocol.REFUSED:
            refusal = BankResult(FAILED, "answer", reason=answer.get("reason") or None)
            self.settle(order, refusal)
        elif order.status == SENT:  # no word the order could be settled on
            self._unknown(order)

    def _accepted(self, order: BankOrderEntity, answer: dict) -> None:
        """The bank has the order (perhaps from an earlier attempt: ``duplicate``); it will
        notify. A status the order reached meanwhile (a notification outran this answer)
        stays; the authorisation page's URL is kept either way."""
        url, bank_ref = answer.get("authorizeUrl"), answer.get("bankRef")
        if isinstance(url, str) and url:
            order.authorize_url = url[:_URL_WIDTH]
        if isinstance(bank_ref, str) and bank_ref:
            order.bank_ref = order.bank_ref or bank_ref[:_REF_WIDTH]
        if order.status in (SENT, UNKNOWN):
            order.status = ACCEPTED
        order.updated_at = self._clock()
        self.tx.session().flush()
