"""The backend tiers a run decides on (tests/backends.py): an explicit variable wins, an empty
one opts out, an unset one is filled in only when the standard server answers."""

from __future__ import annotations

import os
import socket

import pytest

from tests import backends


def _never(url: str) -> str:
    raise AssertionError(f"probed {url} although the variable was given")


def test_an_explicit_variable_wins_without_probing() -> None:
    environ = {"P2P_TEST_REDIS_URL": "redis://10.0.0.9:6380/3"}
    tier = backends.decide("Redis", "P2P_TEST_REDIS_URL", "redis://x/0", _never, environ)

    assert tier.url == "redis://10.0.0.9:6380/3"
    assert tier.line() == "Redis tier runs on redis://10.0.0.9:6380/3 (P2P_TEST_REDIS_URL is set)"


def test_an_empty_variable_opts_the_tier_out_without_probing() -> None:
    environ = {"P2P_TEST_DATABASE_URL": ""}
    tier = backends.decide("MariaDB", "P2P_TEST_DATABASE_URL", "mysql://x/p", _never, environ)

    assert tier.url == ""
    assert environ == {"P2P_TEST_DATABASE_URL": ""}
    assert "opted out" in tier.line() and tier.line().startswith("MariaDB tier skipped")


def test_an_answering_standard_server_fills_the_variable_in() -> None:
    environ: dict[str, str] = {}
    probed = []

    def answers(url: str) -> str:
        probed.append(url)
        return ""

    tier = backends.decide("Redis", "P2P_TEST_REDIS_URL", "redis://h:1/0", answers, environ)

    assert probed == ["redis://h:1/0"]
    assert environ == {"P2P_TEST_REDIS_URL": "redis://h:1/0"}
    assert tier.url == "redis://h:1/0" and "standard address" in tier.reason


def test_a_silent_standard_server_skips_the_tier_saying_why_and_how() -> None:
    environ: dict[str, str] = {}
    tier = backends.decide(
        "Redis", "P2P_TEST_REDIS_URL", "redis://h:1/0", lambda url: "no Redis here", environ
    )

    assert environ == {}
    assert tier.line() == "Redis tier skipped: no Redis here; or set P2P_TEST_REDIS_URL"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_the_redis_probe_reports_a_port_nobody_listens_on() -> None:
    port = _closed_port()
    assert f"127.0.0.1:{port}" in backends.probe_redis(f"redis://127.0.0.1:{port}/0")


def test_the_mariadb_probe_reports_a_port_nobody_listens_on() -> None:
    pytest.importorskip("MySQLdb")
    port = _closed_port()
    problem = backends.probe_mariadb(f"mysql+mysqldb://root@127.0.0.1:{port}/p2p_test")
    assert problem.startswith(f"no MariaDB answers at 127.0.0.1:{port} as root")


@pytest.mark.redis
def test_the_redis_probe_finds_the_test_redis() -> None:
    url = os.environ.get(backends.REDIS_VARIABLE)
    if not url:
        pytest.skip("Redis tests need P2P_TEST_REDIS_URL")
    assert backends.probe_redis(url) == ""


@pytest.mark.mysql
def test_the_mariadb_probe_finds_the_test_server(mysql_url) -> None:
    assert backends.probe_mariadb(mysql_url.render_as_string(hide_password=False)) == ""
