"""Fixtures for dao integration tests: empty and migrated databases on SQLite and MariaDB.

MariaDB tests need P2P_TEST_DATABASE_URL (mysql+mysqldb://user@host:port/anydb); they
create and drop their own databases (p2p_daotest, p2p_daotest_repo) on that server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from dao import migrate
from dao.member import MemberEntity

BACKENDS = ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)]
NOW = datetime(2024, 11, 26, 12, 0, 0, 250000, tzinfo=UTC)


def _mysql_server_url() -> str:
    url = os.environ.get("P2P_TEST_DATABASE_URL")
    if not url:
        pytest.skip("P2P_TEST_DATABASE_URL is not set; MariaDB tests need a server")
    if not make_url(url).drivername.startswith(("mysql", "mariadb")):
        pytest.skip(f"P2P_TEST_DATABASE_URL is not a MySQL/MariaDB URL: {make_url(url)!r}")
    return url


@contextmanager
def _fresh_database(backend: str, directory: Path, name: str) -> Iterator[str]:
    """Yield the URL of a new, empty database; remove it afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / (name + '.db')}"
        return
    server = make_url(_mysql_server_url())
    admin = create_engine(server._replace(database=None), poolclass=pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        yield (
            server.set(database=name)
            .update_query_dict({"charset": "utf8mb4"})
            .render_as_string(hide_password=False)
        )
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new empty database for one test (migration tests start from nothing)."""
    with _fresh_database(request.param, tmp_path, "p2p_daotest") as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An engine on a database migrated to head, shared by a module's tests."""
    directory = tmp_path_factory.mktemp("dao")
    with _fresh_database(request.param, directory, "p2p_daotest_repo") as url:
        migrate.upgrade(url)
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """A session whose transaction is rolled back after the test (nothing persists)."""
    factory = sessionmaker(bind=migrated_engine, expire_on_commit=False)
    with factory() as db_session:
        try:
            yield db_session
        finally:
            db_session.rollback()


@pytest.fixture
def make_member(session: Session) -> Callable[..., MemberEntity]:
    """Factory: a flushed member with a unique mobile; keyword arguments override fields."""
    counter = iter(range(1, 1_000_000))

    def factory(**overrides: Any) -> MemberEntity:
        fields: dict[str, Any] = {
            "mobile": f"139{next(counter):08d}",
            "password_hash": "argon2-hash",
            "role": "BORROWER",
            "created_at": NOW,
            "updated_at": NOW,
        }
        fields.update(overrides)
        member = MemberEntity(**fields)
        session.add(member)
        session.flush()
        return member

    return factory


@pytest.fixture
def loan_fields(make_member: Callable[..., MemberEntity]) -> Callable[..., dict[str, Any]]:
    """Factory: the fields of a valid new loan; keyword arguments override fields."""
    borrower = make_member(role="BORROWER")

    def factory(**overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "title": "周转借款",
            "description": "经营周转",
            "borrower_id": borrower.id,
            "amount": Decimal("10000.00"),
            "annual_rate": Decimal("12.5"),
            "term_months": 12,
            "repayment_method": "EQUAL_INSTALLMENT",
            "min_invest": Decimal("100.00"),
            "max_invest_per_investor": None,
            "raise_days": 7,
            "status": "PENDING_AUDIT",
            "published_by": borrower.id,
            "created_at": NOW,
            "updated_at": NOW,
        }
        fields.update(overrides)
        return fields

    return factory
