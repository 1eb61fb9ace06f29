"""A randomised test of the platform and its depository bank together, with the bank's faults,
on SQLite and MariaDB.

A hypothesis state machine drives the platform as the composition root builds it with
payment.gateway BANK against the bank simulator served over HTTP (tests/integration/service/
bankworld.py), a new world for each example (its database emptied, its clock back at the
start, the bank charging a fee on every order from the platform's own account, which its
owners fund first): a borrower and an investor with money to begin with, then members sign up
and open their fund accounts, recharge and withdraw; an operator publishes and approves
listings, cancels them and disburses the full ones, funds the platform's account again and
pays members from it; investors invest; borrowers repay their next installment. The bank
asks the member to confirm every order on its page: mostly the member confirms at once, or a
later step confirms one order waiting there, and the orders nobody confirms expire. Time
passes at random (the bank finishes and notifies, the platform queries), and any step may
find a fault armed at the bank for the next order of a random type (banksim/faults.py). A
release (UNFREEZE) the bank refuses or fails, and a batch item whose attempts are used up,
wait for an operator, who now and then re-issues one of them (and every one at the end). A
failure prints hypothesis's seed and the shortest sequence of steps it found.

The test has no model of outcomes: a business refusal (BusinessError) is an allowed answer to
any command, any other exception fails. What it checks, after every step:

* the ledger check (``p2p check-ledger``) passes and no in-process job failed, but for the
  investments whose failed release waits for an operator (check 9 names each until then);
* no listing has raised more than its amount, nor holds more FROZEN, ACTIVE and SETTLED
  investments than its amount;
* no fen was created or lost: the members' balances add up to CLEARING, the mirror of their
  money at the bank, and PLATFORM_FUNDS, the mirror of the platform's own account there, is
  the owners' funding and the fee income less the bank's fees and what the platform paid
  members;
* no bank order was applied twice: at most one posting per business type and reference.

At the end, after letting every order finish (the member's page expired, the bank's
notification retries and the platform's queries done) and the business day end: no order is
open, nothing waits for an operator, the bank's and the platform's balances are equal member
by member and for the platform's own account (PLATFORM_FUNDS), and the
reconciliation of every day touched succeeds with no discrepancy.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from banksim.faults import FAULTS, make_fault
from dao.ocp import OPEN_STATUSES, BankOrderEntity
from service.audit import LedgerAudit
from service.errors import BusinessError
from service.member import BindCardRequest, IdentityRequest
from service.ocp import protocol
from service.ocp.client import HttpBankClient
from service.p2p import AuditRequest, LoanRequest, LoanService
from service.reconciliation import ReconciliationService
from service.security import Principal
from service.treasury import TreasuryService
from tests.integration.service.bankworld import World, bank_world, confirm
from tests.integration.service.support import START, caller, sign_up

D = Decimal
#: The ledger check that names each release the bank failed until an operator re-issues it.
RELEASES = "every release reached the bank"
APPROVE = AuditRequest(approve=True, reason=None)
MAX_MEMBERS = 4
MAX_LISTINGS = 3
#: (examples, steps per example) on each engine: every step talks to the bank over HTTP.
BUDGET = {"sqlite": (25, 60), "mysql": (15, 60)}


def _armable(order_type: str, name: str) -> bool:
    try:
        make_fault(order_type, name, 1, None)
    except ValueError:
        return False
    return True


#: Fault and order type pairs the bank accepts.
ARMABLE = [
    (order_type, name)
    for order_type in (*protocol.ORDER_FIELDS, *sorted(protocol.BATCH_TYPES))
    for name in FAULTS
    if _armable(order_type, name)
]
#: Which of the listings (or pages) a step takes: drawn whatever there is, as what there is
#: depends on the bank's timing and a draw must not (hypothesis replays the draws).
WHICH = st.integers(0, 5)
#: What follows a member's command (_then): mostly they confirm on the bank's page.
THEN = st.tuples(st.sampled_from([True, True, True, False]), st.booleans())
#: The bank's fee on each order, taken from the platform's own account.
FEES = {t: D("0.20") for t in protocol.ORDER_TYPES}
AMOUNTS = st.sampled_from([D("100.00"), D("200.00"), D("300.00"), D("550.55")])


@dataclass
class Member:
    who: Principal
    card_id: int


@dataclass
class Env:
    """What each example's world is built from: the test's fixtures."""

    tmp_path: Path
    clock: object
    service_url: str
    empty_database: Callable[[], None]
    identities: object


class BankAndPlatform(RuleBasedStateMachine):
    """One example: a world, its members and listings, the steps above."""

    def __init__(self, env: Env) -> None:
        super().__init__()
        env.empty_database()
        env.clock.now = START
        home = env.tmp_path / f"example-{next(_examples)}"
        home.mkdir()
        self._worlds = bank_world(
            home,
            env.clock,
            env.service_url,
            auto_authorize=False,
            fees=FEES,
            funds="200.00",
        )
        self.world: World = next(self._worlds)
        self.env = env
        self.investors: list[Member] = []
        self.borrowers: list[Member] = []
        self.listings: list[tuple[int, Principal]] = []  # and each one's borrower
        self._published = 0
        self.operator = caller(self.world.members.create_operator("13800000000", "secret123"))
        self._numbers = itertools.count(1)

    @initialize()
    def a_borrower_and_an_investor(self) -> None:
        """Two members with their accounts open and money in them, so that most examples
        reach listings, their disbursement and repayments."""
        for role in ("BORROWER", "INVESTOR"):
            self.sign_up(role, (True, True))
        for member in (*self.borrowers, *self.investors):
            self._refusable(self.world.payments.recharge, D("1000.00"), self._rno(), member.who)
            self._then(member.who, (True, True))

    # -- members and their money -------------------------------------------------------------
    @precondition(lambda self: len(self.investors) + len(self.borrowers) < MAX_MEMBERS)
    @rule(role=st.sampled_from(["INVESTOR", "INVESTOR", "BORROWER"]), then=THEN)
    def sign_up(self, role: str, then: tuple[bool, bool]) -> None:
        """A member signs up and asks the bank for a fund account."""
        who = caller(sign_up(self.world.platform, f"139{next(self._numbers):08d}", role))
        person = self.env.identities()
        self.world.members.verify_identity(IdentityRequest(person.real_name, person.id_number), who)
        card = self.world.members.bind_card(
            BindCardRequest(person.card_number, "中国银行", "13987654321"), who
        )
        self._refusable(self.world.members.open_fund_account, card.card_id, who)
        (self.investors if role == "INVESTOR" else self.borrowers).append(Member(who, card.card_id))
        self._then(who, then)

    @precondition(lambda self: self.investors or self.borrowers)
    @rule(data=st.data(), amount=AMOUNTS, then=THEN)
    def recharge(self, data, amount: Decimal, then: tuple[bool, bool]) -> None:
        member = data.draw(st.sampled_from(self.investors + self.borrowers), "member")
        self._refusable(self.world.payments.recharge, amount * 3, self._rno(), member.who)
        self._then(member.who, then)

    @precondition(lambda self: self.investors or self.borrowers)
    @rule(data=st.data(), amount=AMOUNTS, then=THEN)
    def withdraw(self, data, amount: Decimal, then: tuple[bool, bool]) -> None:
        member = data.draw(st.sampled_from(self.investors + self.borrowers), "member")
        self._refusable(
            self.world.payments.withdraw, amount, member.card_id, self._rno(), member.who
        )
        self._then(member.who, then)

    @rule(which=WHICH)
    def confirm_one(self, which: int) -> None:
        """A member confirms one order waiting on the bank's page."""
        waiting = self._waiting()
        if waiting:
            confirm(self.world, waiting[which % len(waiting)], waiting=False)

    # -- listings ----------------------------------------------------------------------------
    @precondition(lambda self: self.borrowers and self._published < MAX_LISTINGS)
    @rule(
        data=st.data(),
        amount=st.sampled_from([D("300.00"), D("600.00")]),
        term=st.integers(1, 3),
    )
    def publish(self, data, amount: Decimal, term: int) -> None:
        borrower = data.draw(st.sampled_from(self.borrowers), "borrower")
        self._published += 1
        request = LoanRequest(
            title="周转借款",
            description="经营周转",
            borrower_id=borrower.who.member_id,
            amount=amount,
            annual_rate=D("12"),
            term_months=term,
            repayment_method="EQUAL_INSTALLMENT",
            min_invest=D("100.00"),
            max_invest_per_investor=None,
            raise_days=7,
        )
        vo = self._refusable(self.loans.publish_loan, request, self.operator)
        if vo is not None:
            self.loans.audit_loan(vo.loan_id, APPROVE, self.operator)
            self.listings.append((vo.loan_id, borrower.who))

    @precondition(lambda self: self.investors)
    @rule(
        data=st.data(),
        which=WHICH,
        amount=st.sampled_from([D("100.00"), D("200.00"), D("300.00")]),
        then=THEN,
    )
    def invest(self, data, which: int, amount: Decimal, then: tuple[bool, bool]) -> None:
        investor = data.draw(st.sampled_from(self.investors), "investor")
        if self.listings:
            loan_id, _ = self.listings[which % len(self.listings)]
            self._refusable(self.loans.invest, loan_id, amount, self._rno(), investor.who)
            self._then(investor.who, then)

    @precondition(lambda self: self.investors and self.listings)
    @rule(data=st.data(), which=WHICH)
    def fill(self, data, which: int) -> None:
        """An investor takes what a listing has left, so that listings fill and go on to
        their disbursement and repayments."""
        investor = data.draw(st.sampled_from(self.investors), "investor")
        loan_id, _ = self.listings[which % len(self.listings)]
        loan = self.loans.get_loan(loan_id, self.operator)
        if loan.status == "RAISING" and loan.raised < loan.amount:
            left = loan.amount - loan.raised
            self._refusable(self.loans.invest, loan_id, left, self._rno(), investor.who)
            self._then(investor.who, (True, True))

    @rule(which=WHICH, really=st.sampled_from([True, False, False]))
    def cancel(self, which: int, really: bool) -> None:
        """An operator cancels a listing, now and then (most get the chance to fill)."""
        if really and self.listings:
            loan_id, _ = self.listings[which % len(self.listings)]
            self._refusable(self.loans.cancel_loan, loan_id, "借款人撤回", self.operator)

    @rule(which=WHICH)
    def disburse(self, which: int) -> None:
        if self.listings:
            loan_id, _ = self.listings[which % len(self.listings)]
            self._refusable(self.loans.disburse_loan, loan_id, self._rno(), self.operator)

    @rule(which=WHICH)
    def repay(self, which: int) -> None:
        if self.listings:
            loan_id, borrower = self.listings[which % len(self.listings)]
            self._refusable(self.loans.repay, loan_id, self._rno(), borrower)

    # -- the platform's own account and the operators ----------------------------------------
    @rule(amount=st.sampled_from([D("5.00"), D("50.00")]))
    def fund(self, amount: Decimal) -> None:
        """The owners fund the platform's account again; the treasurer confirms on the bank's
        page at once, or later (confirm_one), or never."""
        self._refusable(self.treasury.fund_platform_account, amount, self._rno(), self.operator)

    @precondition(lambda self: self.investors or self.borrowers)
    @rule(
        data=st.data(),
        amount=st.sampled_from([D("1.00"), D("20.00"), D("500.00")]),
        purpose=st.sampled_from(["MARKETING", "COMPENSATION"]),
    )
    def pay_member(self, data, amount: Decimal, purpose: str) -> None:
        member = data.draw(st.sampled_from(self.investors + self.borrowers), "member")
        self._refusable(
            self.treasury.pay_member,
            member.who.member_id,
            amount,
            purpose,
            "活动奖励",
            self._rno(),
            self.operator,
        )

    @rule(which=WHICH)
    def reissue_one(self, which: int) -> None:
        """An operator re-issues one bank order that waits for a person."""
        waiting = self._reconciliation().list_orders_waiting(1, 100).items
        if waiting:
            order = waiting[which % len(waiting)]
            self._reconciliation().reissue_bank_order(
                order.order_no, "the bank failed it; asked again", self._rno(), self.operator
            )

    # -- the bank ----------------------------------------------------------------------------
    @rule(seconds=st.sampled_from([3.0, 3.0, 30.0, 120.0]))
    def settle(self, seconds: float) -> None:
        self.world.settle(seconds=seconds)

    @rule(fault=st.sampled_from(ARMABLE))
    def arm(self, fault: tuple[str, str]) -> None:
        self.world.arm(*fault)

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def the_ledger_check_passes(self) -> None:
        """Every check passes, but the one naming releases the bank failed, which names each
        until an operator re-issues it."""
        report = LedgerAudit(self.world.platform.tx).run()
        failed = {c.name: c.problems for c in report.checks if not c.ok}
        unreleased = failed.pop(RELEASES, ())
        assert failed == {}, failed
        waiting = self._reconciliation().list_orders_waiting(1, 100).items
        assert len(unreleased) == sum(o.order_type == protocol.UNFREEZE for o in waiting)
        assert self.world.publisher.failures == []

    @invariant()
    def no_listing_is_oversubscribed(self) -> None:
        with self.world.platform.database.engine.connect() as conn:
            over = conn.execute(
                text(
                    "SELECT l.id, l.amount, l.raised, COALESCE(SUM(i.amount), 0) AS held"
                    " FROM loan l LEFT JOIN investment i ON i.loan_id = l.id"
                    " AND i.status IN ('FROZEN', 'ACTIVE', 'SETTLED')"
                    " GROUP BY l.id, l.amount, l.raised"
                    " HAVING l.raised > l.amount OR COALESCE(SUM(i.amount), 0) > l.amount"
                )
            ).all()
        assert over == []

    @invariant()
    def no_fen_is_created_or_lost(self) -> None:
        with self.world.platform.database.engine.connect() as conn:
            held = dict(
                conn.execute(
                    text(
                        "SELECT CASE WHEN member_id IS NULL THEN code ELSE 'MEMBERS' END,"
                        " SUM(available + frozen) FROM account"
                        " GROUP BY CASE WHEN member_id IS NULL THEN code ELSE 'MEMBERS' END"
                    )
                ).all()
            )
        held = {code: int(fen or 0) for code, fen in held.items()}
        assert held.get("MEMBERS", 0) == held["CLEARING"], held
        earned = held["OWNER_FUNDING"] + held["FEE_INCOME"]
        spent = held["BANK_FEES"] + held["MARKETING_EXPENSE"] + held["COMPENSATION_EXPENSE"]
        assert held["PLATFORM_FUNDS"] == earned - spent, held

    @invariant()
    def no_bank_order_is_applied_twice(self) -> None:
        with self.world.platform.database.engine.connect() as conn:
            twice = conn.execute(
                text(
                    "SELECT business_type, ref_type, ref_id, COUNT(*) FROM posting"
                    " GROUP BY business_type, ref_type, ref_id HAVING COUNT(*) > 1"
                )
            ).all()
        assert twice == []

    # -- the end -----------------------------------------------------------------------------
    def teardown(self) -> None:
        try:
            self._everything_settles()
        finally:
            self._worlds.close()

    def _everything_settles(self) -> None:
        """Every order final, the day over: both books agree and every day reconciles."""
        first_day = protocol.business_day(START)
        # The member's pages expire (30 minutes) and the bank's notification retries and the
        # platform's queries run their course; then the business day ends.
        self.world.settle(seconds=60.0, rounds=5)
        self.world.settle(seconds=900.0, rounds=4)
        self.world.settle(seconds=7200.0, rounds=2)
        end = dt.datetime.combine(
            protocol.business_day(self.env.clock.now) + dt.timedelta(days=1),
            dt.time(1, 30),
            protocol.BUSINESS_TIMEZONE,
        )
        self.env.clock.now = end.astimezone(dt.UTC)
        self.world.settle(seconds=60.0, rounds=2)
        # What waits for a person is re-issued until the bank has carried all of it out.
        for attempt in itertools.count():
            waiting = self._reconciliation().list_orders_waiting(1, 100).items
            if not waiting:
                break
            assert attempt < 5, waiting
            for order in waiting:
                self._reconciliation().reissue_bank_order(
                    order.order_no, "asked again at the end", self._rno(), self.operator
                )
            self.world.settle(seconds=60.0, rounds=5)
        report = LedgerAudit(self.world.platform.tx).run()
        assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]
        with self.world.platform.database.engine.connect() as conn:
            open_orders = conn.execute(
                select(BankOrderEntity.order_no, BankOrderEntity.order_type).where(
                    BankOrderEntity.status.in_(OPEN_STATUSES)
                )
            ).all()
            platform = {
                row[0]: (D(row[1]) / 100, D(row[2]) / 100)
                for row in conn.execute(
                    text("SELECT member_id, available, frozen FROM account")
                ).all()
                if row[0] is not None
            }
            funds = conn.execute(
                text("SELECT available, frozen FROM account WHERE code = 'PLATFORM_FUNDS'")
            ).one()
        assert open_orders == []
        at_bank = {a["accountNo"]: a for a in self.world.bank.accounts()}
        for member in self.investors + self.borrowers:
            account = self.world.members.get_fund_account(member.who)
            if account.account_no is None:
                continue
            mine = platform[member.who.member_id]
            theirs = at_bank.pop(account.account_no)
            assert mine == (D(theirs["available"]), D(theirs["frozen"])), (mine, theirs)
        platforms = at_bank.pop(self.world.bank.platform_account_no)
        assert (D(platforms["available"]), D(platforms["frozen"])) == (
            D(funds[0]) / 100,
            D(funds[1]) / 100,
        )
        assert at_bank == {}
        recon = self._reconciliation()
        day = first_day
        while day < protocol.business_day(self.env.clock.now):
            run = recon.run_day(day)
            assert run.status == "SUCCEEDED", run
            found = (
                run.bank_only,
                run.platform_only,
                run.amount_mismatches,
                run.status_mismatches,
                run.fee_mismatches,
                run.balance_mismatches,
            )
            assert found == (0, 0, 0, 0, 0, 0), run
            day += dt.timedelta(days=1)

    # -- helpers -----------------------------------------------------------------------------
    @property
    def treasury(self) -> TreasuryService:
        return self.world.platform.service(TreasuryService)

    @property
    def loans(self) -> LoanService:
        return self.world.platform.service(LoanService)

    def _reconciliation(self) -> ReconciliationService:
        """The platform's reconciliation, its files fetched with a read timeout of 10 s (the
        world's 0.5 s is for the orders' timeout faults)."""
        service = self.world.platform.service(ReconciliationService)
        current = self.world.platform.settings.current()
        patient = SimpleNamespace(bank=replace(current.bank, read_timeout_seconds=10.0))
        service._client = HttpBankClient(patient, clock=self.world.clock)
        return service

    def _waiting(self, member_id: int | None = None) -> list[str]:
        """The bank's pages of the orders still open at the platform: waiting for their member
        to confirm, or confirmed already (the bank's word not heard yet)."""
        query = select(BankOrderEntity.authorize_url).where(
            BankOrderEntity.status.in_(OPEN_STATUSES), BankOrderEntity.authorize_url.is_not(None)
        )
        if member_id is not None:
            query = query.where(BankOrderEntity.member_id == member_id)
        with self.world.platform.database.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def _then(self, who: Principal, then: tuple[bool, bool]) -> None:
        """What follows a member's command: they confirm what waits on the bank's page, or
        not (a later step may, else the page expires); time passes a little, or not."""
        confirms, settles = then
        if confirms:
            for page in self._waiting(who.member_id):
                confirm(self.world, page, waiting=False)
        if settles:
            self.world.settle()

    def _refusable(self, command, *args):
        """The command's answer, or None when it refused (a business refusal is an answer)."""
        try:
            return command(*args)
        except BusinessError:
            return None

    def _rno(self) -> str:
        return f"rq-{next(self._numbers)}"


_examples = itertools.count(1)


def test_random_members_listings_and_faults_keep_both_books(
    database, tmp_path, clock, service_url, empty_database, identities
) -> None:
    engine = database.engine.url.get_backend_name()
    examples, steps = BUDGET["sqlite" if engine == "sqlite" else "mysql"]
    env = Env(tmp_path, clock, service_url, empty_database, identities)
    run_state_machine_as_test(
        lambda: BankAndPlatform(env),
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            print_blob=True,
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        ),
    )
