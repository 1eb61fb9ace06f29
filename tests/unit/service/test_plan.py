"""Unit tests of service/p2p/plan.py write_plan: a listing's installments and each investor's
receipts, split exactly, checked on an in-process fake of PlanRepository."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dao.p2p import InstallmentEntity, InvestmentEntity, LoanEntity, ReceiptEntity
from service.p2p.plan import write_plan
from service.schedule import METHODS, due_dates, schedule, split

D = Decimal
START = datetime.date(2026, 1, 31)
# No example database in the source tree; no deadline, since timing is not what is tested.
SETTINGS = settings(database=None, deadline=None, max_examples=200)


class FakePlans:
    """Keeps what write_plan adds and numbers it, as flush() would."""

    def __init__(self) -> None:
        self.installments: list[InstallmentEntity] = []
        self.receipts: list[ReceiptEntity] = []
        self._ids = itertools.count(1)

    def add_all(self, entities: list) -> None:
        for entity in entities:
            entity.id = next(self._ids)
            kind = self.installments if isinstance(entity, InstallmentEntity) else self.receipts
            kind.append(entity)


def loan(method: str, amount: str = "10000.01", rate: str = "11.9", term: int = 7) -> LoanEntity:
    return LoanEntity(
        id=5,
        amount=D(amount),
        annual_rate=D(rate),
        term_months=term,
        repayment_method=method,
    )


def investments(*amounts: str) -> list[InvestmentEntity]:
    return [
        InvestmentEntity(id=100 + i, investor_id=10 + i, loan_id=5, amount=D(a))
        for i, a in enumerate(amounts)
    ]


ODD = ("3333.33", "1234.57", "4000.00", "1432.11")  # sums to 10000.01


@pytest.mark.parametrize("method", METHODS)
def test_installments_follow_the_schedule_and_the_due_dates(method):
    plans = FakePlans()
    write_plan(plans, loan(method), investments(*ODD), START)
    expected = schedule(D("10000.01"), D("11.9"), 7, method)
    dates = due_dates(START, 7)
    got = [
        (i.period, i.principal, i.interest, i.penalty, i.remaining, i.due_date, i.status)
        for i in plans.installments
    ]
    assert got == [
        (r.period, r.principal, r.interest, 0, r.remaining, dates[r.period - 1], "PENDING")
        for r in expected
    ]
    if method == "BULLET":
        assert [(i.period, i.due_date) for i in plans.installments] == [
            (7, datetime.date(2026, 8, 31))
        ]


@pytest.mark.parametrize("method", METHODS)
def test_receipts_sum_exactly_to_each_installment(method):
    plans = FakePlans()
    invs = investments(*ODD)
    write_plan(plans, loan(method), invs, START)
    for inst in plans.installments:
        mine = [r for r in plans.receipts if r.installment_id == inst.id]
        assert [r.investment_id for r in mine] == [i.id for i in invs]
        assert [r.investor_id for r in mine] == [i.investor_id for i in invs]
        assert {(r.loan_id, r.period, r.penalty, r.status) for r in mine} == {
            (5, inst.period, 0, "PENDING")
        }
        assert sum(r.principal for r in mine) == inst.principal
        assert sum(r.interest for r in mine) == inst.interest
        for r in mine:
            assert r.principal == r.principal.quantize(D("0.01"))
            assert r.interest == r.interest.quantize(D("0.01"))


@pytest.mark.parametrize("method", METHODS)
def test_each_investor_gets_their_share_of_the_whole_plan(method):
    """Summed over the plan, an investor's principal is exactly their investment (the principal
    of the whole listing split by holdings); their interest is their proportional share of all
    the interest, off by less than a fen per installment."""
    plans = FakePlans()
    invs = investments(*ODD)
    write_plan(plans, loan(method), invs, START)
    total_interest = sum(i.interest for i in plans.installments)
    n = len(plans.installments)
    for inv in invs:
        mine = [r for r in plans.receipts if r.investment_id == inv.id]
        assert len(mine) == n
        assert sum(r.principal for r in mine) == inv.amount
        exact = Fraction(total_interest) * Fraction(inv.amount) / Fraction(D("10000.01"))
        assert abs(Fraction(sum(r.interest for r in mine)) - exact) < Fraction(n, 100)


def test_ties_go_to_the_earlier_investment_whatever_order_they_are_given_in():
    # 100.00 at 12% for one month: interest 1.00, split three ways: 0.34, 0.33, 0.33.
    plans = FakePlans()
    invs = investments("33.33", "33.33", "33.34")
    write_plan(plans, loan("BULLET", "100.00", "12", 1), list(reversed(invs)), START)
    by_investment = {r.investment_id: r for r in plans.receipts}
    assert [by_investment[i.id].interest for i in invs] == [D("0.33"), D("0.33"), D("0.34")]
    plans = FakePlans()
    equal = investments("50.00", "50.00")
    write_plan(plans, loan("BULLET", "100.00", "12.06", 1), list(reversed(equal)), START)
    # interest round(100 * 0.1206 / 12) = 1.01: the odd fen goes to the earlier investment.
    assert [r.investment_id for r in plans.receipts] == [100, 101]
    assert [r.interest for r in plans.receipts] == [D("0.51"), D("0.50")]


def test_a_listing_without_investments_is_refused():
    with pytest.raises(ValueError, match="no investments"):
        write_plan(FakePlans(), loan("BULLET"), [], START)


@pytest.mark.parametrize("method", METHODS)
def test_each_installment_is_split_by_the_principal_still_outstanding(method):
    plans = FakePlans()
    invs = investments(*ODD)
    write_plan(plans, loan(method), invs, START)
    outstanding = {i.id: i.amount for i in invs}
    for inst in plans.installments:
        weights = [outstanding[i.id] for i in invs]
        mine = [r for r in plans.receipts if r.installment_id == inst.id]
        assert [r.principal for r in mine] == list(split(inst.principal, weights))
        assert [r.interest for r in mine] == list(split(inst.interest, weights))
        for r in mine:
            outstanding[r.investment_id] -= r.principal
    assert set(outstanding.values()) == {0}


@SETTINGS
@given(
    method=st.sampled_from(METHODS),
    term=st.integers(1, 36),
    rate=st.decimals(min_value=0, max_value=36, places=2).filter(lambda r: r > 0),
    fen=st.lists(st.integers(1, 5_000_000), min_size=1, max_size=12),
)
def test_any_plan_splits_exactly(method, term, rate, fen):
    amounts = [D(f).scaleb(-2) for f in fen]
    total = sum(amounts)
    invs = [
        InvestmentEntity(id=100 + i, investor_id=10 + i, loan_id=5, amount=a)
        for i, a in enumerate(amounts)
    ]
    plans = FakePlans()
    write_plan(plans, loan(method, str(total), str(rate), term), invs, START)
    for inst in plans.installments:
        mine = [r for r in plans.receipts if r.installment_id == inst.id]
        assert sum(r.principal for r in mine) == inst.principal
        assert sum(r.interest for r in mine) == inst.interest
        assert all(r.principal >= 0 and r.interest >= 0 for r in mine)
    for inv in invs:
        assert sum(r.principal for r in plans.receipts if r.investment_id == inv.id) == inv.amount


def test_investments_that_do_not_fund_the_listing_exactly_are_refused():
    with pytest.raises(ValueError, match="do not add up"):
        write_plan(FakePlans(), loan("BULLET"), investments("3333.33", "6666.67"), START)
