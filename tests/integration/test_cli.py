"""The ``p2p`` command as an operator runs it: a process of its own, a real SQLite file, a
closed port where a server it needs should be, a terminal (a pseudo-terminal) or a pipe on
its standard input."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from conf import load_settings
from server.app import create_platform
from service.errors import BusinessError
from service.member import LoginRequest, MemberService

ROOT = Path(__file__).resolve().parents[2]
MOBILE, PASSWORD = "13900000077", "Operator123"


def p2p(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env={**os.environ, "P2P_ENV": "test"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound a moment ago, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def database(tmp_path) -> str:
    """A migrated SQLite file's URL."""
    url = f"sqlite:///{tmp_path / 'p2p.db'}"
    assert p2p("migrate", "--set", f"database.url={url}").returncode == 0
    return url


def can_log_in(url: str, mobile: str, password: str) -> bool:
    platform = create_platform(load_settings(os.environ, {"database.url": url}))
    try:
        platform.service(MemberService).login(LoginRequest(mobile, password))
    except BusinessError as e:
        assert e.code == "LOGIN_FAILED"
        return False
    finally:
        platform.close()
    return True


def test_version_is_the_installed_distribution_s() -> None:
    done = p2p("--version")
    assert done.returncode == 0
    assert done.stdout == f"p2p {metadata.version('p2p-platform')}\n"
    script = Path(sys.executable).with_name("p2p")
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout == (
        done.stdout
    )


def test_a_command_leaves_no_pool_lines(database) -> None:
    done = p2p("check-ledger", "--set", f"database.url={database}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("ledger OK\n")
    assert done.stderr == ""  # "Pool disposed", "Pool recreating" were logged here


def test_an_unreachable_database_is_one_line_and_exit_3() -> None:
    pytest.importorskip("MySQLdb")
    url = f"mysql+mysqldb://p2p:s3cret@127.0.0.1:{closed_port()}/p2p"
    done = p2p("check-ledger", "--set", f"database.url={url}")
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        f"error: the database (mysql+mysqldb://p2p:***@127.0.0.1:{url.split(':')[3]}"
    )
    assert "Can't connect" in done.stderr and "s3cret" not in done.stderr


def test_a_database_without_the_schema_is_one_line_too(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    done = p2p("outbox", "--set", f"database.url={url}")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == f"error: the database ({url}) cannot be used: no such table: job_outbox\n"


def test_a_command_that_must_evict_listings_stops_without_its_redis(database) -> None:
    redis_url = f"redis://:pw@127.0.0.1:{closed_port()}/0"
    done = p2p(
        "close-expired-loans",
        "--set",
        f"database.url={database}",
        "--set",
        f"cache.url={redis_url}",
    )
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: Redis (cache.url {redis_url.replace('pw', '***')})")
    assert "nothing was changed" in done.stderr
    # Without Redis configured there is no shared cache to keep, and the command runs.
    assert p2p("close-expired-loans", "--set", f"database.url={database}").returncode == 0


@pytest.mark.redis
def test_a_command_that_must_evict_listings_runs_with_its_redis(database) -> None:
    redis_url = os.environ.get("P2P_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis tests need P2P_TEST_REDIS_URL=redis://host:port/db")
    done = p2p(
        "close-expired-loans",
        "--set",
        f"database.url={database}",
        "--set",
        f"cache.url={redis_url}",
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "0 expired listing(s) marked FAILED\n",
        "",
    )


def test_create_operator_reads_the_password_from_standard_input(database) -> None:
    done = p2p(
        "create-operator", "--mobile", MOBILE, "--set", f"database.url={database}", stdin=PASSWORD
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("operator ") and "(139****0077)" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    assert can_log_in(database, MOBILE, PASSWORD)
    assert not can_log_in(database, MOBILE, PASSWORD + "\n")


def test_create_operator_takes_no_password_argument(database) -> None:
    done = p2p(
        "create-operator",
        "--mobile",
        MOBILE,
        "--password",
        PASSWORD,
        "--set",
        f"database.url={database}",
    )
    assert done.returncode == 2 and "unrecognized arguments: --password" in done.stderr
    empty = p2p("create-operator", "--mobile", MOBILE, "--set", f"database.url={database}")
    assert (empty.returncode, empty.stderr) == (
        2,
        "error: no password on standard input (one line is read)\n",
    )
    assert not can_log_in(database, MOBILE, PASSWORD)


def on_a_terminal(*args: str, answers: list[str]) -> tuple[int, str]:
    """Runs ``p2p args`` with a pseudo-terminal as its controlling terminal, typing each of
    ``answers`` after the prompt before it; the exit code and everything the terminal shows."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pseudo-terminal
        os.chdir(ROOT)
        os.environ["P2P_ENV"] = "test"
        os.execv(sys.executable, [sys.executable, "-m", "server", *args])  # noqa: S606
    shown = b""
    pending = list(answers)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        typed = len(answers) - len(pending)
        if pending and shown.rstrip().endswith(b":") and shown.count(b":") > typed:
            os.write(fd, pending.pop(0).encode() + b"\n")
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode()


def test_create_operator_asks_twice_on_a_terminal_without_echo(database) -> None:
    code, shown = on_a_terminal(
        "create-operator",
        "--mobile",
        MOBILE,
        "--set",
        f"database.url={database}",
        answers=[PASSWORD, PASSWORD],
    )
    assert code == 0, shown
    assert "Password:" in shown and "The password again:" in shown
    assert PASSWORD not in shown  # not echoed
    assert can_log_in(database, MOBILE, PASSWORD)


def test_create_operator_refuses_two_different_passwords(database) -> None:
    code, shown = on_a_terminal(
        "create-operator",
        "--mobile",
        MOBILE,
        "--set",
        f"database.url={database}",
        answers=[PASSWORD, PASSWORD + "x"],
    )
    assert code == 2 and "error: the two passwords differ" in shown
    assert not can_log_in(database, MOBILE, PASSWORD)
