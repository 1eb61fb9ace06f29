"""Prometheus metrics: bounded labels, counts and outcomes, after-commit business counters,
and the multiprocess directory's housekeeping."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from server.dispatcher import Dispatcher, Invocation, standard_chain
from server.metrics import (
    JobWorkerExporter,
    Metrics,
    PlatformMetrics,
    prepare_directory,
    sweep_dead_workers,
)
from server.worker import _counter
from service import errors
from service.errors import BusinessError
from service.member import MemberService
from service.monitoring import OutboxBacklogVo
from service.p2p import LoanService
from service.security import Principal

PASSWORD = "Passw0rd-metrics"
ODD_ID = "987654321012"  # an id that must never show up in /metrics


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, parsed with prometheus-client's own parser."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests_total(samples, facade, operation, protocol, outcome) -> float:
    return value(
        samples,
        "p2p_requests_total",
        facade=facade,
        operation=operation,
        protocol=protocol,
        outcome=outcome,
    )


def label_values(samples) -> set[str]:
    return {v for _, labels in samples for _, v in labels}


def register_and_login(client, role: str, who=None) -> tuple[int, str]:
    """A member signed up as members do (a REGISTER code, read from the sandbox sender) and
    logged in; onboarded (real name, a card, a fund account) when `who` is an identity."""
    mobile = f"137{uuid.uuid4().int % 10**8:08d}"
    r = client.post("/api/v1/verification-codes", json={"mobile": mobile, "purpose": "REGISTER"})
    assert r.status_code == 201, r.get_data(as_text=True)
    sender = client.application.platform.components["verification"].sender
    body = {"mobile": mobile, "password": PASSWORD, "role": role}
    r = client.post(
        "/api/v1/members", json={**body, "verificationCode": sender.last_code(mobile, "REGISTER")}
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    r = client.post("/api/v1/sessions", json={"mobile": mobile, "password": PASSWORD})
    assert r.status_code == 201, r.get_data(as_text=True)
    member_id, token = r.json["memberId"], r.json["token"]
    if who is not None:
        onboard(client, token, mobile, who)
    return member_id, token


def onboard(client, token: str, mobile: str, who) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    identity = {"realName": who.real_name, "idNumber": who.id_number}
    r = client.post("/api/v1/members/current/identity", json=identity, headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    card = {"cardNumber": who.card_number, "bankName": "中国工商银行", "mobile": mobile}
    r = client.post("/api/v1/members/current/cards", json=card, headers=auth)
    assert r.status_code == 201, r.get_data(as_text=True)
    fund = {"cardId": r.json["cardId"]}
    r = client.post("/api/v1/members/current/fund-account", json=fund, headers=auth)
    assert r.status_code == 201, r.get_data(as_text=True)


def test_metrics_is_the_prometheus_text_format(client) -> None:
    samples = scrape(client)
    assert ("p2p_requests_in_flight", ()) in samples
    for pool in ("main", "reads"):  # database.pool_size's default, for each pool
        assert value(samples, "p2p_db_pool_size", pool=pool) == 10.0
        assert value(samples, "p2p_db_pool_max_connections", pool=pool) == 30.0


def test_an_unknown_path_counts_under_bounded_labels(client) -> None:
    assert client.get(f"/api/v1/nowhere/{ODD_ID}").status_code == 404
    soap = client.post(
        f"/services/Nowhere{ODD_ID}", data=b"<x/>", content_type="text/xml; charset=utf-8"
    )
    assert soap.status_code == 500
    samples = scrape(client)
    assert requests_total(samples, "-", "-", "rest", "UNKNOWN_OPERATION") == 1
    assert requests_total(samples, "-", "-", "soap", "UNKNOWN_OPERATION") == 1
    assert not any(ODD_ID in v or "nowhere" in v.lower() for v in label_values(samples))


def test_a_bad_id_and_a_business_error_keep_labels_bounded(client) -> None:
    assert client.get("/api/v1/loans/not-a-number").status_code == 404  # no such resource
    assert client.get("/api/v1/loans/0").status_code == 400
    assert client.get(f"/api/v1/loans/{ODD_ID}").status_code == 404
    assert client.get(f"/api/v1/loans/{ODD_ID}").status_code == 404
    samples = scrape(client)
    assert requests_total(samples, "-", "-", "rest", "UNKNOWN_OPERATION") == 1
    assert requests_total(samples, "LoanFacade", "getLoan", "rest", "VALIDATION_FAILED") == 1
    assert requests_total(samples, "LoanFacade", "getLoan", "rest", "LOAN_NOT_FOUND") == 2
    assert not any(ODD_ID in v or "not-a-number" in v for v in label_values(samples))
    outcomes = {v for _, labels in samples for k, v in labels if k == "outcome"}
    assert outcomes <= {"OK", *errors.CATALOGUE}


def test_counts_outcomes_durations_and_cache_lookups(client) -> None:
    member_id, token = register_and_login(client, "INVESTOR")
    assert client.get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {token}"}).json
    r = client.get("/api/v1/accounts/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    samples = scrape(client)
    assert requests_total(samples, "MemberFacade", "register", "rest", "OK") == 1
    assert requests_total(samples, "MemberFacade", "login", "rest", "OK") == 1
    assert requests_total(samples, "AccountFacade", "getAccount", "rest", "OK") == 1
    assert requests_total(samples, "AccountFacade", "getAccount", "rest", "UNAUTHENTICATED") == 1
    count = value(
        samples,
        "p2p_request_duration_seconds_count",
        facade="AccountFacade",
        operation="getAccount",
        protocol="rest",
    )
    assert count == 2
    assert value(samples, "p2p_cache_lookups_total", result="hit") == 1
    assert value(samples, "p2p_cache_lookups_total", result="miss") == 1
    assert value(samples, "p2p_requests_in_flight") == 0
    assert value(samples, "p2p_sql_statement_seconds_count") > 0
    assert value(samples, "p2p_db_pool_checkout_seconds_count") > 0
    assert str(member_id) not in label_values(samples)


def test_an_unexpected_exception_is_counted_by_type() -> None:
    metrics = PlatformMetrics()

    class Op:
        roles = None
        partner_scope = None
        facade_name, name = "FakeFacade", "explode"

        def invoke(self, args, principal, language):
            raise KeyError("boom")

    def resolve(inv):
        inv.operation = Op()
        return dict

    inv = Invocation("soap", "rid", "127.0.0.1", resolve)
    dispatcher = Dispatcher([Metrics(metrics), *standard_chain(None)])
    with pytest.raises(BusinessError):
        dispatcher.dispatch(inv)
    r = metrics.registry
    assert r.get_sample_value("p2p_exceptions_total", {"type": "builtins.KeyError"}) == 1
    labels = {"facade": "FakeFacade", "operation": "explode", "protocol": "soap"}
    assert r.get_sample_value("p2p_requests_total", {**labels, "outcome": "INTERNAL_ERROR"}) == 1
    assert r.get_sample_value("p2p_requests_in_flight") == 0


def test_the_in_flight_gauge_counts_a_call_while_it_runs() -> None:
    metrics = PlatformMetrics()
    seen = []

    def resolve(inv):
        raise BusinessError(errors.UNKNOWN_OPERATION)

    def peek(inv, proceed):
        seen.append(metrics.registry.get_sample_value("p2p_requests_in_flight"))
        return proceed(inv)

    with pytest.raises(BusinessError):
        Dispatcher([Metrics(metrics), peek, *standard_chain(None)]).dispatch(
            Invocation("rest", "rid", "127.0.0.1", resolve)
        )
    assert seen == [1]
    assert metrics.registry.get_sample_value("p2p_requests_in_flight") == 0


def test_business_counters_count_commits_only(client, make_client, identities) -> None:
    app_platform = client.application.platform
    members = app_platform.service(MemberService)
    loans = app_platform.service(LoanService)
    operator_mobile = f"139{uuid.uuid4().int % 10**8:08d}"
    members.create_operator(operator_mobile, PASSWORD)
    op_token = client.post(
        "/api/v1/sessions", json={"mobile": operator_mobile, "password": PASSWORD}
    ).json["token"]
    borrower_id, _ = register_and_login(client, "BORROWER", identities())
    investor_id, investor_token = register_and_login(client, "INVESTOR", identities())
    as_operator = {"Authorization": f"Bearer {op_token}"}
    terms = {
        "title": "Metrics",
        "description": "Counting.",
        "borrowerId": borrower_id,
        "amount": "10000.00",
        "annualRate": "9.5",
        "termMonths": 6,
        "repaymentMethod": "EQUAL_INSTALLMENT",
        "minInvest": "100.00",
        "maxInvestPerInvestor": "5000.00",
        "raiseDays": 10,
    }
    r = client.post("/api/v1/loans", json=terms, headers=as_operator)
    assert r.status_code == 201, r.get_data(as_text=True)
    loan_id = r.json["loanId"]
    bad = client.post("/api/v1/loans", json={**terms, "amount": "1.00"}, headers=as_operator)
    assert bad.status_code in (400, 422)
    r = client.post(f"/api/v1/loans/{loan_id}/audit", json={"approve": True}, headers=as_operator)
    assert r.status_code == 200, r.get_data(as_text=True)
    as_investor = {"Authorization": f"Bearer {investor_token}"}
    r = client.post(
        "/api/v1/payments/recharges",
        json={"amount": "3000.00", "requestNo": "rc-1"},
        headers=as_investor,
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    investor = Principal(member_id=investor_id, role="INVESTOR")

    def invest_then_fail() -> None:
        loans.invest(loan_id, Decimal("1000.00"), "rolled-back", investor)
        raise RuntimeError("the caller's transaction fails after the investment")

    with pytest.raises(RuntimeError):
        app_platform.tx.run(invest_then_fail)
    samples = scrape(client)
    assert value(samples, "p2p_invested_fen_total") == 0
    assert value(samples, "p2p_loans_published_total") == 1

    for _ in range(2):  # the repeat moves nothing and counts nothing
        r = client.post(
            f"/api/v1/loans/{loan_id}/investments",
            json={"amount": "1234.56", "requestNo": "inv-1"},
            headers=as_investor,
        )
        assert r.status_code == 201, r.get_data(as_text=True)
    assert value(scrape(client), "p2p_invested_fen_total") == 123456


def test_each_platform_keeps_its_own_registry() -> None:
    a, b = PlatformMetrics(), PlatformMetrics()
    a.loans_published.inc()
    assert a.registry.get_sample_value("p2p_loans_published_total") == 1
    assert b.registry.get_sample_value("p2p_loans_published_total") == 0


def test_the_reconciliation_s_figures_are_read_at_each_scrape() -> None:
    metrics = PlatformMetrics()
    figures = [({"BALANCE": 2, "STATUS": 0}, 5, 1, dt.date(2026, 12, 2))]
    metrics.watch_reconciliation(lambda: figures[-1])
    sample = metrics.registry.get_sample_value
    assert sample("p2p_reconciliation_open_discrepancies", {"category": "BALANCE"}) == 2
    assert sample("p2p_reconciliation_open_discrepancies", {"category": "STATUS"}) == 0
    assert sample("p2p_reconciliation_runs_total", {"result": "succeeded"}) == 5
    assert sample("p2p_reconciliation_runs_total", {"result": "failed"}) == 1
    midnight = dt.datetime(2026, 12, 2, tzinfo=dt.UTC).timestamp()
    assert sample("p2p_reconciliation_last_success_date") == midnight
    figures.append(({"BALANCE": 0}, 0, 0, None))  # nothing ever succeeded: no date at all
    assert sample("p2p_reconciliation_last_success_date") is None

    def unreachable():
        raise OSError("the database is down")

    broken = PlatformMetrics()
    broken.watch_reconciliation(unreachable)
    assert b"p2p_reconciliation" not in broken.render()  # the scrape still answers


# -- the multiprocess directory ----------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name != ".lock"}


def test_a_group_starting_afresh_wipes_the_directory(tmp_path: Path) -> None:
    dead = _dead_pid()
    for name in (f"counter_{dead}.db", f"gauge_livesum_{dead}.db", f"p2p-worker-{dead}.pid"):
        (tmp_path / name).write_bytes(b"")
    assert prepare_directory(tmp_path, os.getpid()) is True
    assert _files(tmp_path) == {f"p2p-worker-{os.getpid()}.pid"}


def test_a_worker_joining_live_siblings_keeps_dead_workers_counters(tmp_path: Path) -> None:
    dead, sibling = _dead_pid(), os.getppid()  # the parent is alive
    names = [
        f"counter_{dead}.db",
        f"histogram_{dead}.db",
        f"gauge_livesum_{dead}.db",
        f"gauge_liveall_{dead}.db",
        f"counter_{sibling}.db",
        f"gauge_livesum_{sibling}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    me = 4_000_000 + os.getpid() % 100_000  # a pid, as if reused, whose old gauges are stale
    (tmp_path / f"gauge_livesum_{me}.db").write_bytes(b"")
    assert prepare_directory(tmp_path, me) is False
    assert _files(tmp_path) == {
        f"counter_{dead}.db",
        f"histogram_{dead}.db",
        f"counter_{sibling}.db",
        f"gauge_livesum_{sibling}.db",
        f"p2p-worker-{me}.pid",
    }


def test_a_scrape_sweeps_the_gauges_of_dead_workers(tmp_path: Path) -> None:
    dead = _dead_pid()
    for name in (f"counter_{dead}.db", f"gauge_livesum_{dead}.db", f"p2p-worker-{dead}.pid"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / f"gauge_livesum_{os.getppid()}.db").write_bytes(b"")
    sweep_dead_workers(tmp_path)
    assert _files(tmp_path) == {f"counter_{dead}.db", f"gauge_livesum_{os.getppid()}.db"}


def parsed(body: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_a_job_worker_answers_its_directory_and_the_database_reads(tmp_path: Path) -> None:
    """The worker's /metrics: what its pool processes wrote in the directory, summed, and the
    outbox's backlog and the orders in doubt read at the scrape; a read that fails leaves its
    samples out and the scrape still answers."""
    failing = {"outbox": False}

    def backlog() -> OutboxBacklogVo:
        if failing["outbox"]:
            raise OSError("database unreachable")
        return OutboxBacklogVo(3, 12.5, 1)

    exporter = JobWorkerExporter(str(tmp_path), backlog, in_doubt=lambda: 2)
    samples = parsed(exporter.render())
    assert samples[("p2p_outbox_waiting", ())] == 3
    assert samples[("p2p_outbox_oldest_due_seconds", ())] == 12.5
    assert samples[("p2p_outbox_given_up", ())] == 1
    assert samples[("p2p_bank_orders_in_doubt", ())] == 2

    failing["outbox"] = True
    samples = parsed(exporter.render())
    assert ("p2p_outbox_waiting", ()) not in samples
    assert samples[("p2p_bank_orders_in_doubt", ())] == 2
    assert (
        "p2p_bank_orders_in_doubt"
        not in JobWorkerExporter(str(tmp_path), backlog).render().decode()
    )


def test_a_job_worker_sums_its_pool_processes_files(tmp_path: Path) -> None:
    """Two pool processes (here: two child interpreters in multiprocess mode) count runs of
    one job; the worker's scrape adds them up, and their durations too."""
    script = (
        "from server.metrics import PlatformMetrics\n"
        "m = PlatformMetrics()\n"
        "m.record_job('loan.close_expired', 'succeeded')\n"
        "m.record_job('loan.close_expired', 'retried')\n"
        "m.job_duration.labels('loan.close_expired').observe(0.2)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True)
    exporter = JobWorkerExporter(str(tmp_path), lambda: OutboxBacklogVo(0, 0.0, 0))
    samples = parsed(exporter.render())
    job = ("name", "loan.close_expired")
    assert samples[("p2p_jobs_total", (job, ("outcome", "succeeded")))] == 2
    assert samples[("p2p_jobs_total", (job, ("outcome", "retried")))] == 2
    assert samples[("p2p_job_duration_seconds_count", (job,))] == 2
    assert samples[("p2p_job_duration_seconds_bucket", (("le", "0.25"), job))] == 2


def test_a_job_worker_serves_metrics_over_http(tmp_path: Path) -> None:
    exporter = JobWorkerExporter(str(tmp_path), lambda: OutboxBacklogVo(1, 0.0, 0))
    port = _free_port()
    exporter.start("127.0.0.1", port)
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert parsed(answer.content)[("p2p_outbox_waiting", ())] == 1
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 404
    finally:
        exporter.stop()


def test_job_outcomes_are_bounded_and_counted_from_celerys_signals() -> None:
    metrics = PlatformMetrics()
    with pytest.raises(ValueError, match="unknown job outcome"):
        metrics.record_job("outbox.sweep", "lost")

    class Runtime:
        def count(self, job: str, outcome: str) -> None:
            metrics.record_job(job, outcome)

    class Task:
        def __init__(self, name: str) -> None:
            self.name = name

    failed = _counter(Runtime(), frozenset({"outbox.sweep"}), "failed")
    failed(sender=Task("outbox.sweep"), exception=RuntimeError("x"))
    failed(sender=Task("celery.backend_cleanup"))  # not one of ours: not counted
    failed(sender=None)
    registry = metrics.registry
    assert (
        registry.get_sample_value("p2p_jobs_total", {"name": "outbox.sweep", "outcome": "failed"})
        == 1
    )
    assert (
        registry.get_sample_value(
            "p2p_jobs_total", {"name": "celery.backend_cleanup", "outcome": "failed"}
        )
        is None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
