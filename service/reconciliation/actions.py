"""Operators' actions on the bank orders that wait for a person (ReconciliationFacade).

Two outcomes of the depository bank end where only a person can take the business further:
a batch item (DISBURSE, REPAY) the bank FAILED on its last attempt (``bank.item_attempts``,
service/ocp/batches.py), its listing DISBURSING or its installment PAYING until an item of
its leg succeeds; and a release (UNFREEZE) the bank FAILED, its investment RELEASING and still
frozen (service/p2p/investing.py). Such an order *waits for a person*
(dao.ocp.order.waits_for_a_person): the bank FAILED it, it is of one of those types (a batch
item's attempts used up), no later order re-issues it, and no order of its type completed its
business leg. listOrdersWaiting lists them; p2p_bank_orders_in_doubt counts them.

reissueBankOrder re-issues one: a new order under a NEW number for the same business leg,
linked to the failed one (``retry_of``), written with its send job in one transaction with the
audit row (bank_order_reissue: who, when, why, both orders and the operator's request number).
A batch item goes in a batch of its own sent at once, whatever its attempts; an UNFREEZE names
the same FREEZE. From then on the new order is an order like any other: its success finishes
the leg as the first one's would have (the listing REPAYING, the installment PAID, the
investment RELEASED), and its failure makes it wait for a person again.

Only a FAILED order is re-issued. An open or UNKNOWN one the bank may still carry out, or may
have carried out (it is queried, and reconciliation settles it): a second order for its leg
could move the money twice. Refusals: BANK_ORDER_NOT_FOUND; ORDER_NOT_REISSUABLE for an order
of another type, not FAILED, whose leg an order completed, or re-issued already. As for
resolveDiscrepancy, a request number repeated with the same order and reason returns the first
re-issue and changes nothing; with another order or reason it is REQUEST_NO_REUSED.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from dao.ocp import BankOrderEntity
from dao.ocp.order import REISSUABLE_TYPES
from dao.reconciliation import MAX_REASON, BankOrderReissueEntity
from service import errors
from service.errors import BusinessError, invalid
from service.idempotency import check_request_no
from service.ocp import protocol
from service.paging import PageVo, page_window
from service.security import Principal
from service.text import is_blank
from service.transaction import RetryTransaction, transactional

if TYPE_CHECKING:
    from dao.ocp import BankOrderRepository
    from dao.reconciliation import ReconciliationRepository
    from service.transaction import TransactionManager

log = logging.getLogger("service.reconciliation")


@dataclass(frozen=True)
class OrderWaitingVo:
    order_no: str
    order_type: str
    member_id: int
    amount: Decimal
    reason: str | None
    failed_at: dt.datetime
    attempts: int


@dataclass(frozen=True)
class BankOrderReissueVo:
    order_no: str
    new_order_no: str
    order_type: str
    member_id: int
    amount: Decimal
    reason: str
    reissued_by: int
    reissued_at: dt.datetime


class BankOrderActions:
    """listOrdersWaiting and reissueBankOrder, a part of ReconciliationService, which gives
    it ``tx``, ``_settings``, ``_clock``, ``_bank``, ``_repo``, ``_orders`` and
    ``_available``."""

    tx: TransactionManager
    _settings: Any
    _clock: Callable[[], dt.datetime]
    _bank: Any
    _repo: ReconciliationRepository
    _orders: BankOrderRepository
    _available: Callable[[], None]

    @transactional(read_only=True)
    def list_orders_waiting(
        self, page: int | None = None, page_size: int | None = None
    ) -> PageVo[OrderWaitingVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.waiting(offset=(page - 1) * page_size, limit=page_size)
        return PageVo(tuple(map(self._waiting_vo, rows)), total, page, page_size)

    @transactional
    def reissue_bank_order(
        self, order_no: str, reason: str, request_no: str, caller: Principal
    ) -> BankOrderReissueVo:
        """Re-issue the bank order ``order_no`` that waits for a person, recording who, when
        and why (see the module's docstring)."""
        check_request_no(request_no)
        if is_blank(reason) or len(reason) > MAX_REASON:
            raise invalid("reason", f"must not be blank, at most {MAX_REASON} characters")
        self._available()
        order = self._orders.lock(order_no)
        # Looked up after the lock: the same request made at this moment has committed now.
        scope = f"operator:{caller.member_id}"
        earlier = self._repo.reissue_by_request(scope, request_no)
        if earlier is not None:
            first = self.tx.session().get(BankOrderEntity, earlier.order_id)
            if (first.order_no, earlier.reason) != (order_no, reason):
                raise BusinessError(errors.REQUEST_NO_REUSED)
            return self._reissue_vo(earlier)
        if order is None:
            raise BusinessError(
                errors.BANK_ORDER_NOT_FOUND, f"bank order {order_no} does not exist"
            )
        self._check_waiting(order)
        new = self._bank.reissue_by_operator(order)
        record = BankOrderReissueEntity(
            order_id=order.id,
            new_order_id=new.id,
            reason=reason,
            reissued_by=caller.member_id,
            reissued_at=self._clock(),
            request_scope=scope,
            request_no=request_no,
        )
        session = self.tx.session()
        session.add(record)
        try:
            session.flush()
        except IntegrityError:  # the same request number at this moment: read it again
            raise RetryTransaction(f"request {request_no} taken concurrently") from None
        log.info(
            "bank order %s (%s, %s) re-issued as %s by operator %d",
            order.order_no,
            order.order_type,
            order.reason,
            new.order_no,
            caller.member_id,
        )
        return self._reissue_vo(record)

    def _check_waiting(self, order: BankOrderEntity) -> None:
        """ORDER_NOT_REISSUABLE unless ``order`` (locked) waits for a person."""
        if order.order_type not in REISSUABLE_TYPES:
            refused = f"a {order.order_type} order is not re-issued by an operator"
        elif order.status != protocol.FAILED:
            refused = f"only a FAILED order is re-issued; this one is {order.status}"
        elif (done := self._orders.leg_done(order)) is not None:
            refused = f"its business is done: {done.order_type} {done.order_no} SUCCEEDED"
        elif (again := self._orders.reissue_of(order.id)) is not None:
            refused = f"it was re-issued already, as {again.order_no}"
        else:
            return
        raise BusinessError(errors.ORDER_NOT_REISSUABLE, f"bank order {order.order_no}: {refused}")

    def _waiting_vo(self, order: BankOrderEntity) -> OrderWaitingVo:
        return OrderWaitingVo(
            order.order_no,
            order.order_type,
            order.member_id,
            order.amount,
            order.reason,
            order.finished_at,
            self._orders.attempts(order),
        )

    def _reissue_vo(self, record: BankOrderReissueEntity) -> BankOrderReissueVo:
        session = self.tx.session()
        order = session.get(BankOrderEntity, record.order_id)
        new = session.get(BankOrderEntity, record.new_order_id)
        return BankOrderReissueVo(
            order.order_no,
            new.order_no,
            order.order_type,
            order.member_id,
            order.amount,
            record.reason,
            record.reissued_by,
            record.reissued_at,
        )
