"""LoanService on SQLite and MariaDB: the listing's state machine, validation, exact money,
browsing, and concurrent audits."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.p2p import LoanService
from service.p2p.listing import TRANSITIONS, AuditRequest
from service.security import Principal

APPROVE = AuditRequest(approve=True, reason=None)
#: An operator sees every listing in full (who sees what: test_listing_visibility.py).
STAFF = Principal(member_id=1, role="OPERATOR")


def reject(reason: str | None = "资料不全") -> AuditRequest:
    return AuditRequest(approve=False, reason=reason)


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


def row(sql, loan_id: int):
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT status, amount, min_invest, max_invest_per_investor, annual_rate,"
                " reject_reason, published_by, audited_by, title, version"
                " FROM loan WHERE id = :id"
            ),
            {"id": loan_id},
        ).one()


def loan_count(sql) -> int:
    with sql.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM loan")).scalar_one()


def set_status(sql, loan_id: int, status: str) -> None:
    with sql.begin() as conn:
        conn.execute(
            text("UPDATE loan SET status = :s WHERE id = :id"), {"s": status, "id": loan_id}
        )


# -- publish and the state machine -------------------------------------------------------


def test_publish_starts_pending_audit(loans, operator, loan_request, sql, clock) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    assert vo.status == "PENDING_AUDIT"
    assert vo.created_at == vo.updated_at == clock.now
    assert vo.raise_deadline is None
    stored = row(sql, vo.loan_id)
    assert stored.status == "PENDING_AUDIT"
    assert stored.published_by == operator.member_id
    assert loans.get_loan(vo.loan_id, STAFF) == vo


def test_money_and_rates_stored_exactly(loans, operator, loan_request, sql) -> None:
    request = loan_request(
        amount=Decimal("10000.01"),
        min_invest=Decimal("100.10"),
        max_invest_per_investor=Decimal("5000.99"),
        annual_rate=Decimal("12.3456"),
    )
    vo = loans.publish_loan(request, operator)
    stored = row(sql, vo.loan_id)
    assert stored.amount == 1000001
    assert stored.min_invest == 10010
    assert stored.max_invest_per_investor == 500099
    assert stored.annual_rate == 123456
    again = loans.get_loan(vo.loan_id, STAFF)
    assert again.amount == Decimal("10000.01") and isinstance(again.amount, Decimal)
    assert again.annual_rate == Decimal("12.3456")


def test_update_while_pending_audit(loans, operator, loan_request, sql, clock) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    clock.advance(minutes=5)
    updated = loans.update_loan(
        vo.loan_id, loan_request(title="新标题", amount=Decimal("2000")), operator
    )
    assert updated.status == "PENDING_AUDIT"
    assert updated.updated_at == clock.now > updated.created_at
    stored = row(sql, vo.loan_id)
    assert (stored.title, stored.amount, stored.status) == ("新标题", 200000, "PENDING_AUDIT")


def test_update_after_rejection_goes_back_to_pending_audit(
    loans, operator, loan_request, sql
) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    rejected = loans.audit_loan(vo.loan_id, reject("利率过高"), operator)
    assert rejected.status == "REJECTED"
    assert rejected.reject_reason == "利率过高"
    assert row(sql, vo.loan_id).audited_by == operator.member_id
    updated = loans.update_loan(vo.loan_id, loan_request(annual_rate=Decimal("9")), operator)
    assert updated.status == "PENDING_AUDIT"
    assert updated.reject_reason is None
    stored = row(sql, vo.loan_id)
    assert (stored.status, stored.reject_reason, stored.annual_rate) == (
        "PENDING_AUDIT",
        None,
        90000,
    )


def test_approve_starts_raising_until_clock_plus_raise_days(
    loans, operator, loan_request, sql, clock
) -> None:
    vo = loans.publish_loan(loan_request(raise_days=10), operator)
    clock.advance(days=2, hours=3)
    approved = loans.audit_loan(vo.loan_id, APPROVE, operator)
    assert approved.status == "RAISING"
    assert approved.raise_deadline == clock.now + dt.timedelta(days=10)
    assert approved.raise_deadline.utcoffset() == dt.timedelta(0)
    assert loans.get_loan(vo.loan_id, STAFF).raise_deadline == clock.now + dt.timedelta(days=10)
    stored = row(sql, vo.loan_id)
    assert (stored.status, stored.audited_by) == ("RAISING", operator.member_id)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_requires_a_reason(loans, operator, loan_request, sql, reason) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    e = error_of(loans.audit_loan, vo.loan_id, reject(reason), operator)
    assert e.code == "VALIDATION_FAILED"
    assert e.message.startswith("reason:")
    assert row(sql, vo.loan_id).status == "PENDING_AUDIT"


def test_illegal_transitions_after_approval(loans, operator, loan_request, sql) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    loans.audit_loan(vo.loan_id, APPROVE, operator)
    for attempt in (
        lambda: loans.audit_loan(vo.loan_id, APPROVE, operator),
        lambda: loans.audit_loan(vo.loan_id, reject(), operator),
        lambda: loans.update_loan(vo.loan_id, loan_request(), operator),
    ):
        e = error_of(attempt)
        assert e.code == "LOAN_STATE_INVALID"
        assert "RAISING" in e.message
    stored = row(sql, vo.loan_id)
    assert (stored.status, stored.version) == ("RAISING", 2)


def test_a_rejected_listing_cannot_be_audited_again(loans, operator, loan_request) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    loans.audit_loan(vo.loan_id, reject(), operator)
    for verdict in (APPROVE, reject("again")):
        e = error_of(loans.audit_loan, vo.loan_id, verdict, operator)
        assert e.code == "LOAN_STATE_INVALID"
        assert "REJECTED" in e.message


@pytest.mark.parametrize(
    "status", sorted(s for s in TRANSITIONS if s not in ("PENDING_AUDIT", "REJECTED"))
)
def test_later_statuses_allow_neither_update_nor_audit(
    loans, operator, loan_request, sql, status
) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    set_status(sql, vo.loan_id, status)
    for attempt in (
        lambda: loans.update_loan(vo.loan_id, loan_request(title="x"), operator),
        lambda: loans.audit_loan(vo.loan_id, APPROVE, operator),
        lambda: loans.audit_loan(vo.loan_id, reject(), operator),
    ):
        e = error_of(attempt)
        assert e.code == "LOAN_STATE_INVALID"
        assert status in e.message
    stored = row(sql, vo.loan_id)
    assert (stored.status, stored.title) == (status, "周转借款")


def test_unknown_listing(loans, operator, loan_request) -> None:
    for attempt in (
        lambda: loans.get_loan(999_999, STAFF),
        lambda: loans.update_loan(999_999, loan_request(), operator),
        lambda: loans.audit_loan(999_999, APPROVE, operator),
    ):
        assert error_of(attempt).code == "LOAN_NOT_FOUND"


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": Decimal("99.99")}, "amount"),
        ({"amount": Decimal("50000000.01")}, "amount"),
        ({"amount": Decimal("1000.001")}, "amount"),
        ({"annual_rate": Decimal("0")}, "annualRate"),
        ({"annual_rate": Decimal("36.0001")}, "annualRate"),
        ({"annual_rate": Decimal("-1")}, "annualRate"),
        ({"min_invest": Decimal("10000.01")}, "minInvest"),
        ({"min_invest": Decimal("0")}, "minInvest"),
        (
            {"min_invest": Decimal("100"), "max_invest_per_investor": Decimal("99.99")},
            "maxInvestPerInvestor",
        ),
        ({"max_invest_per_investor": Decimal("10000.01")}, "maxInvestPerInvestor"),
        ({"raise_days": 31}, "raiseDays"),
        ({"raise_days": 0}, "raiseDays"),
        ({"term_months": 61}, "termMonths"),
        ({"title": "  "}, "title"),
        ({"repayment_method": "NEVER"}, "repaymentMethod"),
    ],
)
def test_invalid_terms_name_the_field(loans, operator, loan_request, sql, overrides, field) -> None:
    e = error_of(loans.publish_loan, loan_request(**overrides), operator)
    assert e.code == "VALIDATION_FAILED"
    assert e.message.startswith(f"{field}:"), e.message
    assert loan_count(sql) == 0


def test_bounds_accepted(loans, operator, loan_request, sql) -> None:
    edge = loan_request(
        amount=Decimal("100.00"),
        annual_rate=Decimal("36"),
        min_invest=Decimal("100.00"),
        max_invest_per_investor=Decimal("100.00"),
        raise_days=30,
    )
    assert loans.publish_loan(edge, operator).annual_rate == Decimal("36")
    top = loan_request(amount=Decimal("50000000.00"), annual_rate=Decimal("0.0001"))
    assert loans.publish_loan(top, operator).amount == Decimal("50000000.00")
    assert loan_count(sql) == 2


def test_amount_and_raise_days_bounds_come_from_settings(
    make_platform, operator, loan_request
) -> None:
    overrides = {
        "loan.min_amount": "500.00",
        "loan.max_amount": "2000.00",
        "loan.max_raise_days": 10,
    }
    loans = make_platform(**overrides).service(LoanService)
    for request, field in (
        (loan_request(amount=Decimal("499.99")), "amount"),
        (loan_request(amount=Decimal("2000.01")), "amount"),
        (loan_request(amount=Decimal("1000"), raise_days=11), "raiseDays"),
    ):
        e = error_of(loans.publish_loan, request, operator)
        assert e.message.startswith(f"{field}:")
        assert "2000.00" in e.message or "10" in e.message
    ok = loans.publish_loan(loan_request(amount=Decimal("500.00"), raise_days=10), operator)
    assert ok.status == "PENDING_AUDIT"


def test_the_borrower_must_be_a_borrower(loans, operator, loan_request, make_member, sql) -> None:
    investor = make_member("INVESTOR")
    e = error_of(loans.publish_loan, loan_request(borrower_id=investor.member_id), operator)
    assert e.code == "NOT_A_BORROWER"
    e = error_of(loans.publish_loan, loan_request(borrower_id=operator.member_id), operator)
    assert e.code == "NOT_A_BORROWER"
    e = error_of(loans.publish_loan, loan_request(borrower_id=987_654), operator)
    assert e.code == "MEMBER_NOT_FOUND"
    assert loan_count(sql) == 0


def test_update_validates_too(loans, operator, loan_request, sql) -> None:
    vo = loans.publish_loan(loan_request(), operator)
    e = error_of(loans.update_loan, vo.loan_id, loan_request(annual_rate=Decimal("40")), operator)
    assert e.message.startswith("annualRate:")
    assert row(sql, vo.loan_id).annual_rate == 125000


# -- browsing ----------------------------------------------------------------------------


@pytest.fixture
def catalogue(loans, operator, loan_request, clock) -> dict[str, int]:
    """Six listings in known states; returns their ids by name."""
    specs = {
        "a": {"annual_rate": Decimal("8"), "term_months": 3, "repayment_method": "BULLET"},
        "b": {"annual_rate": Decimal("10"), "term_months": 6},
        "c": {"annual_rate": Decimal("12.5"), "term_months": 12},
        "d": {"annual_rate": Decimal("15"), "term_months": 24, "repayment_method": "BULLET"},
        "e": {"annual_rate": Decimal("18"), "term_months": 36},
        "f": {
            "annual_rate": Decimal("24"),
            "term_months": 60,
            "repayment_method": "EQUAL_PRINCIPAL",
        },
    }
    ids = {}
    for name, overrides in specs.items():
        ids[name] = loans.publish_loan(loan_request(title=name, **overrides), operator).loan_id
        clock.advance(seconds=1)
    loans.audit_loan(ids["b"], APPROVE, operator)
    loans.audit_loan(ids["d"], APPROVE, operator)
    loans.audit_loan(ids["e"], reject(), operator)
    return ids


def titles(page) -> list[str]:
    return [item.title for item in page.items]


def test_list_newest_first_with_total(loans, catalogue) -> None:
    page = loans.list_loans(caller=STAFF)
    assert titles(page) == ["f", "e", "d", "c", "b", "a"]
    assert (page.total, page.page, page.page_size) == (6, 1, 20)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "RAISING"}, ["d", "b"]),
        ({"status": "PENDING_AUDIT"}, ["f", "c", "a"]),
        ({"status": "FULL"}, []),
        ({"repayment_method": "BULLET"}, ["d", "a"]),
        ({"min_rate": Decimal("12.5")}, ["f", "e", "d", "c"]),
        ({"max_rate": Decimal("12.5")}, ["c", "b", "a"]),
        ({"min_rate": Decimal("10"), "max_rate": Decimal("15")}, ["d", "c", "b"]),
        ({"min_term_months": 12, "max_term_months": 36}, ["e", "d", "c"]),
        ({"status": "RAISING", "repayment_method": "BULLET"}, ["d"]),
    ],
)
def test_list_filters(loans, catalogue, filters, expected) -> None:
    page = loans.list_loans(**filters, caller=STAFF)
    assert titles(page) == expected
    assert page.total == len(expected)


def test_pages_are_stable_and_complete(loans, catalogue) -> None:
    pages = [loans.list_loans(page=n, page_size=4, caller=STAFF) for n in (1, 2, 3)]
    assert [titles(p) for p in pages] == [["f", "e", "d", "c"], ["b", "a"], []]
    assert all(p.total == 6 for p in pages)
    assert titles(loans.list_loans(page=2, page_size=4, caller=STAFF)) == [
        "b",
        "a",
    ]  # the same again
    filtered = loans.list_loans(status="PENDING_AUDIT", page=2, page_size=2, caller=STAFF)
    assert (titles(filtered), filtered.total) == (["a"], 3)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"page_size": 101}, "pageSize"),
        ({"page": -1, "page_size": 10}, "page"),
        ({"page": 0}, "page"),
        ({"page_size": 0}, "pageSize"),
        ({"min_rate": Decimal("20"), "max_rate": Decimal("10")}, "minRate"),
        ({"min_term_months": 24, "max_term_months": 12}, "minTermMonths"),
    ],
)
def test_list_validation_names_the_field(loans, arguments, field) -> None:
    e = error_of(lambda: loans.list_loans(**arguments))
    assert e.code == "VALIDATION_FAILED"
    assert e.message.startswith(f"{field}:")


def test_default_page_size_comes_from_settings(make_platform, loan_request, operator) -> None:
    loans = make_platform(**{"api.default_page_size": 2}).service(LoanService)
    for _ in range(3):
        loans.publish_loan(loan_request(), operator)
    page = loans.list_loans(caller=STAFF)
    assert (len(page.items), page.total, page.page_size) == (2, 3, 2)


# -- concurrency (MariaDB) ---------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_concurrent_audits_of_one_listing_let_exactly_one_win(
    make_platform, operator, loan_request, sql
) -> None:
    one = make_platform().service(LoanService)
    two = make_platform().service(LoanService)
    for round_ in range(5):
        loan_id = one.publish_loan(loan_request(title=f"race {round_}"), operator).loan_id
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def audit(
            service: LoanService,
            verdict: AuditRequest,
            barrier=barrier,
            outcomes=outcomes,
            loan_id=loan_id,
        ) -> None:
            barrier.wait()
            try:
                outcomes.append(service.audit_loan(loan_id, verdict, operator).status)
            except BusinessError as e:
                outcomes.append(e.code)
            except Exception as e:  # anything else fails the test
                outcomes.append(e)

        threads = [
            threading.Thread(target=audit, args=(one, APPROVE)),
            threading.Thread(target=audit, args=(two, reject("拒绝"))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [o for o in outcomes if o in ("RAISING", "REJECTED")]
        losers = [o for o in outcomes if o in ("LOAN_STATE_INVALID", "CONCURRENT_UPDATE")]
        assert (len(winners), len(losers)) == (1, 1), outcomes
        stored = row(sql, loan_id)
        assert stored.status == winners[0]
        assert stored.version == 2  # one update only
