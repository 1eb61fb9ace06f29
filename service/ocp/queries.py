"""Query on doubt: the periodic ``bank.query_due`` job (jobs.schedule).

Orders the bank has not finished with (SENT, ACCEPTED, UNKNOWN) are queried once their next
query is due: the first ``bank.query_first_after_seconds`` after they were sent, then with
exponential backoff from ``bank.query_min_interval_seconds`` (the bank's limit per order, never
exceeded, whatever runs the job at the same moment) to ``bank.query_max_interval_seconds``,
for as long as it takes. An answer is applied like a notification (service/ocp/machine.py);
PROCESSING or NOT_FOUND for an order whose submission got no answer means it is sent again
under the same number (the bank, which never got it or has it already, answers as for a new
order or a duplicate, so the member's authorisation page is known either way); for a batch
item, NOT_FOUND sends its whole batch again (service/ocp/batches.py). An order still
open ``bank.doubt_age_seconds`` after it was created is handed to reconciliation: marked,
alerted, counted in ``p2p_bank_orders_in_doubt``; it is still queried.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from dao.ocp import QUERIED_STATUSES, BankOrderEntity
from service.jobs import job
from service.ocp import protocol
from service.ocp.batches import BatchOperations
from service.ocp.evidence import received, sent
from service.ocp.machine import ACCEPTED, SEND_JOB, SENT, UNKNOWN, BankResult
from service.transaction import IllegalTransactionStateError, transactional

log = logging.getLogger("service.ocp")

#: The periodic job (jobs.schedule must run it when payment.gateway is BANK).
QUERY_JOB = "bank.query_due"
#: Orders queried by one run of the job at most; the rest are due still at the next run.
QUERY_BATCH = 200
_MAX_DOUBLINGS = 30


def next_interval(attempt: int, min_seconds: int, max_seconds: int) -> timedelta:
    """The wait after the ``attempt``-th query (1, 2, ...): the minimum interval, doubled each
    time, up to the maximum."""
    doubled = min_seconds * 2 ** min(attempt - 1, _MAX_DOUBLINGS)
    return timedelta(seconds=min(max_seconds, doubled))


class QueryOperations(BatchOperations):
    @job(QUERY_JOB)
    def query_due(self) -> int:
        """Query every order whose query is due (the ``bank.query_due`` job), then hand the
        orders open too long to reconciliation; how many were queried."""
        if self.tx.in_transaction():
            raise IllegalTransactionStateError("the bank is never called inside a transaction")
        queried = 0
        for order_no in self._due(self._clock()):
            try:
                queried += self.query(order_no)
            except Exception:  # one order's trouble must not stop the others' queries
                log.exception("bank order %s: query failed; asked again when due", order_no)
        self._hand_over_doubtful()
        return queried

    def query(self, order_no: str) -> bool:
        """Query one order if its query is due and the bank's interval allows it; apply the
        answer. Whether it was queried."""
        attempt = self._claim_query(order_no)
        if attempt is None:
            return False
        exchange = self._client.query(order_no)
        self._record_query(order_no, attempt, exchange)
        return True

    @transactional(read_only=True)
    def in_doubt_count(self) -> int:
        """Open orders handed to reconciliation (the gauge p2p_bank_orders_in_doubt)."""
        return self._orders.count_in_doubt()

    @transactional(read_only=True)
    def _due(self, now: datetime) -> list[str]:
        return self._orders.due_for_query(now, QUERY_BATCH)

    @transactional
    def _claim_query(self, order_no: str) -> int | None:
        """Take the order's query slot: its attempt number, the next query scheduled; None
        when it is not due (another run took it, or it finished meanwhile)."""
        order = self._orders.lock(order_no)
        now = self._clock()
        if (
            order is None
            or order.status not in QUERIED_STATUSES
            or order.next_query_at is None
            or order.next_query_at > now
        ):
            return None
        bank = self._settings.bank
        allowed = order.last_queried_at and order.last_queried_at + timedelta(
            seconds=bank.query_min_interval_seconds
        )
        if allowed and allowed > now:
            order.next_query_at = allowed
            return None
        order.query_count += 1
        order.last_queried_at = now
        order.next_query_at = now + next_interval(
            order.query_count, bank.query_min_interval_seconds, bank.query_max_interval_seconds
        )
        order.updated_at = now
        self.tx.session().flush()
        return order.query_count

    @transactional
    def _record_query(self, order_no: str, attempt: int, exchange) -> None:
        order = self._orders.lock(order_no)
        key = str(attempt)
        self._evidence.record(order, "QUERY", key, sent(exchange))
        self._evidence.record(order, "QUERY_RESULT", key, received(exchange))
        answer = exchange.answer if exchange.error is None else None
        if answer is None:
            return
        status = answer.get("status")
        if status in (protocol.PROCESSING, protocol.NOT_FOUND):
            if order.batch_no is not None:  # an item: the bank has its batch whole, or not
                if status == protocol.NOT_FOUND and order.status in (SENT, UNKNOWN):
                    self._send_batch_again(order)
                elif status == protocol.NOT_FOUND and order.status == ACCEPTED:
                    self._alerts.conflict("lost", order, "query", protocol.NOT_FOUND)
                return
            if order.status in (SENT, UNKNOWN):
                self._send_again(order)
            elif status == protocol.NOT_FOUND and order.status == ACCEPTED:
                self._alerts.conflict("lost", order, "query", protocol.NOT_FOUND)
            return
        try:
            result = BankResult.read(answer, "query")
        except protocol.MessageInvalid as e:
            log.warning("bank order %s: query answer unreadable (%s)", order_no, e)
            return
        self.settle(order, result)

    def _send_again(self, order: BankOrderEntity) -> None:
        """The submission's answer was lost: send the order again, same number."""
        self._unknown(order)
        self._outbox.add(SEND_JOB, {"order_no": order.order_no})

    @transactional
    def _hand_over_doubtful(self) -> None:
        now = self._clock()
        cutoff = now - timedelta(seconds=self._settings.bank.doubt_age_seconds)
        for order in self._orders.open_since(cutoff):
            if self._orders.hand_to_reconciliation(order.id, now):
                self._alerts.in_doubt(order, int((now - order.created_at).total_seconds()))
