"""The bank order's state machine: creating an order with the business change that needs it,
and applying what the bank finally says about it, exactly once, with its business effect.

An order is written CREATED in the business transaction (a recharge's PENDING payment order, a
withdrawal's freeze, an account application), with an outbox job ``bank.send`` that submits
it after the commit (service/ocp/sending.py). The bank's final word (a notification,
service/ocp/notifications.py; a query answer, service/ocp/queries.py; a refusal) is applied by
:meth:`OrderMachine.settle`, always with the order's row locked, so that of two deliveries
racing for one order (a notification and a query answer, or the same notification twice) the
second finds the first's status and changes nothing.

Business effects belong to the services that own the business leg: each registers
:class:`Effects` for its order types (service/payment.py for RECHARGE and WITHDRAW,
service/member/fund.py for OPEN_ACCOUNT, service/p2p/investing.py for FREEZE and UNFREEZE,
service/treasury.py for FUND and TRANSFER).
They run inside the transaction that settles the order, so the postings and the status commit
together or not at all.

Transitions (anything else changes nothing):

* open (CREATED, SENT, ACCEPTED, UNKNOWN) -> SUCCEEDED or FAILED, with ``succeeded`` or
  ``failed``; -> REVERSED for an order that may be returned (a withdrawal whose success
  notification is still on its way): ``succeeded`` then ``reversed``;
* SUCCEEDED -> REVERSED (退单) for an order that may be returned, with ``reversed``.

The same final status again (or SUCCEEDED for a REVERSED order) confirms what is known.
Another final status, another amount or order type, or REVERSED for an order that cannot be
returned is a conflict: nothing changes, and a person is alerted (service/ocp/alerts.py).

The bank's fee. The bank charges the platform a fee per order (the order's ``fee``, stated by
the success), taken from the platform's own account at the bank when the order succeeds
(released when it fails; a return refunds none and states 0.00). It leaves the bank, so the
transaction that settles the order SUCCEEDED posts it, once, after the order's own effect:
BANK_FEE, debit BANK_FEES (the platform's expense, debit-normal, so it only grows and never
goes below zero whatever FEE_INCOME has earned) and credit PLATFORM_FUNDS (the mirror of the
platform's own account at the bank, which FEE_INCOME, the owners' funding and the platform's
payments to members move too: service/treasury.py). A fee never touches CLEARING, the members'
money. The books then close on what entered minus what left plus the owners' funding minus the
bank's fees (service/audit.py). A withdrawal whose return outran its success has no fee yet (a
return states 0.00): the success that follows brings it, and it is posted then; any later word
on the order posts nothing. A fee on a FAILED order was released by the bank and is never
posted. A fee the platform's account cannot pay in the ledger (its available balance below it:
the platform was not funded, or its money is held for transfers the bank has not taken yet) is
refused by the ledger (INSUFFICIENT_FUNDS): the settlement is left unapplied (a notification
is not acknowledged, a query asks again) for a person to look at, never posted short.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from dao.ocp import OPEN_STATUSES, BankOrderEntity, BankOrderRepository, EvidenceRepository
from service.ledger import AVAILABLE, Ledger, credit, debit
from service.ocp import protocol
from service.ocp.alerts import BankAlerts, BankRecorder
from service.ocp.evidence import Evidence
from service.pii import PersonalData
from service.transaction import IllegalTransactionStateError

if TYPE_CHECKING:  # the client (and urllib3) is loaded only where payment.gateway is BANK
    from service.ocp.client import HttpBankClient

log = logging.getLogger("service.ocp")

CREATED, SENT, ACCEPTED, UNKNOWN = OPEN_STATUSES
SUCCEEDED, FAILED, REVERSED = protocol.SUCCEEDED, protocol.FAILED, protocol.REVERSED
#: What settle() made of the bank's word.
APPLIED = "APPLIED"  # it moved the order (and its business)
CONFIRMED = "CONFIRMED"  # it agreed with what was applied already
CONFLICT = "CONFLICT"  # another final status: kept, alerted, nothing changed
MISMATCH = "MISMATCH"  # another amount or order type: kept, alerted, nothing changed
ZERO = Decimal("0.00")
#: bank_order.reason's width.
MAX_REASON = 200
#: The outbox job that submits an order (service/ocp/sending.py).
SEND_JOB = "bank.send"
#: The platform's accounts a bank fee moves between (dao/ledger.py).
PLATFORM_FUNDS, BANK_FEES = "PLATFORM_FUNDS", "BANK_FEES"
#: A bank fee's posting refers to its order.
REF_TYPE = "BANK_ORDER"


@dataclass(frozen=True)
class BankResult:
    """What the bank says an order came to: SUCCEEDED, FAILED or REVERSED, from ``source``
    ("notification", "query" or "answer", the synchronous answer to a submission)."""

    status: str
    source: str
    order_type: str | None = None
    amount: Decimal | None = None
    fee: Decimal | None = None
    bank_ref: str | None = None
    account_no: str | None = None
    reason: str | None = None
    finished_at: datetime | None = None

    @classmethod
    def read(cls, message: dict, source: str) -> BankResult:
        """The result a notification or a final query answer states (its ``status``: SUCCEEDED,
        FAILED or REVERSED); ``MessageInvalid`` naming a field that is not well-formed."""
        finished = message.get("finishedAt")
        return cls(
            message["status"],
            source,
            order_type=_text(message, "orderType"),
            amount=_amount(message, "amount"),
            fee=_amount(message, "fee"),
            bank_ref=_text(message, "bankRef"),
            account_no=_text(message, "accountNo"),
            reason=_text(message, "reason"),
            finished_at=None if finished is None else protocol.parse_time(finished, "finishedAt"),
        )


@dataclass(frozen=True)
class Effects:
    """What an order type means to the business that owns it, registered by that service.

    ``request_fields`` gives the order's type fields for the bank (docs/depository-
    protocol.md), personal data included: they go to the bank and, masked, to the evidence,
    nowhere else. The others run in the transaction that settles the order; ``reversed`` is
    None for an order type the bank cannot return. ``reissue`` writes, for an operator, a new
    order of the type for the business leg of a FAILED one (its row locked), in the caller's
    transaction, and returns it; None for a type no operator re-issues this way (batch items
    are re-issued by their batch machinery, service/ocp/batches.py)."""

    request_fields: Callable[[BankOrderEntity], dict[str, str]]
    succeeded: Callable[[BankOrderEntity, BankResult], None]
    failed: Callable[[BankOrderEntity, BankResult], None]
    reversed: Callable[[BankOrderEntity, BankResult], None] | None = None
    reissue: Callable[[BankOrderEntity], BankOrderEntity] | None = None


def _text(message: dict, field: str) -> str | None:
    value = message.get(field)
    if value is not None and not isinstance(value, str):
        raise protocol.MessageInvalid("malformed", field)
    return value or None


def _amount(message: dict, field: str) -> Decimal | None:
    value = message.get(field)
    return None if value is None else protocol.parse_amount(value, field)


def new_order_no(prefix: str, now: datetime) -> str:
    """A fresh order number: a letter, the date and 20 random hex digits (29 characters)."""
    return f"{prefix}{now:%Y%m%d}{secrets.token_hex(10).upper()}"


class OrderMachine:
    """The bank orders' common part: repositories, evidence, alerts, the registered effects
    and the transitions. The composition root builds one (service/ocp/orders.py)."""

    def __init__(
        self,
        tx,
        settings,
        clock: Callable[[], datetime],
        client: HttpBankClient,
        outbox,
        pii: PersonalData | None,
        recorder: BankRecorder,
    ):
        self.tx = tx
        self._settings = settings  # LiveSettings: [bank] is read at call time
        self._clock = clock
        self._client = client
        self._outbox = outbox  # service.jobs.Outbox
        self._orders = BankOrderRepository(tx.session)
        self._evidence = Evidence(tx, clock, pii)
        self._notifications = EvidenceRepository(tx.session)
        self._alerts = BankAlerts(tx, recorder)
        self._ledger = Ledger(tx)
        self._effects: dict[str, Effects] = {}

    def register(self, order_type: str, effects: Effects) -> None:
        """Called by the service that owns ``order_type`` when it is built."""
        self._effects[order_type] = effects

    def alert(self, order: BankOrderEntity, what: str) -> None:
        """For an effect: the order's outcome needs a person (logged as an ALERT once the
        settling transaction commits)."""
        self._alerts.needs_a_person(order, what)

    def create(
        self,
        order_type: str,
        ref: tuple[str, int],
        member_id: int | None,
        *,
        order_no: str,
        account_no: str | None = None,
        amount: Decimal | None = None,
        card_id: int | None = None,
        retry_of: BankOrderEntity | None = None,
    ) -> BankOrderEntity:
        """Write the order CREATED and its ``bank.send`` job in the caller's transaction, which
        must be the one making the business change the order serves; ``member_id`` is the
        member it serves, None for an order of the platform's own account alone (FUND);
        ``retry_of`` is the FAILED order it re-issues under this new number."""
        if not self.tx.in_transaction():
            raise IllegalTransactionStateError("a bank order is created in its business's tx")
        if order_type not in self._effects:
            raise ValueError(f"no service handles bank orders of type {order_type}")
        now = self._clock()
        order = self._orders.add(
            BankOrderEntity(
                order_no=protocol.check_order_no(order_no),
                order_type=order_type,
                ref_type=ref[0],
                ref_id=ref[1],
                member_id=member_id,
                account_no=account_no,
                card_id=card_id,
                amount=amount,
                status=CREATED,
                send_count=0,
                query_count=0,
                created_at=now,
                updated_at=now,
                retry_of=retry_of.id if retry_of is not None else None,
            )
        )
        self._outbox.add(SEND_JOB, {"order_no": order.order_no})
        return order

    # -- the transitions (the order's row locked by the caller) ------------------------------

    def settle(self, order: BankOrderEntity, result: BankResult) -> str:
        """Apply the bank's final word on ``order`` with its business effect, or find that it
        changes nothing; APPLIED, CONFIRMED, CONFLICT or MISMATCH."""
        if result.order_type is not None and result.order_type != order.order_type:
            self._alerts.conflict("type", order, result.source, f"type {result.order_type}")
            return MISMATCH
        expected = order.amount if order.amount is not None else ZERO
        if result.amount is not None and result.amount != expected:
            self._alerts.conflict("amount", order, result.source, f"amount {result.amount}")
            return MISMATCH
        effects = self._effects[order.order_type]
        said = result.status
        if said == REVERSED and effects.reversed is None:
            self._alerts.conflict("reversal", order, result.source, REVERSED)
            return CONFLICT
        if order.status in OPEN_STATUSES:
            self._finish(order, FAILED if said == FAILED else SUCCEEDED, result)
            if said == FAILED:
                effects.failed(order, result)
            else:
                effects.succeeded(order, result)
                self._charge_fee(order)
            if said == REVERSED:
                self._reverse(order, effects, result)
            return APPLIED
        if order.status == SUCCEEDED and said == REVERSED:
            self._reverse(order, effects, result)
            return APPLIED
        if order.status == REVERSED and said == SUCCEEDED and order.fee is None:
            # The success a return outran: the fee the bank took is known now.
            order.fee = result.fee
            order.updated_at = self._clock()
            self.tx.session().flush()
            self._charge_fee(order)
            return APPLIED if order.fee else CONFIRMED
        if said == order.status or (order.status == REVERSED and said == SUCCEEDED):
            return CONFIRMED
        self._alerts.conflict("status", order, result.source, said)
        return CONFLICT

    def _finish(self, order: BankOrderEntity, status: str, result: BankResult) -> None:
        now = self._clock()
        order.status = status
        if result.fee is not None and result.status != REVERSED:  # a return's fee is 0.00
            order.fee = result.fee
        order.bank_ref = order.bank_ref or result.bank_ref
        order.account_no = order.account_no or result.account_no
        if status == FAILED:
            order.reason = (result.reason or "refused by the bank")[:MAX_REASON]
        order.finished_at = result.finished_at or now
        order.next_query_at = None
        order.updated_at = now
        self.tx.session().flush()

    def _charge_fee(self, order: BankOrderEntity) -> None:
        """The bank took ``order``'s fee from the platform's account: it leaves the bank as
        the platform's expense. Called once per order, when its fee becomes known on success."""
        if not order.fee:
            return
        legs = [
            debit(self._ledger.platform(BANK_FEES), AVAILABLE, order.fee),
            credit(self._ledger.platform(PLATFORM_FUNDS), AVAILABLE, order.fee),
        ]
        self._ledger.post("BANK_FEE", (REF_TYPE, order.id), legs)

    def _reverse(self, order: BankOrderEntity, effects: Effects, result: BankResult) -> None:
        order.status = REVERSED
        order.updated_at = self._clock()
        self.tx.session().flush()
        effects.reversed(order, result)

    def _unknown(self, order: BankOrderEntity) -> None:
        """No trustworthy answer: the order is UNKNOWN until a query (or a notification)
        settles it; in doubt from now on, if it was not already."""
        now = self._clock()
        order.status = UNKNOWN
        order.in_doubt_since = order.in_doubt_since or now
        order.updated_at = now
        self.tx.session().flush()
