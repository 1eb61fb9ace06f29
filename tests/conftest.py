"""Shared fixtures: a Database on a SQLite file, one on MariaDB, and `database` yielding each;
valid personal data for test members (`identities`); conf/test.toml for every p2p command a
test runs in process; and a failure for any test in which an operation raised a fault code it
does not declare (server/faults.py; the end-to-end servers' logs are checked as they stop).

MariaDB tests need P2P_TEST_DATABASE_URL (e.g. mysql+mysqldb://root@127.0.0.1:3306/p2p_test),
Redis tests P2P_TEST_REDIS_URL; each is filled in as the run starts when its server answers at
the standard address (tests/backends.py), and the run's header and summary say which backend
tiers ran and why the others did not. The database is created when missing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from dao.db import Database
from server.faults import UNDECLARED
from tests import backends
from tests.support import Identities

MYSQL_URL_VARIABLE = backends.DATABASE_VARIABLE
TIERS = pytest.StashKey[list[backends.Tier]]()


def pytest_configure(config: pytest.Config) -> None:
    """Decide the backend tiers before any test module reads the variables."""
    config.stash[TIERS] = backends.detect(os.environ)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [tier.line() for tier in config.stash[TIERS]]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    terminalreporter.write_sep("-", "backend tiers")
    terminalreporter.write_line("SQLite and in-process cache tier ran")
    for tier in config.stash[TIERS]:
        terminalreporter.write_line(tier.line())


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch) -> None:
    """P2P_ENV=test, as the end-to-end servers have it: a command run in process reads
    conf/test.toml, never the development defaults, whose bank simulator keys and job broker
    are files in the checkout's var/."""
    monkeypatch.setenv("P2P_ENV", "test")


class _Undeclared(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(UNDECLARED):
            self.found.append(record.getMessage())


@pytest.fixture(autouse=True)
def undeclared_faults() -> Iterator[list[str]]:
    """What operations raised in this test without declaring it; the test fails unless it is
    empty at the end (a test that provokes one on purpose clears it)."""
    handler = _Undeclared()
    logger = logging.getLogger("server.dispatcher")
    logger.addHandler(handler)
    try:
        yield handler.found
    finally:
        logger.removeHandler(handler)
    if handler.found:
        pytest.fail("an operation raised a code it does not declare: " + "; ".join(handler.found))


@pytest.fixture(scope="session")
def mysql_url() -> URL:
    """The MariaDB test database's URL, its database created if missing; skips when unset."""
    raw = os.environ.get(MYSQL_URL_VARIABLE)
    if not raw:
        pytest.skip(f"MariaDB tests need {MYSQL_URL_VARIABLE}=mysql+mysqldb://...")
    url = make_url(raw)
    name = url.database or ""
    if url.get_backend_name() != "mysql" or not name.startswith("p2p_test"):
        pytest.fail(f"{MYSQL_URL_VARIABLE} must be a mysql URL of a database named p2p_test*")
    server = create_engine(url.set(database=""), poolclass=NullPool)
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 "
                "COLLATE utf8mb4_unicode_ci"
            )
    finally:
        server.dispose()
    return url


@pytest.fixture
def sqlite_database(tmp_path) -> Iterator[Database]:
    """A Database on a fresh SQLite file in tmp_path."""
    db = Database(f"sqlite:///{tmp_path / 'p2p.db'}", pool_size=5, max_overflow=5)
    yield db
    db.dispose()


@pytest.fixture
def mysql_database(mysql_url: URL) -> Iterator[Database]:
    """A Database on the MariaDB test database (tests using it carry the mysql marker)."""
    db = Database(mysql_url.render_as_string(hide_password=False), pool_size=5, max_overflow=5)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database(request: pytest.FixtureRequest) -> Database:
    """Each engine in turn: the test runs once on SQLite and once on MariaDB."""
    return request.getfixturevalue(f"{request.param}_database")


@pytest.fixture(scope="session")
def identities() -> Identities:
    return Identities()
