"""``p2p demo`` against a started server, as ``make demo`` runs it against ``make run``: the
depository bank's simulator as a separate process (members confirm on its pages), the
development clock adjustable, no operator yet (the demo creates one). The walk succeeds, runs
again on the same database, leaves the clock unmoved and the ledger clean; the SOAP walk
succeeds too."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

import pytest

from tests.banksupport import start_bank_sim
from tests.e2e.conftest import ROOT, _env
from tests.e2e.test_bank import bank_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_platform(tmp_path_factory, processes):
    workdir = tmp_path_factory.mktemp("e2e-demo")
    sim = start_bank_sim(workdir / "bank", "--delay", "1")  # members confirm on its pages
    port = processes.free_port()
    settings = bank_settings(workdir, sim, port, "clock.adjustable=true")
    try:
        started = processes.start_server("embedded", workdir, settings, False, port)
    except BaseException:
        sim.stop()
        raise
    server = started.server
    # What `p2p demo` needs of the server's settings: its database and its SMS outbox.
    yield server, [*settings, f"verification.outbox_file={server.outbox}"]
    started.stop()
    sim.stop()


def p2p(*args: str, settings: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args, *(x for s in settings for x in ("--set", s))],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_walk_succeeds_runs_again_and_leaves_the_ledger_clean(demo_platform) -> None:
    server, settings = demo_platform
    for run in (1, 2):
        done = p2p("demo", "--base-url", server.base, "--create-operator", settings=settings)
        assert done.returncode == 0, f"run {run}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        out = done.stdout
        assert out.rstrip().endswith("ledger OK"), out[-2000:]
        assert ("p2p create-operator" in out) == (run == 1)  # the second run logs in
        assert "installment 2 is OVERDUE" in out
        penalty = re.search(r"penalty paid with installment 2: (\d+\.\d\d)", out)
        assert penalty and Decimal(penalty.group(1)) > 0
        assert '"loanStatus": "SETTLED"' in out
        assert "> POST /api/v1/payments/withdrawals" in out
        # every member-authorised step was confirmed on the bank's page
        assert out.count("(confirmed: the bank processes the order)") == 3 + 3 + 2 + 1
    clock = p2p("clock", settings=settings)
    assert clock.returncode == 0 and "(wall clock +0)" in clock.stdout
    ledger = p2p("check-ledger", settings=settings)
    assert ledger.returncode == 0, ledger.stdout


def test_the_soap_walk_succeeds(demo_platform) -> None:
    server, settings = demo_platform
    done = p2p("demo", "--soap", "--base-url", server.base, settings=settings)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for operation in ("register", "login", "getProfile", "getAccount", "listLoans"):
        assert f"\n> {operation}(" in done.stdout
    assert "<tns:inviteCode>" in done.stdout
    assert "http://www.w3.org/2003/05/soap-envelope" in done.stdout  # LoanFacade on SOAP 1.2
    assert done.stdout.rstrip().endswith("ledger OK")


def test_the_walk_stops_and_says_why_without_an_operator(demo_platform) -> None:
    server, settings = demo_platform
    done = p2p(
        "demo", "--base-url", server.base, "--operator-mobile", "13911112222",
        settings=settings,
    )  # fmt: skip
    assert done.returncode == 1
    assert "p2p create-operator --mobile 13911112222" in done.stderr
    clock = p2p("clock", settings=settings)
    assert "(wall clock +0)" in clock.stdout  # the walk that stopped left the clock unmoved


def test_the_walk_needs_the_outbox_and_a_clock_it_may_move(demo_platform) -> None:
    server, settings = demo_platform
    for setting, named in (
        ("verification.outbox_file=", "verification.outbox_file"),
        ("clock.adjustable=false", "clock.adjustable"),
    ):
        done = p2p("demo", "--base-url", server.base, settings=[*settings, setting])
        assert done.returncode == 2 and named in done.stderr, done.stderr
        assert "> POST" not in done.stdout  # refused before any call
