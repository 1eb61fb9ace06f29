"""/metrics as operations use it: two real workers sharing one PROMETHEUS_MULTIPROC_DIR add up,
a killed worker's counts stay and its in-flight calls leave the gauge, a real Prometheus
server scrapes it, and the shipped Prometheus configuration and alert rules are valid."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter

import pytest
import requests
import zeep
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ROOT, _free_port, start_server

ODD_ID = 987654321


def scrape(server) -> dict[tuple[str, tuple], float]:
    r = requests.get(server.url("/metrics"), timeout=10)
    assert r.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples


def request_counts(samples) -> Counter:
    counts = Counter()
    for (name, labels), v in samples.items():
        if name == "p2p_requests_total":
            d = dict(labels)
            counts[d["facade"], d["operation"], d["protocol"], d["outcome"]] += int(v)
    return counts


def in_flight(samples) -> float:
    return samples[("p2p_requests_in_flight", ())]


def rest_calls(server, list_calls: int, missing_calls: int, unknown_calls: int) -> None:
    for _ in range(list_calls):
        assert requests.get(server.url("/api/v1/loans"), timeout=10).status_code == 200
    for _ in range(missing_calls):
        r = requests.get(server.url(f"/api/v1/loans/{ODD_ID}"), timeout=10)
        assert r.status_code == 404
    for _ in range(unknown_calls):
        r = requests.get(server.url(f"/api/v1/nowhere/{ODD_ID}"), timeout=10)
        assert r.status_code == 404


def soap_calls(server, list_calls: int, missing_calls: int) -> None:
    loan = zeep.Client(server.url("/services/LoanFacade?wsdl")).service
    for _ in range(list_calls):
        loan.listLoans(page=1, pageSize=5)
    for _ in range(missing_calls):
        with pytest.raises(zeep.exceptions.Fault):
            loan.getLoan(loanId=ODD_ID)


@pytest.mark.slow
def test_two_workers_add_up_and_a_killed_one_still_counts(tmp_path, monkeypatch) -> None:
    metrics_dir = tmp_path / "prometheus-multiproc"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    db_file = tmp_path / "p2p.db"
    settings = [f"database.url=sqlite:///{db_file}"]
    a = start_server("embedded", tmp_path / "a", settings, operator=True)
    b = start_server("embedded", tmp_path / "b", settings, operator=False)
    try:
        assert not request_counts(scrape(a.server))  # the directory started empty
        rest_calls(a.server, list_calls=3, missing_calls=2, unknown_calls=0)
        rest_calls(b.server, list_calls=4, missing_calls=1, unknown_calls=2)
        soap_calls(a.server, list_calls=2, missing_calls=1)
        soap_calls(b.server, list_calls=1, missing_calls=3)
        expected = Counter(
            {
                ("LoanFacade", "listLoans", "rest", "OK"): 7,
                ("LoanFacade", "getLoan", "rest", "LOAN_NOT_FOUND"): 3,
                ("-", "-", "rest", "UNKNOWN_OPERATION"): 2,
                ("LoanFacade", "listLoans", "soap", "OK"): 3,
                ("LoanFacade", "getLoan", "soap", "LOAN_NOT_FOUND"): 4,
            }
        )
        from_a, from_b = scrape(a.server), scrape(b.server)
        assert request_counts(from_a) == expected
        assert request_counts(from_b) == expected
        assert in_flight(from_a) == 0

        # The held call must write, and a register without a valid code is refused before any
        # SQL: B sends a REGISTER code first (kept in B's own cache), read from B's SMS outbox
        # before the lock is taken. That call is counted with the others.
        mobile = "13611112222"
        sent = requests.post(
            b.server.url("/api/v1/verification-codes"),
            json={"mobile": mobile, "purpose": "REGISTER"},
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        expected["MemberFacade", "sendVerificationCode", "rest", "OK"] += 1
        body = {
            "mobile": mobile,
            "password": "Passw0rd-held",
            "role": "INVESTOR",
            "verificationCode": b.server.last_code(mobile, "REGISTER"),
        }

        # Hold SQLite's write lock, so that register on worker B waits inside the dispatcher.
        holder = sqlite3.connect(db_file, isolation_level=None, timeout=1)
        holder.execute("BEGIN IMMEDIATE")
        stuck = threading.Thread(
            target=_post_quietly,
            args=(b.server.url("/api/v1/members"), body),
            daemon=True,
        )
        stuck.start()
        deadline = time.monotonic() + 4
        while in_flight(scrape(a.server)) != 1:
            assert time.monotonic() < deadline, "the held call never showed as in flight"
            time.sleep(0.05)
        b.server.proc.send_signal(signal.SIGKILL)
        b.server.proc.wait(timeout=10)
        after = scrape(a.server)
        holder.execute("ROLLBACK")
        holder.close()
        stuck.join(timeout=10)
        assert in_flight(after) == 0
        assert request_counts(after) == expected  # B's counts outlive B
        assert not any(str(ODD_ID) in v for _, labels in after for _, v in labels)
        assert list(metrics_dir.glob("gauge_livesum_*.db")) == list(
            metrics_dir.glob(f"gauge_livesum_{a.server.proc.pid}.db")
        )
    finally:
        b.stop()
        a.stop()


def _post_quietly(url: str, body: dict) -> None:
    with contextlib.suppress(requests.ConnectionError):  # the worker is killed under it
        requests.post(url, json=body, timeout=30)


# -- a real Prometheus server --------------------------------------------------------------


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what} within {timeout:.0f} s")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus")
def test_a_real_prometheus_scrapes_a_worker(tmp_path) -> None:
    settings = [f"database.url=sqlite:///{tmp_path / 'p2p.db'}"]
    worker = start_server("embedded", tmp_path / "w", settings, operator=False)
    prom_log = (tmp_path / "prometheus.log").open("w")
    prom = None
    try:
        rest_calls(worker.server, list_calls=5, missing_calls=0, unknown_calls=0)
        port = _free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ROOT / "conf" / "alert-rules.yml")],
            "scrape_configs": [
                {
                    "job_name": "p2p",
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{worker.server.port}"],
                            "labels": {"machine": "test"},
                        }
                    ],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        prom = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=prom_log,
            stderr=subprocess.STDOUT,
        )
        api = f"http://127.0.0.1:{port}/api/v1"

        def query(expr: str):
            try:
                r = requests.get(f"{api}/query", params={"query": expr}, timeout=5)
            except requests.ConnectionError:
                return None
            return r.json()["data"]["result"] if r.status_code == 200 else None

        ok = 'p2p_requests_total{operation="listLoans",protocol="rest",outcome="OK"}'
        result = _wait_for(lambda: query(ok), 60, "Prometheus did not scrape the worker")
        assert [float(r["value"][1]) for r in result] == [5.0]
        assert result[0]["metric"]["machine"] == "test"
        assert query('up{job="p2p"}')[0]["value"][1] == "1"
        groups = requests.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        rules = [rule for g in groups for rule in g["rules"]]
        assert {"P2PWorkerDown", "P2PDatabasePoolExhausted"} <= {r["name"] for r in rules}
        assert all(r["health"] != "err" for r in rules), rules
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=15)
        prom_log.close()
        worker.stop()


# -- the shipped configuration ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian: prometheus)")
@pytest.mark.parametrize(
    "command",
    [
        ("check", "config", "conf/prometheus.yml"),
        ("check", "rules", "conf/alert-rules.yml"),
        # promtool's unit tests of the job workers' alerts: they fire when they should.
        ("test", "rules", "tests/e2e/prometheus/job-alerts.test.yml"),
    ],
)
def test_promtool_accepts_the_shipped_files(command: tuple[str, ...]) -> None:
    done = subprocess.run(
        ["promtool", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
