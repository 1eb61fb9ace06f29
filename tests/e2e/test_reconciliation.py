"""The daily reconciliation as operators run it: ``p2p bank-sim`` as a separate process, ``p2p
serve`` with its embedded job worker, ``p2p reconcile --date`` in a process of its own, and
ReconciliationFacade over REST and SOAP (zeep). The simulator keeps the real time, so the day
reconciled is yesterday in Shanghai, which it has closed (its files are signed and empty: the
simulator started today); the comparison of days with orders and faults is proved in
tests/integration/service/test_reconciliation.py, time moved by the clock."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import requests
import zeep

from service.ocp import protocol
from tests.banksupport import (
    start_bank_sim,
)
from tests.e2e.conftest import OPERATOR_MOBILE, OPERATOR_PASSWORD, ROOT, _env, zeep_fault_code
from tests.e2e.test_bank import bank_settings, eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reconciling(tmp_path_factory, processes):
    """``p2p bank-sim``, a ``p2p serve`` with an operator whose depository it is, and the
    settings the command needs to reach both."""
    workdir = tmp_path_factory.mktemp("e2e-reconcile")
    sim = start_bank_sim(workdir / "bank", "--delay", "1", "--auto-authorize")
    port = processes.free_port()
    settings = bank_settings(workdir, sim, port)
    try:
        started = processes.start_server("embedded", workdir, settings, True, port)
    except BaseException:
        sim.stop()
        raise
    yield started.server, settings
    started.stop()
    sim.stop()


def reconcile(settings: list[str], *args: str) -> subprocess.CompletedProcess:
    sets = [x for s in settings for x in ("--set", s)]
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "reconcile", *args, *sets],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def yesterday() -> str:
    return str(protocol.business_day(dt.datetime.now(dt.UTC)) - dt.timedelta(days=1))


def test_the_command_reconciles_a_closed_day_fails_an_open_one_and_refuses_tomorrow(
    reconciling,
) -> None:
    _, settings = reconciling
    done = reconcile(settings, "--date", yesterday())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"reconciliation {yesterday()} SUCCEEDED" in done.stdout
    assert "bank-only 0, platform-only 0, amount 0, status 0, fee 0, balance 0" in done.stdout
    today = protocol.business_day(dt.datetime.now(dt.UTC))
    not_ready = reconcile(settings, "--date", str(today))
    assert not_ready.returncode == 1
    assert f"reconciliation {today} FAILED: FILE_NOT_READY" in not_ready.stdout
    refused = reconcile(settings, "--date", str(today + dt.timedelta(days=1)))
    assert refused.returncode == 2
    assert "VALIDATION_FAILED" in refused.stderr


def test_operators_run_and_read_it_over_rest_and_soap(reconciling) -> None:
    server, _ = reconciling
    login = {"mobile": OPERATOR_MOBILE, "password": OPERATOR_PASSWORD}
    token = requests.post(server.url("/api/v1/sessions"), json=login, timeout=30).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    day = yesterday()
    before = requests.get(
        server.url(f"/api/v1/reconciliation/runs/{day}"), headers=auth, timeout=30
    )
    attempts = before.json()["attempts"] if before.status_code == 200 else 0

    queued = requests.post(
        server.url("/api/v1/reconciliation/runs"), json={"date": day}, headers=auth, timeout=30
    )
    assert queued.status_code == 204, queued.text

    def ran() -> dict | None:
        answer = requests.get(
            server.url(f"/api/v1/reconciliation/runs/{day}"), headers=auth, timeout=30
        )
        run = answer.json() if answer.status_code == 200 else {}
        return run if run.get("attempts", 0) > attempts and run["status"] != "RUNNING" else None

    run = eventually(ran, "the worker did not run the reconciliation")
    assert (run["status"], run["bankLines"], run["balanceMismatches"]) == ("SUCCEEDED", 0, 0)
    page = requests.get(
        server.url("/api/v1/reconciliation/discrepancies"),
        params={"date": day, "status": "OPEN"},
        headers=auth,
        timeout=30,
    ).json()
    assert (page["total"], page["items"]) == (0, [])
    missing = requests.post(
        server.url("/api/v1/reconciliation/discrepancies/999999/resolution"),
        json={"action": "EXPLAIN", "reason": "checked with the bank", "requestNo": "e2e-x1"},
        headers=auth,
        timeout=30,
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "DISCREPANCY_NOT_FOUND")
    anonymous = requests.get(server.url("/api/v1/reconciliation/runs"), timeout=30)
    assert anonymous.status_code == 401

    soap = zeep.Client(server.url("/services/ReconciliationFacade?wsdl"))
    headers = {"_soapheaders": {"auth": {"token": token}}}
    shown = soap.service.getRun(date=dt.date.fromisoformat(day), **headers)
    assert (shown.status, shown.attempts) == ("SUCCEEDED", run["attempts"])
    runs = soap.service.listRuns(fromDate=dt.date.fromisoformat(day), **headers)
    # Yesterday's run, and today's the first test failed (FILE_NOT_READY) if it ran.
    assert dt.date.fromisoformat(day) in [r.businessDate for r in runs["items"]]
    with pytest.raises(zeep.exceptions.Fault) as fault:
        soap.service.resolveDiscrepancy(
            discrepancyId=999999,
            action="EXPLAIN",
            reason="checked with the bank",
            requestNo="e2e-x2",
            **headers,
        )
    assert zeep_fault_code(fault.value) == "DISCREPANCY_NOT_FOUND"
    with pytest.raises(zeep.exceptions.Fault) as fault:
        soap.service.getRun(date=dt.date(2020, 1, 1), **headers)
    assert zeep_fault_code(fault.value) == "RECONCILIATION_RUN_NOT_FOUND"
    assert "Traceback" not in server.log_text()
