"""Listings (标的): publish, modify, audit and browse, and the listing's state machine.

A listing names an onboarded borrower (real name verified, fund account open): publishing
and modifying check it, since either may name the borrower. That check is the gate for the
listing's whole life: auditing, investing, disbursing and repaying do not repeat it.

Who sees which listing, on every operation that shows or names one:

* Anyone, anonymous or a member, sees a listing that passed audit and was offered: RAISING
  and what raising led to (FULL, REPAYING, SETTLED, FAILED: a listing that raised too little
  is a public outcome of a public offer). PENDING_AUDIT and REJECTED never passed audit.
  CANCELLED is an operator's intervention, before or after audit, whose reason is internal:
  only the parties see it.
* The borrower sees their own listings in every status, operators every listing; both see
  all of it. Everyone else sees neither borrowerId (who borrows is the borrower's business)
  nor rejectReason (the operator's words).
* An investor who invested in a listing sees it in every later status, CANCELLED included
  (their frozen money was released by it), as the public sees it.
* A listing the caller may not see answers LOAN_NOT_FOUND with the words of one that does
  not exist, so an id tells nothing; listLoans leaves it out and does not count it.

getLoan caches each listing in full, the same value for every caller, and filters after the
cache (:func:`sees`, :func:`shown_to`); listLoans pages are cached per audience (the public,
each borrower, operators), since which rows a page holds depends on it. A cached page holds
its listings' ids only, and the listings are read by their own keys, getLoan's (one round
trip for the page): an investment changes one listing's ``raised`` and moves none in or out of
a page, so it evicts that listing alone and every page stays cached, even while a popular
listing is invested in hundreds of times a second. What a caller may see of a cached listing
or page is made once per cached value and view (service/derived.py), so every caller with the
same view gets the same object and the server writes its answer once.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple, TypeVar

from sqlalchemy import Row
from sqlalchemy.orm.exc import StaleDataError

from dao.p2p import InvestmentRepository, LoanEntity
from service import errors
from service.caching import cached, codec_for
from service.derived import Derived
from service.errors import BusinessError, invalid
from service.mapping import to_vo
from service.member.onboarding import require_onboarded
from service.p2p.base import LOAN, LOAN_PAGES, P2PBase
from service.paging import PageVo, page_window
from service.security import Principal
from service.text import is_blank, shown, trim
from service.transaction import transactional

T = TypeVar("T")

REPAYMENT_METHODS = ("EQUAL_INSTALLMENT", "EQUAL_PRINCIPAL", "MONTHLY_INTEREST", "BULLET")
MAX_RATE = Decimal(36)

#: The statuses anyone sees (see the module docstring).
PUBLIC_STATUSES = ("RAISING", "FULL", "DISBURSING", "REPAYING", "SETTLED", "FAILED")
#: listLoans audiences besides a borrower (whose audience is their member id).
PUBLIC, EVERYONE = "public", "all"

#: Which status may follow which. Later modules (investing, disbursement, repayment) add
#: their moves here; every change of status goes through :func:`_move`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "PENDING_AUDIT": frozenset({"PENDING_AUDIT", "RAISING", "REJECTED", "CANCELLED"}),
    "REJECTED": frozenset({"PENDING_AUDIT", "CANCELLED"}),
    "RAISING": frozenset({"FULL", "FAILED", "CANCELLED"}),
    "FULL": frozenset({"REPAYING", "DISBURSING", "CANCELLED"}),
    "DISBURSING": frozenset({"REPAYING"}),
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


class SearchTerms(NamedTuple):
    """listLoans' filters, as a cached page's key holds them (a tuple: in order)."""

    status: str | None
    repayment_method: str | None
    min_rate: Decimal | None
    max_rate: Decimal | None
    min_term_months: int | None
    max_term_months: int | None


@dataclass(frozen=True)
class AuditRequest:
    approve: bool
    reason: str | None


@dataclass(frozen=True)
class LoanVo:
    """A listing; borrower_id and reject_reason are None where the caller may not see them."""

    loan_id: int
    title: str
    description: str
    borrower_id: int | None
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


def _loan_vo(loan: LoanEntity | Row) -> LoanVo:
    """A listing's value from its entity or its row (dao LoanRepository.row, rows,
    search_rows)."""
    return to_vo(LoanVo, loan, loan_id=loan.id)


def loan_not_found(loan_id: int) -> BusinessError:
    """What a missing listing answers, and so one the caller may not see."""
    return BusinessError(errors.LOAN_NOT_FOUND, f"listing {loan_id} does not exist")


def in_full(caller: Principal | None, loan: LoanVo) -> bool:
    """The borrower and operators see all of a listing."""
    return caller is not None and (
        caller.role == "OPERATOR" or caller.member_id == loan.borrower_id
    )


def sees(caller: Principal | None, loan: LoanVo) -> bool:
    """Whether `caller` sees `loan` without asking the database: a public listing, or one
    they see in full. Otherwise only :func:`backs` may still let them."""
    return loan.status in PUBLIC_STATUSES or in_full(caller, loan)


def backs(caller: Principal | None, loan_id: int, investments: InvestmentRepository) -> bool:
    """Whether `caller` is an investor who invested in the listing (any investment, released
    ones included); in the caller's transaction."""
    if caller is None or caller.role != "INVESTOR":
        return False
    _, count = investments.page_of_investor(caller.member_id, loan_id=loan_id, offset=0, limit=1)
    return count > 0


#: The views of cached listings and pages that callers may see, made once per cached value.
_VIEWS = Derived()
#: Listings as the cache holds them: getLoan's (by its return type) and listLoans' share it.
_LOAN_CODEC = codec_for(LoanVo)


def shown_to(caller: Principal | None, loan: LoanVo) -> LoanVo:
    """`loan` as `caller` may see it: in full, or without the borrower and the reason (one
    object for every such caller of the same cached listing)."""
    if in_full(caller, loan):
        return loan
    return _VIEWS.get(loan, "public", lambda: _public(loan))


def _public(loan: LoanVo) -> LoanVo:
    return dataclasses.replace(loan, borrower_id=None, reject_reason=None)


def page_shown_to(caller: Principal | None, found: PageVo[LoanVo]) -> PageVo[LoanVo]:
    """`found`, a page in full, with each listing as `caller` may see it (one object for every
    caller who sees the same listings of the same cached page in full)."""
    whole = tuple(in_full(caller, x) for x in found.items)
    return _VIEWS.get(
        found,
        whole,
        lambda: dataclasses.replace(found, items=tuple(shown_to(caller, x) for x in found.items)),
    )


def in_audience(who: int | str, loan: LoanVo) -> bool:
    """Whether the listLoans audience `who` (:func:`audience`) sees `loan`."""
    if who == EVERYONE:
        return True
    return loan.status in PUBLIC_STATUSES or loan.borrower_id == who


def audience(caller: Principal | None) -> int | str:
    """Whose listLoans pages a caller gets: the public's, a borrower's own (their member id)
    or everyone's."""
    if caller is None or caller.role == "INVESTOR":
        return PUBLIC
    if caller.role == "OPERATOR":
        return EVERYONE
    return caller.member_id


def _move(loan: LoanEntity, target: str, action: str) -> None:
    if target not in TRANSITIONS[loan.status]:
        raise BusinessError(
            errors.LOAN_STATE_INVALID,
            f"listing {loan.id} is {loan.status}: cannot {action}",
        )
    loan.status = target


def _page_key(self, page, page_size, **filters) -> dict:
    """listLoans pages are cached by audience, every filter and the page window as it will
    be served (a default page size is reloadable, so the key holds the size, not its
    absence)."""
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
            reason = trim(request.reason or "")
            if not reason:
                raise invalid("reason", "is required to reject a listing")
            _move(loan, "REJECTED", "reject it")
            loan.reject_reason = reason
        loan.audited_by = caller.member_id
        loan.audited_at = now
        return self._save(loan)

    # -- queries -----------------------------------------------------------------------
    def get_loan(self, loan_id: int, caller: Principal | None = None) -> LoanVo:
        """The listing as `caller` may see it; LOAN_NOT_FOUND for one they may not."""
        loan = self._loan_in_full(loan_id)
        if not (sees(caller, loan) or self._backs(caller, loan_id)):
            raise loan_not_found(loan_id)
        return shown_to(caller, loan)

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
        caller: Principal | None = None,
    ) -> PageVo[LoanVo]:
        """The listings `caller` may see (a CANCELLED one an investor backed is not among
        them: this is the market, not their portfolio), each as they may see it."""
        who = audience(caller)
        terms = SearchTerms(
            status, repayment_method, min_rate, max_rate, min_term_months, max_term_months
        )
        if self.cache_aside.shared:
            found = self._listings_of(who, self._loan_page(who, terms, page, page_size))
        else:  # nothing is cached: the page's rows, in the one read that finds them
            rows, total, page, page_size = self._search(
                self._loans.search_rows, who, terms, page, page_size
            )
            found = PageVo(tuple(_loan_vo(r) for r in rows), total, page, page_size)
        return page_shown_to(caller, found)

    @cached(LOAN, key=lambda self, loan_id: loan_id)
    def _loan_in_full(self, loan_id: int) -> LoanVo:
        loan = self.tx.read(self._loans.row, loan_id)  # a value is read, not an entity
        if loan is None:
            raise loan_not_found(loan_id)
        return _loan_vo(loan)

    def _backs(self, caller: Principal | None, loan_id: int) -> bool:
        """:func:`backs` in a read-only transaction of its own, opened for investors only."""
        if caller is None or caller.role != "INVESTOR":
            return False
        return self.tx.run(backs, caller, loan_id, self._investments, read_only=True)

    def _listings_of(self, who: int | str, ids: PageVo[int]) -> PageVo[LoanVo]:
        """The page of `ids` with each listing in full, read by its own key (getLoan's), and
        the same object while none of them changes. The listings are read after the ids: one
        whose status changed in between (its commit evicts the pages, but this read has its
        ids already) is shown as it is now, and left out if `who` may no longer see it (a
        listing cancelled), as one gone from the database would be."""
        found = self.cache_aside.read_many(LOAN, ids.items, _LOAN_CODEC, self._loans_by_id)
        items = tuple(
            found[loan_id]
            for loan_id in ids.items
            if loan_id in found and in_audience(who, found[loan_id])
        )
        return _VIEWS.latest(
            ids, "listings", items, lambda: PageVo(items, ids.total, ids.page, ids.page_size)
        )

    def _loans_by_id(self, loan_ids: list[int]) -> dict[int, LoanVo]:
        rows = self.tx.read(self._loans.rows, loan_ids)  # values are read, not entities
        return {row.id: _loan_vo(row) for row in rows}

    @cached(LOAN_PAGES, key=_page_key)
    def _loan_page(
        self, audience: int | str, terms: SearchTerms, page: int | None, page_size: int | None
    ) -> PageVo[int]:
        """One page of the listings `audience` sees: their ids (:meth:`_listings_of` reads
        the listings)."""
        ids, total, page, page_size = self._search(
            self._loans.search_ids, audience, terms, page, page_size
        )
        return PageVo(tuple(ids), total, page, page_size)

    def _search(
        self,
        search: Callable[..., tuple[list[T], int]],
        audience: int | str,
        terms: SearchTerms,
        page: int | None,
        page_size: int | None,
    ) -> tuple[list[T], int, int, int]:
        """``search`` (LoanRepository.search_ids or search_rows) of one page of the listings
        `audience` sees: what it found, the total, the page and its size."""
        page, page_size = page_window(page, page_size, self._api)
        low, high = terms.min_rate, terms.max_rate
        if low is not None and high is not None and low > high:
            raise invalid("minRate", "must not exceed maxRate")
        shortest, longest = terms.min_term_months, terms.max_term_months
        if shortest is not None and longest is not None and shortest > longest:
            raise invalid("minTermMonths", "must not exceed maxTermMonths")
        found, total = self.tx.read(
            lambda connection: search(
                connection,
                visible=None if audience == EVERYONE else PUBLIC_STATUSES,
                or_borrower=audience if isinstance(audience, int) else None,
                status=terms.status,
                repayment_method=terms.repayment_method,
                min_rate=terms.min_rate,
                max_rate=terms.max_rate,
                min_term=terms.min_term_months,
                max_term=terms.max_term_months,
                offset=(page - 1) * page_size,
                limit=page_size,
            )
        )
        return found, total, page, page_size

    # -- helpers -----------------------------------------------------------------------
    def _locked(self, loan_id: int) -> LoanEntity:
        loan = self._loans.get_for_update(loan_id)
        if loan is None:
            raise loan_not_found(loan_id)
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
        if is_blank(r.title):
            raise invalid("title", "must not be blank")
        if not _decimals(r.amount, 2):
            raise invalid("amount", "must have at most 2 decimal places")
        if not bounds.min_amount <= r.amount <= bounds.max_amount:
            low, high = shown(bounds.min_amount), shown(bounds.max_amount)
            raise invalid("amount", f"must be between {low} and {high}")
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
