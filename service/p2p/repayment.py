"""Repayment (还款): the borrower repays installments in order, or settles the whole listing
early, and every payment is split among the investors exactly, to the fen.

Decisions:

* An installment is overdue once its due date is before today (the UTC date of the clock),
  whether or not ``mark_overdue_installments`` has marked it yet: its penalty accrues from the
  day after the due date, on the installment's principal, at repayment.penalty_daily_rate.
* A penalty is split among the installment's receipts in proportion to their principal (the
  overdue principal each investor is owed), or goes to FEE_INCOME (out of CLEARING into
  PLATFORM_FUNDS: service/ledger.py) when repayment.penalty_to is PLATFORM. Principal and
  interest go to the investors as their receipts say.
* The platform keeps an interest service fee of each receipt's interest
  (repayment.interest_fee_rate less the investor's level's discount, rounded down to the fen:
  service/p2p/fees.py), charged when the receipt is paid and recorded on it (receipt.fee): the
  investor is credited principal + interest + penalty share - fee and FEE_INCOME the fees
  (out of CLEARING into PLATFORM_FUNDS, as a penalty the platform keeps). The rate is read once
  a repayment; the discounts once for all its investors.
* Early settlement pays the principal of every unpaid installment, the interest and penalty of
  those already past due, and, when repayment.early_settlement_interest is CURRENT_PERIOD, the
  interest of the first installment not yet due. The settled installments and receipts are
  rewritten to what was actually paid for them (waived interest becomes 0), so the plan's rows
  always add up to the money that moved.
* Only the listing's own borrower may repay it: another member gets FORBIDDEN for a listing
  they may see (a repaying one is public: nothing to hide), LOAN_NOT_FOUND for one they may
  not (service/p2p/listing.py), as for one that does not exist.

With payment.gateway BANK the money moves at the depository bank, as a REPAY batch
(service/ocp/batches.py). ``repay`` and ``settleEarly`` validate and claim the requestNo as
always, then freeze the borrower's due amount (REPAY_FREEZE: AVAILABLE -> FROZEN, ref the
installment or, for a settlement, the listing), mark the installment(s) PAYING, write one
batch with an item per receipt (payer the borrower, payee the investor: principal, interest
and penalty share, its service fee the receipt's interest service fee, which the bank pays the
platform out of it; a penalty kept by the platform is an item of its own, payee the platform's
account) and answer PENDING: getRepaymentSchedule shows PAYING, then PAID (SETTLED_EARLY). A
receipt of 0.00 moves nothing and is RECEIVED at once. Each item the bank SUCCEEDED is one
REPAY posting (borrower FROZEN -> investor AVAILABLE, its service fee, the receipt's fee fixed
when the batch was written, to FEE_INCOME), the receipt RECEIVED and the investor told; an
installment whose items all succeeded is PAID (SETTLED_EARLY), and the listing SETTLED after
its last one. A FAILED item is re-issued under a new number by the bank's machinery (its
money stays frozen, its service fee the same), until its attempts are used up; then it waits
for an operator to re-issue it (reissueBankOrder, service/reconciliation/actions.py), and the
installment stays PAYING meanwhile. While an installment is PAYING the listing takes no other
repayment or settlement (LOAN_STATE_INVALID): installments are paid in order, one at a time.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from dao.ocp import BankBatchRepository, BankOrderEntity
from dao.p2p import InstallmentEntity, LoanEntity, ReceiptEntity
from service import errors
from service.errors import BusinessError, invalid
from service.jobs import job
from service.ledger import AVAILABLE, FROZEN, credit, debit
from service.ocp import protocol
from service.ocp.orders import BankResult, Effects, Item, item_fields
from service.p2p import notices
from service.p2p.base import P2PBase
from service.p2p.fees import interest_fee
from service.p2p.listing import _loan_vo, _move, backs, loan_not_found, sees
from service.paging import PageVo, page_window
from service.schedule import Installment, accrued_penalty, schedule, split
from service.security import Principal
from service.transaction import transactional

PENDING, OVERDUE, PAID, SETTLED_EARLY = "PENDING", "OVERDUE", "PAID", "SETTLED_EARLY"
PAYING = "PAYING"
RECEIVED = "RECEIVED"
UNPAID = (PENDING, OVERDUE)
ZERO = Decimal("0.00")
#: The bank order type of a repayment's items.
REPAY = protocol.REPAY
#: A batch's business leg: one installment repaid, or a listing settled early.
_LEG_STATUS = {"installment": PAID, "loan": SETTLED_EARLY}

# schedule()'s argument names, as the contract spells them.
_PREVIEW_FIELDS = {
    "principal": "principal",
    "annual_rate": "annualRate",
    "term_months": "termMonths",
    "method": "repaymentMethod",
}


@dataclass(frozen=True)
class SchedulePreviewVo:
    """Every period on one page: page 1, total and page_size the number of periods."""

    items: tuple[Installment, ...]  # the schedule's own rows are the value objects
    total: int
    page: int
    page_size: int
    total_interest: Decimal
    total_payment: Decimal


@dataclass(frozen=True)
class InstallmentVo:
    period: int
    due_date: dt.date | None
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    payment: Decimal
    remaining: Decimal
    status: str
    paid_at: dt.datetime | None


@dataclass(frozen=True)
class RepaymentScheduleVo:
    """Every installment on one page: page 1, total and page_size the number of them."""

    loan_id: int
    loan_status: str
    projected: bool
    items: tuple[InstallmentVo, ...]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class RepaymentVo:
    loan_id: int
    period: int
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    amount: Decimal
    paid_at: dt.datetime | None  # None while PENDING at the bank
    settled: bool
    status: str  # PAID, or PENDING while the bank pays it (payment.gateway BANK)


@dataclass(frozen=True)
class SettlementVo:
    loan_id: int
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    amount: Decimal
    settled_at: dt.datetime | None  # None while PENDING at the bank
    status: str  # PAID, or PENDING while the bank pays it


@dataclass(frozen=True)
class OverdueMarkVo:
    marked: int


@dataclass(frozen=True)
class ReceiptVo:
    loan_id: int
    investment_id: int
    period: int
    due_date: dt.date
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    amount: Decimal
    fee: Decimal  # the interest service fee kept of it: amount - fee is what was received
    status: str
    received_at: dt.datetime | None


@dataclass(frozen=True)
class RepaymentDueVo:
    loan_id: int
    period: int
    due_date: dt.date
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    amount: Decimal
    status: str


def _schedule(loan, projected: bool, items: tuple[InstallmentVo, ...]) -> RepaymentScheduleVo:
    return RepaymentScheduleVo(loan.id, loan.status, projected, items, len(items), 1, len(items))


class RepaymentService(P2PBase):
    """Repayment schedules, repaying, overdue marking, early settlement and receipts."""

    def _bank_effects(self) -> dict[str, Effects]:
        return {
            **super()._bank_effects(),
            REPAY: Effects(item_fields, self._item_paid, self._reissue),
        }

    # -- queries -----------------------------------------------------------------------
    def preview_repayment_schedule(
        self, principal: Decimal, annual_rate: Decimal, term_months: int, repayment_method: str
    ) -> SchedulePreviewVo:
        """The table a listing with these terms would repay by. Pure arithmetic: it reads
        nothing, so it opens no transaction."""
        try:
            rows = schedule(principal, annual_rate, term_months, repayment_method)
        except ValueError as e:
            argument, _, problem = str(e).partition(" ")  # "annual_rate must be ..."
            raise invalid(_PREVIEW_FIELDS.get(argument, argument), problem) from None
        return SchedulePreviewVo(
            rows,
            len(rows),
            1,
            len(rows),
            sum((r.interest for r in rows), ZERO),
            sum((r.payment for r in rows), ZERO),
        )

    @transactional(read_only=True)
    def get_repayment_schedule(
        self, loan_id: int, caller: Principal | None = None
    ) -> RepaymentScheduleVo:
        """The plan of a listing the caller may see (service/p2p/listing.py)."""
        loan = self._loan(loan_id)
        if not (sees(caller, _loan_vo(loan)) or backs(caller, loan.id, self._investments)):
            raise loan_not_found(loan_id)
        stored = self._plans.installments(loan_id)
        if not stored:
            rows = schedule(loan.amount, loan.annual_rate, loan.term_months, loan.repayment_method)
            projected = tuple(
                InstallmentVo(
                    r.period,
                    None,
                    r.principal,
                    r.interest,
                    ZERO,
                    r.payment,
                    r.remaining,
                    PENDING,
                    None,
                )
                for r in rows
            )
            return _schedule(loan, True, projected)
        today, terms = self._today(), self._repayment_settings
        return _schedule(loan, False, tuple(self._installment_vo(i, today, terms) for i in stored))

    @transactional(read_only=True)
    def list_receipts(
        self,
        loan_id: int | None = None,
        page: int | None = None,
        page_size: int | None = None,
        caller: Principal | None = None,
    ) -> PageVo[ReceiptVo]:
        page, page_size = page_window(page, page_size, self._api)
        rows, total = self._plans.receipts_of_investor(
            caller.member_id, loan_id, offset=(page - 1) * page_size, limit=page_size
        )
        items = tuple(
            ReceiptVo(
                r.loan_id,
                r.investment_id,
                r.period,
                due,
                r.principal,
                r.interest,
                r.penalty,
                r.principal + r.interest + r.penalty,
                r.fee,
                r.status,
                r.received_at,
            )
            for r, due in rows
        )
        return PageVo(items, total, page, page_size)

    @transactional(read_only=True)
    def get_repayments_due(
        self,
        page: int | None = None,
        page_size: int | None = None,
        caller: Principal | None = None,
    ) -> PageVo[RepaymentDueVo]:
        page, page_size = page_window(page, page_size, self._api)
        today, terms = self._today(), self._repayment_settings
        rows, total = self._plans.next_due_of_borrower(
            caller.member_id, offset=(page - 1) * page_size, limit=page_size
        )
        items = []
        for i in rows:
            penalty = self._penalty(i, today, terms)
            items.append(
                RepaymentDueVo(
                    i.loan_id,
                    i.period,
                    i.due_date,
                    i.principal,
                    i.interest,
                    penalty,
                    i.principal + i.interest + penalty,
                    self._status(i, today),
                )
            )
        return PageVo(tuple(items), total, page, page_size)

    # -- commands ----------------------------------------------------------------------
    @transactional
    def repay(self, loan_id: int, request_no: str, caller: Principal) -> RepaymentVo:
        loan = self._own_locked(loan_id, caller)
        claim = self._requests.claim(
            f"member:{caller.member_id}", request_no, "repay", loan_id=loan_id
        )
        if claim.repeat:
            return self._repayment_vo(self.tx.session().get(InstallmentEntity, claim.ref_id))
        _require_repaying(loan, "repay it")
        self._require_nothing_paying(loan)
        unpaid = self._plans.unpaid_installments(loan_id)
        installment = unpaid[0]
        receipts = self._plans.receipts_of_installment(installment.id)
        now, today, terms = self._clock(), self._today(), self._repayment_settings
        installment.penalty = self._penalty(installment, today, terms)
        amount = installment.principal + installment.interest + installment.penalty
        if self._bank is not None and amount:
            ref = ("installment", installment.id)
            self._pay_at_bank(loan, [installment], {installment.id: receipts}, ref, request_no)
            claim.done(*ref)
            return self._repayment_vo(installment)
        accounts = self._plans.investor_accounts(loan_id)
        fees = self._interest_fees(receipts, terms)
        legs = [debit(self._ledger.account_of(loan.borrower_id), AVAILABLE, amount)]
        legs += self._pay_receipts(receipts, installment.penalty, accounts, now, terms, fees)
        if amount:  # an installment of 0.00 (interest rounded to nothing) moves no money
            self._ledger.post("REPAYMENT", ("installment", installment.id), legs, request_no)
        notices.repaid(self._messages, loan, receipts, ("installment", installment.id))
        self._lifecycle.receipts_paid(loan, receipts)
        installment.status = PAID
        installment.paid_at = now
        if len(unpaid) == 1:
            self._settle(loan, now)
        self.tx.session().flush()
        claim.done("installment", installment.id)
        self._events.repaid(amount)
        return self._repayment_vo(installment)

    @transactional
    def settle_early(self, loan_id: int, request_no: str, caller: Principal) -> SettlementVo:
        loan = self._own_locked(loan_id, caller)
        claim = self._requests.claim(
            f"member:{caller.member_id}", request_no, "settleEarly", loan_id=loan_id
        )
        if claim.repeat:
            return self._settlement_vo(loan)
        _require_repaying(loan, "settle it early")
        self._require_nothing_paying(loan)
        unpaid = self._plans.unpaid_installments(loan_id)
        receipts = self._plans.receipts_of_installments([i.id for i in unpaid])
        by_installment: dict[int, list[ReceiptEntity]] = {i.id: [] for i in unpaid}
        for r in receipts:
            by_installment[r.installment_id].append(r)
        now, today, terms = self._clock(), self._today(), self._repayment_settings
        current_interest = terms.early_settlement_interest == "CURRENT_PERIOD"
        accounts = self._plans.investor_accounts(loan_id)
        legs = []
        waived = set()
        for i in unpaid:
            if i.due_date >= today:  # not yet due: the current period, then the later ones
                keep = current_interest
                current_interest = False
                if not keep:
                    i.interest = ZERO
                    waived.add(i.id)
            i.penalty = self._penalty(i, today, terms)
        amount = sum((i.principal + i.interest + i.penalty for i in unpaid), ZERO)
        if self._bank is not None and amount:
            for r in receipts:
                if r.installment_id in waived:
                    r.interest = ZERO
            self._pay_at_bank(loan, unpaid, by_installment, ("loan", loan.id), request_no)
            claim.done("loan", loan.id)
            return self._settlement_vo(loan)
        fees = self._interest_fees(receipts, terms, waived)  # on the interest it pays
        for i in unpaid:
            rs = by_installment[i.id]
            legs += self._pay_receipts(rs, i.penalty, accounts, now, terms, fees, i.id in waived)
            i.status = SETTLED_EARLY
            i.paid_at = now
        legs.append(debit(self._ledger.account_of(loan.borrower_id), AVAILABLE, amount))
        self._ledger.post("EARLY_SETTLEMENT", ("loan", loan.id), legs, request_no)
        notices.repaid(self._messages, loan, receipts, ("loan", loan.id))
        self._lifecycle.receipts_paid(loan, receipts)
        self._settle(loan, now)
        self.tx.session().flush()
        claim.done("loan", loan.id)
        self._events.repaid(amount)
        return self._settlement_vo(loan)

    @job("loan.mark_overdue")
    @transactional
    def mark_overdue_installments(self) -> OverdueMarkVo:
        return OverdueMarkVo(self._plans.mark_overdue(self._today()))

    # -- helpers -----------------------------------------------------------------------
    def _today(self) -> dt.date:
        return self._clock().astimezone(dt.UTC).date()

    def _loan(self, loan_id: int) -> LoanEntity:
        loan = self._loans.get(loan_id)
        if loan is None:
            raise loan_not_found(loan_id)
        return loan

    def _own_locked(self, loan_id: int, caller: Principal) -> LoanEntity:
        """The listing, row-locked (the lock every repayment of it queues on), if it is the
        caller's own."""
        loan = self._loans.get_for_update(loan_id)
        if loan is None or not sees(caller, _loan_vo(loan)):
            raise loan_not_found(loan_id)
        if loan.borrower_id != caller.member_id:
            raise BusinessError(errors.FORBIDDEN, f"listing {loan_id} is not your listing")
        return loan

    def _penalty(self, installment: InstallmentEntity, today: dt.date, terms) -> Decimal:
        """`terms`: the call's one snapshot of settings.repayment (it is reloadable)."""
        days = (today - installment.due_date).days
        if days <= 0:
            return ZERO
        return accrued_penalty(installment.principal, terms.penalty_daily_rate, days)

    def _status(self, installment: InstallmentEntity, today: dt.date) -> str:
        if installment.status == PENDING and installment.due_date < today:
            return OVERDUE
        return installment.status

    def _pay_receipts(
        self,
        receipts,
        penalty: Decimal,
        accounts,
        now: dt.datetime,
        terms,
        fees: dict[int, Decimal],
        waived: bool = False,
    ) -> list:
        """Credit legs paying ``receipts`` their principal and interest (none when
        ``waived``), and ``penalty`` split by their principal (or to FEE_INCOME), less their
        interest service fees (``fees``, by receipt id: to FEE_INCOME); the receipts become
        RECEIVED, written in a few multi-row UPDATEs."""
        shares = _penalty_shares(receipts, penalty, terms)
        paid = [
            (ZERO if waived else r.interest, share, fees[r.id])
            for r, share in zip(receipts, shares, strict=True)
        ]
        legs = []
        if penalty and terms.penalty_to == "PLATFORM":
            legs.extend(self._ledger.earned(penalty))
        if kept := sum((fee for _, _, fee in paid), ZERO):
            legs.extend(self._ledger.earned(kept))
        for r, (interest, share, fee) in zip(receipts, paid, strict=True):
            legs.append(
                credit(accounts[r.investor_id], AVAILABLE, r.principal + interest + share - fee)
            )
        self._plans.receive(receipts, paid, now)
        return legs

    def _interest_fees(
        self, receipts: list[ReceiptEntity], terms, waived: frozenset[int] | set[int] = frozenset()
    ) -> dict[int, Decimal]:
        """Each receipt's interest service fee on the interest it is paid (none for the
        installments in ``waived``: service/p2p/fees.py), by receipt id: the investors'
        discounts are read once for all of them, and not at all when no fee is due (the rate
        0, or no interest)."""
        rate = terms.interest_fee_rate
        paid = {r.id: ZERO if r.installment_id in waived else r.interest for r in receipts}
        if not rate or not any(paid.values()):
            return dict.fromkeys(paid, ZERO)
        discounts = self._fee_discounts.discounts({r.investor_id for r in receipts})
        return {r.id: interest_fee(paid[r.id], rate, discounts[r.investor_id]) for r in receipts}

    # -- at the depository bank (payment.gateway BANK) ----------------------------------------
    def _require_nothing_paying(self, loan: LoanEntity) -> None:
        paying = [i for i in self._plans.installments(loan.id) if i.status == PAYING]
        if paying:
            raise BusinessError(
                errors.LOAN_STATE_INVALID,
                f"listing {loan.id}: installment {paying[0].period} is being paid at the bank",
            )

    def _pay_at_bank(
        self,
        loan: LoanEntity,
        installments: list[InstallmentEntity],
        receipts: dict[int, list[ReceiptEntity]],
        ref: tuple[str, int],
        request_no: str,
    ) -> None:
        """Freeze what ``installments`` (penalties set) take from the borrower, mark them
        PAYING and write the REPAY batch(es) paying their receipts (module docstring)."""
        terms, now = self._repayment_settings, self._clock()
        amount = sum((i.principal + i.interest + i.penalty for i in installments), ZERO)
        account = self._ledger.account_of(loan.borrower_id)
        legs = [debit(account, AVAILABLE, amount), credit(account, FROZEN, amount)]
        self._ledger.post("REPAY_FREEZE", ref, legs, request_no)
        parties = {loan.borrower_id, *(r.investor_id for rs in receipts.values() for r in rs)}
        payees = self._fund_accounts(parties)
        if missing := sorted(m for m in parties if not payees.get(m)):
            # Only a listing from before the fund-account rule can get here: nothing moves.
            raise BusinessError(
                errors.FUND_ACCOUNT_REQUIRED,
                f"member {missing[0]} has no fund account at the bank to repay through",
            )
        payer = payees[loan.borrower_id]
        platform = protocol.platform_account_no(self._settings.bank.merchant_id)
        fees = self._interest_fees([r for rs in receipts.values() for r in rs], terms)
        items = []
        for i in installments:
            if i.penalty and terms.penalty_to == "PLATFORM":
                leg = ("installment", i.id)
                items.append(Item(leg, loan.borrower_id, payer, platform, ZERO, ZERO, i.penalty))
            shares = _penalty_shares(receipts[i.id], i.penalty, terms)
            for r, share in zip(receipts[i.id], shares, strict=True):
                r.penalty = share
                r.fee = fees[r.id]  # the payee pays it to the platform out of the item
                if r.principal + r.interest + share:
                    payee = payees[r.investor_id]
                    leg = ("receipt", r.id)
                    items.append(
                        Item(
                            leg,
                            loan.borrower_id,
                            payer,
                            payee,
                            r.principal,
                            r.interest,
                            share,
                            service_fee=r.fee,
                        )
                    )
                else:  # nothing to pay: received as it is
                    r.status = RECEIVED
                    r.received_at = now
            i.status = PAYING
            i.updated_at = now
        self.tx.session().flush()
        for start in range(0, len(items), protocol.MAX_BATCH_ITEMS):
            chunk = items[start : start + protocol.MAX_BATCH_ITEMS]
            self._bank.create_batch(REPAY, loan.id, ref, chunk)

    def _item_paid(self, item: BankOrderEntity, result: BankResult) -> None:
        """The bank paid one REPAY item (its row locked): the money leaves the borrower's
        frozen funds, the receipt is RECEIVED; the installment is PAID once all are."""
        batch = self._bank.batch_of(item)
        loan = self._loans.get_for_update(batch.loan_id)  # every item of a listing queues here
        now = self._clock()
        frozen = self._ledger.account_of(item.member_id)
        legs = [debit(frozen, FROZEN, item.amount)]
        if item.ref_type == "receipt":
            receipt = self.tx.session().get(ReceiptEntity, item.ref_id)
            payee = self._ledger.account_of(receipt.investor_id)
            legs.append(credit(payee, AVAILABLE, item.amount - item.service_fee))
            legs.extend(self._ledger.earned(item.service_fee))
            receipt.status = RECEIVED
            receipt.received_at = now
            notices.repaid(self._messages, loan, [receipt], ("receipt", receipt.id))
            self._lifecycle.receipts_paid(loan, [receipt])
        else:  # the platform's penalty
            legs.extend(self._ledger.earned(item.amount))
        self._ledger.post(REPAY, (item.ref_type, item.ref_id), legs, item.order_no)
        self._events.repaid(item.amount)
        self._conclude_paying(loan, _LEG_STATUS[batch.ref_type], now)

    def _conclude_paying(self, loan: LoanEntity, paid: str, now: dt.datetime) -> None:
        """Every PAYING installment of ``loan`` whose receipts are all RECEIVED (counted, not
        loaded: this runs for every item the bank paid) and whose platform penalty item, if
        any, succeeded becomes ``paid``; the listing is SETTLED when none is left to pay."""
        installments = self._plans.installments(loan.id)
        paying = [i for i in installments if i.status == PAYING]
        owed = self._plans.unreceived([i.id for i in paying])
        penalties = BankBatchRepository(self.tx.session).items_of_ref(
            "installment", [i.id for i in paying], REPAY
        )
        for i in paying:
            own = [p for p in penalties if p.ref_id == i.id]
            if owed.get(i.id) or (own and all(p.status != "SUCCEEDED" for p in own)):
                continue
            i.status = paid
            i.paid_at = now
            i.updated_at = now
        if all(i.status in (PAID, SETTLED_EARLY) for i in installments):
            self._settle(loan, now)
        self.tx.session().flush()

    def _settle(self, loan: LoanEntity, now: dt.datetime) -> None:
        _move(loan, "SETTLED", "settle it")
        self._evict_loan(loan.id)
        loan.settled_at = now
        loan.updated_at = now
        notices.settled(self._messages, loan)
        self._investments.settle_active(loan.id)
        self._lifecycle.loan_settled(loan)

    def _installment_vo(self, i: InstallmentEntity, today: dt.date, terms) -> InstallmentVo:
        penalty = self._penalty(i, today, terms) if i.status in UNPAID else i.penalty
        return InstallmentVo(
            i.period,
            i.due_date,
            i.principal,
            i.interest,
            penalty,
            i.principal + i.interest + penalty,
            i.remaining,
            self._status(i, today),
            i.paid_at,
        )

    def _repayment_vo(self, i: InstallmentEntity) -> RepaymentVo:
        last = self._plans.installments(i.loan_id)[-1]
        return RepaymentVo(
            i.loan_id,
            i.period,
            i.principal,
            i.interest,
            i.penalty,
            i.principal + i.interest + i.penalty,
            i.paid_at,
            last.id == i.id,
            PENDING if i.status == PAYING else PAID,
        )

    def _settlement_vo(self, loan: LoanEntity) -> SettlementVo:
        """What the settlement paid: its installments, SETTLED_EARLY or still PAYING (a
        settlement is refused while a repayment is PAYING, so those are its own)."""
        settled = [
            i for i in self._plans.installments(loan.id) if i.status in (SETTLED_EARLY, PAYING)
        ]
        principal = sum((i.principal for i in settled), ZERO)
        interest = sum((i.interest for i in settled), ZERO)
        penalty = sum((i.penalty for i in settled), ZERO)
        return SettlementVo(
            loan.id,
            principal,
            interest,
            penalty,
            principal + interest + penalty,
            loan.settled_at,
            PAID if loan.status == "SETTLED" else PENDING,
        )


def _penalty_shares(receipts: list[ReceiptEntity], penalty: Decimal, terms) -> list[Decimal]:
    """Each receipt's share of ``penalty``: split by their principal when it goes to the
    investors, none when the platform keeps it."""
    shares = [ZERO] * len(receipts)
    if penalty and terms.penalty_to == "INVESTORS":
        owed = [k for k, r in enumerate(receipts) if r.principal > 0]
        for k, share in zip(
            owed, split(penalty, [receipts[k].principal for k in owed]), strict=True
        ):
            shares[k] = share
    return shares


def _require_repaying(loan: LoanEntity, action: str) -> None:
    if loan.status != "REPAYING":
        raise BusinessError(
            errors.LOAN_STATE_INVALID, f"listing {loan.id} is {loan.status}: cannot {action}"
        )
