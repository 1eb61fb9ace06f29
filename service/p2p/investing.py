"""Investing (购买标的), failure (流标), cancellation and disbursement (融资收款).

Every command but investing locks the listing row first (SELECT ... FOR UPDATE, held only for
its short transaction; SQLite serialises writers instead), checks against what it then reads,
and moves money by one balanced posting per movement.

Investing takes the listing's row last, since every investor of a popular listing queues on it:
it checks the listing as read without a lock, then writes everything that is the investor's own
(the requestNo's record, the investment, its coupons, the INVEST posting whose conditional
UPDATE debits the investor's balance, the lifecycle's listeners), and only then adds its amount
to ``raised`` by one conditional UPDATE (``UPDATE loan SET raised = raised + :a ... WHERE id =
:id AND status = 'RAISING' AND raised + :a < amount AND min_invest <= :a AND the deadline not
passed``) right before the commit, so the listing's row lock is held for that one statement and
the commit, whatever else the investment writes. When that UPDATE changes no row (the
investment would take the last fen, or the listing changed since it was read) the row is locked
and checked as it is now, exactly as investing did before: a refusal gives the same error code
and rolls back everything the investment wrote; taking the last fen makes the listing FULL under
the lock, once. Either way investing and raising are one transaction: ``raised`` never exceeds
the amount and always equals the sum of the listing's investments that hold part of it (not
RELEASED, nor, with the bank below, RELEASING or FAILED). The investor's balance row is locked
by the posting's debit (by SELECT ... FOR UPDATE before the cap is checked, for a listing with
a per-investor cap) before the listing's, and commands on the listing lock it before the
investors' accounts: of two such transactions that meet, MariaDB rolls one back as a deadlock
and the transaction manager retries it whole (service/transaction.py). This is an investment
made alone; a worker's concurrent investments in one listing are made together, each with the
outcome it would have here, by one transaction of set-based statements a group
(service/p2p/hotlisting.py).

Postings: an investment freezes the investor's funds (INVEST, ref the investment); a failed or
cancelled listing releases each FROZEN investment by its own posting (FAIL or CANCEL, ref the
investment), so freeze and release pair up one to one for an auditor; disbursement is one
posting for the whole listing (DISBURSE, ref the listing).

Only an onboarded investor (real name verified, fund account open) invests; the check comes
first, before the listing is read or the requestNo claimed, so a refusal leaves nothing and
the same requestNo works once the investor is onboarded. Disbursement checks no one: the
borrower was checked when the listing was published or modified (service/p2p/listing.py),
and listings published before that rule existed are disbursed as they always were.

With ``payment.gateway`` BANK the depository freezes and releases the money, by orders
(service/ocp/), and the platform's ledger follows what the bank did:

* ``invest`` makes the same checks (and that the investor's available balance in the ledger
  covers the amount: INSUFFICIENT_FUNDS), claims the requestNo, and in one transaction writes
  the investment PENDING under an order number of its own and a FREEZE order under that
  number (ref the investment), and RESERVES the capacity: ``raised`` grows at once (by the
  same last statement as with the sandbox; the listing is never made FULL here), so later
  investors see what remains and a listing is never oversubscribed. Nothing is posted yet.
  The answer is PENDING; the investor confirms on the bank's page (``authorizeUrl``, on the
  investment once the bank has accepted the order) and follows it with getInvestment or
  listInvestments.
* FREEZE SUCCEEDED (the effects below run in the transaction that settles the order, which
  locks the bank order's row, then the listing's, then the ledger's accounts): the INVEST
  posting records the bank's freeze. If the listing still raises, the investment is FROZEN
  and the investor told, as with the sandbox; the listing is FULL when ``raised`` equals its
  amount and none of its investments is PENDING any more (disbursed at once with
  loan.auto_disburse). If it has ended meanwhile (failed by deadline, cancelled), the
  investment is refunded by an UNFREEZE order of its own: RELEASING until it succeeds.
  Should the ledger's available balance not cover the freeze (the money is held by a
  withdrawal the bank will refuse), the settlement fails and the bank's word is applied when
  it comes again (the notification is not acknowledged; a query asks again).
* FREEZE FAILED (refused, cancelled by the member, authorisation expired, the balance too
  low at the bank): the investment is FAILED with the bank's reason, ``raised`` gives the
  capacity back (the listing keeps raising), nothing is posted.
* Cancelling a listing or failing it by its deadline releases each FROZEN investment by an
  UNFREEZE order: RELEASING at once, and ``raised`` drops at once (it counts PENDING, FROZEN,
  ACTIVE and SETTLED investments, never RELEASING, RELEASED or FAILED ones); on SUCCEEDED the
  release posting (FAIL or CANCEL, FROZEN -> AVAILABLE) and RELEASED. PENDING investments of
  an ended listing stay PENDING until their FREEZE settles (then FAILED, or refunded as
  above). An UNFREEZE that FAILS leaves the investment RELEASING (still frozen, at the bank
  too) with the reason, raises an ALERT and fails ``p2p check-ledger`` until a person has
  dealt with it: never dropped silently. An operator deals with it by re-issuing the release
  (reissueBankOrder, service/reconciliation/actions.py): a new UNFREEZE under a new number,
  ``retry_of`` the failed one, naming the same FREEZE; the reason is cleared meanwhile, and
  the new order's outcome is applied as the first one's would have been.
* A listing with an investment PENDING or RELEASING is not disbursed (LOAN_STATE_INVALID).
* Disbursement is a DISBURSE batch at the bank (service/ocp/batches.py): the FULL listing
  becomes DISBURSING, with one item per investment (payer the investor, payee the borrower,
  principal the investment, drawn from what its FREEZE holds, ``freezeOrderNo`` the
  investment's order number; serviceFee its exact share of the platform fee: the fee split by
  the investments' amounts by the largest-remainder rule, so the items add up to the fee to
  the fen). Each item the bank SUCCEEDED is one DISBURSE posting (ref the investment: investor
  FROZEN -> borrower AVAILABLE less the fee share, the share to FEE_INCOME, which moves it from
  CLEARING to PLATFORM_FUNDS: service/ledger.py) and the investment ACTIVE; once every
  investment is, the listing is REPAYING, its plan written and the parties told, as at once
  with the sandbox. A FAILED item is re-issued under a new number until its attempts are used
  up, then waits for an operator to re-issue it (reissueBankOrder); the listing stays
  DISBURSING meanwhile. A listing raised before investing was a bank order (its investments
  have no FREEZE) is disbursed in the ledger as before; one with both kinds is refused
  (LOAN_STATE_INVALID).
"""

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from dao.ocp import BankOrderEntity
from dao.p2p import InvestmentEntity, LoanEntity
from service import errors
from service.errors import BusinessError, invalid
from service.jobs import job
from service.ledger import AVAILABLE, CENT, FROZEN, credit, debit
from service.member.onboarding import require_onboarded
from service.ocp import protocol
from service.ocp.orders import BankResult, Effects, Item, item_fields, new_order_no
from service.p2p import notices
from service.p2p.base import P2PBase
from service.p2p.listing import LoanVo, _loan_vo, _move, backs, loan_not_found, sees
from service.p2p.plan import write_plan
from service.paging import PageVo, page_window
from service.schedule import split
from service.security import Principal
from service.text import shown, trim
from service.transaction import Propagation, transactional

log = logging.getLogger(__name__)

DISBURSE = protocol.DISBURSE
REF_TYPE = "investment"
#: investment.failure_reason's width.
MAX_REASON = 200


@dataclass(frozen=True)
class InvestmentVo:
    investment_id: int
    loan_id: int
    amount: Decimal
    status: str
    created_at: dt.datetime
    # With the depository bank: the FREEZE order's number, the bank's page where the investor
    # confirms a PENDING investment (once the bank has accepted it), and why it FAILED (or
    # why its release failed).
    order_no: str | None = None
    authorize_url: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class ExpiredLoansVo:
    failed: int


def _investment_vo(
    entity: InvestmentEntity, bank_order: BankOrderEntity | None = None
) -> InvestmentVo:
    return InvestmentVo(
        entity.id,
        entity.loan_id,
        entity.amount,
        entity.status,
        entity.created_at,
        entity.order_no,
        bank_order.authorize_url if bank_order and entity.status == "PENDING" else None,
        entity.failure_reason,
    )


def platform_fee(amount: Decimal, rate: Decimal) -> Decimal:
    """The fee kept at disbursement: ``amount * rate`` rounded half up to the fen."""
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


class InvestingService(P2PBase):
    """Investing in a listing, its failure or cancellation, and its disbursement."""

    # -- commands ----------------------------------------------------------------------
    @transactional
    def invest(
        self,
        loan_id: int,
        amount: Decimal,
        request_no: str,
        caller: Principal,
        coupon_ids: Sequence[int] | None = None,
    ) -> InvestmentVo:
        """Freeze ``amount`` of the caller's funds in a RAISING listing; FULL when the last
        fen is taken (and disbursed at once when loan.auto_disburse is on). With the bank the
        investment is PENDING until the bank has frozen the funds (see above). A listing the
        investor may not see (service/p2p/listing.py) is LOAN_NOT_FOUND, as a missing one.
        ``coupon_ids`` are the investor's coupons to use on it, locked to it in this
        transaction (service/marketing/usage.py) or the whole investment refused.

        The listing's row is taken last (see the module docstring): everything that is the
        investor's own is written first, checked against the listing as read without a lock,
        and the listing's ``raised`` grows by one conditional UPDATE just before the commit.
        With a per-investor cap the investor's account row is locked before what they hold
        in the listing is summed, so their own concurrent investments are counted one after
        another and the cap is exact."""
        investor = self._members.get(caller.member_id)
        if investor is None:
            raise BusinessError(
                errors.MEMBER_NOT_FOUND, f"member {caller.member_id} does not exist"
            )
        require_onboarded(investor, who="the investor")
        loan = self._loans.get(loan_id)
        if loan is None:
            raise loan_not_found(loan_id)
        if not (sees(caller, _loan_vo(loan)) or backs(caller, loan.id, self._investments)):
            raise loan_not_found(loan_id)
        coupons = {"coupon_ids": ",".join(map(str, coupon_ids))} if coupon_ids else {}
        claim = self._requests.claim(
            f"member:{caller.member_id}",
            request_no,
            "invest",
            loan_id=loan_id,
            amount=amount,
            **coupons,
        )
        if claim.repeat:
            return self._vo(self._investments.get(claim.ref_id))
        now = self._clock()
        self._check_investment(loan, amount, caller, now)
        capped = loan.max_invest_per_investor is not None
        account = self._ledger.account_of(caller.member_id, lock=capped)
        if capped:
            self._check_cap(loan, amount, caller)
        at_the_bank = self._bank is not None
        if at_the_bank:
            self._check_covered(account.available, amount)
        investment = self._investments.add(
            InvestmentEntity(
                loan_id=loan.id,
                investor_id=caller.member_id,
                amount=amount,
                status="PENDING" if at_the_bank else "FROZEN",
                request_no=request_no,
                order_no=new_order_no("I", now) if at_the_bank else None,
                created_at=now,
                updated_at=now,
            )
        )
        if coupon_ids:
            self._coupons.lock(coupon_ids, loan, investment)
        if at_the_bank:
            self._freeze_at_the_bank(investor, investment)
        else:
            self._ledger.post(
                "INVEST",
                (REF_TYPE, investment.id),
                [debit(account, AVAILABLE, amount), credit(account, FROZEN, amount)],
                request_no,
            )
            notices.invested(self._messages, loan, investment)
            self._lifecycle.investment_frozen(loan, investment)
        claim.done(REF_TYPE, investment.id)
        self.tx.session().flush()
        moved = self._raise(loan, investment, caller, now)
        self._evict_loan(loan.id, pages=moved)
        if not at_the_bank:
            self._events.invested(amount)
        return _investment_vo(investment)

    def _raise(
        self, loan: LoanEntity, investment: InvestmentEntity, caller: Principal, now: dt.datetime
    ) -> bool:
        """The investment's amount into the listing's ``raised``, the last statement before
        the commit: one conditional UPDATE (LoanRepository.take_raised) when the listing
        still raises and some of it remains after. Otherwise (it would take the last fen, or
        the listing changed since it was read) the row is locked and checked again as it is
        now, as investing always did: the refusal is the same error the checks give (and
        everything written rolls back), and an investment taking the last fen makes the
        listing FULL (at once with the sandbox; with the bank when no FREEZE is pending,
        ``_bank_froze``), told once, under the lock. True when the listing's status moved
        (listLoans pages may hold it no longer)."""
        amount = investment.amount
        if self._loans.take_raised(loan.id, amount, now):
            return False
        loan = self._locked(loan.id)
        status = loan.status
        self._check_investment(loan, amount, caller, now)
        loan.raised += amount
        loan.updated_at = now
        if self._bank is None and loan.raised == loan.amount:
            _move(loan, "FULL", "mark it full")
            self._lifecycle.loan_full(loan)
            if self._loan_settings.auto_disburse:
                self._disburse(loan, investment.request_no)
        self.tx.session().flush()
        return loan.status != status

    @transactional
    def cancel_loan(self, loan_id: int, reason: str, caller: Principal) -> LoanVo:
        """Cancel a listing not yet disbursed, releasing every frozen investment."""
        reason = trim(reason or "")
        if not reason:
            raise invalid("reason", "is required to cancel a listing")
        if len(reason) > 500:
            raise invalid("reason", "must have at most 500 characters")
        loan = self._locked(loan_id)
        _move(loan, "CANCELLED", "cancel it")
        loan.reject_reason = reason
        self._release_all(loan, "CANCEL")
        self._evict_loan(loan.id)
        log.info("listing %s cancelled by operator %s", loan.id, caller.member_id)
        return self._saved(loan)

    @job("loan.close_expired")
    @transactional(read_only=True)
    def close_expired_loans(self) -> ExpiredLoansVo:
        """Fail (流标) every RAISING listing past its deadline, one transaction a listing so a
        long list holds no lock for long; says how many this call failed."""
        expired = self._loans.expired_raising(self._clock())
        return ExpiredLoansVo(sum(1 for loan_id in expired if self._fail_if_expired(loan_id)))

    @transactional
    def disburse_loan(self, loan_id: int, request_no: str, caller: Principal) -> LoanVo:
        """Lend a FULL listing's money to its borrower (REPAYING) and write its plan."""
        loan = self._locked(loan_id)
        claim = self._requests.claim(
            f"member:{caller.member_id}", request_no, "disburseLoan", loan_id=loan_id
        )
        if not claim.repeat:
            self._disburse(loan, request_no)
            claim.done("loan", loan.id)
        return self._saved(loan)

    # -- queries -----------------------------------------------------------------------
    @transactional(read_only=True)
    def get_investment(self, investment_id: int, caller: Principal) -> InvestmentVo:
        """One of the caller's investments; someone else's answers as a missing one."""
        investment = self._investments.get(investment_id)
        if investment is None or investment.investor_id != caller.member_id:
            raise BusinessError(
                errors.INVESTMENT_NOT_FOUND, f"investment {investment_id} does not exist"
            )
        return self._vo(investment)

    @transactional(read_only=True)
    def list_investments(
        self,
        caller: Principal,
        loan_id: int | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> PageVo[InvestmentVo]:
        page, page_size = page_window(page, page_size, self._api)
        rows, total = self._investments.page_of_investor(
            caller.member_id, loan_id=loan_id, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(map(self._vo, rows)), total, page, page_size)

    # -- helpers -----------------------------------------------------------------------
    @transactional(propagation=Propagation.REQUIRES_NEW)
    def _fail_if_expired(self, loan_id: int) -> bool:
        loan = self._locked(loan_id)
        deadline = loan.raise_deadline
        if loan.status != "RAISING" or deadline is None or deadline > self._clock():
            return False  # invested full, cancelled or changed since the list was read
        _move(loan, "FAILED", "fail it")
        self._release_all(loan, "FAIL")
        self._evict_loan(loan.id)
        self._saved(loan)
        return True

    def _check_investment(
        self, loan: LoanEntity, amount: Decimal, caller: Principal, now: dt.datetime
    ) -> None:
        if loan.status != "RAISING":
            raise BusinessError(
                errors.LOAN_STATE_INVALID, f"listing {loan.id} is {loan.status}: cannot invest"
            )
        deadline = loan.raise_deadline
        if deadline is not None and now >= deadline:
            raise BusinessError(
                errors.RAISING_ENDED,
                f"listing {loan.id} stopped raising at {deadline:%Y-%m-%d %H:%M:%S} UTC",
            )
        if caller.member_id == loan.borrower_id:
            raise BusinessError(
                errors.OWN_LOAN, f"member {caller.member_id} borrows listing {loan.id}"
            )
        if amount <= 0 or amount != amount.quantize(CENT):
            raise invalid("amount", "must be above 0 with at most 2 decimal places")
        remaining = loan.amount - loan.raised
        if amount > remaining:
            raise BusinessError(
                errors.INVEST_ABOVE_REMAINING,
                f"amount {shown(amount)} exceeds the {shown(remaining)} remaining",
            )
        if amount < loan.min_invest and amount != remaining:
            needed = (
                f"exactly the {shown(remaining)} remaining"
                if remaining < loan.min_invest
                else f"at least minInvest {shown(loan.min_invest)}"
            )
            raise BusinessError(
                errors.INVEST_BELOW_MINIMUM, f"amount {shown(amount)}: invest {needed}"
            )

    def _check_cap(self, loan: LoanEntity, amount: Decimal, caller: Principal) -> None:
        """INVEST_CAP_EXCEEDED when ``amount`` on top of what the caller holds in ``loan``
        passes its maxInvestPerInvestor (the caller's account row locked before: ``invest``)."""
        cap = loan.max_invest_per_investor
        if cap is not None:
            held = self._investments.total_of_investor(loan.id, caller.member_id)
            if held + amount > cap:
                raise BusinessError(
                    errors.INVEST_CAP_EXCEEDED,
                    f"amount {shown(amount)} on top of {shown(held)} exceeds "
                    f"maxInvestPerInvestor {shown(cap)}",
                )

    def _disburse(self, loan: LoanEntity, request_no: str) -> None:
        """FULL -> REPAYING: one posting from the investors' frozen funds to the borrower and
        the fee income, investments ACTIVE, and the repayment plan written; with the bank,
        FULL -> DISBURSING and a DISBURSE batch (the module docstring)."""
        freezes = self._freezes(loan) if self._bank is not None else None
        _move(loan, "REPAYING" if freezes is None else "DISBURSING", "disburse it")
        unsettled = self._investments.count_of_loan(loan.id, ("PENDING", "RELEASING"))
        if unsettled:
            raise BusinessError(
                errors.LOAN_STATE_INVALID,
                f"listing {loan.id} has {unsettled} investment(s) the bank has not settled:"
                " cannot disburse it yet",
            )
        if freezes is not None:
            self._disburse_at_bank(loan, freezes)
            return
        self._evict_loan(loan.id)
        investments = self._investments.of_loan(loan.id, status="FROZEN")
        fee = platform_fee(loan.amount, self._loan_settings.platform_fee_rate)
        legs = [
            debit(self._ledger.account_of(inv.investor_id), FROZEN, inv.amount)
            for inv in investments
        ]
        legs.append(credit(self._ledger.account_of(loan.borrower_id), AVAILABLE, loan.amount - fee))
        legs.extend(self._ledger.earned(fee))
        self._ledger.post("DISBURSE", ("loan", loan.id), legs, request_no)
        notices.disbursed(self._messages, loan, investments, fee)
        now = self._clock()
        for inv in investments:
            inv.status = "ACTIVE"
            inv.updated_at = now
        loan.fee = fee
        loan.disbursed_at = now
        loan.updated_at = now
        write_plan(self._plans, loan, investments, now.astimezone(dt.UTC).date())
        self._lifecycle.loan_disbursed(loan, investments)

    # -- at the depository bank (payment.gateway BANK) ----------------------------------------
    def _freezes(self, loan: LoanEntity) -> dict[int, str] | None:
        """Investment id -> the FREEZE order holding its money at the bank (a FROZEN
        investment's order number; the DISBURSE items draw from them), for ``loan``'s
        investments; None for a listing raised before investing was a bank order, whose money
        only the ledger froze: it is disbursed as it always was. A listing with both kinds
        cannot be disbursed either way: LOAN_STATE_INVALID, for an operator."""
        investments = self._investments.of_loan(loan.id, status="FROZEN")
        freezes = {inv.id: inv.order_no for inv in investments if inv.order_no is not None}
        if not freezes:
            return None
        if len(freezes) != len(investments):
            raise BusinessError(
                errors.LOAN_STATE_INVALID,
                f"listing {loan.id}: some investments are frozen at the bank, some not",
            )
        return freezes

    def _disburse_at_bank(self, loan: LoanEntity, freezes: dict[int, str]) -> None:
        self._evict_loan(loan.id)
        investments = self._investments.of_loan(loan.id, status="FROZEN")
        fee = platform_fee(loan.amount, self._loan_settings.platform_fee_rate)
        shares = split(fee, [inv.amount for inv in investments])  # adding up to the fee
        parties = {loan.borrower_id, *(inv.investor_id for inv in investments)}
        accounts = self._fund_accounts(parties)
        if missing := sorted(m for m in parties if not accounts.get(m)):
            raise BusinessError(
                errors.FUND_ACCOUNT_REQUIRED,
                f"member {missing[0]} has no fund account at the bank to disburse through",
            )
        items = [
            Item(
                ("investment", inv.id),
                inv.investor_id,
                accounts[inv.investor_id],
                accounts[loan.borrower_id],
                inv.amount,
                service_fee=share,
                freeze_order_no=freezes[inv.id],
            )
            for inv, share in zip(investments, shares, strict=True)
        ]
        loan.fee = fee
        loan.updated_at = self._clock()
        for start in range(0, len(items), protocol.MAX_BATCH_ITEMS):
            chunk = items[start : start + protocol.MAX_BATCH_ITEMS]
            self._bank.create_batch(DISBURSE, loan.id, ("loan", loan.id), chunk)

    def _item_lent(self, item: BankOrderEntity, result: BankResult) -> None:
        """The bank lent one investment (its item's row locked): the investor's frozen money
        goes to the borrower less the fee share; the listing is REPAYING once all are."""
        loan = self._loans.get_for_update(self._bank.batch_of(item).loan_id)
        investment = self._investments.get(item.ref_id)
        investor = self._ledger.account_of(investment.investor_id)
        borrower = self._ledger.account_of(loan.borrower_id)
        legs = [
            debit(investor, FROZEN, item.amount),
            credit(borrower, AVAILABLE, item.amount - item.service_fee),
            *self._ledger.earned(item.service_fee),
        ]
        self._ledger.post("DISBURSE", ("investment", investment.id), legs, item.order_no)
        now = self._clock()
        investment.status = "ACTIVE"
        investment.updated_at = now
        if self._investments.of_loan(loan.id, status="FROZEN"):
            self.tx.session().flush()
            return
        _move(loan, "REPAYING", "finish its disbursement")
        self._evict_loan(loan.id)
        investments = self._investments.of_loan(loan.id, status="ACTIVE")
        notices.disbursed(self._messages, loan, investments, loan.fee)
        loan.disbursed_at = now
        loan.updated_at = now
        write_plan(self._plans, loan, investments, now.astimezone(dt.UTC).date())
        self._lifecycle.loan_disbursed(loan, investments)

    def _release_all(self, loan: LoanEntity, business_type: str) -> None:
        """Unfreeze every FROZEN investment of ``loan``, one posting each, or, for one the bank
        froze, one UNFREEZE order each; raised drops by each (PENDING ones keep theirs until
        their FREEZE settles)."""
        now = self._clock()
        for inv in self._investments.of_loan(loan.id, status="FROZEN"):
            if self._bank is not None and inv.order_no is not None:
                self._release_at_the_bank(loan, inv, now)
                continue  # frozen only in the ledger (before the bank): released there
            account = self._ledger.account_of(inv.investor_id)
            self._ledger.post(
                business_type,
                ("investment", inv.id),
                [debit(account, FROZEN, inv.amount), credit(account, AVAILABLE, inv.amount)],
            )
            inv.status = "RELEASED"
            inv.updated_at = now
            loan.raised -= inv.amount
            notices.released(self._messages, loan, inv)
            self._lifecycle.investment_released(loan, inv)
        loan.updated_at = now

    def _vo(self, investment: InvestmentEntity) -> InvestmentVo:
        """The investment as callers see it; a PENDING one's bank order tells where the
        investor confirms."""
        bank_order = None
        if investment.status == "PENDING":
            bank_order = self._bank_orders.latest_for(REF_TYPE, investment.id)
        return _investment_vo(investment, bank_order)

    # -- the bank's orders (payment.gateway BANK) ------------------------------------------
    def _check_covered(self, available: Decimal, amount: Decimal) -> None:
        """INSUFFICIENT_FUNDS unless the investor's ``available`` balance in the ledger
        covers ``amount`` (with the sandbox the INVEST posting itself says so)."""
        if available < amount:
            raise BusinessError(
                errors.INSUFFICIENT_FUNDS,
                f"available balance {shown(available)} is below {shown(amount)}",
            )

    def _freeze_at_the_bank(self, investor, investment: InvestmentEntity) -> None:
        """The PENDING investment's FREEZE order (its capacity is reserved at once by
        ``invest``, in ``raised``)."""
        self._bank.create(
            protocol.FREEZE,
            (REF_TYPE, investment.id),
            investor.id,
            order_no=investment.order_no,
            account_no=investor.fund_account_no,
            amount=investment.amount,
        )

    def _release_at_the_bank(
        self, loan: LoanEntity, investment: InvestmentEntity, now: dt.datetime
    ) -> None:
        """RELEASING, out of raised, and an UNFREEZE order of its own for the bank."""
        investment.status = "RELEASING"
        investment.updated_at = now
        loan.raised -= investment.amount
        loan.updated_at = now
        self._unfreeze(investment, now)

    def _unfreeze(
        self,
        investment: InvestmentEntity,
        now: dt.datetime,
        retry_of: BankOrderEntity | None = None,
    ) -> BankOrderEntity:
        """The UNFREEZE order releasing ``investment``'s FREEZE (re-issuing ``retry_of``)."""
        return self._bank.create(
            protocol.UNFREEZE,
            (REF_TYPE, investment.id),
            investment.investor_id,
            order_no=new_order_no("U", now),
            account_no=self._members.get(investment.investor_id).fund_account_no,
            amount=investment.amount,
            retry_of=retry_of,
        )

    def _release_again(self, order: BankOrderEntity) -> BankOrderEntity:
        """An operator re-issues the FAILED release ``order`` (the ``reissue`` effect): the
        investment, still RELEASING, waits for the new UNFREEZE, no longer for a person."""
        investment = self._investments.get(order.ref_id)
        now = self._clock()
        investment.failure_reason = None
        investment.updated_at = now
        return self._unfreeze(investment, now, retry_of=order)

    def _bank_effects(self) -> dict[str, Effects]:
        return {
            **super()._bank_effects(),
            protocol.FREEZE: Effects(self._freeze_fields, self._bank_froze, self._not_frozen),
            protocol.UNFREEZE: Effects(
                self._unfreeze_fields,
                self._bank_released,
                self._not_released,
                reissue=self._release_again,
            ),
            DISBURSE: Effects(item_fields, self._item_lent, self._reissue),
        }

    def _freeze_fields(self, order: BankOrderEntity) -> dict[str, str]:
        return {"accountNo": order.account_no, "amount": protocol.format_amount(order.amount)}

    def _unfreeze_fields(self, order: BankOrderEntity) -> dict[str, str]:
        investment = self._investments.get(order.ref_id)
        return {**self._freeze_fields(order), "freezeOrderNo": investment.order_no}

    def _bank_froze(self, order: BankOrderEntity, result: BankResult) -> None:
        investment = self._investments.get(order.ref_id)
        loan = self._locked(investment.loan_id)
        account = self._ledger.account_of(investment.investor_id)
        amount = investment.amount
        self._ledger.post(
            "INVEST",
            (REF_TYPE, investment.id),
            [debit(account, AVAILABLE, amount), credit(account, FROZEN, amount)],
            investment.request_no,
        )
        now = self._clock()
        self._evict_loan(loan.id)
        if loan.status != "RAISING":  # failed or cancelled while the bank froze it: refund
            self._release_at_the_bank(loan, investment, now)
            self.tx.session().flush()
            return
        investment.status = "FROZEN"
        investment.updated_at = now
        loan.updated_at = now
        self.tx.session().flush()
        notices.invested(self._messages, loan, investment)
        self._events.invested(amount)
        self._lifecycle.investment_frozen(loan, investment)
        if loan.raised == loan.amount and not self._investments.count_of_loan(
            loan.id, ("PENDING",)
        ):
            _move(loan, "FULL", "mark it full")
            self._lifecycle.loan_full(loan)
            if self._loan_settings.auto_disburse:
                self._disburse(loan, investment.request_no)
        self.tx.session().flush()

    def _not_frozen(self, order: BankOrderEntity, result: BankResult) -> None:
        investment = self._investments.get(order.ref_id)
        loan = self._locked(investment.loan_id)
        now = self._clock()
        investment.status = "FAILED"
        investment.failure_reason = (order.reason or "refused by the bank")[:MAX_REASON]
        investment.updated_at = now
        loan.raised -= investment.amount
        loan.updated_at = now
        self._evict_loan(loan.id)
        self.tx.session().flush()
        notices.not_invested(self._messages, loan, investment)
        self._lifecycle.investment_refused(loan, investment)

    def _bank_released(self, order: BankOrderEntity, result: BankResult) -> None:
        investment = self._investments.get(order.ref_id)
        loan = self._loans.get(investment.loan_id)  # CANCELLED or FAILED: it changes no more
        account = self._ledger.account_of(investment.investor_id)
        amount = investment.amount
        self._ledger.post(
            "CANCEL" if loan.status == "CANCELLED" else "FAIL",
            (REF_TYPE, investment.id),
            [debit(account, FROZEN, amount), credit(account, AVAILABLE, amount)],
        )
        investment.status = "RELEASED"
        investment.updated_at = self._clock()
        self.tx.session().flush()
        notices.released(self._messages, loan, investment)
        self._lifecycle.investment_released(loan, investment)

    def _not_released(self, order: BankOrderEntity, result: BankResult) -> None:
        investment = self._investments.get(order.ref_id)
        why = f"the bank did not release it (UNFREEZE {order.order_no}: {order.reason})"
        investment.failure_reason = why[:MAX_REASON]
        investment.updated_at = self._clock()
        self.tx.session().flush()
        self._bank.alert(
            order,
            f"investment {investment.id} stays frozen at the bank and here; {why}; an "
            "operator may re-issue the release (reissueBankOrder)",
        )

    def _locked(self, loan_id: int) -> LoanEntity:
        loan = self._loans.get_for_update(loan_id)
        if loan is None:
            raise loan_not_found(loan_id)
        return loan

    def _saved(self, loan: LoanEntity) -> LoanVo:
        self.tx.session().flush()
        return _loan_vo(loan)
