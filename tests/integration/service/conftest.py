"""Fixtures for service integration tests: the platform on a migrated database, a clock the
test controls, member and listing factories, and a plain-SQL engine to check results with.

Each test runs on SQLite and on MariaDB (the shared `database` fixture). On MariaDB the
services use a database of their own, named after the test database with ``_service`` added
(p2p_test_service for p2p_test), emptied before and after every test; two suites run at once
on one server stay apart when their P2P_TEST_DATABASE_URL names differ.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

import server.app
from conf import load_settings
from dao import migrate
from dao.db import Database
from server.app import Platform, create_platform
from service.jobs import InProcessPublisher
from service.member import (
    MemberService,
    MemberVo,
    RegisterRequest,
    VerificationCodeRequest,
)
from service.p2p import LoanRequest, LoanService
from service.security import Principal
from tests.integration.service.banking import Banking, wire
from tests.integration.service.support import START, onboard

PASSWORD = "secret123"


class FakeClock:
    """The platform's clock ("clock" component), moved by hand."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def service_url_for(database: Database) -> str:
    """The URL the services use: the SQLite file itself, or <test database>_service on
    MariaDB."""
    url = database.engine.url
    if url.get_backend_name() == "sqlite":
        return url.render_as_string(hide_password=False)
    service_database = f"{url.database}_service"
    server = create_engine(url.set(database=""), poolclass=NullPool)
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE IF NOT EXISTS `{service_database}` CHARACTER SET utf8mb4 "
                "COLLATE utf8mb4_unicode_ci"
            )
    finally:
        server.dispose()
    return url.set(database=service_database).render_as_string(hide_password=False)


def _empty(engine: Engine) -> None:
    """Delete every row the services wrote, children first; the platform's own accounts,
    seeded by the migrations, stay with zero balances, and the development clock unmoved."""
    with engine.begin() as conn:
        # MariaDB checks a table's reference to itself (a member's referrer, a bank item's
        # re-issued one, a replayed callback) row by row.
        conn.execute(text("UPDATE member SET referrer_id = NULL"))
        conn.execute(text("UPDATE bank_order SET retry_of = NULL"))
        conn.execute(text("UPDATE partner_callback SET replay_of = NULL"))
        for table in reversed(migrate.entity_metadata().sorted_tables):
            if table.name == "account":
                conn.execute(text("DELETE FROM account WHERE member_id IS NOT NULL"))
                conn.execute(text("UPDATE account SET available = 0, frozen = 0"))
            elif table.name == "platform_clock":  # its one row, seeded too: not moved
                conn.execute(text("UPDATE platform_clock SET offset_us = 0"))
            else:
                conn.execute(table.delete())


@pytest.fixture
def service_url(database: Database) -> Iterator[str]:
    """A migrated, empty database for the services; emptied again afterwards."""
    url = service_url_for(database)
    migrate.upgrade(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        _empty(engine)
        yield url
        _empty(engine)
    finally:
        engine.dispose()


@pytest.fixture
def empty_database(sql: Engine) -> Callable[[], None]:
    """Empty the test's database again, for tests that run many examples in one test."""
    return lambda: _empty(sql)


@pytest.fixture
def sql(service_url: str) -> Iterator[Engine]:
    """A separate engine for plain-SQL checks, outside the code under test."""
    engine = create_engine(service_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock every platform built in the test uses."""
    fake = FakeClock()
    monkeypatch.setattr(server.app, "utc_now", fake)
    return fake


@pytest.fixture
def make_platform(service_url: str, clock: FakeClock) -> Iterator[Callable[..., Platform]]:
    """Factory: a platform on the test's database; keyword arguments override settings. Its
    jobs run in the test's thread once their transaction commits (InProcessPublisher; the
    "publisher" component keeps what it ran)."""
    built: list[Platform] = []

    def factory(**overrides: Any) -> Platform:
        values = {"database.url": service_url, **overrides}
        settings = load_settings({"P2P_ENV": "test"}, values)
        platform = create_platform(settings, publisher=InProcessPublisher)
        built.append(platform)
        return platform

    yield factory
    for platform in built:
        platform.close()


@pytest.fixture
def platform(make_platform: Callable[..., Platform]) -> Platform:
    return make_platform()


@pytest.fixture
def banking(platform: Platform) -> Banking:
    """The platform's payment and member services on a scripted depository bank, wired as
    the composition root wires them when payment.gateway is BANK."""
    return wire(platform)


@pytest.fixture
def members(platform: Platform) -> MemberService:
    return platform.service(MemberService)


@pytest.fixture
def loans(platform: Platform) -> LoanService:
    return platform.service(LoanService)


@pytest.fixture
def make_member(platform: Platform, members: MemberService, identities) -> Callable[..., MemberVo]:
    """Factory: a member of the given role with a fresh mobile number. An investor or borrower
    signs up as members do: a REGISTER code (read from the sandbox sender), registration,
    and, unless ``onboarded=False``, real-name verification, a bound card and an open fund
    account, so they may recharge, invest, borrow and withdraw."""
    numbers = itertools.count(1)

    def factory(
        role: str = "INVESTOR", mobile: str | None = None, *, onboarded: bool = True
    ) -> MemberVo:
        mobile = mobile or f"139{next(numbers):08d}"
        if role == "OPERATOR":
            return members.create_operator(mobile, PASSWORD)
        members.send_verification_code(VerificationCodeRequest(mobile, "REGISTER"))
        code = platform.components["verification"].sender.last_code(mobile, "REGISTER")
        vo = members.register(RegisterRequest(mobile, PASSWORD, role, code))
        if onboarded:
            onboard(members, vo.member_id, role, mobile, identities())
        return vo

    return factory


@pytest.fixture
def operator(make_member) -> Principal:
    vo = make_member("OPERATOR")
    return Principal(member_id=vo.member_id, role="OPERATOR")


@pytest.fixture
def borrower(make_member) -> MemberVo:
    return make_member("BORROWER")


@pytest.fixture
def loan_request(borrower: MemberVo) -> Callable[..., LoanRequest]:
    """Factory: valid listing terms for the test's borrower; keyword arguments override."""

    def factory(**overrides: Any) -> LoanRequest:
        fields: dict[str, Any] = {
            "title": "周转借款",
            "description": "经营周转",
            "borrower_id": borrower.member_id,
            "amount": Decimal("10000.00"),
            "annual_rate": Decimal("12.5"),
            "term_months": 12,
            "repayment_method": "EQUAL_INSTALLMENT",
            "min_invest": Decimal("100.00"),
            "max_invest_per_investor": None,
            "raise_days": 7,
        }
        fields.update(overrides)
        return LoanRequest(**fields)

    return factory


@pytest.fixture
def redis_settings() -> Iterator[dict[str, str]]:
    """Cache settings for platforms sharing the test Redis under a random prefix."""
    url = os.environ.get("P2P_TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need P2P_TEST_REDIS_URL=redis://host:port/db")
    prefix = f"p2p-test-{uuid.uuid4().hex}:"
    yield {"cache.url": url, "cache.key_prefix": prefix}
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
