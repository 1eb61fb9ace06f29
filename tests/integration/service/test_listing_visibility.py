"""Who sees which listing, at the service (SQLite and MariaDB), through the read cache: every
listing status for every kind of caller on getLoan, listLoans and getRepaymentSchedule, the
cache holding one full value that never leaks to the wrong caller, and the commands that
name a listing (invest, repay) answering a hidden one as a missing one.

The rule (service/p2p/listing.py): anyone sees RAISING, FULL, REPAYING, SETTLED and FAILED
listings without borrower_id and reject_reason; the borrower their own and operators all, in
full; an investor also a CANCELLED listing they invested in; nobody else anything.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from dao.cache import MemoryCache
from service.caching import CacheAside
from service.errors import BusinessError
from service.p2p import LoanService
from service.p2p.listing import AuditRequest
from service.payment import PaymentService
from service.security import Principal

D = Decimal
APPROVE = AuditRequest(approve=True, reason=None)
REJECT = AuditRequest(approve=False, reason="资料不全")
_numbers = itertools.count(1)

FULL, PUBLIC, BACKER, HIDDEN = "full", "public", "backer", "hidden"
CALLERS = ("anonymous", "investor", "backer", "owner", "borrower", "operator")
# fmt: off
#: status -> what each caller gets: FULL (everything), PUBLIC (no borrower, no reason),
#: BACKER (as PUBLIC on getLoan, but not among listLoans' market rows), HIDDEN (not found).
SEEN: dict[str, tuple[str, ...]] = {
    #                  anonymous  investor  backer   owner  borrower  operator
    "PENDING_AUDIT":   (HIDDEN,   HIDDEN,   HIDDEN,  FULL,  HIDDEN,   FULL),
    "REJECTED":        (HIDDEN,   HIDDEN,   HIDDEN,  FULL,  HIDDEN,   FULL),
    "RAISING":         (PUBLIC,   PUBLIC,   PUBLIC,  FULL,  PUBLIC,   FULL),
    "FULL":            (PUBLIC,   PUBLIC,   PUBLIC,  FULL,  PUBLIC,   FULL),
    "REPAYING":        (PUBLIC,   PUBLIC,   PUBLIC,  FULL,  PUBLIC,   FULL),
    "SETTLED":         (PUBLIC,   PUBLIC,   PUBLIC,  FULL,  PUBLIC,   FULL),
    "FAILED":          (PUBLIC,   PUBLIC,   PUBLIC,  FULL,  PUBLIC,   FULL),
    "CANCELLED":       (HIDDEN,   HIDDEN,   BACKER,  FULL,  HIDDEN,   FULL),
    "CANCELLED_EARLY": (HIDDEN,   HIDDEN,   HIDDEN,  FULL,  HIDDEN,   FULL),
}
# fmt: on


def rno() -> str:
    return f"vis-{next(_numbers)}"


def error_of(fn, *args, **kwargs) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args, **kwargs)
    return e.value


@dataclass
class World:
    loans: LoanService
    callers: dict[str, Principal | None]
    listings: dict[str, int]  # SEEN's keys -> listing id


@pytest.fixture
def world(platform, loans, operator, borrower, loan_request, make_member, clock) -> World:
    """One listing of borrower A in each status; investor A (the backer) invested in the
    ones that raised (the CANCELLED one among them); CANCELLED_EARLY was cancelled before
    its audit. Every listing has the rate 9.8765, so a filter on it finds only these."""
    payments = platform.service(PaymentService)

    def member(role: str) -> Principal:
        vo = make_member(role)
        caller = Principal(member_id=vo.member_id, role=role)
        payments.recharge(D("100000.00"), rno(), caller)
        return caller

    backer, owner = member("INVESTOR"), Principal(borrower.member_id, "BORROWER")
    payments.recharge(D("100000.00"), rno(), owner)
    callers = {
        "anonymous": None,
        "investor": member("INVESTOR"),
        "backer": backer,
        "owner": owner,
        "borrower": member("BORROWER"),
        "operator": operator,
    }

    def publish(**terms) -> int:
        terms = {"annual_rate": D("9.8765"), "amount": D("1000.00"), **terms}
        return loans.publish_loan(loan_request(**terms), operator).loan_id

    def raising(**terms) -> int:
        loan_id = publish(**terms)
        loans.audit_loan(loan_id, APPROVE, operator)
        loans.invest(loan_id, D("100.00"), rno(), backer)
        return loan_id

    def full() -> int:
        loan_id = raising()
        loans.invest(loan_id, D("900.00"), rno(), backer)
        return loan_id

    ids = {"PENDING_AUDIT": publish(), "REJECTED": publish()}
    loans.audit_loan(ids["REJECTED"], REJECT, operator)
    ids["FAILED"] = raising(raise_days=1)
    clock.advance(days=2)
    assert loans.close_expired_loans().failed == 1
    ids["RAISING"], ids["FULL"], ids["REPAYING"], ids["SETTLED"] = raising(), full(), full(), full()
    loans.disburse_loan(ids["REPAYING"], rno(), operator)
    loans.disburse_loan(ids["SETTLED"], rno(), operator)
    loans.settle_early(ids["SETTLED"], rno(), owner)
    ids["CANCELLED"] = raising()
    loans.cancel_loan(ids["CANCELLED"], "借款人撤回", operator)
    ids["CANCELLED_EARLY"] = publish()
    loans.cancel_loan(ids["CANCELLED_EARLY"], "重复发布", operator)
    return World(loans, callers, ids)


def cells():
    for state, row in SEEN.items():
        for caller, seen in zip(CALLERS, row, strict=True):
            yield state, caller, seen


def test_get_loan_shows_each_caller_what_they_may_see(world, operator) -> None:
    loans = world.loans
    for state, name, seen in cells():
        loan_id, caller = world.listings[state], world.callers[name]
        truth = loans.get_loan(loan_id, operator)
        assert truth.status == state.removesuffix("_EARLY")
        if seen == HIDDEN:
            e = error_of(loans.get_loan, loan_id, caller)
            missing = error_of(loans.get_loan, 10**9, caller)
            assert (e.code, e.message) == (
                missing.code,
                missing.message.replace(str(10**9), str(loan_id)),
            ), (state, name)
            continue
        got = loans.get_loan(loan_id, caller)
        hidden_fields = {} if seen == FULL else {"borrower_id": None, "reject_reason": None}
        assert got == replace(truth, **hidden_fields), (state, name)


def test_the_reasons_are_shown_only_to_the_parties(world, operator) -> None:
    loans = world.loans
    assert loans.get_loan(world.listings["REJECTED"], world.callers["owner"]).reject_reason
    assert loans.get_loan(world.listings["CANCELLED"], operator).reject_reason == "借款人撤回"
    backer_view = loans.get_loan(world.listings["CANCELLED"], world.callers["backer"])
    assert (backer_view.status, backer_view.reject_reason) == ("CANCELLED", None)


def test_list_loans_holds_and_counts_only_what_the_caller_may_see(world) -> None:
    """Per status and caller: exactly the visible listings, each as the caller sees it, and a
    total that counts only them (the rate filter keeps other tests' listings out)."""
    loans = world.loans
    by_status: dict[str, dict[str, set[int]]] = {}
    for state, name, seen in cells():
        status = state.removesuffix("_EARLY")
        listed = seen in (FULL, PUBLIC)
        wanted = by_status.setdefault(status, {}).setdefault(name, set())
        if listed:
            wanted.add(world.listings[state])
    rate = D("9.8765")
    for status, per_caller in by_status.items():
        for name, wanted in per_caller.items():
            caller = world.callers[name]
            page = loans.list_loans(status=status, min_rate=rate, max_rate=rate, caller=caller)
            assert {x.loan_id for x in page.items} == wanted, (status, name)
            assert page.total == len(wanted), (status, name)
            in_full = name in ("owner", "operator")
            for item in page.items:
                assert (item.borrower_id is not None) == in_full, (status, name)
    # Without a status filter: the public sees the five public listings, borrower B the
    # same (none of their own), the owner all nine.
    everything = loans.list_loans(min_rate=rate, max_rate=rate, caller=None)
    assert everything.total == 5
    assert loans.list_loans(min_rate=rate, max_rate=rate, caller=world.callers["owner"]).total == 9


def test_the_repayment_schedule_follows_the_listing(world) -> None:
    loans = world.loans
    for state, name, seen in cells():
        loan_id, caller = world.listings[state], world.callers[name]
        if seen == HIDDEN:
            e = error_of(loans.get_repayment_schedule, loan_id, caller)
            assert (e.code, e.message) == ("LOAN_NOT_FOUND", f"listing {loan_id} does not exist")
        else:
            assert loans.get_repayment_schedule(loan_id, caller).loan_id == loan_id


def test_commands_answer_a_hidden_listing_as_a_missing_one(world) -> None:
    loans, ids, who = world.loans, world.listings, world.callers
    for state in ("PENDING_AUDIT", "REJECTED", "CANCELLED", "CANCELLED_EARLY"):
        e = error_of(loans.invest, ids[state], D("100.00"), rno(), who["investor"])
        assert e.code == "LOAN_NOT_FOUND", state
    # The backer sees the cancelled listing they invested in: it is its status that refuses.
    assert error_of(loans.invest, ids["CANCELLED"], D("1.00"), rno(), who["backer"]).code == (
        "LOAN_STATE_INVALID"
    )
    assert error_of(loans.repay, ids["PENDING_AUDIT"], rno(), who["borrower"]).code == (
        "LOAN_NOT_FOUND"
    )
    assert error_of(loans.repay, ids["REPAYING"], rno(), who["borrower"]).code == "FORBIDDEN"


def test_one_cached_value_serves_every_caller_without_leaking(world, operator) -> None:
    """The operator's read fills the cache with the listing in full; the public's reads that
    follow are answered from it, filtered, and a page cached for one audience is not another
    audience's page."""
    loans, ids, who = world.loans, world.listings, world.callers
    # One process reads and writes here: a cache of its own is shared by all of them (the
    # platform caches listings only in Redis, which the job workers share too).
    loans.cache_aside = CacheAside(MemoryCache(), loans._settings, loans.tx)
    gets = []
    repository_row = loans._loans.row
    loans._loans.row = lambda conn, loan_id: gets.append(loan_id) or repository_row(conn, loan_id)
    for state in ("RAISING", "PENDING_AUDIT"):
        assert loans.get_loan(ids[state], operator).borrower_id is not None
        assert loans.get_loan(ids[state], who["owner"]).borrower_id is not None
    assert loans.get_loan(ids["RAISING"], None).borrower_id is None
    assert error_of(loans.get_loan, ids["PENDING_AUDIT"], None).code == "LOAN_NOT_FOUND"
    assert gets == [ids["RAISING"], ids["PENDING_AUDIT"]]  # each read once, then cached
    staff = loans.list_loans(status="PENDING_AUDIT", caller=operator)
    assert ids["PENDING_AUDIT"] in {x.loan_id for x in staff.items}
    for name in ("anonymous", "investor", "borrower"):
        page = loans.list_loans(status="PENDING_AUDIT", caller=who[name])
        assert (page.items, page.total) == ((), 0), name
