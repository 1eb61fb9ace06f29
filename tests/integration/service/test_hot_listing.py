"""Investments in one listing made together (service/p2p/hotlisting.py), on SQLite and MariaDB:
each gets the outcome it would get alone, refused ones write nothing, what a group cannot make
exactly as alone is made alone after it, a group that fails is made one by one, and a group's
statements do not grow with its size. The group is handed to the service's runner as the
worker's group commit hands it (the order of arrival), then every fen is checked."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, text

from service.audit import LedgerAudit
from service.errors import BusinessError
from service.p2p import LoanService
from service.p2p.hotlisting import ListingChanged, _Order
from service.p2p.listing import AuditRequest
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.banking import Banking
from tests.integration.service.support import caller
from tests.integration.service.test_bank_payments import funded

D = Decimal
APPROVE = AuditRequest(approve=True, reason=None)


@pytest.fixture
def investor(platform, make_member):
    payments = platform.service(PaymentService)

    def factory(funds: str = "1000.00") -> Principal:
        who = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
        payments.recharge(D(funds), f"fund-{who.member_id}", who)
        return who

    return factory


@pytest.fixture
def raising(loans, operator, loan_request):
    def factory(amount: str = "5000.00"):
        vo = loans.publish_loan(loan_request(amount=D(amount), min_invest=D("100.00")), operator)
        return loans.audit_loan(vo.loan_id, APPROVE, operator).loan_id

    return factory


def together(loans: LoanService, loan_id: int, *orders: tuple[Principal, str, str]) -> list:
    """The outcomes of a group of (investor, amount, request number): a vo or the refusal."""
    outcomes = loans._invest_group(loan_id, [_Order(D(a), no, who) for who, a, no in orders])
    return [o.code if isinstance(o, BusinessError) else o for o in outcomes]


def rows(sql, statement: str, **params) -> list:
    with sql.connect() as conn:
        return conn.execute(text(statement), params).all()


def test_each_investment_of_a_group_gets_its_own_outcome(
    loans, platform, investor, raising, sql
) -> None:
    loan_id = raising("5000.00")
    a, b, poor = investor(), investor(), investor("150.00")
    earlier = loans.invest(loan_id, D("100.00"), "a-0", a)

    outcomes = together(
        loans,
        loan_id,
        (a, "600.00", "a-1"),
        (a, "500.00", "a-2"),  # a's 1000.00 less 100.00 and 600.00 do not cover it
        (a, "100.00", "a-0"),  # a repeat of an investment made before: the same one
        (a, "200.00", "a-0"),  # its number with other content
        (b, "300.00", "b-1"),
        (b, "300.00", "b-1"),  # the same number twice in the group: a repeat, made after
        (b, "100.005", "b-2"),  # not a sum of fen
        (b, "50.00", "b-3"),  # below minInvest
        (poor, "200.00", "p-1"),  # above the balance
        (Principal(member_id=10**9, role="INVESTOR"), "100.00", "x-1"),
        (b, "400.00", "b-4"),
    )
    made = {o.investment_id: o for o in outcomes if not isinstance(o, str)}
    assert [o if isinstance(o, str) else o.status for o in outcomes] == [
        "FROZEN",
        "INSUFFICIENT_FUNDS",
        "FROZEN",
        "REQUEST_NO_REUSED",
        "FROZEN",
        "FROZEN",
        "VALIDATION_FAILED",
        "INVEST_BELOW_MINIMUM",
        "INSUFFICIENT_FUNDS",
        "MEMBER_NOT_FOUND",
        "FROZEN",
    ]
    assert outcomes[2] == earlier and outcomes[5] == outcomes[4]
    assert len(made) == 4  # a-1, b-1, b-4 and the earlier a-0
    assert loans.get_loan(loan_id).raised == D("1400.00")
    stored = rows(sql, "SELECT id, request_no, amount FROM investment ORDER BY id")
    assert [(r, D(f) / 100) for _, r, f in stored] == [
        ("a-0", D("100.00")),
        ("a-1", D("600.00")),
        ("b-1", D("300.00")),
        ("b-4", D("400.00")),
    ]
    [(records,)] = rows(sql, "SELECT COUNT(*) FROM request_record WHERE ref_type = 'investment'")
    assert records == 4
    for investment_id in made:  # one INVEST posting, one message and one points entry each
        counts = rows(
            sql,
            "SELECT (SELECT COUNT(*) FROM posting WHERE business_type = 'INVEST'"
            " AND ref_id = :i), (SELECT COUNT(*) FROM member_message WHERE ref_id = :i"
            " AND ref_type = 'investment'), (SELECT COUNT(*) FROM point_entry"
            " WHERE kind = 'INVEST' AND ref_id = :i)",
            i=investment_id,
        )
        assert counts == [(1, 1, 1)]
    balances = rows(
        sql,
        "SELECT member_id, available, frozen FROM account WHERE member_id IN (:a, :b, :p)"
        " ORDER BY member_id",
        a=a.member_id,
        b=b.member_id,
        p=poor.member_id,
    )
    assert balances == [
        (a.member_id, 30000, 70000),
        (b.member_id, 30000, 70000),
        (poor.member_id, 15000, 0),
    ]
    levels = dict(rows(sql, "SELECT member_id, invested FROM member_level"))
    assert levels == {a.member_id: 70000, b.member_id: 70000}
    groups = platform.metrics.registry.get_sample_value
    assert (groups("p2p_invest_group_size_count"), groups("p2p_invest_group_size_sum")) == (1, 3)
    assert LedgerAudit(platform.tx).run().ok


def test_the_last_fen_and_what_only_the_group_refuses_are_made_alone_after_it(
    loans, investor, raising, platform
) -> None:
    loan_id = raising("1000.00")
    a, b, c = investor("2000.00"), investor("2000.00"), investor()
    outcomes = together(
        loans,
        loan_id,
        (a, "400.00", "a-1"),
        (b, "500.00", "b-1"),
        (c, "300.00", "c-1"),  # fits the listing as read, not after a's and b's
    )
    assert [o if isinstance(o, str) else o.status for o in outcomes] == [
        "FROZEN",
        "FROZEN",
        "INVEST_ABOVE_REMAINING",
    ]
    [last] = together(loans, loan_id, (c, "100.00", "c-2"))
    assert last.status == "FROZEN"
    outcomes = together(loans, raising("1000.00"), (a, "400.00", "a-2"), (b, "600.00", "b-2"))
    assert [o.status for o in outcomes] == ["FROZEN", "FROZEN"]  # b's takes the last fen alone
    loan = loans.get_loan(outcomes[1].loan_id)
    assert (loan.status, loan.raised) == ("FULL", D("1000.00"))
    assert loans.get_loan(loan_id).status == "FULL"
    assert LedgerAudit(platform.tx).run().ok


def test_a_group_whose_listing_changed_is_made_one_by_one(
    loans, investor, raising, platform, monkeypatch, sql
) -> None:
    loan_id = raising("1000.00")
    a, b = investor(), investor()
    taken = []
    original = type(loans._loans).take_raised

    def changed_once(repo, loan_id, amount, now):
        taken.append(amount)
        return False if len(taken) == 1 else original(repo, loan_id, amount, now)

    monkeypatch.setattr(type(loans._loans), "take_raised", changed_once)
    with pytest.raises(ListingChanged):
        loans._invest_together(loan_id, [_Order(D("100.00"), "x", a), _Order(D("2.00"), "y", b)])
    assert rows(sql, "SELECT COUNT(*) FROM investment") == [(0,)]  # rolled back whole
    taken.clear()
    outcomes = together(loans, loan_id, (a, "100.00", "a-1"), (b, "200.00", "b-1"))
    assert [o.status for o in outcomes] == ["FROZEN", "FROZEN"]
    assert taken == [D("300.00"), D("100.00"), D("200.00")]  # the group, then one by one
    assert loans.get_loan(loan_id).raised == D("300.00")
    assert LedgerAudit(platform.tx).run().ok


def test_a_group_runs_the_same_statements_whatever_its_size(
    loans, investor, raising, platform
) -> None:
    loan_id = raising("50000.00")
    people = [investor() for _ in range(12)]
    loans.invest(loan_id, D("100.00"), "first", people[0])  # levels recorded for one of them
    for who in people[1:]:
        loans.invest(loan_id, D("100.00"), f"first-{who.member_id}", who)
    statements: list[str] = []

    def count(conn, cursor, statement, *_) -> None:
        statements.append(statement.split()[0])

    engine = platform.database.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        sizes = {}
        for n in (2, 12):
            statements.clear()
            group = [(who, "100.00", f"g{n}-{who.member_id}") for who in people[:n]]
            assert all(o.status == "FROZEN" for o in together(loans, loan_id, *group))
            sizes[n] = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    if engine.dialect.name == "mysql":
        assert sizes[2] == sizes[12], sizes
    else:  # SQLite returns new ids from one row an INSERT: the investments and postings
        assert sizes[12] - sizes[2] == 2 * 10, sizes


def test_with_the_bank_a_group_reserves_its_sum_and_writes_an_order_each(
    banking: Banking, make_member, operator, loan_request, sql
) -> None:
    vo = banking.loans.publish_loan(loan_request(amount=D("10000.00")), operator)
    loan_id = banking.loans.audit_loan(vo.loan_id, APPROVE, operator).loan_id
    a, b = caller(make_member("INVESTOR")), caller(make_member("INVESTOR"))
    funded(banking, a, "1000.00")
    funded(banking, b, "1000.00")
    orders = [
        _Order(D("600.00"), "a-1", a),
        _Order(D("900.00"), "a-2", a),
        _Order(D("1500.00"), "b-1", b),
    ]
    outcomes = banking.loans._invest_group(loan_id, orders)
    assert [o.status for o in outcomes[:2]] == ["PENDING", "PENDING"]  # each covered alone
    assert isinstance(outcomes[2], BusinessError) and outcomes[2].code == "INSUFFICIENT_FUNDS"
    assert banking.loans.get_loan(loan_id).raised == D("1500.00")
    assert banking.run_jobs() == 2
    sent = {s["orderNo"] for s in banking.bank.submitted[-2:]}
    assert sent == {o.order_no for o in outcomes[:2]}
    assert rows(sql, "SELECT COUNT(*) FROM posting WHERE business_type = 'INVEST'") == [(0,)]
    assert banking.ledger_ok()
