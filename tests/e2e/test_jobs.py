"""The job engine with real processes: `p2p worker` runs what the outbox hands over on the
embedded broker; `p2p serve` starts its own worker and stops it with itself, even when killed;
and on Redis a worker SIGKILLed mid-job has the job redelivered, its effect happening once.

Each test runs its own server on a SQLite file whose path it knows, so it can end a listing's
raising period in the database (ten days cannot pass otherwise)."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow

OPERATOR = ("13900000000", "Operator123")


def _wait(what: str, check, timeout: float = 60.0, logs: tuple[Path, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purpose.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


@dataclass
class Site:
    """A server with its settings, and the processes a test adds beside it."""

    server: object
    settings: list[str]
    db_file: Path
    workdir: Path
    processes: object

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        sets = [x for s in self.settings for x in ("--set", s)]
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *args, *sets],
            cwd=self.processes.root,
            env=self.processes.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start_worker(
        self, name: str, *settings: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen, Path]:
        """`p2p worker` in a session of its own (so its pool dies with it), and its log;
        ``settings`` and ``env`` are added to the site's."""
        log = self.workdir / f"{name}.log"
        sets = [x for s in (*self.settings, *settings) for x in ("--set", s)]
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "worker", *sets],
                cwd=self.processes.root,
                env={**self.processes.env(), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(f"{name} to be ready", lambda: " ready." in log.read_text(), logs=(log,))
        return proc, log

    def api(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(
            method, self.server.url(path), headers=headers, timeout=30, **kwargs
        )

    def login(self, mobile: str, password: str) -> str:
        r = self.api("POST", "/api/v1/sessions", json={"mobile": mobile, "password": password})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def member(self, signup, role: str, who) -> tuple[int, str]:
        mobile = f"137{uuid.uuid4().int % 10**8:08d}"
        password = "Passw0rd" + uuid.uuid4().hex[:6]
        member_id = signup.register(self.server, role, mobile, password)["memberId"]
        token = self.login(mobile, password)
        signup.onboard(self.server, token, mobile, who)
        return member_id, token

    def expired_listing(self, signup, identities, investment: str | None = None) -> dict:
        """A RAISING listing whose raising period has ended, with one investment if asked."""
        operator = self.login(*OPERATOR)
        borrower_id, _ = self.member(signup, "BORROWER", identities())
        terms = {
            "title": "Working capital",
            "description": "Stock for the spring season.",
            "borrowerId": borrower_id,
            "amount": "10000.00",
            "annualRate": "9.5",
            "termMonths": 12,
            "repaymentMethod": "EQUAL_INSTALLMENT",
            "minInvest": "100.00",
            "raiseDays": 10,
        }
        r = self.api("POST", "/api/v1/loans", operator, json=terms)
        assert r.status_code == 201, r.text
        loan_id = r.json()["loanId"]
        r = self.api("POST", f"/api/v1/loans/{loan_id}/audit", operator, json={"approve": True})
        assert r.json()["status"] == "RAISING", r.text
        found = {"loan_id": loan_id}
        if investment is not None:
            _, investor = self.member(signup, "INVESTOR", identities())
            body = {"amount": investment, "requestNo": uuid.uuid4().hex}
            r = self.api("POST", "/api/v1/payments/recharges", investor, json=body)
            assert r.status_code == 201, r.text
            body = {"amount": investment, "requestNo": uuid.uuid4().hex}
            r = self.api("POST", f"/api/v1/loans/{loan_id}/investments", investor, json=body)
            assert r.status_code == 201, r.text
            found.update(investor=investor, investment_id=r.json()["investmentId"])
        with sqlite3.connect(self.db_file) as conn:
            conn.execute(
                "UPDATE loan SET raise_deadline = '2020-01-01 00:00:00.000000' WHERE id = ?",
                (loan_id,),
            )
        conn.close()
        return found

    def status(self, loan_id: int) -> str:
        """The listing's status in the database (the server's in-process cache does not hear
        of the worker's changes: another process)."""
        with sqlite3.connect(self.db_file) as conn:
            status = conn.execute("SELECT status FROM loan WHERE id = ?", (loan_id,)).fetchone()
        conn.close()
        return status[0]


@pytest.fixture
def site(tmp_path, processes) -> Iterator:
    """Factory: a server (with an operator) on a SQLite file, with extra settings."""
    started = []

    def make(*settings: str) -> Site:
        workdir = tmp_path / f"site{len(started)}"
        workdir.mkdir()
        db_file = workdir / "p2p.db"
        all_settings = [
            f"database.url=sqlite:///{db_file}",
            f"jobs.embedded_broker_file={workdir / 'jobs-broker.db'}",
            f"jobs.beat_schedule_file={workdir / 'beat-schedule'}",
            *settings,
        ]
        run = processes.start_server("embedded", workdir, all_settings, operator=True)
        started.append(run)
        return Site(run.server, all_settings, db_file, workdir, processes)

    yield make
    for run in started:
        run.stop()


def test_a_worker_runs_a_job_handed_over_through_the_outbox(site, signup, identities) -> None:
    s = site("jobs.embedded_worker=false", "jobs.concurrency=1")
    listing = s.expired_listing(signup, identities)
    worker, log = s.start_worker("worker")
    try:
        done = s.cli("enqueue", "loan.close_expired")
        assert done.returncode == 0, done.stdout + done.stderr
        row_id = re.search(r"outbox row (\d+)", done.stdout).group(1)

        _wait(
            "the worker to close the listing",
            lambda: s.status(listing["loan_id"]) == "FAILED",
            logs=(log,),
        )
        text = log.read_text()
        assert f"Task loan.close_expired[outbox-{row_id}] succeeded" in text
        assert "ExpiredLoansVo(failed=1)" in text
        outbox = s.cli("outbox")
        assert outbox.returncode == 0, outbox.stdout
        assert "0 row(s) waiting" in outbox.stdout
    finally:
        worker.terminate()
        assert worker.wait(timeout=60) == 0


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_a_worker_exports_its_jobs_metrics_and_the_outbox_backlog(site, signup, identities) -> None:
    """`p2p worker` with jobs.metrics_port answers /metrics from its main process: the runs
    its pool processes counted (by job and outcome, with their durations) and the outbox's
    backlog read from the database at the scrape."""
    s = site("jobs.embedded_worker=false", "jobs.concurrency=2")
    listing = s.expired_listing(signup, identities)
    port = s.processes.free_port()
    directory = s.workdir / "job-metrics"
    worker, log = s.start_worker(
        "worker", f"jobs.metrics_port={port}", env={"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert _scrape(url)[("p2p_outbox_waiting", ())] == 0
        with sqlite3.connect(s.db_file) as conn:  # a row no commit handed over, 10 min late
            conn.execute(
                "INSERT INTO job_outbox (job, payload, created_at, available_at, attempts)"
                " VALUES ('outbox.sweep', '{}', datetime('now', '-11 minutes'),"
                " datetime('now', '-10 minutes'), 0)"
            )
        conn.close()
        samples = _scrape(url)
        assert samples[("p2p_outbox_waiting", ())] == 1
        assert 590 < samples[("p2p_outbox_oldest_due_seconds", ())] < 3600

        done = s.cli("enqueue", "loan.close_expired")
        assert done.returncode == 0, done.stdout + done.stderr
        job = ("name", "loan.close_expired")
        ran = ("p2p_jobs_total", (job, ("outcome", "succeeded")))
        _wait("the worker to count the job", lambda: _scrape(url).get(ran) == 1, logs=(log,))
        samples = _scrape(url)
        assert samples[("p2p_job_duration_seconds_count", (job,))] == 1
        assert s.status(listing["loan_id"]) == "FAILED"
        # The pool processes counted; the main process answers for them.
        writers = {
            int(m)
            for m in re.findall(r"counter_(\d+)\.db", " ".join(p.name for p in directory.iterdir()))
        }
        assert writers - {worker.pid}
    finally:
        worker.terminate()
        assert worker.wait(timeout=60) == 0


def test_serve_s_embedded_worker_exports_metrics_from_a_directory_of_its_own(site) -> None:
    """`p2p serve` gives its worker a temporary directory (it has none of its own to name)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site(f"jobs.metrics_port={port}")
    url = f"http://127.0.0.1:{port}/metrics"

    def answers() -> bool:
        try:
            return ("p2p_outbox_waiting", ()) in _scrape(url)
        except requests.RequestException:  # not listening yet
            return False

    _wait("the embedded worker's /metrics", answers)


def test_a_worker_without_a_metrics_directory_refuses_a_metrics_port(site) -> None:
    s = site("jobs.embedded_worker=false")
    done = s.cli("worker", "--set", f"jobs.metrics_port={s.processes.free_port()}")
    assert done.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stdout + done.stderr


def _embedded_worker_pid(server) -> int:
    found = re.search(r"embedded job worker started \(pid (\d+)\)", server.log_text())
    assert found, server.log_text()[-2000:]
    return int(found.group(1))


def test_serve_runs_its_own_worker_and_stops_it_with_itself(site, signup, identities) -> None:
    s = site()
    listing = s.expired_listing(signup, identities)
    child = _embedded_worker_pid(s.server)

    assert s.cli("enqueue", "loan.close_expired").returncode == 0
    _wait(
        "the embedded worker to close the listing",
        lambda: s.status(listing["loan_id"]) == "FAILED",
        logs=(s.server.log_path,),
    )

    s.server.proc.terminate()
    assert s.server.proc.wait(timeout=60) == 0
    assert not _alive(child)
    assert "embedded job worker stopped (0)" in s.server.log_text()


@pytest.mark.parametrize("when", ["starting", "ready"])
def test_a_killed_server_s_worker_stops_by_itself(site, when) -> None:
    s = site()
    child = _embedded_worker_pid(s.server)
    if when == "ready":
        _wait("the embedded worker to be ready", lambda: " ready." in s.server.log_text())
    # "starting": killed while the worker still builds its platform, before it watches

    s.server.proc.kill()
    s.server.proc.wait(timeout=15)

    _wait("the orphaned worker to stop", lambda: not _alive(child), timeout=60)
    assert "the process that started this worker is gone; stopping" in s.server.log_text()


@pytest.fixture
def redis_broker() -> Iterator[list[str]]:
    """Settings for a Redis broker on P2P_TEST_REDIS_URL under a prefix of this test's own, a
    short visibility timeout so a lost job comes back quickly; its keys removed afterwards."""
    url = os.environ.get("P2P_TEST_REDIS_URL")
    if not url:
        pytest.skip("the Redis broker needs P2P_TEST_REDIS_URL=redis://...")
    import redis

    prefix = f"p2p-e2e-jobs-{uuid.uuid4().hex[:8]}:"
    yield [
        f"jobs.broker_url={url}",
        f"jobs.broker_key_prefix={prefix}",
        f"jobs.visibility_timeout_seconds={VISIBILITY}",
        "jobs.retry_backoff_seconds=1",
        "jobs.retry_backoff_max_seconds=2",
        "jobs.max_eta_seconds=0",
    ]
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


VISIBILITY = 8


@pytest.mark.redis
def test_a_job_whose_worker_is_killed_mid_job_is_redelivered_and_happens_once(
    site, signup, identities, redis_broker
) -> None:
    s = site("jobs.embedded_worker=false", "jobs.concurrency=1", *redis_broker)
    listing = s.expired_listing(signup, identities, investment="500.00")
    done = s.cli("enqueue", "loan.close_expired")  # queued in Redis: no worker runs yet
    assert done.returncode == 0, done.stdout + done.stderr
    row_id = re.search(r"outbox row (\d+)", done.stdout)[1]
    task = f"loan.close_expired[outbox-{row_id}]"

    # Hold SQLite's write lock: the job reads the expired listing, then waits to write.
    holder = sqlite3.connect(s.db_file, isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        first, first_log = s.start_worker("worker-1")
        try:
            _wait("the job to start", lambda: f"Task {task} received" in first_log.read_text())
            time.sleep(1)  # into the job: it waits for the lock
        finally:
            os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, as the OOM killer would
            first.wait(timeout=15)
        killed_at = time.monotonic()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert f"Task {task} succeeded" not in first_log.read_text()
    assert s.status(listing["loan_id"]) == "RAISING"

    # Redis hands an unacknowledged job to a worker once the visibility timeout has passed.
    time.sleep(max(0.0, VISIBILITY + 1 - (time.monotonic() - killed_at)))
    second, second_log = s.start_worker("worker-2")
    try:
        _wait(
            "the redelivered job to close the listing",
            lambda: s.status(listing["loan_id"]) == "FAILED",
            logs=(second_log,),
        )
        _wait("the job to finish", lambda: f"Task {task} succeeded" in second_log.read_text())
    finally:
        second.terminate()
        second.wait(timeout=60)

    # Redelivered (the same task id, not a new hand-over) and applied once: one release of
    # the investment, the investor's money available again, the ledger balanced.
    assert second_log.read_text().count(f"Task {task} received") == 1
    with sqlite3.connect(s.db_file) as conn:
        releases = conn.execute(
            "SELECT COUNT(*) FROM posting WHERE business_type = 'FAIL' "
            "AND ref_type = 'investment' AND ref_id = ?",
            (listing["investment_id"],),
        ).fetchone()[0]
        dispatched = conn.execute("SELECT COUNT(*) FROM job_outbox").fetchone()[0]
    conn.close()
    assert releases == 1
    assert dispatched == 1
    account = s.api("GET", "/api/v1/accounts/me", listing["investor"]).json()
    assert (Decimal(account["available"]), Decimal(account["frozen"])) == (
        Decimal("500.00"),
        Decimal("0.00"),
    )
    ledger = s.cli("check-ledger")
    assert ledger.returncode == 0, ledger.stdout
