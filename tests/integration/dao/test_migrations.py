"""Migrations build the schema the entities expect, and the database guards its invariants.

Checks use plain SQL and the database's own catalogue, not the repositories.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    String,
    UniqueConstraint,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from dao import migrate
from dao.p2p import LoanEntity
from dao.types import BYTE_EXACT_COLLATION, Identifier
from service.member.promotion import INVITE_ALPHABET, INVITE_LENGTH

MEMBER_SQL = text(
    "INSERT INTO member (id, mobile, password_hash, role, status, created_at, updated_at) "
    "VALUES (:id, :mobile, 'h', :role, :status, '2024-11-26 12:00:00', '2024-11-26 12:00:00')"
)
LOAN_COLUMNS = (
    "title, description, borrower_id, amount, annual_rate, term_months, repayment_method, "
    "min_invest, max_invest_per_investor, raise_days, status, published_by, "
    "created_at, updated_at"
)
LOAN_SQL = text(
    f"INSERT INTO loan ({LOAN_COLUMNS}) VALUES (:title, :description, :borrower_id, :amount, "
    ":annual_rate, :term_months, :repayment_method, :min_invest, :max_invest_per_investor, "
    ":raise_days, :status, :published_by, '2024-11-26 12:00:00', '2024-11-26 12:00:00')"
)
REQUEST_SQL = text(
    "INSERT INTO request_record (scope, request_no, operation, fingerprint, created_at) "
    "VALUES ('member:1', :no, 'recharge', 'f', '2026-12-10 12:00:00')"
)
#: Request numbers a case- and accent-blind, space-padding collation takes for one.
LOOK_ALIKES = ("order-abc", "ORDER-ABC", "ordér-abc", "order-abc ")
NOW = datetime(2024, 11, 26, 12, 0, 0, 250000, tzinfo=UTC)
GOOD_LOAN: dict[str, Any] = {
    "title": "t",
    "description": "d",
    "borrower_id": 1,
    "amount": 1_000_000,  # 10000.00 in fen
    "annual_rate": 125_000,  # 12.5%
    "term_months": 12,
    "repayment_method": "BULLET",
    "min_invest": 10_000,
    "max_invest_per_investor": None,
    "raise_days": 7,
    "status": "RAISING",
    "published_by": 1,
}


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_to_head_and_downgrade_to_base(empty_url: str, engine: Engine) -> None:
    assert migrate.current(empty_url) is None

    every_table = set(migrate.entity_metadata().tables)
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == migrate.head()
    assert _tables(engine) == every_table

    migrate.downgrade(empty_url, "base")
    assert migrate.current(empty_url) is None
    assert _tables(engine) == set()

    migrate.upgrade(empty_url)  # and back up again: downgrades leave nothing behind
    assert _tables(engine) == every_table


def test_each_revision_steps_up_and_down(empty_url: str, engine: Engine) -> None:
    migrate.upgrade(empty_url, "0001")
    assert migrate.current(empty_url) == "0001"
    assert _tables(engine) == {"member"}

    migrate.upgrade(empty_url, "0002")
    assert _tables(engine) == {"member", "loan"}

    migrate.downgrade(empty_url, "0001")
    assert migrate.current(empty_url) == "0001"
    assert _tables(engine) == {"member"}


def test_migrated_schema_matches_the_entities(empty_url: str, engine: Engine) -> None:
    migrate.upgrade(empty_url)

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), migrate.entity_metadata())
    assert diff == []


def test_constraint_names_follow_the_convention(empty_url: str, engine: Engine) -> None:
    """Every CHECK, UNIQUE, foreign key and index in the migrated database has the name the
    entities' naming convention gives it, so later migrations can refer to them."""
    migrate.upgrade(empty_url)
    inspector = inspect(engine)
    for table in migrate.entity_metadata().sorted_tables:
        expected_checks = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        expected_uniques = {c.name for c in table.constraints if isinstance(c, UniqueConstraint)}
        expected_fks = {c.name for c in table.foreign_key_constraints}
        expected_indexes = {ix.name: [c.name for c in ix.columns] for ix in table.indexes}
        name = table.name
        assert {c["name"] for c in inspector.get_check_constraints(name)} == expected_checks
        assert {c["name"] for c in inspector.get_unique_constraints(name)} == expected_uniques
        assert {fk["name"] for fk in inspector.get_foreign_keys(name)} == expected_fks
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(name)}
        for index, columns in expected_indexes.items():
            assert indexes[index] == columns
    loan_checks = {c["name"] for c in inspector.get_check_constraints("loan")}
    assert {"ck_loan_amount_positive", "ck_loan_status", "ck_loan_raised_range"} <= loan_checks


@pytest.fixture
def migrated(empty_url: str, engine: Engine) -> Engine:
    """The empty database at head, with member 1 present."""
    migrate.upgrade(empty_url)
    with engine.begin() as conn:
        conn.execute(
            MEMBER_SQL, {"id": 1, "mobile": "13900000001", "role": "BORROWER", "status": "ACTIVE"}
        )
    return engine


def _loan_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM loan")).scalar_one()


def test_a_valid_loan_row_is_accepted(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(LOAN_SQL, GOOD_LOAN)
        conn.execute(
            LOAN_SQL,
            {
                **GOOD_LOAN,
                "max_invest_per_investor": 1_000_000,
                "annual_rate": 360_000,
                "term_months": 60,
                "raise_days": 365,
            },
        )
        conn.execute(
            LOAN_SQL,
            {
                **GOOD_LOAN,
                "max_invest_per_investor": 10_000,
                "min_invest": 10_000,
                "annual_rate": 1,
                "term_months": 1,
                "raise_days": 1,
            },
        )
    assert _loan_count(migrated) == 3
    with migrated.connect() as conn:
        version = conn.execute(text("SELECT min(version) FROM loan")).scalar_one()
    assert version == 1


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        # min_invest must be > 0 and <= amount, so a row with amount <= 0 breaks that CHECK too
        # (and raised <= amount for one below 0), and which one an engine names first depends
        # on the table's CHECK order.
        ({"amount": 0}, "ck_loan_amount_positive|ck_loan_min_invest_range"),
        (
            {"amount": -100},
            "ck_loan_amount_positive|ck_loan_min_invest_range|ck_loan_raised_range",
        ),
        ({"annual_rate": 360_001}, "ck_loan_annual_rate_range"),
        ({"annual_rate": 0}, "ck_loan_annual_rate_range"),
        ({"term_months": 0}, "ck_loan_term_months_range"),
        ({"term_months": 61}, "ck_loan_term_months_range"),
        ({"repayment_method": "WHENEVER"}, "ck_loan_repayment_method"),
        ({"min_invest": 0}, "ck_loan_min_invest_range"),
        ({"min_invest": 1_000_001}, "ck_loan_min_invest_range"),
        ({"max_invest_per_investor": 9_999}, "ck_loan_max_invest_range"),
        ({"max_invest_per_investor": 1_000_001}, "ck_loan_max_invest_range"),
        ({"raise_days": 0}, "ck_loan_raise_days_range"),
        ({"raise_days": 366}, "ck_loan_raise_days_range"),
        ({"status": "BOGUS"}, "ck_loan_status"),
    ],
)
def test_loan_checks_refuse_bad_rows(
    migrated: Engine, change: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(DBAPIError) as caught, migrated.begin() as conn:
        conn.execute(LOAN_SQL, {**GOOD_LOAN, **change})
    assert any(name in str(caught.value.orig) for name in constraint.split("|"))
    assert _loan_count(migrated) == 0


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"role": "ADMIN"}, "ck_member_role"),
        ({"status": "GONE"}, "ck_member_status"),
        ({"mobile": "13900000001"}, "uq_member_mobile"),
    ],
)
def test_member_constraints_refuse_bad_rows(
    migrated: Engine, change: dict[str, Any], constraint: str
) -> None:
    row = {"id": 2, "mobile": "13900000002", "role": "INVESTOR", "status": "ACTIVE", **change}
    with pytest.raises(DBAPIError) as caught, migrated.begin() as conn:
        conn.execute(MEMBER_SQL, row)
    message = str(caught.value.orig)
    # SQLite names the columns of a failed UNIQUE constraint, not the constraint.
    assert constraint in message or "UNIQUE constraint failed: member.mobile" in message


def test_money_and_rate_are_stored_as_exact_integers(migrated: Engine) -> None:
    loan = LoanEntity(
        title="t",
        description="d",
        borrower_id=1,
        amount=Decimal("50000000.00"),
        annual_rate=Decimal("12.3456"),
        term_months=12,
        repayment_method="EQUAL_PRINCIPAL",
        min_invest=Decimal("0.01"),
        max_invest_per_investor=Decimal("10000.01"),
        raise_days=7,
        status="PENDING_AUDIT",
        published_by=1,
        created_at=NOW,
        updated_at=NOW,
    )
    with Session(migrated) as session, session.begin():
        session.add(loan)

    with migrated.connect() as conn:
        row = conn.execute(
            text(
                "SELECT amount, annual_rate, min_invest, max_invest_per_investor, created_at "
                "FROM loan"
            )
        ).one()
    assert tuple(row[:4]) == (5_000_000_000, 123_456, 1, 1_000_001)
    assert all(type(value) is int for value in row[:4])
    assert str(row.created_at).startswith("2024-11-26 12:00:00.25")  # naive UTC


def test_ledger_revision_seeds_platform_accounts_and_opens_members_accounts(
    empty_url: str, engine: Engine
) -> None:
    migrate.upgrade(empty_url, "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO member (mobile, password_hash, role, status, created_at, updated_at) "
                "VALUES ('13800000001', 'x', 'INVESTOR', 'ACTIVE', '2026-01-01', '2026-01-01')"
            )
        )
    migrate.upgrade(empty_url, "0003")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT member_id, code, normal_side, available, frozen FROM account ORDER BY id")
        ).all()
    assert sorted((r.code, r.normal_side) for r in rows if r.code) == [
        ("CLEARING", "D"),
        ("FEE_INCOME", "C"),
        ("MARKETING_EXPENSE", "D"),
    ]
    members = [r for r in rows if r.member_id is not None]
    assert [(r.normal_side, r.available, r.frozen) for r in members] == [("C", 0, 0)]

    migrate.downgrade(empty_url, "0002")
    assert _tables(engine) == {"member", "loan"}


def test_members_registered_before_0007_get_distinct_invite_codes(
    empty_url: str, engine: Engine
) -> None:
    """The column is UNIQUE and registration draws from the same alphabet, so the backfilled
    codes must be distinct and of the form new members get; operators invite nobody and get
    none, as new operators do."""
    migrate.upgrade(empty_url, "0006")
    roles = ("INVESTOR", "BORROWER", "OPERATOR")
    with engine.begin() as conn:
        for n in range(1, 31):
            row = {"id": n, "mobile": f"1390000{n:04d}", "role": roles[n % 3], "status": "ACTIVE"}
            conn.execute(MEMBER_SQL, row)
    migrate.upgrade(empty_url, "0007")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT role, invite_code FROM member ORDER BY id")).all()
    assert all(code is None for role, code in rows if role == "OPERATOR")
    codes = [code for role, code in rows if role != "OPERATOR"]
    assert len(codes) == len(set(codes)) == 20
    form = re.compile(f"[{INVITE_ALPHABET}]{{{INVITE_LENGTH}}}")
    assert all(form.fullmatch(code) for code in codes), codes


def _collations(engine: Engine) -> set[str]:
    """MariaDB: the collations of the entities' tables and of their character columns."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT COLLATION_NAME FROM information_schema.COLUMNS"
                    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'alembic_version'"
                    " AND COLLATION_NAME IS NOT NULL"
                    " UNION SELECT TABLE_COLLATION FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'alembic_version'"
                )
            ).scalars()
        )


def _request_numbers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT request_no FROM request_record")).scalars())


def test_0008_makes_identifiers_byte_exact_and_its_downgrade_undoes_it(
    empty_url: str, engine: Engine
) -> None:
    """Rows written before 0008 keep their values; after it, look-alike request numbers are
    distinct keys. Going back refuses, changing nothing, while such keys exist (the old
    collation could not hold them), and restores the old collation once they are gone."""
    on_mariadb = engine.dialect.name == "mysql"
    migrate.upgrade(empty_url, "0007")
    with engine.begin() as conn:
        conn.execute(REQUEST_SQL, {"no": "ordér-abc"})
    if on_mariadb:
        assert _collations(engine) == {"utf8mb4_unicode_ci"}
        with (
            pytest.raises(DBAPIError, match="uq_request_record_scope_request_no"),
            engine.begin() as conn,
        ):
            conn.execute(REQUEST_SQL, {"no": "ORDER-ABC "})

    migrate.upgrade(empty_url, "0008")
    with engine.begin() as conn:
        for no in LOOK_ALIKES:
            if no != "ordér-abc":
                conn.execute(REQUEST_SQL, {"no": no})
    assert _request_numbers(engine) == sorted(LOOK_ALIKES)
    if on_mariadb:
        assert _collations(engine) == {BYTE_EXACT_COLLATION}
        with pytest.raises(RuntimeError, match=r"request_record\.scope/request_no"):
            migrate.downgrade(empty_url, "0007")
        assert migrate.current(empty_url) == "0008"
        assert _collations(engine) == {BYTE_EXACT_COLLATION}
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM request_record WHERE request_no <> 'ordér-abc'"))

    migrate.downgrade(empty_url, "0007")
    assert migrate.current(empty_url) == "0007"
    assert "ordér-abc" in _request_numbers(engine)
    if on_mariadb:
        assert _collations(engine) == {"utf8mb4_unicode_ci"}
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == migrate.head()


def test_every_character_column_compares_byte_exactly(migrated: Engine) -> None:
    """The schema as migrated, read from the database's own catalogue: every character column
    (identifiers and human text alike) and every table's default for columns added later is
    byte-exact, so no column, old or new, compares case-, accent- or space-blind. That covers
    every unique or indexed string column and every Identifier, checked to be among them."""
    metadata = migrate.entity_metadata()
    must = set()
    for table in metadata.sorted_tables:
        keyed = [c for u in table.constraints if isinstance(u, UniqueConstraint) for c in u.columns]
        keyed += [c for index in table.indexes for c in index.columns]
        must |= {(table.name, c.name) for c in keyed if isinstance(c.type, (String, Identifier))}
        must |= {(table.name, c.name) for c in table.columns if isinstance(c.type, Identifier)}
    if migrated.dialect.name == "sqlite":
        # SQLite's default collation, BINARY, compares bytes: no column may name another.
        with migrated.connect() as conn:
            ddl = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
            assert not [name for name, sql in ddl if "COLLATE" in sql.upper()]
        return
    with migrated.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'alembic_version'"
                " AND COLLATION_NAME IS NOT NULL"
            )
        ).all()
        tables = conn.execute(
            text(
                "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'alembic_version'"
            )
        ).all()
    collation = {(t, c): name for t, c, name in columns}
    assert must <= set(collation)
    assert {key for key, name in collation.items() if name != BYTE_EXACT_COLLATION} == set()
    assert {t for t, name in tables if name != BYTE_EXACT_COLLATION} == set()
    assert {t for t, _ in tables} == set(metadata.tables)


BANK_ORDER_SQL = text(
    "INSERT INTO bank_order (order_no, order_type, ref_type, ref_id, member_id, amount, status,"
    " send_count, query_count, created_at, updated_at, finished_at) VALUES (:order_no,"
    " :order_type, 'PAYMENT_ORDER', 1, 1, :amount, :status, 0, 0, '2026-12-03 10:00:00',"
    " '2026-12-03 10:00:00', :finished_at)"
)
GOOD_BANK_ORDER: dict[str, Any] = {
    "order_no": "R20261203ABC",
    "order_type": "RECHARGE",
    "amount": 100_000,
    "status": "CREATED",
    "finished_at": None,
}


def _bank_order_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM bank_order")).scalar_one()


def test_a_valid_bank_order_row_is_accepted(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(BANK_ORDER_SQL, GOOD_BANK_ORDER)
        conn.execute(
            BANK_ORDER_SQL,
            {
                **GOOD_BANK_ORDER,
                "order_no": "A1",
                "order_type": "OPEN_ACCOUNT",
                "amount": None,
                "status": "SUCCEEDED",
                "finished_at": "2026-12-03 10:01:00",
            },
        )
    assert _bank_order_count(migrated) == 2


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"status": "DONE"}, "ck_bank_order_status"),
        ({"order_type": "LOAN"}, "ck_bank_order_order_type"),
        ({"amount": 0}, "ck_bank_order_amount_positive"),
        # A final order says when it finished; an open one does not.
        ({"status": "FAILED"}, "ck_bank_order_finished"),
        ({"finished_at": "2026-12-03 10:01:00"}, "ck_bank_order_finished"),
    ],
)
def test_bank_order_checks_refuse_bad_rows(
    migrated: Engine, change: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(DBAPIError) as caught, migrated.begin() as conn:
        conn.execute(BANK_ORDER_SQL, {**GOOD_BANK_ORDER, **change})
    assert constraint in str(caught.value.orig)
    assert _bank_order_count(migrated) == 0


def test_an_order_number_and_a_notification_id_are_taken_once_and_evidence_written_once(
    migrated: Engine,
) -> None:
    with migrated.begin() as conn:
        conn.execute(BANK_ORDER_SQL, GOOD_BANK_ORDER)
    with pytest.raises(DBAPIError), migrated.begin() as conn:
        conn.execute(BANK_ORDER_SQL, GOOD_BANK_ORDER)

    evidence = text(
        "INSERT INTO bank_evidence (order_id, kind, attempt_key, body, occurred_at, recorded_at)"
        " VALUES (1, :kind, '1', '{}', '2026-12-03 10:00:00', '2026-12-03 10:00:00')"
    )
    with migrated.begin() as conn:
        conn.execute(evidence, {"kind": "REQUEST"})
        conn.execute(evidence, {"kind": "RESPONSE"})
    with pytest.raises(DBAPIError), migrated.begin() as conn:
        conn.execute(evidence, {"kind": "REQUEST"})
    with pytest.raises(DBAPIError) as caught, migrated.begin() as conn:
        conn.execute(evidence, {"kind": "GOSSIP"})
    assert "ck_bank_evidence_kind" in str(caught.value.orig)

    notification = text(
        "INSERT INTO bank_notification (notify_id, order_id, status, amount, digest, outcome,"
        " received_at) VALUES ('N1', 1, 'SUCCEEDED', 100000, 'd', :outcome,"
        " '2026-12-03 10:00:00')"
    )
    with migrated.begin() as conn:
        conn.execute(notification, {"outcome": "APPLIED"})
    with pytest.raises(DBAPIError), migrated.begin() as conn:
        conn.execute(notification, {"outcome": "APPLIED"})
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bank_evidence")).scalar_one() == 2
        assert conn.execute(text("SELECT count(*) FROM bank_notification")).scalar_one() == 1


def test_bank_orders_revision_admits_reversals_and_payment_messages_and_goes_back(
    empty_url: str, engine: Engine
) -> None:
    """0010 lets a withdrawal be REVERSED and a message be about a PAYMENT; going back, a
    reversed withdrawal (its money came back) is one that failed, a payment message a system
    one, so the older schema's checks still hold."""
    migrate.upgrade(empty_url, "0010")
    order = text(
        "INSERT INTO payment_order (order_no, member_id, type, amount, status, request_no,"
        " created_at, updated_at) VALUES (:no, 1, 'WITHDRAW', 100, 'REVERSED', :no,"
        " '2026-12-03 10:00:00', '2026-12-03 10:00:00')"
    )
    message = text(
        "INSERT INTO member_message (member_id, category, title, body, created_at)"
        " VALUES (1, 'PAYMENT', 't', 'b', '2026-12-03 10:00:00')"
    )
    with engine.begin() as conn:
        conn.execute(
            MEMBER_SQL, {"id": 1, "mobile": "13900000001", "role": "INVESTOR", "status": "ACTIVE"}
        )
        conn.execute(order, {"no": "W1"})
        conn.execute(message)

    migrate.downgrade(empty_url, "0007")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM payment_order")).scalar_one() == "FAILED"
        assert conn.execute(text("SELECT category FROM member_message")).scalar_one() == "SYSTEM"
    assert not {"bank_order", "bank_evidence", "bank_notification"} & _tables(engine)
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(order, {"no": "W2"})  # REVERSED is refused again
    assert "ck_payment_order_status" in str(caught.value.orig)


def test_bank_fees_revision_posts_the_fees_already_taken_and_goes_back(
    empty_url: str, engine: Engine
) -> None:
    """0014 opens BANK_FEES and posts the fee of every order that succeeded before it (a
    REVERSED one succeeded first; a FAILED one's fee was released); going back removes the
    postings and gives CLEARING its money back."""
    migrate.upgrade(empty_url, "0010")
    with engine.begin() as conn:
        conn.execute(
            MEMBER_SQL, {"id": 1, "mobile": "13900000001", "role": "INVESTOR", "status": "ACTIVE"}
        )
        conn.execute(text("UPDATE account SET available = 10000 WHERE code = 'CLEARING'"))
        for no, status, fee in (
            ("R1", "SUCCEEDED", 150),
            ("R2", "REVERSED", 200),
            ("R3", "FAILED", 300),
            ("R4", "SUCCEEDED", 0),
        ):
            conn.execute(
                BANK_ORDER_SQL,
                {
                    **GOOD_BANK_ORDER,
                    "order_no": no,
                    "status": status,
                    "finished_at": "2026-12-03 10:01:00",
                },
            )
            conn.execute(
                text("UPDATE bank_order SET fee = :fee WHERE order_no = :no"),
                {"fee": fee, "no": no},
            )

    def platform() -> dict[str, tuple[str, int]]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT code, normal_side, available FROM account WHERE code IS NOT NULL")
            ).all()
        return {code: (side, available) for code, side, available in rows}

    migrate.upgrade(empty_url, "0014")
    accounts = platform()
    assert (accounts["BANK_FEES"], accounts["CLEARING"]) == (("D", 350), ("D", 9650))
    with engine.connect() as conn:
        postings = conn.execute(
            text(
                "SELECT b.order_no, e.direction, e.amount FROM posting p"
                " JOIN bank_order b ON b.id = p.ref_id JOIN posting_entry e ON e.posting_id = p.id"
                " WHERE p.business_type = 'BANK_FEE' AND p.ref_type = 'BANK_ORDER'"
                " ORDER BY e.id"
            )
        ).all()
    assert [tuple(p) for p in postings] == [
        ("R1", "D", 150),
        ("R1", "C", 150),
        ("R2", "D", 200),
        ("R2", "C", 200),
    ]

    migrate.downgrade(empty_url, "0010")
    assert "BANK_FEES" not in platform()
    assert platform()["CLEARING"] == ("D", 10000)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM posting")).scalar_one() == 0


@pytest.mark.parametrize(
    ("balances", "moved", "after"),
    [
        # FEE_INCOME 5.00, BANK_FEES 1.50, MARKETING_EXPENSE 0.50: the platform's 3.00 leaves
        # CLEARING for PLATFORM_FUNDS.
        (
            {"FEE_INCOME": 500, "BANK_FEES": 150, "MARKETING_EXPENSE": 50},
            [
                ("PLATFORM_SHARE", "PLATFORM_FUNDS", "D", 300),
                ("PLATFORM_SHARE", "CLEARING", "C", 300),
            ],
            {"CLEARING": 9700, "PLATFORM_FUNDS": 300, "OWNER_FUNDING": 0},
        ),
        # The bank's fees outran the income by 1.00: the owners' funding they were paid from.
        (
            {"FEE_INCOME": 100, "BANK_FEES": 200, "MARKETING_EXPENSE": 0},
            [("OWNER_FUNDING", "CLEARING", "D", 100), ("OWNER_FUNDING", "OWNER_FUNDING", "C", 100)],
            {"CLEARING": 10100, "PLATFORM_FUNDS": 0, "OWNER_FUNDING": 100},
        ),
        ({"FEE_INCOME": 200, "BANK_FEES": 200, "MARKETING_EXPENSE": 0}, [], {"CLEARING": 10000}),
    ],
    ids=["share", "owners-funding", "nothing"],
)
def test_platform_funds_revision_moves_the_platforms_share_out_of_clearing_and_goes_back(
    empty_url: str,
    engine: Engine,
    balances: dict[str, int],
    moved: list[tuple[str, str, str, int]],
    after: dict[str, int],
) -> None:
    """0016 opens PLATFORM_FUNDS, OWNER_FUNDING and COMPENSATION_EXPENSE, and leaves CLEARING
    the members' money: the platform's share (FEE_INCOME - BANK_FEES - MARKETING_EXPENSE) goes
    to PLATFORM_FUNDS, or, below zero, is recognised as the owners' funding the fees were paid
    from. Going back restores CLEARING and drops the accounts."""
    migrate.upgrade(empty_url, "0015")
    with engine.begin() as conn:
        conn.execute(text("UPDATE account SET available = 10000 WHERE code = 'CLEARING'"))
        for code, fen in balances.items():
            conn.execute(
                text("UPDATE account SET available = :fen WHERE code = :code"),
                {"fen": fen, "code": code},
            )

    def platform() -> dict[str, tuple[str, int]]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT code, normal_side, available FROM account WHERE code IS NOT NULL")
            ).all()
        return {code: (side, available) for code, side, available in rows}

    def share_postings() -> list[tuple]:
        with engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    text(
                        "SELECT p.business_type, a.code, e.direction, e.amount FROM posting p"
                        " JOIN posting_entry e ON e.posting_id = p.id"
                        " JOIN account a ON a.id = e.account_id ORDER BY e.id"
                    )
                )
            ]

    migrate.upgrade(empty_url, "0016")
    accounts = platform()
    assert {code: accounts[code][0] for code in accounts} == {
        "CLEARING": "D",
        "FEE_INCOME": "C",
        "MARKETING_EXPENSE": "D",
        "BANK_FEES": "D",
        "PLATFORM_FUNDS": "D",
        "OWNER_FUNDING": "C",
        "COMPENSATION_EXPENSE": "D",
    }
    assert {code: accounts[code][1] for code in after} == after
    assert share_postings() == moved

    migrate.downgrade(empty_url, "0015")
    assert set(platform()) == {"CLEARING", "FEE_INCOME", "MARKETING_EXPENSE", "BANK_FEES"}
    assert platform()["CLEARING"] == ("D", 10000)
    assert share_postings() == []


def test_platform_funds_revision_is_not_undone_once_the_platforms_account_was_used(
    empty_url: str, engine: Engine
) -> None:
    migrate.upgrade(empty_url, "0016")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO posting (business_type, ref_type, ref_id, created_at)"
                " VALUES ('PLATFORM_FUND', 'platform_transfer', 1, '2026-12-10 10:00:00')"
            )
        )
        for code, direction in (("PLATFORM_FUNDS", "D"), ("OWNER_FUNDING", "C")):
            conn.execute(
                text(
                    "INSERT INTO posting_entry (posting_id, account_id, bucket, direction, amount)"
                    " SELECT p.id, a.id, 'AVAILABLE', :direction, 5000 FROM posting p, account a"
                    " WHERE a.code = :code"
                ),
                {"code": code, "direction": direction},
            )
    with pytest.raises(RuntimeError, match="0016 cannot be undone"):
        migrate.downgrade(empty_url, "0015")
    assert migrate.current(empty_url) == "0016"


TRANSFER_SQL = text(
    "INSERT INTO platform_transfer (order_no, kind, member_id, amount, purpose, status,"
    " request_scope, request_no, created_at, updated_at, finished_at) VALUES (:order_no, :kind,"
    " :member_id, :amount, :purpose, :status, 'member:9', :order_no, '2026-12-10 10:00:00',"
    " '2026-12-10 10:00:00', :finished_at)"
)
GOOD_TRANSFER: dict[str, Any] = {
    "order_no": "T1",
    "kind": "TRANSFER",
    "member_id": 1,
    "amount": 888,
    "purpose": "MARKETING",
    "status": "PENDING",
    "finished_at": None,
}


def test_a_platform_transfer_and_a_fund_without_a_member_are_accepted(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(TRANSFER_SQL, GOOD_TRANSFER)
        fund = {**GOOD_TRANSFER, "order_no": "F1", "kind": "FUND", "member_id": None}
        conn.execute(TRANSFER_SQL, {**fund, "purpose": None})
        # A FUND's bank order serves no member.
        conn.execute(BANK_ORDER_SQL, {**GOOD_BANK_ORDER, "order_no": "F1", "order_type": "FUND"})
        conn.execute(text("UPDATE bank_order SET member_id = NULL WHERE order_no = 'F1'"))
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM platform_transfer")).scalar_one() == 2


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"kind": "GIFT"}, "ck_platform_transfer_kind"),
        ({"status": "DONE"}, "ck_platform_transfer_status"),
        ({"purpose": "GIFT"}, "ck_platform_transfer_purpose"),
        ({"amount": 0}, "ck_platform_transfer_amount_positive"),
        # A transfer names its payee and purpose, a FUND neither.
        ({"purpose": None}, "ck_platform_transfer_payee"),
        ({"kind": "FUND"}, "ck_platform_transfer_payee"),
        ({"status": "SUCCESS"}, "ck_platform_transfer_finished"),
        ({"finished_at": "2026-12-10 10:01:00"}, "ck_platform_transfer_finished"),
    ],
)
def test_platform_transfer_checks_refuse_bad_rows(
    migrated: Engine, change: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(DBAPIError) as caught, migrated.begin() as conn:
        conn.execute(TRANSFER_SQL, {**GOOD_TRANSFER, **change})
    assert constraint in str(caught.value.orig)


ITEM_SQL = text(
    "INSERT INTO bank_order (order_no, order_type, ref_type, ref_id, member_id, amount, status,"
    " send_count, query_count, created_at, updated_at, batch_no, payee_account_no, principal,"
    " interest, penalty, service_fee) VALUES (:order_no, 'REPAY', 'receipt', 1, 1, :amount,"
    " 'CREATED', 0, 0, '2026-12-03 10:00:00', '2026-12-03 10:00:00', 'B1', 'SA1', :principal,"
    " :interest, 0, :service_fee)"
)
GOOD_ITEM: dict[str, Any] = {
    "order_no": "P1",
    "amount": 10_050,
    "principal": 10_000,
    "interest": 50,
    "service_fee": 0,
}


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 10_000},  # not principal + interest + penalty
        {"principal": -1, "interest": 10_051},
        {"service_fee": 10_051},  # more than the amount
    ],
)
def test_a_batch_items_amounts_must_add_up(migrated: Engine, change: dict[str, Any]) -> None:
    with migrated.begin() as conn:
        conn.execute(ITEM_SQL, GOOD_ITEM)
    with pytest.raises(DBAPIError) as caught, migrated.begin() as conn:
        conn.execute(ITEM_SQL, {**GOOD_ITEM, "order_no": "P2", **change})
    assert "ck_bank_order_item_amounts" in str(caught.value.orig)
    assert _bank_order_count(migrated) == 1


def test_bank_batches_revision_admits_batches_and_goes_back_only_unused(
    empty_url: str, engine: Engine
) -> None:
    """0013 admits REPAY items, PAYING installments and DISBURSING listings; going back is
    refused once batches were used (money moved at the bank cannot be written back into the
    older schema), and leaves the older schema's checks in force when they were not."""
    migrate.upgrade(empty_url, "0013")
    loan = {**GOOD_LOAN, "status": "DISBURSING"}
    batch = text(
        "INSERT INTO bank_batch (batch_no, order_type, loan_id, ref_type, ref_id, status,"
        " send_count, created_at, updated_at) VALUES ('B1', 'REPAY', 1, 'installment', 1,"
        " 'CREATED', 0, '2026-12-03 10:00:00', '2026-12-03 10:00:00')"
    )
    with engine.begin() as conn:
        conn.execute(
            MEMBER_SQL, {"id": 1, "mobile": "13900000001", "role": "BORROWER", "status": "ACTIVE"}
        )
        conn.execute(LOAN_SQL, loan)
        conn.execute(batch)
        conn.execute(ITEM_SQL, GOOD_ITEM)
    with pytest.raises(RuntimeError, match="batch orders have been used"):
        migrate.downgrade(empty_url, "0010")
    assert migrate.current(empty_url) == "0013"

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM bank_order"))
        conn.execute(text("DELETE FROM bank_batch"))
        conn.execute(text("UPDATE loan SET status = 'FULL'"))
    migrate.downgrade(empty_url, "0010")
    assert "bank_batch" not in _tables(engine)
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(LOAN_SQL, loan)  # DISBURSING is refused again
    assert "ck_loan_status" in str(caught.value.orig)
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(BANK_ORDER_SQL, {**GOOD_BANK_ORDER, "order_type": "REPAY"})
    assert "ck_bank_order_order_type" in str(caught.value.orig)


def test_investing_at_the_bank_revision_admits_its_statuses_and_goes_back_only_without_them(
    empty_url: str, engine: Engine
) -> None:
    """0012 lets an investment be PENDING, RELEASING or FAILED with its FREEZE's number, and
    a bank order be a FREEZE or an UNFREEZE; going back is refused, changing nothing, while
    such an order exists, and once none does the older checks hold again."""
    migrate.upgrade(empty_url)
    investment = text(
        "INSERT INTO investment (loan_id, investor_id, amount, status, request_no, order_no,"
        " failure_reason, created_at, updated_at) VALUES (1, 1, 100, :status, :no, :no, NULL,"
        " '2026-12-03 10:00:00', '2026-12-03 10:00:00')"
    )
    with engine.begin() as conn:
        conn.execute(
            MEMBER_SQL, {"id": 1, "mobile": "13900000001", "role": "BORROWER", "status": "ACTIVE"}
        )
        conn.execute(LOAN_SQL, {**GOOD_LOAN, "borrower_id": 1})
        for i, status in enumerate(("PENDING", "RELEASING", "FAILED")):
            conn.execute(investment, {"status": status, "no": f"I{i}"})
        conn.execute(BANK_ORDER_SQL, {**GOOD_BANK_ORDER, "order_type": "FREEZE"})
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(investment, {"status": "PENDING", "no": "I0"})  # one order number, once

    migrate.downgrade(empty_url, "0012")  # the batches' revision, never used here
    with pytest.raises(RuntimeError, match="FREEZE and UNFREEZE"):
        migrate.downgrade(empty_url, "0010")
    assert migrate.current(empty_url) == "0012"

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM bank_order"))
        conn.execute(text("DELETE FROM investment"))
    migrate.downgrade(empty_url, "0010")
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(BANK_ORDER_SQL, {**GOOD_BANK_ORDER, "order_type": "UNFREEZE"})
    assert "ck_bank_order_order_type" in str(caught.value.orig)
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("investment")}
    assert not {"order_no", "failure_reason"} & columns


def test_reissues_revision_records_one_reissue_an_order_and_goes_back_only_unused(
    empty_url: str, migrated: Engine
) -> None:
    """0015 records an operator's re-issue of a FAILED order: one a FAILED order, one a new
    order, one an operator's request number; going back is refused, changing nothing, while
    a re-issue is recorded (who re-issued what and why would be lost)."""
    reissue = text(
        "INSERT INTO bank_order_reissue (order_id, new_order_id, reason, reissued_by,"
        " reissued_at, request_scope, request_no) VALUES (:old, :new, 'checked', 1,"
        " '2026-12-03 10:00:00', 'operator:1', :no)"
    )
    with migrated.begin() as conn:
        for n in range(3):
            conn.execute(BANK_ORDER_SQL, {**GOOD_BANK_ORDER, "order_no": f"U{n}"})
        ids = conn.execute(text("SELECT id FROM bank_order ORDER BY id")).scalars().all()
        conn.execute(reissue, {"old": ids[0], "new": ids[1], "no": "r1"})
    for again in (
        {"old": ids[0], "new": ids[2], "no": "r2"},  # the same order re-issued twice
        {"old": ids[1], "new": ids[1], "no": "r3"},  # one new order for two re-issues
        {"old": ids[1], "new": ids[2], "no": "r1"},  # the same request number
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(reissue, again)

    migrate.downgrade(empty_url, "0015")  # the later revisions, unused here
    with pytest.raises(RuntimeError, match="operators' re-issues are recorded"):
        migrate.downgrade(empty_url, "0014")
    assert migrate.current(empty_url) == "0015"
    with migrated.begin() as conn:
        conn.execute(text("DELETE FROM bank_order_reissue"))
    migrate.downgrade(empty_url, "0014")
    assert "bank_order_reissue" not in _tables(migrated)


def test_partner_apps_revision_holds_each_key_s_material_and_goes_back_only_unused(
    empty_url: str, migrated: Engine
) -> None:
    """0017 keeps partner apps, keys and their trail: one app a name and an app id, one key
    an (app, key id), an RSA key with its public key and no sealed secret, an HMAC key the
    other way round, a revoked key with who and when; going back is refused while an app is
    registered (its keys and trail would be lost)."""
    app = text(
        "INSERT INTO partner_app (app_id, name, contact, scopes, rate_per_minute, burst, status,"
        " created_by, created_at, updated_at) VALUES (:app_id, :name, 'c', 'LISTING_READ',"
        " :rate, 1, :status, 1, '2026-12-13 10:00:00', '2026-12-13 10:00:00')"
    )
    key = text(
        "INSERT INTO partner_key (app_id, key_id, algorithm, public_key, secret_sealed, status,"
        " created_by, created_at, revoked_by, revoked_at) VALUES (:app, :key_id, :algorithm,"
        " :public_key, :sealed, :status, 1, '2026-12-13 10:00:00', :by, :at)"
    )
    good_app = {"app_id": "pa1", "name": "a", "rate": 60, "status": "ACTIVE"}
    good_key = {
        "key_id": "k1",
        "algorithm": "HMAC_SHA256",
        "public_key": None,
        "sealed": "v1.x",
        "status": "ACTIVE",
        "by": None,
        "at": None,
    }
    with migrated.begin() as conn:
        conn.execute(app, good_app)
        app_pk = conn.execute(text("SELECT id FROM partner_app")).scalar_one()
        conn.execute(key, {**good_key, "app": app_pk})
        conn.execute(
            text(
                "INSERT INTO partner_app_event (app_id, action, operator_id, at)"
                " VALUES (:app, 'REGISTER', 1, '2026-12-13 10:00:00')"
            ),
            {"app": app_pk},
        )
    for bad_app in (
        {**good_app, "name": "b"},  # the same app id
        {**good_app, "app_id": "pa2"},  # the same name
        {**good_app, "app_id": "pa2", "name": "b", "rate": 0},
        {**good_app, "app_id": "pa2", "name": "b", "status": "GONE"},
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(app, bad_app)
    for bad_key in (
        {"key_id": "k1"},  # the same key id
        {"key_id": "k2", "algorithm": "RSA_SHA256"},  # an RSA key with a sealed secret
        {"key_id": "k2", "public_key": "pem"},  # an HMAC key with a public key
        {"key_id": "k2", "status": "REVOKED"},  # revoked by nobody
        {"key_id": "k2", "by": 1, "at": "2026-12-13 11:00:00"},  # active, yet revoked
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(key, {**good_key, "app": app_pk, **bad_key})

    migrate.downgrade(empty_url, "0017")  # the later revisions, unused here
    with pytest.raises(RuntimeError, match="partner apps are registered"):
        migrate.downgrade(empty_url, "0016")
    assert migrate.current(empty_url) == "0017"
    with migrated.begin() as conn:
        for table in ("partner_app_event", "partner_key", "partner_app"):
            conn.execute(text(f"DELETE FROM {table}"))
    migrate.downgrade(empty_url, "0016")
    assert not {"partner_app", "partner_key", "partner_app_event"} & _tables(migrated)


def test_development_clock_revision_seeds_one_unmoved_row_and_goes_back(
    empty_url: str, migrated: Engine
) -> None:
    """0018 keeps the development clock's one row, not moved (offset 0); a second row is
    refused (its id is the key); going back drops the table."""
    with migrated.connect() as conn:
        rows = conn.execute(text("SELECT id, offset_us FROM platform_clock")).all()
    assert [tuple(r) for r in rows] == [(1, 0)]
    with pytest.raises(DBAPIError), migrated.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO platform_clock (id, offset_us, changed_at)"
                " VALUES (1, 5, '2026-12-03 10:00:00')"
            )
        )
    migrate.downgrade(empty_url, "0017")
    assert "platform_clock" not in _tables(migrated)
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == migrate.head()


def test_partner_operations_revision_attributes_a_member_once_and_goes_back_only_unused(
    empty_url: str, migrated: Engine
) -> None:
    """0022: a member is attributed to one partner app at most; an Idempotency-Key is one
    request per app; a callback has a known status and event type, an attempt number is one
    per callback; the trail takes SET_CALLBACKS; going back is refused once a member was
    attributed, a callback written or a subscription audited."""
    at = "'2026-12-03 10:00:00'"
    with migrated.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO member (mobile, password_hash, role, status, created_at, updated_at)"
                f" VALUES ('13900009999', 'h', 'INVESTOR', 'ACTIVE', {at}, {at})"
            )
        )
        member = conn.execute(
            text("SELECT id FROM member WHERE mobile = '13900009999'")
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO partner_app (app_id, name, contact, scopes, rate_per_minute, burst,"
                f" status, created_by, created_at, updated_at) VALUES ('pa1', 'a', 'c', 'X', 1, 1,"
                f" 'ACTIVE', :m, {at}, {at})"
            ),
            {"m": member},
        )
        app = conn.execute(text("SELECT id FROM partner_app")).scalar_one()
        assert conn.execute(text("SELECT callback_events FROM partner_app")).scalar_one() == ""
        attribute = text(
            f"INSERT INTO partner_member (app_id, member_id, created_at) VALUES (:a, :m, {at})"
        )
        conn.execute(attribute, {"a": app, "m": member})
        idem = text(
            "INSERT INTO partner_request (app_id, idempotency_key, operation, request_sha256,"
            f" answer, created_at) VALUES (:a, 'k1', 'op', 'h', '{{}}', {at})"
        )
        conn.execute(idem, {"a": app})
    callback = text(
        "INSERT INTO partner_callback (event_id, app_id, event_type, body, status, attempts,"
        f" created_at) VALUES ('e1', :a, :type, '{{}}', :status, 0, {at})"
    )
    with migrated.begin() as conn:
        conn.execute(callback, {"a": app, "type": "LISTING_FULL", "status": "PENDING"})
        cb = conn.execute(text("SELECT id FROM partner_callback")).scalar_one()
        attempt = text(
            "INSERT INTO partner_callback_attempt (callback_id, number, at, outcome)"
            f" VALUES (:c, 1, {at}, 'TIMEOUT')"
        )
        conn.execute(attempt, {"c": cb})
    for statement, params in (
        (attribute, {"a": app, "m": member}),  # a member attributed twice
        (idem, {"a": app}),  # one key, two requests
        (callback, {"a": app, "type": "OTHER", "status": "PENDING"}),
        (callback, {"a": app, "type": "LISTING_FULL", "status": "GONE"}),
        (attempt, {"c": cb}),  # attempt 1 twice
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(statement, params)

    trail = text(
        "INSERT INTO partner_app_event (app_id, action, operator_id, at)"
        f" VALUES (:a, :action, :m, {at})"
    )
    with migrated.begin() as conn:
        conn.execute(trail, {"a": app, "action": "SET_CALLBACKS", "m": member})
    with pytest.raises(DBAPIError), migrated.begin() as conn:
        conn.execute(trail, {"a": app, "action": "SUBSCRIBE", "m": member})

    migrate.downgrade(empty_url, "0022")  # the later revisions, unused here
    with pytest.raises(RuntimeError, match="partner_member has rows"):
        migrate.downgrade(empty_url, "0021")
    assert migrate.current(empty_url) == "0022"
    with migrated.begin() as conn:
        for table in ("partner_callback_attempt", "partner_callback", "partner_member"):
            conn.execute(text(f"DELETE FROM {table}"))
    with pytest.raises(RuntimeError, match="SET_CALLBACKS"):
        migrate.downgrade(empty_url, "0021")
    with migrated.begin() as conn:
        conn.execute(text("DELETE FROM partner_app_event"))
    migrate.downgrade(empty_url, "0021")
    assert not {"partner_member", "partner_request", "partner_callback"} & _tables(migrated)


def _investment_keys(engine: Engine) -> set[tuple[str, str]]:
    return {
        (fk["constrained_columns"][0], fk["referred_table"])
        for fk in inspect(engine).get_foreign_keys("investment")
    }


def test_0023_drops_the_investments_key_to_the_listing_and_its_downgrade_restores_it(
    empty_url: str, migrated: Engine
) -> None:
    """0023: an investment's loan_id references no row (investing's conditional UPDATE of
    the listing checks it), its investor_id still does; going back restores the key."""
    assert _investment_keys(migrated) == {("investor_id", "member")}
    migrate.downgrade(empty_url, "0022")
    assert _investment_keys(migrated) == {("investor_id", "member"), ("loan_id", "loan")}
    migrate.upgrade(empty_url)
    assert _investment_keys(migrated) == {("investor_id", "member")}


def test_loyalty_revision_guards_check_ins_points_experience_and_referrals(
    empty_url: str, migrated: Engine
) -> None:
    """0019: one level a member; one check-in a member and business day; a points entry earns
    (points above 0, remaining within them, an expiry) or takes (below 0, nothing remaining),
    once per kind and reference; experience gold never invested beyond what was granted,
    granted once per source; one referral reward per (investment, referrer); going back is
    refused while any of them is recorded (levels are evaluated again, so they alone do not
    hold it)."""
    at = "'2026-12-03 10:00:00'"
    statements = {
        "level": "INSERT INTO member_level (member_id, level, invested, evaluated_at,"
        f" changed_at) VALUES (1, 'SILVER', 500000, {at}, {at})",
        "checkin": "INSERT INTO checkin (member_id, business_day, streak, points, checked_at)"
        f" VALUES (1, :day, :streak, 5, {at})",
        "entry": "INSERT INTO point_entry (member_id, kind, ref_id, points, remaining,"
        f" expires_at, created_at) VALUES (1, :kind, :ref, :points, :remaining, :expires, {at})",
        "account": "INSERT INTO experience_account (member_id, granted, invested)"
        " VALUES (1, :granted, :invested)",
        "grant": "INSERT INTO experience_grant (member_id, source, ref_id, amount, created_at)"
        f" VALUES (1, :source, 1, 100, {at})",
    }
    sql = {name: text(statement) for name, statement in statements.items()}
    good_entry = {"kind": "CHECK_IN", "ref": 1, "points": 5, "remaining": 5, "expires": NOW}
    with migrated.begin() as conn:
        conn.execute(sql["level"])
        conn.execute(sql["checkin"], {"day": "2026-12-03", "streak": 1})
        conn.execute(sql["entry"], good_entry)
        conn.execute(sql["grant"], {"source": "REGISTRATION"})
    for name, params in (
        ("level", {}),  # a second level for the member
        ("checkin", {"day": "2026-12-03", "streak": 2}),  # the same business day
        ("checkin", {"day": "2026-12-04", "streak": 0}),
        ("entry", good_entry),  # the same kind and reference
        ("entry", {**good_entry, "ref": 2, "remaining": 6}),  # more remaining than earned
        ("entry", {**good_entry, "ref": 2, "expires": None}),  # earned, never expiring
        ("entry", {**good_entry, "kind": "REDEEM", "ref": 2}),  # spending, yet positive
        ("entry", {**good_entry, "kind": "GIFT", "ref": 2}),
        ("account", {"granted": 100, "invested": 101}),  # invested beyond granted
        ("grant", {"source": "REGISTRATION"}),  # granted twice for one source
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(sql[name], params)

    migrate.downgrade(empty_url, "0019")  # the later revisions first
    with pytest.raises(RuntimeError, match="0019 cannot be undone: experience_grant has rows"):
        migrate.downgrade(empty_url, "0018")
    with migrated.begin() as conn:
        for table in ("experience_grant", "point_entry", "checkin"):
            conn.execute(text(f"DELETE FROM {table}"))
    migrate.downgrade(empty_url, "0018")
    assert not {"member_level", "checkin", "point_entry", "referral_reward"} & _tables(migrated)


def test_marketing_revision_guards_budgets_and_coupons_and_goes_back_only_unused(
    empty_url: str, migrated: Engine
) -> None:
    """0020: a campaign never spends beyond its budget (money or count), a template's terms fit
    its kind and its validity is a window or days, not both; a coupon is locked to an
    investment exactly when not AVAILABLE, unique per (template, member, sequence) and per
    (template, member, issue key); a reward is recorded once per (kind, source, member); going
    back is refused while a campaign exists."""
    campaign = text(
        "INSERT INTO campaign (name, starts_at, budget_amount, spent_amount, budget_count,"
        " spent_count, status, created_by, changed_by, created_at, updated_at) VALUES"
        " (:name, '2026-12-01 00:00:00', :budget, :spent, :count, :used, 'ACTIVE', 1, 1,"
        " '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
    )
    good_campaign = {"name": "c1", "budget": 10000, "spent": 0, "count": 3, "used": 0}
    template = text(
        "INSERT INTO coupon_template (campaign_id, name, kind, face_value, extra_rate,"
        " min_invest, max_invest, valid_until, valid_days, stackable, issued_count, audience,"
        " status, created_by, changed_by, created_at, updated_at) VALUES (:c, 't', :kind,"
        " :face, :rate, 0, :max, :until, :days, 1, 0, 'ALL', 'ACTIVE', 1, 1,"
        " '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
    )
    good_template = {
        "kind": "CASH",
        "face": 1000,
        "rate": None,
        "max": None,
        "until": None,
        "days": 30,
    }
    coupon = text(
        "INSERT INTO coupon (template_id, campaign_id, member_id, kind, status, valid_from,"
        " valid_until, member_seq, issue_key, reason, investment_id, created_at, updated_at)"
        " VALUES (:t, :c, 1, 'CASH', :status, '2026-12-01 00:00:00', '2026-12-31 00:00:00',"
        " :seq, :key, 'r', NULL, '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
    )
    with migrated.begin() as conn:
        conn.execute(campaign, good_campaign)
        c = conn.execute(text("SELECT id FROM campaign")).scalar_one()
        conn.execute(template, {**good_template, "c": c})
        t = conn.execute(text("SELECT id FROM coupon_template")).scalar_one()
        conn.execute(coupon, {"t": t, "c": c, "status": "AVAILABLE", "seq": 1, "key": "k1"})
    for bad in (
        {"name": "c2", "spent": 10001},  # beyond the money budget
        {"name": "c2", "used": 4},  # beyond the count budget
        {"name": "c1"},  # the same name
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(campaign, {**good_campaign, **bad})
    for bad in (
        {"kind": "RATE_BOOST"},  # a rate boost without a rate, with a face value
        {"kind": "CASH", "rate": 15000},  # a cash coupon with a rate
        {"until": "2026-12-31 00:00:00"},  # a window and days
        {"days": None},  # neither
        {"max": 0},  # an empty tier
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(template, {**good_template, "c": c, **bad})
    for bad in (
        {"status": "AVAILABLE", "seq": 1, "key": "k2"},  # the member's first coupon again
        {"status": "AVAILABLE", "seq": 2, "key": "k1"},  # issued for the same key again
        {"status": "LOCKED", "seq": 2, "key": "k2"},  # locked to no investment
    ):
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(coupon, {"t": t, "c": c, **bad})
    reward = text(
        "INSERT INTO marketing_reward (kind, source_type, source_id, member_id, amount, memo,"
        " status, attempt, created_at, updated_at) VALUES ('CASH_COUPON', 'coupon', 1, 1,"
        " :amount, 'm', 'PENDING', 0, '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
    )
    with migrated.begin() as conn:
        conn.execute(reward, {"amount": 1000})
    for amount in (1000, 0):  # recorded twice; nothing owed
        with pytest.raises(DBAPIError), migrated.begin() as conn:
            conn.execute(reward, {"amount": amount})

    migrate.downgrade(empty_url, "0020")  # the later revisions first
    with pytest.raises(RuntimeError, match="campaigns exist"):
        migrate.downgrade(empty_url, "0019")
    assert migrate.current(empty_url) == "0020"
    with migrated.begin() as conn:
        for table in ("marketing_reward", "coupon", "coupon_template", "campaign"):
            conn.execute(text(f"DELETE FROM {table}"))
    migrate.downgrade(empty_url, "0019")
    assert not {"campaign", "coupon", "marketing_reward"} & _tables(migrated)


def test_message_languages_revision_adds_english_beside_the_chinese(
    empty_url: str, migrated: Engine
) -> None:
    """0021 gives member messages an English title and body, NULL in the messages written
    before; going back drops the English and keeps every message readable in Chinese."""
    insert = text(
        "INSERT INTO member_message (member_id, category, title, body, title_en, body_en,"
        " created_at) VALUES (1, 'SYSTEM', :title, '正文', :title_en, :body_en,"
        " '2026-12-03 10:00:00')"
    )
    with migrated.begin() as conn:
        conn.execute(insert, {"title": "旧", "title_en": None, "body_en": None})
        conn.execute(insert, {"title": "新", "title_en": "New", "body_en": "Text"})
    columns = {c["name"]: c for c in inspect(migrated).get_columns("member_message")}
    assert columns["title_en"]["nullable"] and columns["body_en"]["nullable"]

    migrate.downgrade(empty_url, "0020")
    assert migrate.current(empty_url) == "0020"
    assert not {"title_en", "body_en"} & {
        c["name"] for c in inspect(migrated).get_columns("member_message")
    }
    with migrated.connect() as conn:
        titles = conn.execute(text("SELECT title FROM member_message ORDER BY id")).scalars()
        assert list(titles) == ["旧", "新"]


def test_interest_fee_revision_gives_receipts_a_fee_within_their_interest(
    empty_url: str, engine: Engine
) -> None:
    """0024: a receipt written before it has a fee of 0.00; a fee is never below 0 nor above
    the receipt's interest; going back is refused, changing nothing, once a receipt has a fee,
    and drops the column once none has."""
    at = "'2026-12-03 10:00:00'"
    migrate.upgrade(empty_url, "0023")
    with engine.begin() as conn:
        conn.execute(
            MEMBER_SQL, {"id": 1, "mobile": "13900000001", "role": "BORROWER", "status": "ACTIVE"}
        )
        conn.execute(LOAN_SQL, {**GOOD_LOAN, "borrower_id": 1})
        conn.execute(
            text(
                "INSERT INTO investment (id, loan_id, investor_id, amount, status, request_no,"
                f" created_at, updated_at) VALUES (1, 1, 1, 100, 'ACTIVE', 'i1', {at}, {at})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO installment (id, loan_id, period, due_date, principal, interest,"
                " penalty, remaining, status, created_at, updated_at) VALUES (1, 1, 1,"
                f" '2027-01-01', 100, 1000, 0, 0, 'PENDING', {at}, {at})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO receipt (installment_id, investment_id, loan_id, investor_id,"
                " period, principal, interest, penalty, status) VALUES (1, 1, 1, 1, 1, 100,"
                " 1000, 0, 'PENDING')"
            )
        )
    migrate.upgrade(empty_url, "0024")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT fee FROM receipt")).scalar_one() == 0
    for fee in (-1, 1001):
        with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
            conn.execute(text("UPDATE receipt SET fee = :f"), {"f": fee})
        assert "ck_receipt_fee_within_interest" in str(caught.value.orig)
    with engine.begin() as conn:
        conn.execute(text("UPDATE receipt SET fee = 1000"))  # all of its interest, at most

    with pytest.raises(RuntimeError, match="interest service fees"):
        migrate.downgrade(empty_url, "0023")
    assert migrate.current(empty_url) == "0024"
    with engine.begin() as conn:
        conn.execute(text("UPDATE receipt SET fee = 0"))
    migrate.downgrade(empty_url, "0023")
    with engine.connect() as conn:
        assert "fee" not in {c["name"] for c in inspect(conn).get_columns("receipt")}
        assert conn.execute(text("SELECT interest FROM receipt")).scalar_one() == 1000
