"""MemberRepository and LoanRepository against migrated SQLite and MariaDB databases."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dao.member import MemberEntity, MemberRepository
from dao.p2p import LoanEntity, LoanRepository
from dao.p2p import loan as loan_module

LoanFields = Callable[..., dict[str, Any]]


@pytest.fixture
def members(session: Session) -> MemberRepository:
    return MemberRepository(lambda: session)


@pytest.fixture
def loans(session: Session) -> LoanRepository:
    return LoanRepository(lambda: session)


# ---- members -------------------------------------------------------------------------


def test_member_add_sets_id_and_get_reads_it_back(
    members: MemberRepository, session: Session
) -> None:
    member = members.add(MemberEntity(mobile="13800000001", password_hash="h", role="INVESTOR"))
    assert member.id is not None
    session.expunge_all()  # force a real read

    loaded = members.get(member.id)
    assert loaded is not None
    assert (loaded.mobile, loaded.role, loaded.status) == ("13800000001", "INVESTOR", "ACTIVE")
    assert loaded.created_at.tzinfo is not None
    assert members.get(member.id + 1000) is None


def test_find_by_mobile(
    members: MemberRepository, make_member: Callable[..., MemberEntity], session: Session
) -> None:
    wanted = make_member(mobile="13800000002", role="INVESTOR")
    make_member(mobile="13800000003")
    session.expunge_all()

    found = members.find_by_mobile("13800000002")
    assert found is not None
    assert found.id == wanted.id
    assert members.find_by_mobile("13800000004") is None


def test_duplicate_mobile_is_refused_on_add(
    members: MemberRepository, make_member: Callable[..., MemberEntity]
) -> None:
    make_member(mobile="13800000005")
    with pytest.raises(IntegrityError):
        members.add(MemberEntity(mobile="13800000005", password_hash="h", role="INVESTOR"))


# ---- loans ---------------------------------------------------------------------------


def test_loan_add_and_get_round_trip_exact_values(
    loans: LoanRepository, loan_fields: LoanFields, session: Session
) -> None:
    loan = loans.add(
        LoanEntity(
            **loan_fields(
                amount=Decimal("50000000.00"),
                annual_rate=Decimal("12.3456"),
                min_invest=Decimal("0.01"),
                max_invest_per_investor=Decimal("10000.01"),
            )
        )
    )
    assert loan.id is not None
    assert loan.version == 1
    session.expunge_all()

    loaded = loans.get(loan.id)
    assert loaded is not None
    assert loaded.amount == Decimal("50000000.00")
    assert str(loaded.annual_rate) == "12.3456"
    assert str(loaded.min_invest) == "0.01"
    assert str(loaded.max_invest_per_investor) == "10000.01"
    assert loans.get(loan.id + 1000) is None


def test_get_for_update_rereads_the_row(
    loans: LoanRepository, loan_fields: LoanFields, session: Session
) -> None:
    loan = loans.add(LoanEntity(**loan_fields()))
    session.execute(
        text("UPDATE loan SET status = 'RAISING', version = 2 WHERE id = :id"), {"id": loan.id}
    )

    locked = loans.get_for_update(loan.id)
    assert locked is loan  # same identity ...
    assert (locked.status, locked.version) == ("RAISING", 2)  # ... with fresh values
    assert loans.get_for_update(loan.id + 1000) is None


def test_version_column_detects_a_concurrent_update(
    loans: LoanRepository, loan_fields: LoanFields, session: Session
) -> None:
    loan = loans.add(LoanEntity(**loan_fields()))
    # Someone else updated the row after we read it.
    session.execute(text("UPDATE loan SET version = version + 1 WHERE id = :id"), {"id": loan.id})

    loan.status = "RAISING"
    with pytest.raises(StaleDataError):
        session.flush()


def test_update_increments_version(
    loans: LoanRepository, loan_fields: LoanFields, session: Session
) -> None:
    loan = loans.add(LoanEntity(**loan_fields()))
    loan.status = "RAISING"
    session.flush()

    raw = session.execute(text("SELECT version FROM loan WHERE id = :id"), {"id": loan.id})
    assert raw.scalar_one() == 2


@pytest.fixture
def catalogue(loans: LoanRepository, loan_fields: LoanFields) -> dict[str, LoanEntity]:
    """Six loans with distinct status, method, rate and term, added in this order."""
    spec = {
        "a": ("RAISING", "EQUAL_INSTALLMENT", "8.0000", 6),
        "b": ("RAISING", "BULLET", "12.5000", 12),
        "c": ("PENDING_AUDIT", "EQUAL_INSTALLMENT", "12.5001", 24),
        "d": ("RAISING", "EQUAL_INSTALLMENT", "15.0000", 36),
        "e": ("FULL", "MONTHLY_INTEREST", "24.0000", 12),
        "f": ("RAISING", "EQUAL_PRINCIPAL", "36.0000", 60),
    }
    return {
        key: loans.add(
            LoanEntity(
                **loan_fields(
                    title=key,
                    status=status,
                    repayment_method=method,
                    annual_rate=Decimal(rate),
                    term_months=term,
                )
            )
        )
        for key, (status, method, rate, term) in spec.items()
    }


def _titles(result: tuple[list[LoanEntity], int]) -> tuple[str, int]:
    items, total = result
    return "".join(loan.title for loan in items), total


def test_search_without_filters_returns_all_newest_first(
    loans: LoanRepository, catalogue: dict[str, LoanEntity]
) -> None:
    items, total = loans.search()
    assert total == 6
    assert [loan.title for loan in items] == ["f", "e", "d", "c", "b", "a"]
    assert [loan.id for loan in items] == sorted((loan.id for loan in items), reverse=True)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "RAISING"}, "fdba"),
        ({"status": "SETTLED"}, ""),
        ({"repayment_method": "EQUAL_INSTALLMENT"}, "dca"),
        ({"min_rate": Decimal("12.5")}, "fedcb"),  # inclusive lower bound
        ({"min_rate": Decimal("12.5001")}, "fedc"),
        ({"max_rate": Decimal("12.5")}, "ba"),  # inclusive upper bound
        ({"min_rate": Decimal("12.5"), "max_rate": Decimal("24")}, "edcb"),
        ({"min_term": 12, "max_term": 36}, "edcb"),  # inclusive both ends
        ({"min_term": 13}, "fdc"),
        ({"max_term": 6}, "a"),
        (
            {
                "status": "RAISING",
                "repayment_method": "EQUAL_INSTALLMENT",
                "min_rate": Decimal("10"),
                "max_term": 36,
            },
            "d",
        ),
    ],
)
def test_search_filters_combine_with_and(
    loans: LoanRepository,
    catalogue: dict[str, LoanEntity],
    filters: dict[str, Any],
    expected: str,
) -> None:
    assert _titles(loans.search(**filters)) == (expected, len(expected))


def test_a_search_shape_is_built_once_and_each_search_has_its_own_values(
    loans: LoanRepository, catalogue: dict[str, LoanEntity]
) -> None:
    borrower = catalogue["c"].borrower_id
    searches = [
        ({"visible": ("FULL",)}, ("e", 1)),
        ({"visible": ("RAISING", "FULL")}, ("fedba", 5)),
        ({"visible": ("FULL",), "or_borrower": borrower}, ("fedcba", 6)),  # all one borrower's
        ({"visible": ("FULL",), "or_borrower": borrower + 1}, ("e", 1)),
        ({"visible": ("RAISING",), "min_rate": Decimal("12.5")}, ("fdb", 3)),
        ({"visible": ("RAISING",), "min_rate": Decimal("20")}, ("f", 1)),
    ]
    built = loan_module._statements.cache_info().currsize
    for filters, expected in searches * 2:
        assert _titles(loans.search(**filters)) == expected, filters
    # Three shapes among the six searches (run twice): three statements built at most.
    assert loan_module._statements.cache_info().currsize <= built + 3


def test_search_pages_are_stable_and_total_counts_all_matches(
    loans: LoanRepository, catalogue: dict[str, LoanEntity]
) -> None:
    pages = [_titles(loans.search(offset=offset, limit=4)) for offset in (0, 4, 8)]
    assert pages == [("fedc", 6), ("ba", 6), ("", 6)]

    filtered = [
        _titles(loans.search(status="RAISING", offset=offset, limit=3)) for offset in (0, 3)
    ]
    assert filtered == [("fdb", 4), ("a", 4)]


def test_search_refuses_bad_paging_and_inexact_rates(loans: LoanRepository) -> None:
    with pytest.raises(ValueError):
        loans.search(offset=-1)
    with pytest.raises(ValueError):
        loans.search(limit=0)
    with pytest.raises(StatementError) as caught:
        loans.search(min_rate=Decimal("12.00001"))
    assert isinstance(caught.value.orig, ValueError)
