"""The platform's own account at the depository bank (平台自有账户): its owners funding it (FUND,
平台充值) and the platform paying members from it (TRANSFER, 平台转账: marketing rewards,
compensation).

The ledger mirrors that account in PLATFORM_FUNDS, beside CLEARING, the members' money
(service/ledger.py). Every movement is one row in platform_transfer (dao/treasury.py), carried by
a bank order under the row's order number, and balanced postings (ref the row):

* funding: PENDING; when the depository says it succeeded, PLATFORM_FUND: debit PLATFORM_FUNDS,
  credit OWNER_FUNDING (what the owners paid in). A FUND that fails moves nothing. Fund the
  account before the bank charges its fees: they are taken from it (service/ocp/machine.py).
* paying a member: the member must be onboarded (IDENTITY_NOT_VERIFIED, FUND_ACCOUNT_REQUIRED:
  the bank pays into their sub-account). The amount is frozen on PLATFORM_FUNDS at once
  (PLATFORM_TRANSFER_FREEZE: its AVAILABLE credited, its FROZEN debited, as the bank freezes it
  when it accepts the order), so two payments never spend the same money: the ledger's
  conditional update decides between racing ones, and the one it cannot cover is
  PLATFORM_FUNDS_INSUFFICIENT with nothing written. SUCCESS: PLATFORM_TRANSFER, PLATFORM_FUNDS'
  FROZEN out and CLEARING in (the money is a member's now), the purpose's expense
  (MARKETING_EXPENSE, COMPENSATION_EXPENSE) debited and the member's AVAILABLE credited, and a
  message tells the member (category PAYMENT). FAILED: PLATFORM_TRANSFER_UNFREEZE gives the
  amount back to PLATFORM_FUNDS' available balance.

With payment.gateway SANDBOX the depository answers at once, inside the transaction: the row,
its postings and the request number commit together, or (when the gateway raises) not at all.
With BANK the call writes the row PENDING and its FUND or TRANSFER bank order, and commits; the
bank's final word (a notification, a query on doubt) settles it through the effects registered
below, in the transaction that settles the order, exactly once. A FUND is confirmed by the
platform's treasurer on the bank's page (``authorizeUrl``, on the row once the bank has accepted
the order), as a member confirms a recharge; a TRANSFER needs no one's confirmation.

:class:`PlatformTransfers` does the work inside the caller's transaction, so that another
service (marketing, for its rewards) pays a member inside its own transaction by the same
rules; :class:`TreasuryService` is the operators' (facade/treasury.py), and registers the bank's
effects once.

Request numbers: claimed in the caller's scope (service/idempotency.py) and kept on the row,
unique per scope: a repeat returns the first row and moves nothing; the same number with other
content is REQUEST_NO_REUSED. Every check comes before the claim, so a refused call writes
nothing and its number may be used again.

Locks: a payment freezes on the PLATFORM_FUNDS row and holds it to the commit, so payments
queue there. With the sandbox the same transaction then posts over CLEARING, the expense and
the member's account, after PLATFORM_FUNDS: a posting running at that moment over both mirrors
in the ledger's id order (a disbursement's fee) may deadlock with it, and @transactional
retries the loser. With BANK a call locks PLATFORM_FUNDS alone; settling locks the bank order's
row, then the accounts in the ledger's id order.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm.attributes import flag_modified

from dao.member import MemberRepository
from dao.ocp import BankOrderEntity, BankOrderRepository
from dao.treasury import (
    MAX_MEMO,
    MAX_REASON,
    TRANSFER_KINDS,
    TRANSFER_STATUSES,
    PlatformTransferEntity,
    PlatformTransferRepository,
)
from service import errors
from service.errors import BusinessError, invalid
from service.gateway import DepositoryGateway
from service.idempotency import Idempotency
from service.language import Texts
from service.ledger import (
    AVAILABLE,
    CENT,
    CLEARING,
    FEE_INCOME,
    FROZEN,
    PLATFORM_FUNDS,
    Ledger,
    credit,
    debit,
)
from service.mapping import to_vo
from service.member.onboarding import require_onboarded
from service.message import PAYMENT, Messages
from service.ocp import protocol
from service.ocp.orders import BankOrders, BankResult, Effects
from service.paging import PageVo, page_window
from service.security import Principal
from service.text import is_blank, shown
from service.transaction import IllegalTransactionStateError, transactional

REF_TYPE = "platform_transfer"
FUND, TRANSFER = protocol.FUND, protocol.TRANSFER
PENDING, SUCCESS, FAILED = "PENDING", "SUCCESS", "FAILED"
OWNER_FUNDING, BANK_FEES = "OWNER_FUNDING", "BANK_FEES"
MARKETING_EXPENSE, COMPENSATION_EXPENSE = "MARKETING_EXPENSE", "COMPENSATION_EXPENSE"
#: The expense account each purpose is paid from (dao/ledger.py), and its words to a member.
EXPENSES = {"MARKETING": MARKETING_EXPENSE, "COMPENSATION": COMPENSATION_EXPENSE}
_TOLD = {
    "MARKETING": Texts("a marketing reward", "营销奖励"),
    "COMPENSATION": Texts("compensation", "补偿"),
}


@dataclass(frozen=True)
class PlatformTransferVo:
    transfer_id: int
    order_no: str
    kind: str
    member_id: int | None
    amount: Decimal
    purpose: str | None
    memo: str | None
    status: str
    failure_reason: str | None
    requested_by: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    # The bank's page where the treasurer confirms a PENDING FUND (gateway BANK, once accepted).
    authorize_url: str | None = None


@dataclass(frozen=True)
class PlatformAccountVo:
    """The platform's own account at the bank as the ledger holds it, and what moved it."""

    account_no: str
    available: Decimal
    frozen: Decimal
    owner_funding: Decimal
    fee_income: Decimal
    bank_fees: Decimal
    marketing_expense: Decimal
    compensation_expense: Decimal


class PlatformTransfers:
    """Funding the platform's own account and paying members from it, in the caller's
    transaction (it never opens or commits one): the treasury's operations use it, and any
    service that pays a member (marketing) does, with the same rules. ``bank`` is None unless
    payment.gateway is BANK; ``gateway`` is the sandbox's then."""

    def __init__(
        self,
        tx,
        settings,
        clock,
        gateway: DepositoryGateway | None,
        bank: BankOrders | None,
    ):
        self.tx = tx
        self._settings = settings  # LiveSettings: loan.max_amount is reloadable
        self._clock = clock
        self._gateway = gateway
        self._bank = bank
        self._transfers = PlatformTransferRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._ledger = Ledger(tx)
        self._requests = Idempotency(tx)
        self._messages = Messages(tx, clock)

    def fund(
        self, amount: Decimal, request_no: str, scope: str, requested_by: int | None
    ) -> PlatformTransferEntity:
        """The owners fund the platform's account with ``amount`` (FUND): PENDING with the
        bank, SUCCESS or FAILED at once with the sandbox. ``scope`` is the request number's
        (the caller's), ``requested_by`` the operator who asked, if one did."""
        self._require_transaction()
        amount = self._checked(amount)
        claim = self._requests.claim(scope, request_no, "platform.fund", amount=amount)
        if claim.repeat:
            return self._transfers.get(claim.ref_id)
        transfer = self._new(FUND, None, amount, None, None, (scope, request_no), requested_by)
        claim.done(REF_TYPE, transfer.id)
        if self._bank is not None:
            self._bank.create(
                FUND,
                (REF_TYPE, transfer.id),
                None,
                order_no=transfer.order_no,
                account_no=self.account_no,
                amount=amount,
            )
            return transfer
        answer = self._gateway.fund(transfer.order_no, amount)
        if answer.success:
            self.succeeded(transfer, answer.reference)
        else:
            self.failed(transfer, answer.reference, answer.reason)
        return transfer

    def pay(
        self,
        member_id: int,
        amount: Decimal,
        purpose: str,
        memo: str | None,
        request_no: str,
        scope: str,
        requested_by: int | None,
        business_type: str | None = None,
    ) -> PlatformTransferEntity:
        """Pay ``amount`` from the platform's account to member ``member_id`` for ``purpose``
        (MARKETING or COMPENSATION), ``memo`` telling them why (TRANSFER): frozen on
        PLATFORM_FUNDS at once, then PENDING with the bank, SUCCESS or FAILED at once with the
        sandbox. ``business_type`` names the posting at success when the paying service has
        its own (marketing's MKT_...; PLATFORM_TRANSFER otherwise)."""
        self._require_transaction()
        amount = self._checked(amount)
        if purpose not in EXPENSES:
            raise invalid("purpose", f"must be one of {', '.join(EXPENSES)}")
        if memo is not None and (is_blank(memo) or len(memo) > MAX_MEMO):
            raise invalid("memo", f"must not be blank, at most {MAX_MEMO} characters")
        member = self._members.get(member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND, f"member {member_id} does not exist")
        require_onboarded(member)
        claim = self._requests.claim(
            scope,
            request_no,
            "platform.pay",
            member_id=member_id,
            amount=amount,
            purpose=purpose,
            memo=memo,
        )
        if claim.repeat:
            return self._transfers.get(claim.ref_id)
        ask = (scope, request_no)
        transfer = self._new(TRANSFER, member_id, amount, purpose, memo, ask, requested_by)
        transfer.business_type = business_type
        claim.done(REF_TYPE, transfer.id)
        self._freeze(transfer)
        if self._bank is not None:
            self._bank.create(
                TRANSFER,
                (REF_TYPE, transfer.id),
                member_id,
                order_no=transfer.order_no,
                account_no=member.fund_account_no,
                amount=amount,
            )
            return transfer
        answer = self._gateway.transfer(transfer.order_no, member_id, amount)
        if answer.success:
            self.succeeded(transfer, answer.reference)
        else:
            self.failed(transfer, answer.reference, answer.reason)
        return transfer

    @property
    def account_no(self) -> str:
        """The platform's own account's number at the bank."""
        return protocol.platform_account_no(self._settings.bank.merchant_id)

    # -- settling, at once (sandbox) or when the bank says (BANK) -----------------------------
    def succeeded(self, transfer: PlatformTransferEntity, reference: str | None) -> None:
        """The depository moved the money: FUND into the platform's account from its owners,
        TRANSFER from the frozen amount to the member, who is told."""
        funds = self._ledger.platform(PLATFORM_FUNDS)
        amount, ref = transfer.amount, (REF_TYPE, transfer.id)
        if transfer.kind == FUND:
            owners = self._ledger.platform(OWNER_FUNDING)
            legs = [debit(funds, AVAILABLE, amount), credit(owners, AVAILABLE, amount)]
            self._ledger.post("PLATFORM_FUND", ref, legs, transfer.request_no)
        else:
            legs = [
                credit(funds, FROZEN, amount),
                debit(self._ledger.platform(CLEARING), AVAILABLE, amount),
                debit(self._ledger.platform(EXPENSES[transfer.purpose]), AVAILABLE, amount),
                credit(self._ledger.account_of(transfer.member_id), AVAILABLE, amount),
            ]
            business_type = transfer.business_type or "PLATFORM_TRANSFER"
            self._ledger.post(business_type, ref, legs, transfer.request_no)
            self._tell(transfer)
        self._conclude(transfer, SUCCESS, reference)

    def failed(
        self, transfer: PlatformTransferEntity, reference: str | None, reason: str | None
    ) -> None:
        """The depository refused: nothing moved; a TRANSFER's frozen amount is available to
        the platform again."""
        if transfer.kind == TRANSFER:
            funds, amount = self._ledger.platform(PLATFORM_FUNDS), transfer.amount
            legs = [debit(funds, AVAILABLE, amount), credit(funds, FROZEN, amount)]
            ref = (REF_TYPE, transfer.id)
            self._ledger.post("PLATFORM_TRANSFER_UNFREEZE", ref, legs, transfer.request_no)
        self._conclude(transfer, FAILED, reference, reason)

    # -- helpers -----------------------------------------------------------------------
    def _require_transaction(self) -> None:
        if not self.tx.in_transaction():
            raise IllegalTransactionStateError("the platform's money moves in its caller's tx")

    def _checked(self, amount: Decimal) -> Decimal:
        """The amount with exactly two places; VALIDATION_FAILED unless 0 < amount <=
        loan.max_amount (the largest single payment, as for members' payments)."""
        if not amount.is_finite() or amount != amount.quantize(CENT):
            raise invalid("amount", "must be a number with at most 2 decimal places")
        max_amount = self._settings.loan.max_amount
        if not 0 < amount <= max_amount:
            raise invalid("amount", f"must be above 0 and at most {shown(max_amount)}")
        return amount.quantize(CENT)

    def _new(
        self,
        kind: str,
        member_id: int | None,
        amount: Decimal,
        purpose: str | None,
        memo: str | None,
        request: tuple[str, str],
        requested_by: int | None,
    ) -> PlatformTransferEntity:
        now = self._clock()
        return self._transfers.add(
            PlatformTransferEntity(
                order_no=f"{kind[0]}{now:%Y%m%d}{secrets.token_hex(10).upper()}",
                kind=kind,
                member_id=member_id,
                amount=amount,
                purpose=purpose,
                memo=memo,
                status=PENDING,
                request_scope=request[0],
                request_no=request[1],
                requested_by=requested_by,
                created_at=now,
                updated_at=now,
            )
        )

    def _freeze(self, transfer: PlatformTransferEntity) -> None:
        """Hold the amount on the platform's account until the depository says; refused
        PLATFORM_FUNDS_INSUFFICIENT above its available balance."""
        funds = self._ledger.platform(PLATFORM_FUNDS)
        legs = [credit(funds, AVAILABLE, transfer.amount), debit(funds, FROZEN, transfer.amount)]
        try:
            self._ledger.post(
                "PLATFORM_TRANSFER_FREEZE", (REF_TYPE, transfer.id), legs, transfer.request_no
            )
        except BusinessError as refused:
            if refused.error is not errors.INSUFFICIENT_FUNDS:
                raise
            raise BusinessError(
                errors.PLATFORM_FUNDS_INSUFFICIENT,
                f"the platform's own account has less than {shown(transfer.amount)} available",
            ) from None

    def _tell(self, transfer: PlatformTransferEntity) -> None:
        told, memo = _TOLD[transfer.purpose], transfer.memo
        self._messages.write(
            transfer.member_id,
            PAYMENT,
            Texts("Transfer from the platform", "平台转账到账"),
            Texts(
                f"The platform paid you {transfer.amount:f} yuan ({told.en}"
                + (f": {memo}" if memo else "")
                + "); it is in your available balance.",
                f"平台向您转账 {transfer.amount:f} 元（{told.zh}"
                + (f"：{memo}" if memo else "")
                + "），已到您的可用余额。",
            ),
            (REF_TYPE, transfer.id),
        )

    def _conclude(
        self,
        transfer: PlatformTransferEntity,
        status: str,
        reference: str | None,
        reason: str | None = None,
    ) -> None:
        now = self._clock()
        transfer.gateway_ref = reference
        transfer.status = status
        if status == FAILED:
            transfer.failure_reason = (reason or "refused by the depository")[:MAX_REASON]
        transfer.finished_at = now
        transfer.updated_at = now
        # Written even when equal to created_at, else the column's onupdate would replace it.
        flag_modified(transfer, "updated_at")
        self.tx.session().flush()


class TreasuryService:
    """The operators' view of the platform's own account, and their funding and payments."""

    def __init__(
        self,
        tx,
        settings,
        clock,
        gateway: DepositoryGateway | None,
        bank: BankOrders | None = None,
    ):
        self.tx = tx
        self._settings = settings  # LiveSettings: api.* is reloadable
        self._transfers = PlatformTransfers(tx, settings, clock, gateway, bank)
        self._rows = PlatformTransferRepository(tx.session)
        self._bank_orders = BankOrderRepository(tx.session)
        self._ledger = Ledger(tx)
        if bank is not None:
            effects = Effects(self._bank_fields, self._bank_succeeded, self._bank_failed)
            bank.register(FUND, effects)
            bank.register(TRANSFER, effects)

    # -- commands ----------------------------------------------------------------------
    @transactional
    def fund_platform_account(
        self, amount: Decimal, request_no: str, caller: Principal
    ) -> PlatformTransferVo:
        transfer = self._transfers.fund(amount, request_no, _scope(caller), caller.member_id)
        return self._vo(transfer)

    @transactional
    def pay_member(
        self,
        member_id: int,
        amount: Decimal,
        purpose: str,
        memo: str | None,
        request_no: str,
        caller: Principal,
    ) -> PlatformTransferVo:
        transfer = self._transfers.pay(
            member_id, amount, purpose, memo, request_no, _scope(caller), caller.member_id
        )
        return self._vo(transfer)

    # -- queries -----------------------------------------------------------------------
    @transactional(read_only=True)
    def get_platform_account(self) -> PlatformAccountVo:
        def held(code: str) -> Decimal:
            account = self._ledger.platform(code)
            return account.available + account.frozen

        funds = self._ledger.platform(PLATFORM_FUNDS)
        return PlatformAccountVo(
            account_no=self._transfers.account_no,
            available=funds.available,
            frozen=funds.frozen,
            owner_funding=held(OWNER_FUNDING),
            fee_income=held(FEE_INCOME),
            bank_fees=held(BANK_FEES),
            marketing_expense=held(MARKETING_EXPENSE),
            compensation_expense=held(COMPENSATION_EXPENSE),
        )

    @transactional(read_only=True)
    def get_platform_transfer(self, transfer_id: int) -> PlatformTransferVo:
        transfer = self._rows.get(transfer_id)
        if transfer is None:
            raise BusinessError(
                errors.PLATFORM_TRANSFER_NOT_FOUND,
                f"platform transfer {transfer_id} does not exist",
            )
        return self._vo(transfer)

    @transactional(read_only=True)
    def list_platform_transfers(
        self,
        kind: str | None = None,
        status: str | None = None,
        member_id: int | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> PageVo[PlatformTransferVo]:
        if kind is not None and kind not in TRANSFER_KINDS:
            raise invalid("kind", f"must be one of {', '.join(TRANSFER_KINDS)}")
        if status is not None and status not in TRANSFER_STATUSES:
            raise invalid("status", f"must be one of {', '.join(TRANSFER_STATUSES)}")
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._rows.page(
            kind, status, member_id, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(self._vo(r) for r in rows), total, page, page_size)

    # -- helpers -----------------------------------------------------------------------
    def _vo(self, transfer: PlatformTransferEntity) -> PlatformTransferVo:
        """The row as operators see it; a PENDING FUND's bank order tells where the treasurer
        confirms it (a TRANSFER is confirmed by no one)."""
        url = None
        if transfer.status == PENDING and transfer.kind == FUND:
            order = self._bank_orders.latest_for(REF_TYPE, transfer.id)
            url = order.authorize_url if order is not None else None
        return to_vo(PlatformTransferVo, transfer, transfer_id=transfer.id, authorize_url=url)

    # -- the bank's orders (registered with service/ocp when payment.gateway is BANK) ---------
    def _bank_fields(self, bank_order: BankOrderEntity) -> dict[str, str]:
        fields = {"amount": protocol.format_amount(bank_order.amount)}
        if bank_order.order_type == TRANSFER:
            fields["accountNo"] = bank_order.account_no
        return fields

    def _bank_succeeded(self, bank_order: BankOrderEntity, result: BankResult) -> None:
        self._transfers.succeeded(self._rows.get(bank_order.ref_id), bank_order.bank_ref)

    def _bank_failed(self, bank_order: BankOrderEntity, result: BankResult) -> None:
        transfer = self._rows.get(bank_order.ref_id)
        self._transfers.failed(transfer, bank_order.bank_ref, bank_order.reason)


def _scope(caller: Principal) -> str:
    return f"member:{caller.member_id}"
