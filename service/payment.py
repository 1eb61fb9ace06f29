"""Payment orders: the only way money enters (recharge) or leaves (withdraw) the platform.

Every order is one row in payment_order and, for the money it moves, balanced postings
against CLEARING, the mirror of the members' money at the depository bank:

* recharge: RECHARGE posting, debit CLEARING AVAILABLE, credit the member's AVAILABLE.
* withdraw: WITHDRAW_FREEZE (member AVAILABLE -> FROZEN) first, then either WITHDRAW
  (debit member FROZEN, credit CLEARING AVAILABLE) when the depository pays out, or
  WITHDRAW_UNFREEZE (member FROZEN -> AVAILABLE) when it refuses.

Only an onboarded member (real name verified, fund account open: service/member/onboarding.py)
recharges or withdraws. The check comes before the requestNo is claimed, so a refused call
reads nothing but the member and writes nothing: once onboarded, the member sends the same
requestNo again and it is a new request. (Onboarding is never undone, so a repeat of an
accepted request always passes the check too.) A withdrawal pays out to one of the member's
bound cards; its number, sealed at binding, is opened only to hand it to the depository.

With ``payment.gateway`` SANDBOX the depository is asked inside the transaction, because the
sandbox answers at once: the order, its postings and the request number commit together, or
(when the gateway raises) not at all, and the same requestNo may then be sent again.

With BANK (the depository over HTTP, service/ocp/) each command is split in two. The call
writes the order PENDING (a withdrawal with its freeze) and a bank order under the same order
number, and commits; the bank is called after the commit (the ``bank.send`` job), and the
answer is PENDING. The member confirms on the bank's page (``authorizeUrl``, on the order once
the bank has accepted it) and follows the order with getOrder/listOrders. The bank's final word
(a notification, or a query on doubt) settles it in a second transaction that locks the bank
order: the effects registered below credit the recharge, pay out or unfreeze the withdrawal,
exactly once; a withdrawal the receiving bank returns later (退单, REVERSED) puts the money
back in the member's available balance with a WITHDRAW_REVERSAL posting (debit CLEARING, credit
the member's AVAILABLE) and a message to the member.

Locks: every order updates the one CLEARING row, but only after the depository has answered,
so the row is held from that posting to the commit. A withdrawal locks its card's row first
(so a card being unbound at that moment is either still bound for the whole payout, the
unbinding waiting for it, or already unbound: CARD_NOT_FOUND), then the member's account row
(freeze), then CLEARING; a recharge CLEARING before the member's account row (the ledger's id
order); the same member recharging and withdrawing at the same moment may therefore
deadlock, and @transactional retries the loser. With BANK a call touches no CLEARING row (only
the card's and, for a freeze, the member's account row); settling locks the bank order's row,
then the payment order's accounts in the ledger's id order, and no call locks a bank order.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm.attributes import flag_modified

from dao.bank_card import BankCardEntity, BankCardRepository
from dao.member import MemberEntity, MemberRepository
from dao.ocp import BankOrderEntity, BankOrderRepository
from dao.payment import PaymentOrderEntity, PaymentOrderRepository
from service import errors, pii
from service.errors import BusinessError, invalid
from service.gateway import DepositoryGateway
from service.idempotency import Idempotency
from service.language import Texts
from service.ledger import AVAILABLE, CENT, FROZEN, Ledger, credit, debit
from service.mapping import to_vo
from service.member.cards import bound_to
from service.member.onboarding import require_onboarded
from service.message import PAYMENT, Messages
from service.ocp import protocol
from service.ocp.orders import BankOrders, BankResult, Effects
from service.paging import PageVo, page_window
from service.pii import PersonalData
from service.security import Principal
from service.text import shown
from service.transaction import transactional

REF_TYPE = "PAYMENT_ORDER"
CLEARING = "CLEARING"
RECHARGE, WITHDRAW = "RECHARGE", "WITHDRAW"
PENDING, SUCCESS, FAILED, REVERSED = "PENDING", "SUCCESS", "FAILED", "REVERSED"
#: payment_order.failure_reason's width.
MAX_REASON = 200


@dataclass(frozen=True)
class PaymentOrderVo:
    order_no: str
    type: str
    amount: Decimal
    status: str
    failure_reason: str | None
    card_number: str | None  # a withdrawal's card, masked to its last 4; None for a recharge
    created_at: datetime
    updated_at: datetime
    # The bank's page where the member confirms a PENDING order (gateway BANK, once accepted).
    authorize_url: str | None = None


def _order_vo(
    entity: PaymentOrderEntity,
    card: BankCardEntity | None,
    bank_order: BankOrderEntity | None = None,
) -> PaymentOrderVo:
    return to_vo(
        PaymentOrderVo,
        entity,
        card_number=pii.mask_card(card.last4) if card else None,
        authorize_url=(
            bank_order.authorize_url if bank_order and entity.status == PENDING else None
        ),
    )


class PaymentService:
    """Recharges and withdrawals through the configured depository: the sandbox gateway, or
    the bank's orders (``bank``, None unless payment.gateway is BANK)."""

    def __init__(
        self,
        tx,
        settings,
        clock,
        gateway: DepositoryGateway,
        pii: PersonalData | None,
        bank: BankOrders | None = None,
    ):
        self.tx = tx
        self._settings = settings  # LiveSettings: loan.max_amount and api.* are reloadable
        self._clock = clock
        self._gateway = gateway
        self._pii_box = pii
        self._bank = bank
        self._orders = PaymentOrderRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._cards = BankCardRepository(tx.session)
        self._bank_orders = BankOrderRepository(tx.session)
        self._ledger = Ledger(tx)
        self._requests = Idempotency(tx)
        self._messages = Messages(tx, clock)
        if bank is not None:
            bank.register(
                RECHARGE,
                Effects(self._recharge_fields, self._bank_recharged, self._bank_refused),
            )
            bank.register(
                WITHDRAW,
                Effects(
                    self._withdraw_fields,
                    self._bank_paid_out,
                    self._bank_refused,
                    self._bank_returned,
                ),
            )

    # -- commands ----------------------------------------------------------------------
    @transactional
    def recharge(self, amount: Decimal, request_no: str, caller: Principal) -> PaymentOrderVo:
        amount = self._checked(amount)
        member = self._onboarded(caller)
        claim = self._requests.claim(_scope(caller), request_no, "recharge", amount=amount)
        if claim.repeat:
            return self._vo(self._orders.get(claim.ref_id))
        order = self._new_order(RECHARGE, caller.member_id, amount, request_no, None)
        claim.done(REF_TYPE, order.id)
        if self._bank is not None:
            self._bank.create(
                RECHARGE,
                (REF_TYPE, order.id),
                member.id,
                order_no=order.order_no,
                account_no=member.fund_account_no,
                amount=amount,
            )
            return _order_vo(order, None)
        answer = self._gateway.recharge(order.order_no, caller.member_id, amount)
        if answer.success:
            self._credit(order, answer.reference)
        else:
            self._fail(order, answer.reference, answer.reason)
        return _order_vo(order, None)

    @transactional
    def withdraw(
        self, amount: Decimal, card_id: int, request_no: str, caller: Principal
    ) -> PaymentOrderVo:
        """Pay ``amount`` out to the caller's bound card ``card_id``. A repeat returns the
        first order even when the card has been unbound since: it moves nothing."""
        amount = self._checked(amount)
        member = self._onboarded(caller)
        claim = self._requests.claim(
            _scope(caller), request_no, "withdraw", amount=amount, card_id=card_id
        )
        if claim.repeat:
            return self._vo(self._orders.get(claim.ref_id))
        card = self._payout_card(card_id, caller)
        box = self._pii  # SERVICE_UNAVAILABLE before anything is written
        account = self._ledger.account_of(caller.member_id)
        order = self._new_order(WITHDRAW, caller.member_id, amount, request_no, card.id)
        claim.done(REF_TYPE, order.id)
        self._ledger.post(
            "WITHDRAW_FREEZE",
            (REF_TYPE, order.id),
            [debit(account, AVAILABLE, amount), credit(account, FROZEN, amount)],
            order.request_no,
        )
        if self._bank is not None:
            self._bank.create(
                WITHDRAW,
                (REF_TYPE, order.id),
                member.id,
                order_no=order.order_no,
                account_no=member.fund_account_no,
                amount=amount,
                card_id=card.id,
            )
            return _order_vo(order, card)
        card_number = box.open(pii.CARD_NUMBER, card.card_sealed, caller.member_id)
        answer = self._gateway.withdraw(order.order_no, caller.member_id, amount, card_number)
        if answer.success:
            self._pay_out(order, answer.reference)
        else:
            self._unfreeze(order, answer.reference, answer.reason)
        return _order_vo(order, card)

    # -- queries -----------------------------------------------------------------------
    @transactional(read_only=True)
    def get_order(self, order_no: str, caller: Principal) -> PaymentOrderVo:
        order = self._orders.by_order_no(order_no)
        if order is None or order.member_id != caller.member_id:
            # The same answer for someone else's order: its existence is not told.
            raise BusinessError(
                errors.PAYMENT_ORDER_NOT_FOUND, f"payment order {order_no} does not exist"
            )
        return self._vo(order)

    @transactional(read_only=True)
    def list_orders(
        self, caller: Principal, page: int | None = None, page_size: int | None = None
    ) -> PageVo[PaymentOrderVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._orders.of_member(
            caller.member_id, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(self._vo(r) for r in rows), total, page, page_size)

    # -- helpers -----------------------------------------------------------------------
    @property
    def _pii(self) -> PersonalData:
        """The opener of sealed card numbers (SERVICE_UNAVAILABLE without
        security.secret_key; no card can have been bound then either)."""
        return pii.available(self._pii_box)

    def _onboarded(self, caller: Principal) -> MemberEntity:
        member = self._members.get(caller.member_id)
        if member is None:
            raise BusinessError(
                errors.MEMBER_NOT_FOUND, f"member {caller.member_id} does not exist"
            )
        require_onboarded(member)
        return member

    def _payout_card(self, card_id: int, caller: Principal) -> BankCardEntity:
        """The caller's bound card ``card_id``, its row locked until the commit so that it
        cannot be unbound while the depository pays out to it. Someone else's card answers
        exactly as a missing one: its existence is not told."""
        return bound_to(self._cards.lock(card_id), card_id, caller.member_id)

    def _vo(self, order: PaymentOrderEntity) -> PaymentOrderVo:
        """The order as callers see it. A withdrawal's card is read by id through the
        session, which holds each card once: a page of orders reads each card it names once,
        and a member has few. A PENDING order's bank order tells where the member confirms."""
        card = self._cards.get(order.card_id) if order.card_id is not None else None
        bank_order = None
        if order.status == PENDING:
            bank_order = self._bank_orders.latest_for(REF_TYPE, order.id)
        return _order_vo(order, card, bank_order)

    def _checked(self, amount: Decimal) -> Decimal:
        """The amount with exactly two places; VALIDATION_FAILED unless 0 < amount <=
        loan.max_amount (the largest loan is also the largest single payment)."""
        if not amount.is_finite() or amount != amount.quantize(CENT):
            raise invalid("amount", "must be a number with at most 2 decimal places")
        max_amount = self._settings.loan.max_amount
        if not 0 < amount <= max_amount:
            raise invalid("amount", f"must be above 0 and at most {shown(max_amount)}")
        return amount.quantize(CENT)

    def _new_order(
        self, kind: str, member_id: int, amount: Decimal, request_no: str, card_id: int | None
    ) -> PaymentOrderEntity:
        now = self._clock()
        order_no = f"{kind[0]}{now:%Y%m%d}{secrets.token_hex(10).upper()}"
        order = PaymentOrderEntity(
            order_no=order_no,
            member_id=member_id,
            type=kind,
            amount=amount,
            status="PENDING",
            request_no=request_no,
            card_id=card_id,
            created_at=now,
            updated_at=now,
        )
        return self._orders.add(order)

    # -- settling, at once (sandbox) or when the bank says (BANK) -----------------------------
    def _credit(self, order: PaymentOrderEntity, reference: str | None) -> None:
        """A recharge the depository collected: into the member's available balance."""
        clearing = self._ledger.platform(CLEARING)
        account = self._ledger.account_of(order.member_id)
        legs = [debit(clearing, AVAILABLE, order.amount), credit(account, AVAILABLE, order.amount)]
        self._ledger.post("RECHARGE", (REF_TYPE, order.id), legs, order.request_no)
        self._conclude(order, SUCCESS, reference)

    def _fail(self, order: PaymentOrderEntity, reference: str | None, reason: str | None) -> None:
        """A recharge the depository refused: nothing moved."""
        self._conclude(order, FAILED, reference, reason)

    def _pay_out(self, order: PaymentOrderEntity, reference: str | None) -> None:
        """A withdrawal the depository paid: the frozen amount leaves the platform."""
        account = self._ledger.account_of(order.member_id)
        clearing = self._ledger.platform(CLEARING)
        legs = [debit(account, FROZEN, order.amount), credit(clearing, AVAILABLE, order.amount)]
        self._ledger.post("WITHDRAW", (REF_TYPE, order.id), legs, order.request_no)
        self._conclude(order, SUCCESS, reference)

    def _unfreeze(
        self, order: PaymentOrderEntity, reference: str | None, reason: str | None
    ) -> None:
        """A withdrawal the depository refused: the frozen amount is available again."""
        account = self._ledger.account_of(order.member_id)
        legs = [debit(account, FROZEN, order.amount), credit(account, AVAILABLE, order.amount)]
        self._ledger.post("WITHDRAW_UNFREEZE", (REF_TYPE, order.id), legs, order.request_no)
        self._conclude(order, FAILED, reference, reason)

    def _conclude(
        self,
        order: PaymentOrderEntity,
        status: str,
        reference: str | None,
        reason: str | None = None,
    ) -> None:
        order.gateway_ref = reference
        order.status = status
        if status == FAILED:
            order.failure_reason = (reason or "refused by the depository")[:MAX_REASON]
        order.updated_at = self._clock()
        # Written even when equal to created_at, else the column's onupdate would replace it.
        flag_modified(order, "updated_at")
        self.tx.session().flush()

    # -- the bank's orders (registered with service/ocp when payment.gateway is BANK) ---------
    def _recharge_fields(self, bank_order: BankOrderEntity) -> dict[str, str]:
        return {
            "accountNo": bank_order.account_no,
            "amount": protocol.format_amount(bank_order.amount),
        }

    def _withdraw_fields(self, bank_order: BankOrderEntity) -> dict[str, str]:
        card = self._cards.get(bank_order.card_id)
        return {
            **self._recharge_fields(bank_order),
            "cardNumber": self._pii.open(pii.CARD_NUMBER, card.card_sealed, card.member_id),
        }

    def _bank_recharged(self, bank_order: BankOrderEntity, result: BankResult) -> None:
        self._credit(self._orders.get(bank_order.ref_id), bank_order.bank_ref)

    def _bank_paid_out(self, bank_order: BankOrderEntity, result: BankResult) -> None:
        self._pay_out(self._orders.get(bank_order.ref_id), bank_order.bank_ref)

    def _bank_refused(self, bank_order: BankOrderEntity, result: BankResult) -> None:
        order = self._orders.get(bank_order.ref_id)
        if order.type == WITHDRAW:
            self._unfreeze(order, bank_order.bank_ref, bank_order.reason)
        else:
            self._fail(order, bank_order.bank_ref, bank_order.reason)

    def _bank_returned(self, bank_order: BankOrderEntity, result: BankResult) -> None:
        """退单: the receiving bank returned a paid-out withdrawal; the money is back at the
        depository, so back in the member's available balance, and the member is told."""
        order = self._orders.get(bank_order.ref_id)
        account = self._ledger.account_of(order.member_id)
        clearing = self._ledger.platform(CLEARING)
        legs = [debit(clearing, AVAILABLE, order.amount), credit(account, AVAILABLE, order.amount)]
        self._ledger.post("WITHDRAW_REVERSAL", (REF_TYPE, order.id), legs, order.request_no)
        order.status = REVERSED
        order.updated_at = self._clock()
        self.tx.session().flush()
        self._messages.write(
            order.member_id,
            PAYMENT,
            Texts("Withdrawal returned", "提现被退回"),
            Texts(
                f"The receiving bank returned your withdrawal {order.order_no} "
                f"({order.amount:f} yuan); the money is back in your available balance.",
                f"您的提现 {order.order_no}（{order.amount:f} 元）被收款银行退回，"
                "款项已回到您的可用余额。",
            ),
            (REF_TYPE, order.id),
        )


def _scope(caller: Principal) -> str:
    return f"member:{caller.member_id}"
