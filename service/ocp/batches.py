"""Batch orders (DISBURSE, REPAY): many items submitted in one request, each item an order.

A service writes a batch in its business transaction (:meth:`BatchOperations.create_batch`):
a bank_batch row and one bank_order row per item (CREATED, its own immutable item number,
the payer in ``account_no``, the payee, the amount's breakdown, the platform's service fee),
with the outbox job ``bank.send_batch``. From then on an item is an order like any other:
settled by its own notification or query answer through :meth:`OrderMachine.settle`, with the
effects its service registered for the order type, evidence, alerts and the query on doubt.

Sending (the job): the items, then the batch, are locked (that order everywhere: a query that
finds an item lost locks the item, then the batch), marked SENT and committed before the bank
is called; the whole batch goes in one request, always under the same batch number and item
numbers. Every item keeps the exchange as its evidence (attempt key ``<batch>/<send>``): the
answer, and the request's bytes on the batch's first item, which the others point to.
ACCEPTED: the items are ACCEPTED (the bank finishes and notifies each). REFUSED: no
item was taken, every open item FAILS with the batch's reason. No trustworthy answer: the
batch and its items are UNKNOWN, and the items are queried; NOT_FOUND for an item means the
bank never received the batch (it takes a batch atomically), which is sent again as it was.

A FAILED item (the bank's final word) is re-issued by its service through :meth:`reissue`:
a new item under a NEW number, linked to the failed one (``retry_of``), in a batch of its own
sent by a job delayed with backoff (``bank.item_retry_seconds``, doubling), up to
``bank.item_attempts`` items in all; then it waits for a person: alerted, handed to
reconciliation and counted in p2p_bank_orders_in_doubt until an operator re-issues it
(:meth:`reissue_by_operator`, service/reconciliation/actions.py): one more item, sent at once
whatever its attempts, which, if the bank fails it too, waits for a person again. An UNKNOWN
item is never re-issued under a new number (the bank may have paid it): it is only queried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from dao.ocp import BankBatchEntity, BankBatchRepository, BankOrderEntity
from service.jobs import job
from service.ocp import protocol
from service.ocp.evidence import received, sent
from service.ocp.machine import (
    ACCEPTED,
    CREATED,
    FAILED,
    SENT,
    UNKNOWN,
    BankResult,
    OrderMachine,
    new_order_no,
)
from service.transaction import IllegalTransactionStateError, transactional

log = logging.getLogger("service.ocp")

#: The outbox job that submits a batch.
SEND_BATCH_JOB = "bank.send_batch"
#: The most items one batch may carry (the bank refuses more: TOO_MANY_ITEMS).
MAX_ITEMS = 1000
#: Batch statuses the send job submits: a new batch, or one whose answer was lost.
SENDABLE = (CREATED, UNKNOWN)
_ITEM_PREFIX = {protocol.DISBURSE: "D", protocol.REPAY: "P"}
_BATCH_PREFIX = "B"
_MAX_DOUBLINGS = 20


@dataclass(frozen=True)
class Item:
    """One item of a batch to write: ``payer`` pays ``principal + interest + penalty`` to
    ``payee``, who pays ``service_fee`` of it to the platform. ``ref`` is the item's business
    leg (a receipt, an investment, ...), ``member_id`` the payer's."""

    ref: tuple[str, int]
    member_id: int
    payer_account_no: str
    payee_account_no: str
    principal: Decimal
    interest: Decimal = Decimal("0.00")
    penalty: Decimal = Decimal("0.00")
    service_fee: Decimal = Decimal("0.00")
    freeze_order_no: str | None = None

    @property
    def amount(self) -> Decimal:
        return self.principal + self.interest + self.penalty


def item_fields(item: BankOrderEntity) -> dict[str, str]:
    """The item as the batch request carries it (docs/depository-protocol.md): every value a
    string; the same at every submission of its batch."""
    fields = {
        "itemNo": item.order_no,
        "payerAccountNo": item.account_no,
        "payeeAccountNo": item.payee_account_no,
        "principal": protocol.format_amount(item.principal),
        "interest": protocol.format_amount(item.interest),
        "penalty": protocol.format_amount(item.penalty),
        "serviceFee": protocol.format_amount(item.service_fee),
    }
    if item.freeze_order_no is not None:
        fields["freezeOrderNo"] = item.freeze_order_no
    return fields


def retry_delay(attempt: int, base_seconds: int) -> timedelta:
    """The wait before the item that follows the ``attempt``-th (1, 2, ...) is sent."""
    return timedelta(seconds=base_seconds * 2 ** min(attempt - 1, _MAX_DOUBLINGS))


class BatchOperations(OrderMachine):
    """Writing, sending and re-issuing batches; their items are settled as orders."""

    @property
    def _batches(self) -> BankBatchRepository:
        return BankBatchRepository(self.tx.session)

    def create_batch(
        self,
        order_type: str,
        loan_id: int,
        ref: tuple[str, int],
        items: list[Item],
        *,
        retry_of: BankOrderEntity | None = None,
        delay: timedelta | None = None,
    ) -> BankBatchEntity:
        """Write a batch of ``items`` for the business leg ``ref`` of listing ``loan_id`` and
        its ``bank.send_batch`` job (after ``delay``), in the caller's transaction, which must
        be the one making the business change."""
        if not self.tx.in_transaction():
            raise IllegalTransactionStateError("a batch is created in its business's tx")
        if order_type not in self._effects or order_type not in _ITEM_PREFIX:
            raise ValueError(f"no service handles batch items of type {order_type}")
        if not 1 <= len(items) <= MAX_ITEMS:
            raise ValueError(f"a batch has 1 to {MAX_ITEMS} items, not {len(items)}")
        now = self._clock()
        batch = self._batches.add(
            BankBatchEntity(
                batch_no=new_order_no(_BATCH_PREFIX, now),
                order_type=order_type,
                loan_id=loan_id,
                ref_type=ref[0],
                ref_id=ref[1],
                status=CREATED,
                send_count=0,
                created_at=now,
                updated_at=now,
            )
        )
        for item in items:
            if item.amount <= 0 or not 0 <= item.service_fee <= item.amount:
                raise ValueError("an item moves a positive amount, its fee at most that")
            self._orders.add(
                BankOrderEntity(
                    order_no=new_order_no(_ITEM_PREFIX[order_type], now),
                    order_type=order_type,
                    ref_type=item.ref[0],
                    ref_id=item.ref[1],
                    member_id=item.member_id,
                    account_no=item.payer_account_no,
                    amount=item.amount,
                    status=CREATED,
                    send_count=0,
                    query_count=0,
                    created_at=now,
                    updated_at=now,
                    batch_no=batch.batch_no,
                    payee_account_no=item.payee_account_no,
                    principal=item.principal,
                    interest=item.interest,
                    penalty=item.penalty,
                    service_fee=item.service_fee,
                    freeze_order_no=item.freeze_order_no,
                    retry_of=retry_of.id if retry_of is not None else None,
                )
            )
        not_before = now + delay if delay is not None else None
        self._outbox.add(SEND_BATCH_JOB, {"batch_no": batch.batch_no}, not_before)
        return batch

    def batch_of(self, item: BankOrderEntity) -> BankBatchEntity:
        return self._batches.find(item.batch_no)

    def reissue(self, item: BankOrderEntity) -> BankOrderEntity | None:
        """Re-issue the FAILED ``item`` (its row locked by the caller, in the transaction that
        settles it) under a new number in a batch of its own, sent after a backoff; None when
        its attempts are used up: then it is alerted and handed to reconciliation."""
        if item.status != FAILED or item.batch_no is None:
            raise ValueError(f"only a FAILED batch item is re-issued, not {item!r}")
        if self._orders.reissue_of(item.id) is not None:
            return None  # re-issued already (the failure was applied once; never twice)
        bank = self._settings.bank
        attempt = self._orders.attempts(item)
        now = self._clock()
        if attempt >= bank.item_attempts:
            item.handed_to_reconciliation_at = item.handed_to_reconciliation_at or now
            self.tx.session().flush()
            self._alerts.exhausted(item, attempt)
            return None
        new = self._item_again(item, retry_delay(attempt, bank.item_retry_seconds))
        log.info(
            "bank item %s failed (%s): re-issued in batch %s, attempt %d",
            item.order_no,
            item.reason,
            new.batch_no,
            attempt + 1,
        )
        return new

    def reissue_by_operator(self, order: BankOrderEntity) -> BankOrderEntity:
        """An operator's re-issue of the FAILED ``order`` (its row locked by the caller, which
        has checked that it waits for a person) under a new number, linked to it: a batch
        item in a batch of its own sent at once, whatever its attempts; another order by its
        service's ``reissue`` effect."""
        if order.status != FAILED:
            raise ValueError(f"only a FAILED order is re-issued, not {order!r}")
        if order.batch_no is not None:
            return self._item_again(order, None)
        reissue = self._effects[order.order_type].reissue
        if reissue is None:
            raise ValueError(f"no service re-issues orders of type {order.order_type}")
        return reissue(order)

    def _item_again(self, item: BankOrderEntity, delay: timedelta | None) -> BankOrderEntity:
        """The FAILED ``item`` again, under a new number in a batch of its own sent after
        ``delay`` (None: at once)."""
        batch = self._batches.find(item.batch_no)
        again = Item(
            (item.ref_type, item.ref_id),
            item.member_id,
            item.account_no,
            item.payee_account_no,
            item.principal,
            item.interest,
            item.penalty,
            item.service_fee,
            item.freeze_order_no,
        )
        new = self.create_batch(
            item.order_type,
            batch.loan_id,
            (batch.ref_type, batch.ref_id),
            [again],
            retry_of=item,
            delay=delay,
        )
        return self._batches.items(new.batch_no)[0]

    @job(SEND_BATCH_JOB)
    def send_batch(self, batch_no: str) -> None:
        """Submit batch ``batch_no`` (the ``bank.send_batch`` job) if it is new or in doubt;
        record what happened and apply the answer to its items."""
        if self.tx.in_transaction():
            raise IllegalTransactionStateError("the bank is never called inside a transaction")
        claimed = self._claim_batch(batch_no)
        if claimed is None:
            return
        exchange = self._client.submit(claimed)
        self._record_batch_answer(batch_no, exchange)

    @transactional
    def _claim_batch(self, batch_no: str) -> dict | None:
        """Mark the batch and its open items SENT; the request's fields, or None when the
        batch is not to be sent."""
        items = self._batches.items(batch_no, lock=True)
        batch = self._batches.lock(batch_no)
        if batch is None or batch.status not in SENDABLE:
            return None
        now = self._clock()
        first_query = now + timedelta(seconds=self._settings.bank.query_first_after_seconds)
        batch.send_count += 1
        batch.status = SENT
        batch.updated_at = now
        for item in items:
            if item.status in (CREATED, SENT, UNKNOWN):
                item.send_count += 1
                item.status = SENT
                item.next_query_at = first_query
                item.updated_at = now
        self.tx.session().flush()
        return {
            "orderNo": batch.batch_no,
            "orderType": batch.order_type,
            "loanId": str(batch.loan_id),
            "items": [self._effects[i.order_type].request_fields(i) for i in items],
        }

    @transactional
    def _record_batch_answer(self, batch_no: str, exchange) -> None:
        items = self._batches.items(batch_no, lock=True)
        batch = self._batches.lock(batch_no)
        key = f"{batch_no}/{batch.send_count}"
        request = sent(exchange)
        for k, item in enumerate(items):
            # Each item's evidence: the answer, and the request that carried it, whole on the
            # batch's first item (up to 1000 items' worth of text), pointed to by the others.
            if k:
                pointer = {"batchNo": batch_no, "requestOf": items[0].order_no}
                request = replace(request, body=protocol.encode(pointer))
            self._evidence.record(item, "REQUEST", key, request)
            self._evidence.record(item, "RESPONSE", key, received(exchange))
        answer = exchange.answer if exchange.error is None else None
        result = answer.get("result") if answer else None
        now = self._clock()
        batch.updated_at = now
        if result == protocol.ACCEPTED:
            if batch.status in (SENT, UNKNOWN):
                batch.status = ACCEPTED
            for item in items:
                if item.status in (SENT, UNKNOWN):
                    item.status = ACCEPTED
                    item.updated_at = now
        elif result == protocol.REFUSED:
            reason = answer.get("reason") or None
            batch.status = "REFUSED"
            batch.reason = reason[:200] if isinstance(reason, str) else None
            for item in items:
                self.settle(item, BankResult(FAILED, "answer", reason=batch.reason))
        elif batch.status == SENT:  # no word the batch could be settled on
            batch.status = UNKNOWN
            for item in items:
                if item.status == SENT:
                    self._unknown(item)
        self.tx.session().flush()

    def _send_batch_again(self, item: BankOrderEntity) -> None:
        """The bank never received ``item``'s batch (locked by the caller): it goes again,
        whole, under its numbers."""
        self._unknown(item)
        batch = self._batches.lock(item.batch_no)
        if batch.status == SENT:
            batch.status = UNKNOWN
            batch.updated_at = self._clock()
            self.tx.session().flush()
        self._outbox.add(SEND_BATCH_JOB, {"batch_no": batch.batch_no})
