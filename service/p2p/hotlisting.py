"""A popular listing (抢标): a worker's concurrent investments in one listing, made together.

When a listing opens, every thread of a worker may be investing in it at once. Alone, an
investment is a transaction of some twenty statements, the commit and the pool's checks; its
CPU, not the listing's row (taken last, for one statement: service/p2p/investing.py), is what
limits how many a second the machine makes. So ``invest`` hands an investment to the listing's
group (service/groupcommit.py): alone it is made at once, as it always was; while a group of
the listing's investments is being made, those that arrive wait for it, and are then made
together, up to ``loan.invest_group_size`` in one transaction of set-based statements whatever
their number: the investors and the listing read once, the request numbers looked up in one
query, the investors' accounts locked in one SELECT ... FOR UPDATE, the investments inserted by
one INSERT, the INVEST postings, their entries and the messages by one each, the request
numbers recorded with their outcomes by one, and ``raised`` grown by their sum in the listing's
one conditional UPDATE, the last statement before the commit.

Every outcome is the one the investment would have alone, checked in the same order with the
same error codes: the investor (MEMBER_NOT_FOUND, not onboarded), the listing (LOAN_NOT_FOUND
when missing or not theirs to see), the request number (VALIDATION_FAILED; a repeat answers
with its investment, REQUEST_NO_REUSED with other content), the listing's state and the amount
(against the listing as read, as alone), then the investor's available balance
(INSUFFICIENT_FUNDS, counting what their earlier investments in the group take). A refused
investment writes nothing and leaves the others in the group alone. The group makes only what
it can make exactly as each would be made alone; the rest is made alone right after the group
commits, each by ``InvestingService.invest``:

* an investment that would take the listing's last fen (FULL and the listing's lock are alone's
  business), or that would be refused only because of the group's others before it;
* a request number sent twice within the group (the second is then a repeat);
* every investment of a group whose transaction fails: a request number claimed meanwhile by
  another worker or the listing changed since it was read (the conditional UPDATE changes no
  row) roll the whole group back, which is then made one by one, each with its own outcome;
  a deadlock is retried whole first (service/transaction.py).

Investments with coupons, in a listing with a per-investor cap, or inside a caller's
transaction are made alone. With the bank (payment.gateway BANK) a group writes its PENDING
investments and their FREEZE orders (one order and its job each) and reserves their sum in
``raised``; nothing is posted yet, as alone.

A group commits or rolls back whole: a worker killed mid-way loses its open group's
transaction, nothing of it half-written; the callers see failed calls and send them again
under their request numbers.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from dao.member import MemberEntity
from dao.p2p import InvestmentEntity, LoanEntity
from service import errors
from service.errors import BusinessError
from service.groupcommit import GroupCommit
from service.idempotency import check_request_no, repeated
from service.ledger import AVAILABLE, FROZEN, credit, debit, insufficient
from service.member.onboarding import require_onboarded
from service.ocp.orders import new_order_no
from service.p2p import notices
from service.p2p.investing import REF_TYPE, InvestingService, InvestmentVo, _investment_vo
from service.p2p.listing import _loan_vo, backs, loan_not_found, sees
from service.security import Principal
from service.transaction import transactional

log = logging.getLogger(__name__)

#: What a group gives an investment: its answer, its refusal, or None: made alone after.
Outcome = InvestmentVo | BaseException | None


@dataclass(frozen=True)
class _Order:
    amount: Decimal
    request_no: str
    caller: Principal

    @property
    def scope(self) -> str:
        return f"member:{self.caller.member_id}"


class ListingChanged(Exception):
    """The listing no longer takes the group's sum as read (its conditional UPDATE changed no
    row): the group rolls back and is made one by one."""


class HotListing(InvestingService):
    """InvestingService whose concurrent investments in one listing are made together."""

    def _built(self) -> None:
        super()._built()
        self._groups: GroupCommit[int, _Order, InvestmentVo] = GroupCommit(
            self._invest_group, self._loan_settings.invest_group_size
        )

    def invest(
        self,
        loan_id: int,
        amount: Decimal,
        request_no: str,
        caller: Principal,
        coupon_ids: Sequence[int] | None = None,
    ) -> InvestmentVo:
        """InvestingService.invest, made together with the worker's concurrent investments in
        the same listing (the module docstring)."""
        if coupon_ids or self.tx.in_transaction():
            return super().invest(loan_id, amount, request_no, caller, coupon_ids)
        return self._groups.submit(loan_id, _Order(amount, request_no, caller))

    def _invest_group(self, loan_id: int, orders: Sequence[_Order]) -> list[Outcome]:
        outcomes: list[Outcome] = [None] * len(orders)
        if len(orders) > 1:
            try:
                outcomes = self._invest_together(loan_id, orders)
            except Exception as e:
                log.info(
                    "a group of %d investments in listing %s made one by one: %s",
                    len(orders),
                    loan_id,
                    type(e).__name__,
                )
        return [
            self._alone(loan_id, order) if outcome is None else outcome
            for order, outcome in zip(orders, outcomes, strict=True)
        ]

    def _alone(self, loan_id: int, order: _Order) -> InvestmentVo | BaseException:
        try:
            return InvestingService.invest(
                self, loan_id, order.amount, order.request_no, order.caller
            )
        except Exception as e:
            return e

    @transactional
    def _invest_together(self, loan_id: int, orders: Sequence[_Order]) -> list[Outcome]:
        outcomes: list[Outcome] = [None] * len(orders)
        loan = self._loans.get(loan_id)
        if loan is None or loan.max_invest_per_investor is not None:
            return outcomes
        now = self._clock()
        investors = self._members.many({o.caller.member_id for o in orders})
        records = self._requests.claimed({(o.scope, o.request_no) for o in orders})
        listing = _loan_vo(loan)
        taken, seen, raised = [], set(), loan.raised
        for i, order in enumerate(orders):
            key = (order.scope, order.request_no)
            try:
                investor = investors.get(order.caller.member_id)
                if investor is None:
                    raise BusinessError(
                        errors.MEMBER_NOT_FOUND, f"member {order.caller.member_id} does not exist"
                    )
                require_onboarded(investor, who="the investor")
                if not sees(order.caller, listing) and not backs(
                    order.caller, loan.id, self._investments
                ):
                    raise loan_not_found(loan_id)
                check_request_no(order.request_no)
                if key in seen:
                    continue  # a repeat within the group: alone, once the first is made
                seen.add(key)
                if key in records:
                    content = {"loan_id": loan_id, "amount": order.amount}
                    ref_id = repeated(records[key], order.request_no, "invest", **content)
                    outcomes[i] = self._vo(self._investments.get(ref_id))
                    continue
                self._check_investment(loan, order.amount, order.caller, now)
            except BusinessError as e:
                outcomes[i] = e
                continue
            if raised + order.amount < loan.amount:  # else the last fen, or the others': alone
                taken.append(i)
                raised += order.amount
        made = self._take(loan, [(i, orders[i]) for i in taken], investors, now, outcomes)
        if not made:
            return outcomes
        total = sum((inv.amount for _, inv in made), Decimal(0))
        if not self._loans.take_raised(loan.id, total, now):
            raise ListingChanged(f"listing {loan.id} changed since it was read")
        self._evict_loan(loan.id, pages=False)
        self._events.invested_together(len(made))
        for i, investment in made:
            if self._bank is None:
                self._events.invested(investment.amount)
            outcomes[i] = _investment_vo(investment)
        return outcomes

    def _take(
        self,
        loan: LoanEntity,
        taken: list[tuple[int, _Order]],
        investors: dict[int, MemberEntity],
        now: dt.datetime,
        outcomes: list[Outcome],
    ) -> list[tuple[int, InvestmentEntity]]:
        """The investments of ``taken`` the investors' balances cover, written with all that
        goes with them but the listing's ``raised``; the others' refusals into ``outcomes``."""
        if not taken:
            return []
        at_the_bank = self._bank is not None
        accounts = self._ledger.accounts_of({o.caller.member_id for _, o in taken})
        spent: dict[int, Decimal] = defaultdict(Decimal)
        made: list[tuple[int, InvestmentEntity]] = []
        for i, order in taken:
            member_id = order.caller.member_id
            account = accounts.get(member_id)
            if account is None:
                outcomes[i] = BusinessError(
                    errors.MEMBER_NOT_FOUND, f"member {member_id} has no account"
                )
                continue
            try:
                if at_the_bank:
                    self._check_covered(account.available, order.amount)
                elif account.available - spent[member_id] < order.amount:
                    raise insufficient(AVAILABLE)
            except BusinessError as e:
                outcomes[i] = e
                continue
            spent[member_id] += order.amount
            made.append(
                (
                    i,
                    InvestmentEntity(
                        loan_id=loan.id,
                        investor_id=member_id,
                        amount=order.amount,
                        status="PENDING" if at_the_bank else "FROZEN",
                        request_no=order.request_no,
                        order_no=new_order_no("I", now) if at_the_bank else None,
                        created_at=now,
                        updated_at=now,
                    ),
                )
            )
        if not made:
            return made
        investments = [inv for _, inv in made]
        self._investments.add_all(investments)
        orders = {i: o for i, o in taken}
        self._requests.record_done(
            "invest",
            [
                (
                    orders[i].scope,
                    orders[i].request_no,
                    {"loan_id": loan.id, "amount": orders[i].amount},
                    (REF_TYPE, inv.id),
                )
                for i, inv in made
            ],
        )
        if at_the_bank:
            for investment in investments:
                self._freeze_at_the_bank(investors[investment.investor_id], investment)
        else:
            self._ledger.post_all(
                "INVEST",
                [
                    (
                        (REF_TYPE, inv.id),
                        [
                            debit(accounts[inv.investor_id], AVAILABLE, inv.amount),
                            credit(accounts[inv.investor_id], FROZEN, inv.amount),
                        ],
                        inv.request_no,
                    )
                    for inv in investments
                ],
            )
            notices.invested_all(self._messages, loan, investments)
            self._lifecycle.investments_frozen(loan, investments)
        self.tx.session().flush()
        return made
