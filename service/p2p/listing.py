"""Listings (标的): publish, modify, audit and browse, and the listing's state machine.

A listing names an onboarded borrower (real name verified, fund account open): publishing
and modifying check it, since either may name the borrower. That check is the gate for the
listing's whole life: auditing, investing, disbursing and repaying do not repeat it.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm.exc import StaleDataError

from dao.p2p import LoanEntity
from service import errors
from service.caching import cached
from service.errors import BusinessError, invalid
from service.mapping import to_vo
from service.member.onboarding import require_onboarded
from service.p2p.base import LOAN, LOAN_PAGES, P2PBase
from service.paging import PageVo, page_window
from service.security import Principal
from service.transaction import transactional

REPAYMENT_METHODS = ("EQUAL_INSTALLMENT", "EQUAL_PRINCIPAL", "MONTHLY_INTEREST", "BULLET")
MAX_RATE = Decimal(36)

#: Which status may follow which. Later modules (investing, disbursement, repayment) add
#: their moves here; every change of status goes through :func:`_move`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "PENDING_AUDIT": frozenset({"PENDING_AUDIT", "RAISING", "REJECTED", "CANCELLED"}),
    "REJECTED": frozenset({"PENDING_AUDIT", "CANCELLED"}),
    "RAISING": frozenset({"FULL", "FAILED", "CANCELLED"}),
    "FULL": frozenset({"REPAYING", "CANCELLED"}),
    "REPAYING": frozenset({"SETTLED"}),
    "SETTLED": frozenset(),
    "FAILED": frozenset(),
    "CANCELLED": frozenset(),
}


@dataclass(frozen=True)
class LoanRequest:
    title: str
    description: str
    borrower_id: int
    amount: Decimal
    annual_rate: Decimal
    term_months: int
    repayment_method: str
    min_invest: Decimal
    max_invest_per_investor: Decimal | None
    raise_days: int


@dataclass(frozen=True)
class AuditRequest:
    approve: bool
    reason: str | None


@dataclass(frozen=True)
class LoanVo:
    loan_id: int
    title: str
    description: str
    borrower_id: int
    amount: Decimal
    annual_rate: Decimal
    term_months: int
    repayment_method: str
    min_invest: Decimal
    max_invest_per_investor: Decimal | None
    raise_days: int
    status: str
    raised: Decimal
    reject_reason: str | None
    raise_deadline: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _loan_vo(entity: LoanEntity) -> LoanVo:
    return to_vo(LoanVo, entity, loan_id=entity.id)


def _move(loan: LoanEntity, target: str, action: str) -> None:
    if target not in TRANSITIONS[loan.status]:
        raise BusinessError(
            errors.LOAN_STATE_INVALID,
            f"listing {loan.id} is {loan.status}: cannot {action}",
        )
    loan.status = target


def _page_key(self, page, page_size, **filters) -> dict:
    """listLoans pages are cached by every filter and the page window as it will be served
    (a default page size is reloadable, so the key holds the size, not its absence)."""
    page, page_size = page_window(page, page_size, self._api)
    return {**filters, "page": page, "page_size": page_size}


def _decimals(value: Decimal, places: int) -> bool:
    return value == value.quantize(Decimal(1).scaleb(-places))


class ListingService(P2PBase):
    """Publishing, modifying, auditing and browsing listings."""

    # -- commands ----------------------------------------------------------------------
    @transactional
    def publish_loan(self, request: LoanRequest, caller: Principal) -> LoanVo:
        self._check_terms(request)
        now = self._clock()
        loan = LoanEntity(
            **vars(request),
            status="PENDING_AUDIT",
            published_by=caller.member_id,
            created_at=now,
            updated_at=now,
        )
        self._events.loan_published()
        vo = _loan_vo(self._loans.add(loan))
        self._evict_loan(vo.loan_id)
        return vo

    @transactional
    def update_loan(self, loan_id: int, request: LoanRequest, caller: Principal) -> LoanVo:
        loan = self._locked(loan_id)
        _move(loan, "PENDING_AUDIT", "modify it")
        self._check_terms(request)
        for name, value in vars(request).items():
            setattr(loan, name, value)
        loan.reject_reason = None
        return self._save(loan)

    @transactional
    def audit_loan(self, loan_id: int, request: AuditRequest, caller: Principal) -> LoanVo:
        loan = self._locked(loan_id)
        now = self._clock()
        if request.approve:
            _move(loan, "RAISING", "approve it")
            loan.raise_deadline = now + dt.timedelta(days=loan.raise_days)
            loan.reject_reason = None
        else:
            reason = (request.reason or "").strip()
            if not reason:
                raise invalid("reason", "is required to reject a listing")
            _move(loan, "REJECTED", "reject it")
            loan.reject_reason = reason
        loan.audited_by = caller.member_id
        loan.audited_at = now
        return self._save(loan)

    # -- queries -----------------------------------------------------------------------
    @cached(LOAN, key=lambda self, loan_id: loan_id)
    @transactional(read_only=True)
    def get_loan(self, loan_id: int) -> LoanVo:
        loan = self._loans.get(loan_id)
        if loan is None:
            raise BusinessError(errors.LOAN_NOT_FOUND, f"listing {loan_id} does not exist")
        return _loan_vo(loan)

    @cached(LOAN_PAGES, key=_page_key)
    @transactional(read_only=True)
    def list_loans(
        self,
        status: str | None = None,
        repayment_method: str | None = None,
        min_rate: Decimal | None = None,
        max_rate: Decimal | None = None,
        min_term_months: int | None = None,
        max_term_months: int | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> PageVo[LoanVo]:
        page, page_size = page_window(page, page_size, self._api)
        if min_rate is not None and max_rate is not None and min_rate > max_rate:
            raise invalid("minRate", "must not exceed maxRate")
        if (
            min_term_months is not None
            and max_term_months is not None
            and min_term_months > max_term_months
        ):
            raise invalid("minTermMonths", "must not exceed maxTermMonths")
        rows, total = self._loans.search(
            status=status,
            repayment_method=repayment_method,
            min_rate=min_rate,
            max_rate=max_rate,
            min_term=min_term_months,
            max_term=max_term_months,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        return PageVo(tuple(_loan_vo(r) for r in rows), total, page, page_size)

    # -- helpers -----------------------------------------------------------------------
    def _locked(self, loan_id: int) -> LoanEntity:
        loan = self._loans.get_for_update(loan_id)
        if loan is None:
            raise BusinessError(errors.LOAN_NOT_FOUND, f"listing {loan_id} does not exist")
        return loan

    def _save(self, loan: LoanEntity) -> LoanVo:
        loan.updated_at = self._clock()
        self._evict_loan(loan.id)
        try:
            self.tx.session().flush()
        except StaleDataError:
            raise BusinessError(errors.CONCURRENT_UPDATE) from None
        return _loan_vo(loan)

    def _check_terms(self, r: LoanRequest) -> None:
        bounds = self._loan_settings
        if not r.title.strip():
            raise invalid("title", "must not be blank")
        if not _decimals(r.amount, 2):
            raise invalid("amount", "must have at most 2 decimal places")
        if not bounds.min_amount <= r.amount <= bounds.max_amount:
            raise invalid("amount", f"must be between {bounds.min_amount} and {bounds.max_amount}")
        if not (0 < r.annual_rate <= MAX_RATE and _decimals(r.annual_rate, 4)):
            raise invalid("annualRate", "must be above 0 and at most 36, with up to 4 decimals")
        if not 1 <= r.term_months <= 60:
            raise invalid("termMonths", "must be between 1 and 60")
        if r.repayment_method not in REPAYMENT_METHODS:
            raise invalid("repaymentMethod", f"must be one of {', '.join(REPAYMENT_METHODS)}")
        if not (0 < r.min_invest <= r.amount and _decimals(r.min_invest, 2)):
            raise invalid("minInvest", "must be above 0 and at most the amount")
        cap = r.max_invest_per_investor
        if cap is not None and not (r.min_invest <= cap <= r.amount and _decimals(cap, 2)):
            raise invalid("maxInvestPerInvestor", "must be between minInvest and the amount")
        if not 1 <= r.raise_days <= bounds.max_raise_days:
            raise invalid("raiseDays", f"must be between 1 and {bounds.max_raise_days}")
        borrower = self._members.get(r.borrower_id)
        if borrower is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND, f"member {r.borrower_id} does not exist")
        if borrower.role != "BORROWER":
            raise BusinessError(errors.NOT_A_BORROWER, f"member {r.borrower_id} is not a borrower")
        require_onboarded(borrower, who="the borrower")
