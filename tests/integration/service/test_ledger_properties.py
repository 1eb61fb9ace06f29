"""A property-based test of the whole money core, on SQLite and MariaDB.

A hypothesis state machine drives long random sequences of real service calls: members
register, recharge and withdraw (the depository sometimes refusing), listings with random
terms are published and approved, investors invest valid and invalid amounts, listings are
cancelled, fail when the clock passes their deadline, are disbursed, repaid (late, with
penalties) and settled early; money-moving requests are repeated with the same requestNo and
reused with other content. Each example draws its own platform settings (fee rate, the
interest service fee's rate, auto-disbursement, who receives penalties, the early-settlement
rule). Marketing runs beside: a campaign with a drawn budget, CASH and RATE_BOOST coupons
issued to members and named on investments (valid ones, and someone else's, used or doubled
ones to be refused), released with their investment, used at disbursement and paid (CASH at
once, a boost with each repayment, waived with the base interest at early settlement) from
the platform's own account, which the operator funds now and then; rewards it cannot pay yet
wait and are paid by ``marketing.pay_due``.

Alongside runs a model of its own: every member's available and frozen balance (and member
level, whose discount waives part of the interest service fee), the money at the depository
and the platform's fee income, the interest service fee of each receipt included (the mirrors
CLEARING and PLATFORM_FUNDS follow), the owners' funding and the marketing expense, each
listing's status and raised amount, each investment and installment, each coupon's state and
the campaign's spend. Before every call the model predicts the outcome, success or the exact
refusal code, and the call must agree; business refusals are expected outcomes, any other
exception fails the test. After every step the ledger audit (``p2p check-ledger``) must pass
and every figure of the model must equal the database, read with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

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
from sqlalchemy import text
from sqlalchemy.engine import Engine

from server.app import Platform
from service.audit import LedgerAudit
from service.errors import BusinessError
from service.gateway import AccountHolder, DepositoryGateway, GatewayResult
from service.marketing import CampaignService, MarketingService
from service.marketing.boost import boosts, total_boost
from service.marketing.campaigns import CampaignRequest, TemplateRequest
from service.member import MemberService, RegisterRequest, VerificationCodeRequest
from service.p2p import AuditRequest, LoanRequest, LoanService
from service.payment import PaymentService
from service.schedule import METHODS, accrued_penalty, due_dates, schedule
from service.security import Principal
from service.treasury import TreasuryService
from tests.integration.service.support import onboard

D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
PASSWORD = "secret123"
APPROVE = AuditRequest(approve=True, reason=None)
MAX_INVESTORS = 5
MAX_BORROWERS = 3
MAX_LISTINGS = 6
#: (examples, steps per example) on each engine: enough to reach every state, quick to run.
BUDGET = {"sqlite": (30, 50), "mysql": (10, 50)}

_mobiles = itertools.count(1)


def fen(amount: Decimal) -> int:
    return int(amount * 100)


def yuan(value: Any) -> Decimal:
    return (D(int(value)) * CENT).quantize(CENT)


class RefusingGateway(DepositoryGateway):
    """A depository that refuses every withdrawal (and never sees a recharge, an account
    opening or the platform's own account here)."""

    def open_account(self, holder: AccountHolder) -> GatewayResult:
        return GatewayResult(success=False, reason="account refused")

    def recharge(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason="recharge refused")

    def withdraw(
        self, order_no: str, member_id: int, amount: Decimal, card_number: str
    ) -> GatewayResult:
        return GatewayResult(success=False, reason="card blocked by the bank")

    def fund(self, order_no: str, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason="funding refused")

    def transfer(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason="transfer refused")


# -- the model ------------------------------------------------------------------------------


@dataclass
class Member:
    who: Principal
    available: Decimal = ZERO
    frozen: Decimal = ZERO
    card_id: int | None = None  # the bound card withdrawals pay out to (not the operator's)
    #: The share of the interest service fee their member level waives (levels are evaluated
    #: as each of their investments is frozen, and may drop: loyalty.levels_can_drop).
    fee_discount: Decimal = ZERO


@dataclass
class Investment:
    id: int
    investor: Member
    amount: Decimal
    status: str = "FROZEN"


@dataclass
class Coupon:
    id: int
    kind: str  # CASH or RATE_BOOST
    owner: Member
    status: str = "AVAILABLE"
    investment: Investment | None = None
    cost: Decimal = ZERO  # what its campaign was charged when it was locked


@dataclass
class Installment:
    period: int
    due: dt.date
    principal: Decimal
    interest: Decimal
    status: str = "PENDING"


@dataclass
class Listing:
    id: int
    borrower: Member
    terms: LoanRequest
    deadline: dt.datetime
    status: str = "RAISING"
    raised: Decimal = ZERO
    investments: list[Investment] = field(default_factory=list)
    installments: list[Installment] = field(default_factory=list)
    #: The interest service fee of each receipt paid so far, by receipt id.
    fees: dict[int, Decimal] = field(default_factory=dict)

    def unpaid(self) -> list[Installment]:
        return [i for i in self.installments if i.status in ("PENDING", "OVERDUE")]


@dataclass(frozen=True)
class Done:
    """A money-moving request that succeeded: enough to send it again."""

    kind: str
    caller: Member
    request_no: str
    args: tuple
    key: tuple


@dataclass
class Env:
    """What the machine runs against, built once per test by the fixtures."""

    make_platform: Callable[..., Platform]
    sql: Engine
    empty: Callable[[], None]
    clock: Any
    start: dt.datetime
    #: Fresh personal data (the `identities` fixture) for onboarding each new member.
    identities: Callable[[], Any]
    #: One platform for each combination of settings drawn so far.
    platforms: dict[tuple, Platform] = field(default_factory=dict)

    def platform(self, **overrides: Any) -> Platform:
        key = tuple(sorted(overrides.items()))
        if key not in self.platforms:
            self.platforms[key] = self.make_platform(**overrides)
        return self.platforms[key]


def outcome(call: Callable[[], Any]) -> tuple[Any, str | None]:
    """The call's result and None, or None and the refusal's code."""
    try:
        return call(), None
    except BusinessError as e:
        return None, e.code


money = st.decimals(min_value=D("0.01"), max_value=D("20000.00"), places=2)
odd_amounts = st.sampled_from([D("100.00"), D("333.33"), D("1234.57"), D("10000.01")])


class MoneyCore(RuleBasedStateMachine):
    def __init__(self, env: Env):
        super().__init__()
        self.env = env
        env.empty()
        env.clock.now = env.start
        self.investors: list[Member] = []
        self.borrowers: list[Member] = []
        self.listings: list[Listing] = []
        self.done: list[Done] = []
        self.clearing = ZERO
        self.fee_income = ZERO
        self.recharged = ZERO
        self.withdrawn = ZERO
        self.refused = ZERO
        self.coupons: list[Coupon] = []
        self.funding = ZERO  # what the owners paid into the platform's own account
        self.marketing = ZERO  # rewards paid to members (MARKETING_EXPENSE)
        self.spent = ZERO  # the campaign's spend
        self.owed: list[tuple[Member, Decimal]] = []  # rewards not paid yet, oldest first
        self.seen_receipts: set[int] = set()
        self._request_nos = itertools.count(1)

    # -- set-up ----------------------------------------------------------------------------
    @initialize(
        fee_rate=st.sampled_from(["0.0100", "0", "0.0333"]),
        interest_fee_rate=st.sampled_from(["0.0000", "0.1000"]),
        auto_disburse=st.booleans(),
        penalty_to=st.sampled_from(["INVESTORS", "PLATFORM"]),
        early_interest=st.sampled_from(["CURRENT_PERIOD", "NONE"]),
        funds=st.lists(st.one_of(st.just(ZERO), money), min_size=2, max_size=4),
        borrowers=st.integers(1, 2),
        listings=st.integers(1, 2),
        marketing=st.tuples(
            st.sampled_from([D("30.00"), D("100000.00")]),  # the campaign's budget
            st.sampled_from([ZERO, D("20.00"), D("500.00")]),  # the platform's first funding
            st.sampled_from([D("0.01"), D("5.00")]),  # a CASH coupon's face value
            st.sampled_from([D("0.5"), D("3.3333")]),  # a boost's extra yearly rate
            st.sampled_from([None, 2]),  # the months it boosts
        ),
        data=st.data(),
    )
    def configure(
        self,
        fee_rate,
        interest_fee_rate,
        auto_disburse,
        penalty_to,
        early_interest,
        funds,
        borrowers,
        listings,
        marketing,
        data,
    ):
        """This example's settings, and its first investors (with their funds), borrowers
        and listings."""
        self.platform = platform = self.env.platform(
            **{
                "loan.platform_fee_rate": fee_rate,
                "repayment.interest_fee_rate": interest_fee_rate,
                "loan.auto_disburse": auto_disburse,
                "repayment.penalty_to": penalty_to,
                "repayment.early_settlement_interest": early_interest,
            }
        )
        self.settings = platform.settings
        loyalty = self.settings.loyalty  # what _evaluate_level models
        assert (loyalty.level_basis, loyalty.levels_can_drop) == ("CUMULATIVE", True)
        self.members = platform.service(MemberService)
        self.payments = platform.service(PaymentService)
        self.refusing = PaymentService(
            platform.tx,
            platform.settings,
            self.env.clock,
            RefusingGateway(),
            platform.components["pii"],
        )
        self.loans = platform.service(LoanService)
        operator = self.members.create_operator(self._mobile(), PASSWORD)
        self.operator = Member(Principal(member_id=operator.member_id, role="OPERATOR"))
        self._campaign(*marketing)
        for amount in funds:
            self._add_investor(amount)
        for _ in range(borrowers):
            self._add_borrower()
        for _ in range(listings):
            self._publish(data)

    # -- members and payments --------------------------------------------------------------
    @precondition(
        lambda self: len(self.investors) < MAX_INVESTORS or len(self.borrowers) < MAX_BORROWERS
    )
    @rule(borrower=st.booleans(), funds=st.one_of(st.just(ZERO), money))
    def register(self, borrower, funds):
        if borrower and len(self.borrowers) < MAX_BORROWERS:
            self._add_borrower()
        else:
            self._add_investor(funds)

    # -- marketing -------------------------------------------------------------------------
    @precondition(lambda self: self.investors)
    @rule(data=st.data(), cash=st.booleans())
    def issue_coupon(self, data, cash):
        """The operator issues a CASH or RATE_BOOST coupon to an investor."""
        owner = data.draw(st.sampled_from(self.investors), "owner")
        self._issue(owner, *self.welcome[0 if cash else 1])

    def _issue(self, owner: Member, template: int, kind: str) -> None:
        [issued] = self.campaigns.issue_coupons(
            template, [owner.who.member_id], self._rno(), self.operator.who
        ).items
        self.coupons.append(Coupon(issued.coupon_id, kind, owner))

    @rule(amount=st.sampled_from([D("0.01"), D("3.00"), D("100.00")]))
    def fund_platform(self, amount):
        """The owners fund the platform's own account; rewards waiting are not paid yet."""
        vo = self.treasury.fund_platform_account(amount, self._rno(), self.operator.who)
        assert vo.status == "SUCCESS"
        self.funding += amount

    @rule()
    def pay_rewards_due(self):
        """marketing.pay_due: every reward that waits, oldest first, paid if the platform's
        account covers it then."""
        before = len(self.owed)
        self._pay_owed()
        assert self.marketing_service.pay_due_rewards().paid == before - len(self.owed)

    @precondition(lambda self: self.investors or self.borrowers)
    @rule(data=st.data())
    def recharge(self, data):
        member = data.draw(st.sampled_from(self.investors + self.borrowers), "member")
        if data.draw(st.integers(0, 7), "valid"):
            self._recharge(member, data.draw(money, "amount"))
            return
        amount = data.draw(st.sampled_from([ZERO, D("-1.00"), D("0.001")]), "amount")
        _, code = outcome(lambda: self.payments.recharge(amount, self._rno(), member.who))
        assert code == "VALIDATION_FAILED"

    @precondition(lambda self: any(m.available for m in self.investors + self.borrowers))
    @rule(data=st.data(), refused=st.booleans())
    def withdraw(self, data, refused):
        members = self.investors + self.borrowers
        funded = [m for m in members if m.available]
        member = data.draw(st.sampled_from(funded) | st.sampled_from(members), "member")
        half = (member.available / 2).quantize(CENT)
        amount = data.draw(
            st.one_of(
                st.sampled_from([member.available, half, member.available + CENT]).filter(
                    lambda a: a > 0
                ),
                st.decimals(min_value=CENT, max_value=max(member.available, CENT), places=2),
            ),
            "amount",
        )
        service = self.refusing if refused else self.payments
        request_no = self._rno()
        vo, code = outcome(lambda: service.withdraw(amount, member.card_id, request_no, member.who))
        if amount > member.available:
            assert code == "INSUFFICIENT_FUNDS", (amount, member.available, code)
            return
        assert code is None, code
        assert (vo.amount, vo.status) == (amount, "FAILED" if refused else "SUCCESS")
        if refused:
            self.refused += amount
        else:
            member.available -= amount
            self.clearing -= amount
            self.withdrawn += amount
        self._log("withdraw", member, request_no, (refused, amount), _order_key(vo))

    # -- listings --------------------------------------------------------------------------
    @precondition(lambda self: self.borrowers and len(self.listings) < MAX_LISTINGS)
    @rule(data=st.data())
    def publish(self, data):
        self._publish(data)

    def _publish(self, data) -> None:
        """A listing with random terms, published and approved: RAISING."""
        borrower = data.draw(st.sampled_from(self.borrowers), "borrower")
        amount = data.draw(
            st.one_of(odd_amounts, st.decimals(min_value=D(100), max_value=D(3000), places=2)),
            "amount",
        )
        min_invest = min(
            amount,
            data.draw(st.sampled_from([CENT, D("1.00"), D("50.00"), (amount / 3).quantize(CENT)])),
        )
        cap = data.draw(
            st.one_of(
                st.none(),
                st.sampled_from([min_invest, amount, max(min_invest, (amount / 2).quantize(CENT))]),
            ),
            "cap",
        )
        terms = LoanRequest(
            title="周转借款",
            description="经营周转",
            borrower_id=borrower.who.member_id,
            amount=amount,
            annual_rate=data.draw(
                st.decimals(min_value=D("0.0001"), max_value=D(36), places=4), "rate"
            ),
            term_months=data.draw(st.one_of(st.integers(1, 4), st.integers(1, 36)), "term"),
            repayment_method=data.draw(st.sampled_from(METHODS), "method"),
            min_invest=min_invest,
            max_invest_per_investor=cap,
            raise_days=data.draw(st.integers(1, 30), "raise_days"),
        )
        vo = self.loans.publish_loan(terms, self.operator.who)
        vo = self.loans.audit_loan(vo.loan_id, APPROVE, self.operator.who)
        assert (vo.status, vo.raised) == ("RAISING", ZERO)
        deadline = self.env.clock.now + dt.timedelta(days=terms.raise_days)
        self.listings.append(Listing(vo.loan_id, borrower, terms, deadline))

    @precondition(lambda self: self.listings and self.investors)
    @rule(data=st.data())
    def invest(self, data):
        listing = data.draw(
            st.sampled_from(self._open() or self.listings) | st.sampled_from(self.listings),
            "listing",
        )
        own = data.draw(st.integers(0, 9), "own") == 0
        investor = listing.borrower if own else data.draw(st.sampled_from(self.investors))
        remaining = listing.terms.amount - listing.raised
        held = self._held(listing, investor)
        cap = listing.terms.max_invest_per_investor
        special = [
            remaining,
            remaining + CENT,
            listing.terms.min_invest,
            listing.terms.min_invest - CENT,
            investor.available,
            investor.available + CENT,
            ZERO,
        ]
        if cap is not None:
            special += [cap - held, cap - held + CENT]
        amount = data.draw(
            st.one_of(
                st.sampled_from([a for a in special if a >= 0]),
                st.decimals(min_value=CENT, max_value=max(remaining, CENT), places=2),
            ),
            "amount",
        )
        self._invest(listing, investor, amount, self._coupons_for(data, investor))

    @precondition(lambda self: self._open())
    @rule(data=st.data())
    def fill(self, data):
        """Investors in turn take what remains, up to their cap, recharging first what they
        lack: the way most listings here become FULL."""
        listing = data.draw(st.sampled_from(self._open()), "listing")
        cap = listing.terms.max_invest_per_investor
        for investor in data.draw(st.permutations(self.investors), "investors"):
            if listing.status != "RAISING":
                break
            amount = listing.terms.amount - listing.raised
            if cap is not None:
                amount = min(amount, cap - self._held(listing, investor))
            if amount <= 0:
                continue
            if investor.available < amount:
                self._recharge(investor, amount - investor.available)
            self._invest(listing, investor, amount, self._coupons_for(data, investor, True))
        if listing.status == "FULL" and data.draw(st.booleans(), "disburse at once"):
            self._disburse(listing)

    @precondition(lambda self: self.listings)
    @rule(data=st.data(), blank=st.integers(0, 4))
    def cancel(self, data, blank):
        reason = "  " if blank == 0 else "借款人撤回"
        listing = data.draw(st.sampled_from(self.listings), "listing")
        vo, code = outcome(lambda: self.loans.cancel_loan(listing.id, reason, self.operator.who))
        if not reason.strip():
            assert code == "VALIDATION_FAILED"
        elif listing.status in ("RAISING", "FULL"):
            assert code is None, code
            assert (vo.status, vo.raised) == ("CANCELLED", ZERO)
            self._release(listing, "CANCELLED")
        else:
            assert code == "LOAN_STATE_INVALID", (listing.status, code)

    @rule(
        days=st.one_of(st.integers(0, 3), st.integers(0, 45)),
        hours=st.integers(0, 23),
        past_due=st.none() | st.integers(-1, 20),
        close_expired=st.booleans(),
        mark_overdue=st.booleans(),
    )
    def pass_time(self, days, hours, past_due, close_expired, mark_overdue):
        """The clock moves on (or to ``past_due`` days after the next installment falls due,
        when one is unpaid and later); the scheduled jobs may run: listings past their
        deadline fail (流标), installments past their due date are marked overdue."""
        dues = sorted(i.due for x in self.listings for i in x.unpaid())
        if past_due is not None and dues:
            target = dues[0] + dt.timedelta(days=past_due)
            days = max(0, (target - self._today()).days)
        self.env.clock.advance(days=days, hours=hours)
        if close_expired:
            now = self.env.clock.now
            expired = [x for x in self.listings if x.status == "RAISING" and x.deadline <= now]
            assert self.loans.close_expired_loans().failed == len(expired)
            for listing in expired:
                self._release(listing, "FAILED")
        if mark_overdue:
            today = self._today()
            due = [
                i
                for x in self.listings
                for i in x.installments
                if i.status == "PENDING" and i.due < today
            ]
            assert self.loans.mark_overdue_installments().marked == len(due)
            for installment in due:
                installment.status = "OVERDUE"

    @precondition(lambda self: any(x.status == "FULL" for x in self.listings))
    @rule(data=st.data())
    def disburse(self, data):
        full = [x for x in self.listings if x.status == "FULL"]
        self._disburse(data.draw(st.sampled_from(full) | st.sampled_from(self.listings)))

    def _disburse(self, listing: Listing) -> None:
        request_no = self._rno()
        vo, code = outcome(
            lambda: self.loans.disburse_loan(listing.id, request_no, self.operator.who)
        )
        if listing.status != "FULL":
            assert code == "LOAN_STATE_INVALID", (listing.status, code)
            return
        assert code is None, code
        assert vo.status == "REPAYING"
        self._disbursed(listing)
        self._log("disburse", self.operator, request_no, (listing.id,), (vo.loan_id,))

    # -- repayment -------------------------------------------------------------------------
    @precondition(lambda self: any(x.status == "REPAYING" for x in self.listings))
    @rule(data=st.data())
    def repay(self, data):
        listing = self._pick_repaying(data)
        caller = self._repayer(data, listing)
        if caller is listing.borrower and listing.status == "REPAYING":
            installment = listing.unpaid()[0]
            penalty = self._penalty(installment)
            amount = installment.principal + installment.interest + penalty
            self._maybe_top_up(data, caller, amount)
        request_no = self._rno()
        vo, code = outcome(lambda: self.loans.repay(listing.id, request_no, caller.who))
        if caller is not listing.borrower:  # a cancelled listing is hidden from strangers
            assert code == ("LOAN_NOT_FOUND" if listing.status == "CANCELLED" else "FORBIDDEN")
            return
        if listing.status != "REPAYING":
            assert code == "LOAN_STATE_INVALID", (listing.status, code)
            return
        if amount > caller.available:
            assert code == "INSUFFICIENT_FUNDS", (amount, caller.available, code)
            return
        assert code is None, code
        last = installment is listing.unpaid()[-1]
        assert (vo.period, vo.principal, vo.interest, vo.penalty, vo.amount, vo.settled) == (
            installment.period,
            installment.principal,
            installment.interest,
            penalty,
            amount,
            last,
        )
        installment.status = "PAID"
        self._paid(listing, amount, penalty)
        if last:
            self._settled(listing)
        self._log("repay", caller, request_no, (listing.id,), _repayment_key(vo))

    @precondition(lambda self: any(x.status == "REPAYING" for x in self.listings))
    @rule(data=st.data())
    def settle_early(self, data):
        listing = self._pick_repaying(data)
        caller = self._repayer(data, listing)
        if caller is listing.borrower and listing.status == "REPAYING":
            principal, interest, penalty, waived = self._settlement_quote(listing)
            amount = principal + interest + penalty
            self._maybe_top_up(data, caller, amount)
        request_no = self._rno()
        vo, code = outcome(lambda: self.loans.settle_early(listing.id, request_no, caller.who))
        if caller is not listing.borrower:  # a cancelled listing is hidden from strangers
            assert code == ("LOAN_NOT_FOUND" if listing.status == "CANCELLED" else "FORBIDDEN")
            return
        if listing.status != "REPAYING":
            assert code == "LOAN_STATE_INVALID", (listing.status, code)
            return
        if amount > caller.available:
            assert code == "INSUFFICIENT_FUNDS", (amount, caller.available, code)
            return
        assert code is None, code
        assert (vo.principal, vo.interest, vo.penalty, vo.amount) == (
            principal,
            interest,
            penalty,
            amount,
        )
        for i in waived:
            i.interest = ZERO
        for i in listing.unpaid():
            i.status = "SETTLED_EARLY"
        self._paid(listing, amount, penalty)
        self._settled(listing)
        self._log("settle", caller, request_no, (listing.id,), _settlement_key(vo))

    # -- request numbers -------------------------------------------------------------------
    @precondition(lambda self: self.done)
    @rule(data=st.data(), same=st.booleans())
    def resend(self, data, same):
        """A request already done, sent again: the same request returns the first outcome and
        moves nothing (the invariants compare every balance with the unchanged model); its
        requestNo with other content, or for another operation, is refused."""
        done = data.draw(st.sampled_from(self.done), "request")
        if same:
            vo = self._send(done.kind, done.caller, done.request_no, done.args)
            assert KEYS[done.kind](vo) == done.key
            return
        if done.kind in ("recharge", "withdraw"):
            kind = data.draw(st.sampled_from(["recharge", "withdraw"]))
            amount = done.args[-1] + (CENT if kind == done.kind else ZERO)
            args = (amount,) if kind == "recharge" else (False, amount)
        elif done.kind == "invest":
            loan_id, amount, coupons = done.args
            kind, args = "invest", (loan_id, amount + CENT, coupons)
        elif done.kind == "disburse":
            others = [x.id for x in self.listings if x.id != done.args[0]]
            if not others:
                return
            kind, args = "disburse", (data.draw(st.sampled_from(others)),)
        else:
            kind = "settle" if done.kind == "repay" else "repay"
            args = done.args
        _, code = outcome(lambda: self._send(kind, done.caller, done.request_no, args))
        assert code == "REQUEST_NO_REUSED", (done, kind, args, code)

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def ledger_audit_passes(self):
        report = LedgerAudit(self.platform.tx).run()
        assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]

    @invariant()
    def database_matches_the_model(self):
        with self.env.sql.connect() as conn:
            accounts = conn.execute(
                text("SELECT member_id, code, available, frozen FROM account")
            ).all()
            loans = conn.execute(text("SELECT id, status, raised FROM loan")).all()
            investments = conn.execute(text("SELECT id, status, amount FROM investment")).all()
            installments = conn.execute(
                text("SELECT loan_id, period, status, principal, interest FROM installment")
            ).all()
            orders = conn.execute(
                text("SELECT type, status, SUM(amount) FROM payment_order GROUP BY type, status")
            ).all()
            coupons = conn.execute(text("SELECT id, status, investment_id FROM coupon")).all()
            spent = conn.execute(text("SELECT spent_amount FROM campaign")).scalar_one()
            waiting = conn.execute(
                text("SELECT COUNT(*) FROM marketing_reward WHERE status = 'PENDING'")
            ).scalar_one()
        members = {m.who.member_id: m for m in [self.operator, *self.investors, *self.borrowers]}
        # The money at the bank is the members' (CLEARING) and the platform's (PLATFORM_FUNDS):
        # its income and the owners' funding, less the rewards it paid members.
        platform = {
            "CLEARING": self.clearing - self.fee_income + self.marketing,
            "FEE_INCOME": self.fee_income,
            "PLATFORM_FUNDS": self._platform_available(),
            "OWNER_FUNDING": self.funding,
            "MARKETING_EXPENSE": self.marketing,
        }
        for member_id, code, available, frozen in accounts:
            assert available >= 0 and frozen >= 0, (member_id, code, available, frozen)
            if member_id is None:
                assert (yuan(available), yuan(frozen)) == (platform.get(code, ZERO), ZERO), code
            else:
                m = members[member_id]
                assert (yuan(available), yuan(frozen)) == (m.available, m.frozen), member_id
        assert len(accounts) == len(members) + len([a for a in accounts if a[0] is None])
        assert {(i, s, yuan(r)) for i, s, r in loans} == {
            (x.id, x.status, x.raised) for x in self.listings
        }
        assert {(i, s, yuan(a)) for i, s, a in investments} == {
            (v.id, v.status, v.amount) for x in self.listings for v in x.investments
        }
        assert {(lo, p, s, yuan(pr), yuan(it)) for lo, p, s, pr, it in installments} == {
            (x.id, i.period, i.status, i.principal, i.interest)
            for x in self.listings
            for i in x.installments
        }
        expected_orders = {
            ("RECHARGE", "SUCCESS"): self.recharged,
            ("WITHDRAW", "SUCCESS"): self.withdrawn,
            ("WITHDRAW", "FAILED"): self.refused,
        }
        assert {(t, s): yuan(total) for t, s, total in orders} == {
            k: v for k, v in expected_orders.items() if v
        }
        assert self.clearing == self.recharged - self.withdrawn
        assert set(coupons) == {
            (c.id, c.status, c.investment.id if c.investment else None) for c in self.coupons
        }
        assert (yuan(spent), waiting) == (self.spent, len(self.owed))

    # -- helpers: calls and their effect on the model ---------------------------------------
    def _send(self, kind: str, caller: Member, request_no: str, args: tuple) -> Any:
        who = caller.who
        if kind == "recharge":
            return self.payments.recharge(args[0], request_no, who)
        if kind == "withdraw":
            refused, amount = args
            service = self.refusing if refused else self.payments
            return service.withdraw(amount, caller.card_id, request_no, who)
        if kind == "invest":
            return self.loans.invest(args[0], args[1], request_no, who, list(args[2]) or None)
        if kind == "disburse":
            return self.loans.disburse_loan(args[0], request_no, who)
        if kind == "repay":
            return self.loans.repay(args[0], request_no, who)
        return self.loans.settle_early(args[0], request_no, who)

    def _add_investor(self, funds: Decimal) -> None:
        self.investors.append(self._register("INVESTOR"))
        for template, kind in self.welcome:  # a CASH and a RATE_BOOST coupon each
            self._issue(self.investors[-1], template, kind)
        if funds:
            self._recharge(self.investors[-1], funds)

    def _add_borrower(self) -> None:
        self.borrowers.append(self._register("BORROWER"))

    def _register(self, role: str) -> Member:
        """A member signed up as members do (a REGISTER code from the sandbox sender) and
        onboarded (real name, a bound card, a fund account), so they may move money."""
        mobile = self._mobile()
        self.members.send_verification_code(VerificationCodeRequest(mobile, "REGISTER"))
        code = self.platform.components["verification"].sender.last_code(mobile, "REGISTER")
        vo = self.members.register(RegisterRequest(mobile, PASSWORD, role, code))
        card_id = onboard(self.members, vo.member_id, role, mobile, self.env.identities())
        return Member(Principal(member_id=vo.member_id, role=role), card_id=card_id)

    def _maybe_top_up(self, data, borrower: Member, amount: Decimal) -> None:
        """Often the borrower first recharges what they lack (the interest, the fee)."""
        if amount > borrower.available and data.draw(st.integers(0, 3), "top up"):
            self._recharge(borrower, amount - borrower.available)

    def _settlement_quote(
        self, listing: Listing
    ) -> tuple[Decimal, Decimal, Decimal, list[Installment]]:
        """Principal, interest and penalty early settlement must charge now, and the
        installments whose interest it waives."""
        early = self.settings.repayment.early_settlement_interest
        current = early == "CURRENT_PERIOD"
        principal = interest = penalty = ZERO
        waived = []
        for i in listing.unpaid():
            keep = True
            if i.due >= self._today():  # not yet due: the current period keeps its interest?
                keep, current = current, False
            if not keep:
                waived.append(i)
            principal += i.principal
            interest += i.interest if keep else ZERO
            penalty += self._penalty(i)
        return principal, interest, penalty, waived

    def _evaluate_level(self, investor: Member) -> None:
        """An investment of ``investor``'s frozen: their level is the one their investments
        (those not released) fall in, and with it the share of the interest fee waived."""
        invested = sum(
            (
                v.amount
                for listing in self.listings
                for v in listing.investments
                if v.investor is investor and v.status != "RELEASED"
            ),
            ZERO,
        )
        [level] = [r for r in self.settings.loyalty.levels if r.covers(invested)]
        investor.fee_discount = level.fee_discount

    def _recharge(self, member: Member, amount: Decimal) -> None:
        request_no = self._rno()
        vo = self.payments.recharge(amount, request_no, member.who)
        assert (vo.amount, vo.status) == (amount, "SUCCESS")
        member.available += amount
        self.clearing += amount
        self.recharged += amount
        self._log("recharge", member, request_no, (amount,), _order_key(vo))

    def _invest(
        self, listing: Listing, investor: Member, amount: Decimal, coupons: tuple = ()
    ) -> None:
        request_no = self._rno()
        ids = [c.id for c in coupons] or None
        vo, code = outcome(
            lambda: self.loans.invest(listing.id, amount, request_no, investor.who, ids)
        )
        expected = self._refusal(listing, investor, amount, coupons)
        assert code == expected, (listing, investor, amount, coupons, code)
        if code is not None:
            return
        investor.available -= amount
        investor.frozen += amount
        listing.raised += amount
        listing.investments.append(Investment(vo.investment_id, investor, amount))
        self._evaluate_level(investor)
        for coupon in coupons:
            coupon.status, coupon.investment = "LOCKED", listing.investments[-1]
            coupon.cost = self._cost(coupon, listing, amount)
            self.spent += coupon.cost
        if listing.raised == listing.terms.amount:
            listing.status = "FULL"
            if self.settings.loan.auto_disburse:
                self._disbursed(listing)
        # The investment as the call left it: ACTIVE when its last fen was disbursed at once.
        status = listing.investments[-1].status
        assert (vo.loan_id, vo.amount, vo.status) == (listing.id, amount, status)
        args = (listing.id, amount, tuple(c.id for c in coupons))
        self._log("invest", investor, request_no, args, _investment_key(vo))

    def _refusal(
        self, listing: Listing, investor: Member, amount: Decimal, coupons: tuple = ()
    ) -> str | None:
        """The code invest must refuse with, in the order the rules are checked; or None."""
        terms = listing.terms
        remaining = terms.amount - listing.raised
        cap = terms.max_invest_per_investor
        party = investor is listing.borrower or any(
            v.investor is investor for v in listing.investments
        )
        if listing.status == "CANCELLED" and not party:
            return "LOAN_NOT_FOUND"  # only its parties see a cancelled listing
        if listing.status != "RAISING":
            return "LOAN_STATE_INVALID"
        if self.env.clock.now >= listing.deadline:
            return "RAISING_ENDED"
        if investor is listing.borrower:
            return "OWN_LOAN"
        if amount <= 0:
            return "VALIDATION_FAILED"
        if amount > remaining:
            return "INVEST_ABOVE_REMAINING"
        if amount < terms.min_invest and amount != remaining:
            return "INVEST_BELOW_MINIMUM"
        if cap is not None and self._held(listing, investor) + amount > cap:
            return "INVEST_CAP_EXCEEDED"
        refused = self._coupon_refusal(listing, investor, amount, coupons)
        if refused is not None:
            return refused
        if amount > investor.available:
            return "INSUFFICIENT_FUNDS"
        return None

    def _held(self, listing: Listing, investor: Member) -> Decimal:
        return sum(
            (
                v.amount
                for v in listing.investments
                if v.investor is investor and v.status != "RELEASED"
            ),
            ZERO,
        )

    def _release(self, listing: Listing, status: str) -> None:
        listing.status = status
        for v in listing.investments:
            if v.status == "FROZEN":
                v.status = "RELEASED"
                v.investor.frozen -= v.amount
                v.investor.available += v.amount
                listing.raised -= v.amount
                for coupon in self._coupons_of(v):
                    coupon.status, coupon.investment = "AVAILABLE", None
                    self.spent -= coupon.cost

    def _disbursed(self, listing: Listing) -> None:
        terms = listing.terms
        fee = (terms.amount * self.settings.loan.platform_fee_rate).quantize(
            CENT, rounding=ROUND_HALF_UP
        )
        for v in listing.investments:
            if v.status == "FROZEN":
                v.status = "ACTIVE"
                v.investor.frozen -= v.amount
        listing.borrower.available += terms.amount - fee
        self.fee_income += fee
        listing.status = "REPAYING"
        listing.installments = self._plan(listing)
        earned = []
        for v in listing.investments:
            for coupon in self._coupons_of(v):
                coupon.status = "USED"
                if coupon.kind == "CASH":
                    earned.append((v.investor, self.cash_face))
        self._pay_new(earned)

    def _plan(self, listing: Listing) -> list[Installment]:
        """The plan disbursement writes: the schedule's rows, due monthly from today."""
        terms = listing.terms
        rows = schedule(terms.amount, terms.annual_rate, terms.term_months, terms.repayment_method)
        dates = due_dates(self._today(), terms.term_months)
        return [Installment(r.period, dates[r.period - 1], r.principal, r.interest) for r in rows]

    def _paid(self, listing: Listing, amount: Decimal, penalty: Decimal) -> None:
        """The borrower paid ``amount``: each investor is credited what their receipts say
        less the interest service fee the model expects of each receipt paid now, and together
        (with the platform's penalty and the fees) exactly what was paid."""
        listing.borrower.available -= amount
        to_platform = penalty if self.settings.repayment.penalty_to == "PLATFORM" else ZERO
        with self.env.sql.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, investor_id, principal + interest + penalty, interest, fee"
                    " FROM receipt WHERE loan_id = :l AND status = 'RECEIVED'"
                ),
                {"l": listing.id},
            ).all()
        investors = {v.investor.who.member_id: v.investor for v in listing.investments}
        rate = self.settings.repayment.interest_fee_rate
        credited = ZERO
        for receipt_id, investor_id, total, interest, fee in rows:
            if receipt_id in listing.fees:
                continue  # paid before
            investor = investors[investor_id]
            expected = (yuan(interest) * rate * (1 - investor.fee_discount)).quantize(
                CENT, rounding=ROUND_DOWN
            )
            assert yuan(fee) == expected, (receipt_id, yuan(interest), yuan(fee), expected)
            listing.fees[receipt_id] = expected
            to_platform += expected
            investor.available += yuan(total) - expected
            credited += yuan(total) - expected
        self.fee_income += to_platform
        assert credited + to_platform == amount, (credited, to_platform, amount)
        self._pay_new(self._boosted(listing))

    def _campaign(self, budget, funding, face, rate, periods) -> None:
        """The campaign, ACTIVE, with a CASH and a RATE_BOOST template for anyone, stackable,
        on any investment; and the platform's account funded with ``funding``."""
        platform = self.platform
        self.campaigns = platform.service(CampaignService)
        self.marketing_service = platform.service(MarketingService)
        self.treasury = platform.service(TreasuryService)
        who = self.operator.who
        campaign = self.campaigns.create_campaign(
            CampaignRequest("随机活动", self.env.start, None, budget, None), who
        ).campaign_id
        self.campaigns.set_campaign_status(campaign, "ACTIVE", who)
        self.cash_face, self.boost_rate, self.boost_periods = face, rate, periods

        def template(kind: str, face_value, extra_rate, boost_periods) -> int:
            request = TemplateRequest(
                campaign_id=campaign,
                name=kind,
                kind=kind,
                face_value=face_value,
                extra_rate=extra_rate,
                boost_periods=boost_periods,
                min_invest=ZERO,
                max_invest=None,
                terms=None,
                methods=None,
                valid_from=None,
                valid_until=None,
                valid_days=3650,
                stackable=True,
                total_count=None,
                per_member_limit=None,
                audience="ALL",
                audience_level=None,
                issue_rule=None,
            )
            made = self.campaigns.create_coupon_template(request, who).template_id
            self.campaigns.set_coupon_template_status(made, "ACTIVE", who)
            return made

        self.cash_template = template("CASH", face, None, None)
        self.boost_template = template("RATE_BOOST", None, rate, periods)
        self.welcome = [(self.cash_template, "CASH"), (self.boost_template, "RATE_BOOST")]
        if funding:
            self.treasury.fund_platform_account(funding, self._rno(), who)
            self.funding += funding

    def _coupons_for(self, data, investor: Member, valid: bool = False) -> tuple:
        """Coupons to name on an investment: mostly the investor's own available ones (or
        none), unless ``valid`` sometimes someone else's, one already used or locked, or one
        named twice."""
        mine = [c for c in self.coupons if c.owner is investor and c.status == "AVAILABLE"]
        pick = data.draw(st.integers(0, 4 if valid else 7), "coupons")
        if pick <= 2 or not self.coupons:
            return tuple(mine[:pick])
        if pick <= 4:
            return tuple(mine[: pick - 2])
        if pick == 5:
            return (data.draw(st.sampled_from(self.coupons), "any coupon"),)
        if pick == 6 and mine:
            return (mine[0], mine[0])
        return (*mine[:1], data.draw(st.sampled_from(self.coupons), "another"))

    def _coupon_refusal(self, listing, investor, amount, coupons) -> str | None:
        """The code the coupons named must refuse the investment with, in the order they are
        checked (service/marketing/usage.py); or None."""
        if len({c.id for c in coupons}) != len(coupons):
            return "COUPONS_NOT_STACKABLE"
        for c in coupons:
            if c.owner is not investor:
                return "COUPON_NOT_FOUND"
            if c.status != "AVAILABLE":
                return "COUPON_NOT_AVAILABLE"
        if sum(1 for c in coupons if c.kind == "RATE_BOOST") > 1:
            return "COUPONS_NOT_STACKABLE"
        spent = self.spent
        for c in coupons:
            spent += self._cost(c, listing, amount)
            if spent > self.budget_amount():
                return "CAMPAIGN_BUDGET_EXHAUSTED"
        return None

    def budget_amount(self) -> Decimal:
        with self.env.sql.connect() as conn:
            return yuan(conn.execute(text("SELECT budget_amount FROM campaign")).scalar_one())

    def _cost(self, coupon: Coupon, listing: Listing, amount: Decimal) -> Decimal:
        if coupon.kind == "CASH":
            return self.cash_face
        t = listing.terms
        return total_boost(
            amount,
            t.annual_rate,
            t.term_months,
            t.repayment_method,
            self.boost_rate,
            self.boost_periods,
        )

    def _coupons_of(self, investment: Investment) -> list[Coupon]:
        return [c for c in self.coupons if c.investment is investment]

    def _boosted(self, listing: Listing) -> list[tuple[Member, Decimal]]:
        """The receipts just paid: each of an investment with a rate boost earns its period's
        boost (returned, in the order they are recorded), or, its base interest waived, gives it
        back to the campaign."""
        with self.env.sql.connect() as conn:
            paid = conn.execute(
                text(
                    "SELECT r.id, r.investment_id, r.period, r.interest FROM receipt r"
                    " JOIN installment i ON i.id = r.installment_id"
                    " WHERE r.loan_id = :l AND r.status = 'RECEIVED'"
                    " ORDER BY i.period, r.investment_id"
                ),
                {"l": listing.id},
            ).all()
        t = listing.terms
        earned = []
        for receipt_id, investment_id, period, interest in paid:
            if receipt_id in self.seen_receipts:
                continue
            self.seen_receipts.add(receipt_id)
            [v] = [v for v in listing.investments if v.id == investment_id]
            for coupon in self._coupons_of(v):
                if coupon.kind != "RATE_BOOST":
                    continue
                table = boosts(
                    v.amount,
                    t.annual_rate,
                    t.term_months,
                    t.repayment_method,
                    self.boost_rate,
                    self.boost_periods,
                )
                boost = table.get(period, ZERO)
                if not boost:
                    continue
                if interest:
                    earned.append((v.investor, boost))
                else:
                    self.spent -= boost
        return earned

    def _platform_available(self) -> Decimal:
        return self.fee_income + self.funding - self.marketing

    def _pay_new(self, earned: list[tuple[Member, Decimal]]) -> None:
        """The rewards just recorded, each paid by its own ``marketing.pay`` job after the
        commit if the platform's account covers it then; the rest wait for
        ``marketing.pay_due``. A reward waiting from before is not paid here, even if the
        account now covers it."""
        for member, amount in earned:
            if self._platform_available() >= amount:
                member.available += amount
                self.marketing += amount
            else:
                self.owed.append((member, amount))

    def _pay_owed(self) -> None:
        """Each reward not paid yet, oldest first, paid when the platform's account covers it."""
        waiting = []
        for member, amount in self.owed:
            if self._platform_available() >= amount:
                member.available += amount
                self.marketing += amount
            else:
                waiting.append((member, amount))
        self.owed = waiting

    def _settled(self, listing: Listing) -> None:
        """SETTLED: every investor got back exactly the principal they put in."""
        listing.status = "SETTLED"
        for v in listing.investments:
            if v.status == "ACTIVE":
                v.status = "SETTLED"
        with self.env.sql.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT investor_id, SUM(principal) FROM receipt WHERE loan_id = :l"
                    " GROUP BY investor_id"
                ),
                {"l": listing.id},
            ).all()
        assert {i: yuan(p) for i, p in rows} == {
            m.who.member_id: self._held(listing, m)
            for m in self.investors
            if self._held(listing, m)
        }

    def _penalty(self, installment: Installment) -> Decimal:
        days = (self._today() - installment.due).days
        if days <= 0:
            return ZERO
        rate = self.settings.repayment.penalty_daily_rate
        return accrued_penalty(installment.principal, rate, days)

    def _open(self) -> list[Listing]:
        """The listings still raising, before their deadline."""
        now = self.env.clock.now
        return [x for x in self.listings if x.status == "RAISING" and now < x.deadline]

    def _pick_repaying(self, data) -> Listing:
        """Mostly a REPAYING listing, sometimes any (to be refused)."""
        repaying = [x for x in self.listings if x.status == "REPAYING"]
        return data.draw(st.sampled_from(repaying) | st.sampled_from(self.listings), "listing")

    def _repayer(self, data, listing: Listing) -> Member:
        """Mostly the listing's borrower, sometimes another borrower (FORBIDDEN)."""
        if data.draw(st.integers(0, 9), "stranger") == 0:
            return data.draw(st.sampled_from(self.borrowers), "caller")
        return listing.borrower

    def _log(self, kind: str, caller: Member, request_no: str, args: tuple, key: tuple) -> None:
        self.done.append(Done(kind, caller, request_no, args, key))

    def _today(self) -> dt.date:
        return self.env.clock.now.astimezone(dt.UTC).date()

    def _rno(self) -> str:
        return f"rq-{next(self._request_nos)}"

    @staticmethod
    def _mobile() -> str:
        return f"138{next(_mobiles):08d}"


def _order_key(vo) -> tuple:
    return (vo.order_no, vo.type, vo.amount, vo.status)


def _investment_key(vo) -> tuple:
    return (vo.investment_id, vo.loan_id, vo.amount)


def _repayment_key(vo) -> tuple:
    return (vo.loan_id, vo.period, vo.principal, vo.interest, vo.penalty, vo.paid_at)


def _settlement_key(vo) -> tuple:
    return (vo.loan_id, vo.principal, vo.interest, vo.penalty, vo.settled_at)


#: What identifies each kind of request's outcome, to compare a repeat with the first.
KEYS: dict[str, Callable[[Any], tuple]] = {
    "recharge": _order_key,
    "withdraw": _order_key,
    "invest": _investment_key,
    "disburse": lambda vo: (vo.loan_id,),
    "repay": _repayment_key,
    "settle": _settlement_key,
}


def test_random_operations_keep_the_books(
    database, make_platform, sql, empty_database, clock, identities
):
    """Every step of every random sequence keeps the ledger's invariants and the model."""
    engine = database.engine.url.get_backend_name()
    examples, steps = BUDGET["sqlite" if engine == "sqlite" else "mysql"]
    env = Env(make_platform, sql, empty_database, clock, clock.now, identities)
    run_state_machine_as_test(
        lambda: MoneyCore(env),
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            print_blob=True,
            # Not the explain phase: tracing every line would make a failure slow to report.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        ),
    )


def test_an_installment_of_nothing_is_repaid_without_a_posting(
    platform, loans, operator, make_member, loan_request, borrower, sql
):
    """Found by the machine: 100.00 at 0.0001% a year, interest only, has a first installment
    of 0.00; repaying it posted no legs at all (UnbalancedPostingError), so the listing could
    never be repaid. It is PAID now, moving no money, and the next one is due."""
    vo = loans.publish_loan(
        loan_request(
            amount=D("100.00"),
            annual_rate=D("0.0001"),
            term_months=2,
            repayment_method="MONTHLY_INTEREST",
            min_invest=CENT,
        ),
        operator,
    )
    loans.audit_loan(vo.loan_id, APPROVE, operator)
    investor = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    platform.service(PaymentService).recharge(D("100.00"), "r1", investor)
    loans.invest(vo.loan_id, D("100.00"), "i1", investor)
    loans.disburse_loan(vo.loan_id, "d1", operator)
    me = Principal(member_id=borrower.member_id, role="BORROWER")
    paid = loans.repay(vo.loan_id, "p1", me)
    assert (paid.period, paid.amount, paid.settled) == (1, ZERO, False)
    with sql.connect() as conn:
        assert (
            conn.scalar(text("SELECT COUNT(*) FROM posting WHERE business_type = 'REPAYMENT'")) == 0
        )
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]
