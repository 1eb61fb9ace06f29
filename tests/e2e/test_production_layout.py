"""The production layout on one machine, as shipped: supervisord (supervisor/supervisord.conf)
runs two waitress workers, HAProxy (lb/haproxy.cfg) balances them, Redis holds the tokens,
one database behind both (a SQLite file, or MariaDB when P2P_TEST_DATABASE_URL is set); beside
them supervisord runs the job workers and the one beat, on a Redis broker. The depository
is the bank simulator as a separate process (``p2p bank-sim``), as a real bank would be: money
moves when it notifies the workers through the balancer.

The shipped files are what is tested: they are copied into a temporary deploy root with only
ports replaced (each replacement must match exactly once, so an edit to the shipped files
that this test no longer fits fails here instead of going untested).

The client calls from 127.0.0.3 (its socket bound there), HAProxy connects to the workers
from 127.0.0.1: the `client` the workers log (as JSON, conf/production.toml) must be the former.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import zeep
from requests.adapters import HTTPAdapter
from zeep.transports import Transport

from tests.banksupport import (
    BANK_KEY_ID,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
    BankSim,
    start_bank_sim,
)

pytestmark = pytest.mark.slow

CLIENT_ADDR = "127.0.0.3"
WORKERS = 2
LOAD_THREADS = 4
JOB_INTERVAL = 2
VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    here = VENV_BIN / name
    return str(here) if here.exists() else shutil.which(name)


HAPROXY = shutil.which("haproxy")
SUPERVISORD = _tool("supervisord")
SUPERVISORCTL = _tool("supervisorctl")

if not HAPROXY:
    pytest.skip("haproxy is not installed (apt-get install haproxy)", allow_module_level=True)
if not SUPERVISORD or not SUPERVISORCTL:
    pytest.skip(
        "supervisord is not installed in the virtualenv (pip install -e '.[deploy]')",
        allow_module_level=True,
    )


class _FromClientAddress(HTTPAdapter):
    """Connections from CLIENT_ADDR, so the real client is told apart from the balancer."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (CLIENT_ADDR, 0)
        super().init_poolmanager(*args, **kwargs)


def client_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FromClientAddress())
    return session


def _free_port_pair_ending_in_0_and_1() -> int:
    """A port ending in 0, free with the next one: the job workers' ports are the shipped
    prefix followed by supervisord's process_num (0, 1)."""
    for _ in range(200):
        base = _consecutive_free_ports(11)
        port = base + (-base % 10)
        if port + 1 < base + 11 and port + 1 <= 65535:
            return port
    raise RuntimeError("no free pair of ports ending in 0 and 1")


def _consecutive_free_ports(count: int) -> int:
    """A base port such that base .. base+count-1 are free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no run of free consecutive ports found")


def _replace_once(text: str, old: str, new: str, name: str) -> str:
    assert text.count(old) == 1, f"{name}: expected {old!r} exactly once; update this test"
    return text.replace(old, new)


def _wait(what: str, check, timeout: float = 30.0, logs=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
    pytest.fail(f"timed out waiting for {what}\n{tails}")


# -- the layout --------------------------------------------------------------------------------


@dataclass
class Layout:
    home: Path
    conf: Path
    env: dict
    lb: str
    stats: str
    ports: list[int]
    database_url: str
    supervisord: subprocess.Popen
    haproxy: subprocess.Popen
    haproxy_log: Path
    outbox: Path  # the workers' SMS outbox: the codes the SANDBOX sender "sent"
    bank: BankSim
    logs: dict[int, Path] = field(default_factory=dict)
    job_metrics: list[str] = field(default_factory=list)  # each job worker's /metrics

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [SUPERVISORCTL, "-c", str(self.conf), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        return done.stdout.strip()

    def pid(self, port: int) -> int:
        out = self.ctl("pid", f"p2p:p2p-{port}")
        return int(out) if out.isdigit() else 0

    def worker_health(self, port: int) -> int:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code

    def lb_status(self) -> dict[str, str]:
        """HAProxy's view of each worker (UP, DOWN, ...) from the stats page's CSV."""
        text = requests.get(self.stats + "/stats;csv", timeout=5).text.lstrip("# ")
        return {
            row["svname"]: row["status"]
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "p2p_workers" and row["svname"].startswith("p2p-")
        }

    def all_logs(self) -> list[Path]:
        return [*self.logs.values(), self.haproxy_log, self.home / "var/log/supervisord.log"]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """P2P_TEST_REDIS_URL, or a private redis-server: tokens must be shared by the workers."""
    url = os.environ.get("P2P_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("the layout needs Redis: set P2P_TEST_REDIS_URL or install redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    with (workdir / "redis.log").open("w") as log:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    import redis

    client = redis.Redis(port=port)
    _wait("redis-server", lambda: _ping(client), timeout=15)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=15)


def _delete_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


def _ping(client) -> bool:
    import redis

    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="module")
def database_url(tmp_path_factory) -> Iterator[str]:
    raw = os.environ.get("P2P_TEST_DATABASE_URL")
    if not raw:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'p2p.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(raw)
    if url.get_backend_name() != "mysql" or not (url.database or "").startswith("p2p_test"):
        pytest.fail("P2P_TEST_DATABASE_URL must be a mysql URL of a database named p2p_test*")
    name = f"{url.database}_layout"
    admin = create_engine(url.set(database=""), poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(scope="module")
def layout(tmp_path_factory, processes, redis_url, database_url) -> Iterator[Layout]:
    root: Path = processes.root
    home = tmp_path_factory.mktemp("deploy")
    for sub in ("var/log", "var/run", "var/prometheus", ".venv/bin", "supervisor"):
        (home / sub).mkdir(parents=True)
    # What `pip install` puts in a virtualenv: the p2p console script.
    p2p = home / ".venv/bin/p2p"
    p2p.write_text(
        f"#!{sys.executable}\nimport sys\nfrom server.cli import main\nsys.exit(main())\n"
    )
    p2p.chmod(0o755)

    base = _consecutive_free_ports(WORKERS)
    ports = list(range(base, base + WORKERS))
    lb_port, stats_port = processes.free_port(), processes.free_port()

    conf = home / "supervisor/supervisord.conf"
    text = (root / "supervisor/supervisord.conf").read_text()
    text = _replace_once(
        text,
        "numprocs=2\nnumprocs_start=8081\n",
        f"numprocs={WORKERS}\nnumprocs_start={base}\n",
        "supervisord.conf",
    )
    jobs_port = _free_port_pair_ending_in_0_and_1()
    text = _replace_once(
        text,
        "--set jobs.metrics_port=918%(process_num)d",
        f"--set jobs.metrics_port={jobs_port // 10}%(process_num)d",
        "supervisord.conf",
    )
    conf.write_text(text)

    cfg = home / "haproxy.cfg"
    text = (root / "lb/haproxy.cfg").read_text()
    text = _replace_once(text, "bind 127.0.0.1:8080", f"bind 127.0.0.1:{lb_port}", "haproxy.cfg")
    text = _replace_once(text, "bind 127.0.0.1:8404", f"bind 127.0.0.1:{stats_port}", "haproxy")
    for shipped, port in zip((8081, 8082), ports, strict=True):
        text = _replace_once(
            text,
            f"server p2p-{shipped} 127.0.0.1:{shipped}",
            f"server p2p-{port} 127.0.0.1:{port}",
            "haproxy.cfg",
        )
    cfg.write_text(text)

    # Layered over conf/production.toml, which supervisord.conf selects: this machine's
    # database and Redis, the balancer's address taken from its headers, fast hashing.
    # The job engine on the same Redis under a prefix of its own; beat closes expired listings
    # every JOB_INTERVAL seconds, so the test need not wait ten minutes.
    secrets = home / "p2p.toml"
    run = uuid.uuid4().hex[:8]
    sim = start_bank_sim(home / "bank", "--delay", "0.2", "--auto-authorize")
    platform_key = home / "bank/platform.pem"
    platform_key.write_bytes(PLATFORM_PRIVATE)
    platform_key.chmod(0o600)
    secrets.write_text(
        f'[server]\npublic_url = ""\ntrusted_proxies = ["127.0.0.1"]\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[cache]\nurl = "{redis_url}"\nkey_prefix = "p2p-layout-{run}:"\n'
        "[security]\nargon2_time_cost = 1\nargon2_memory_kib = 8192\nargon2_parallelism = 1\n"
        f'[jobs]\nbroker_url = "{redis_url}"\nbroker_key_prefix = "p2p-layout-jobs-{run}:"\n'
        f'schedule = {{ "loan.close_expired" = {JOB_INTERVAL}, "outbox.sweep" = 30,'
        f' "bank.query_due" = {JOB_INTERVAL} }}\n'
        f'[bank]\nurl = "{sim.url}"\nmerchant_id = "{MERCHANT}"\n'
        f'platform_key_id = "{PLATFORM_KEY_ID}"\nplatform_private_key = "{platform_key}"\n'
        f'bank_public_keys = {{ "{BANK_KEY_ID}" = "{home / "bank/bank.pub.pem"}" }}\n'
        f'notify_url = "http://127.0.0.1:{lb_port}/bank/notify"\nquery_first_after_seconds = 5\n'
    )
    env = processes.env()
    env["P2P_CONFIG"] = str(secrets)
    # As an operator sets them outside every file: the key that seals personal data
    # (real-name verification, cards), and, production having no outbox, one for this test
    # to read the workers' verification codes from.
    env["P2P_SECURITY_SECRET_KEY"] = base64.b64encode(os.urandom(32)).decode()
    outbox = home / "var/sms-outbox.jsonl"
    env["P2P_VERIFICATION_OUTBOX_FILE"] = str(outbox)

    with (home / "var/log/migrate.log").open("w") as log:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "server.cli",
                "migrate",
                "--set",
                f"database.url={database_url}",
            ],
            cwd=root,
            env=processes.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, (home / "var/log/migrate.log").read_text()

    haproxy_log = home / "var/log/haproxy.log"
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with haproxy_log.open("w") as log:
        haproxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(cfg)], cwd=home, stdout=log, stderr=subprocess.STDOUT
        )
    # -n: in the foreground, so this test owns it; its own log goes to var/log as configured.
    supervisord = subprocess.Popen(
        [SUPERVISORD, "-n", "-c", str(conf)],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result = Layout(
        home=home,
        conf=conf,
        env=env,
        lb=f"http://127.0.0.1:{lb_port}",
        stats=f"http://127.0.0.1:{stats_port}",
        ports=ports,
        database_url=database_url,
        supervisord=supervisord,
        haproxy=haproxy,
        haproxy_log=haproxy_log,
        outbox=outbox,
        bank=sim,
        logs={p: home / f"var/log/p2p-{p}.log" for p in ports},
        job_metrics=[f"http://127.0.0.1:{jobs_port + n}/metrics" for n in range(2)],
    )
    try:
        _wait(
            "both workers UP behind HAProxy",
            lambda: set(result.lb_status().values()) == {"UP"} and len(result.lb_status()) == 2,
            timeout=60,
            logs=result.all_logs(),
        )
        yield result
    finally:
        if supervisord.poll() is None:
            supervisord.send_signal(signal.SIGTERM)  # stops the workers with SIGTERM first
            try:
                supervisord.wait(timeout=90)
            except subprocess.TimeoutExpired:
                supervisord.kill()
        haproxy.terminate()
        haproxy.wait(timeout=15)
        sim.stop()
        _delete_keys(redis_url, f"p2p-layout-jobs-{run}:")


# -- the calls ---------------------------------------------------------------------------------


def _last_code(outbox: Path, mobile: str, purpose: str) -> str:
    found = [
        line["code"]
        for line in map(json.loads, outbox.read_text(encoding="utf-8").splitlines())
        if (line["mobile"], line["purpose"]) == (mobile, purpose)
    ]
    assert found, f"no {purpose} code in the workers' outbox"
    return found[-1]


def _register_and_login(
    session: requests.Session, layout: Layout, role: str, who
) -> tuple[int, str]:
    """Through the balancer, as a member signs up: a REGISTER code (read from the workers'
    outbox), registration, login, then real-name verification, a card and a fund account
    with `who`'s made-up identity, so the member may move money."""
    lb, mobile = layout.lb, f"136{uuid.uuid4().int % 10**8:08d}"
    password = "Passw0rd" + uuid.uuid4().hex[:6]
    r = session.post(
        lb + "/api/v1/verification-codes", json={"mobile": mobile, "purpose": "REGISTER"}
    )
    assert r.status_code == 201, r.text
    code = _last_code(layout.outbox, mobile, "REGISTER")
    body = {"mobile": mobile, "password": password, "role": role, "verificationCode": code}
    r = session.post(lb + "/api/v1/members", json=body)
    assert r.status_code == 201, r.text
    r = session.post(lb + "/api/v1/sessions", json={"mobile": mobile, "password": password})
    assert r.status_code == 201, r.text
    member_id, token = r.json()["memberId"], r.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    identity = {"realName": who.real_name, "idNumber": who.id_number}
    r = session.post(lb + "/api/v1/members/current/identity", json=identity, headers=auth)
    assert r.status_code == 200, r.text
    card = {"cardNumber": who.card_number, "bankName": "中国工商银行", "mobile": mobile}
    r = session.post(lb + "/api/v1/members/current/cards", json=card, headers=auth)
    assert r.status_code == 201, r.text
    fund = {"cardId": r.json()["cardId"]}
    r = session.post(lb + "/api/v1/members/current/fund-account", json=fund, headers=auth)
    assert r.status_code == 201, r.text
    _wait(
        "the bank to open the fund account",
        lambda: (
            session.get(lb + "/api/v1/members/current/fund-account", headers=auth).json()["status"]
            == "OPEN"
        ),
        logs=layout.all_logs(),
    )
    return member_id, token


def _available(session: requests.Session, layout: Layout, token: str) -> Decimal:
    r = session.get(layout.lb + "/api/v1/accounts/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return Decimal(r.json()["available"])


def test_soap_and_rest_through_the_balancer_see_the_real_client(layout, identities) -> None:
    session = client_session()
    _, token = _register_and_login(session, layout, "INVESTOR", identities())

    # The WSDL, fetched through the balancer, names the balancer as the endpoint.
    transport = Transport(session=session)
    pay = zeep.Client(layout.lb + "/services/PaymentFacade?wsdl", transport=transport)
    acc = zeep.Client(layout.lb + "/services/AccountFacade?wsdl", transport=transport)
    for client, facade in ((pay, "PaymentFacade"), (acc, "AccountFacade")):
        address = client.service._binding_options["address"]
        assert address == f"{layout.lb}/services/{facade}"

    auth = {"_soapheaders": {"auth": {"token": token}}}
    total = Decimal("0")
    for i in range(6):  # both workers serve some: leastconn rotates among equally loaded ones
        amount = Decimal(f"{i + 1}.25")
        order = pay.service.recharge(amount=amount, requestNo=f"soap-{uuid.uuid4().hex}", **auth)
        assert (order.type, order.status) == ("RECHARGE", "PENDING")
        total += amount
        _wait(
            "the bank to complete the recharge",
            lambda: _available(session, layout, token) == total,  # noqa: B023
            logs=layout.all_logs(),
        )
    assert acc.service.getAccount(**auth).available == total

    for port, log in layout.logs.items():
        # conf/production.toml logs JSON: every line of a worker's log is one object.
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        calls = [e for e in entries if e["logger"] == "server.access" and e["facade"] != "-"]
        assert calls, f"worker {port} served no call"
        assert {e["client"] for e in calls} == {CLIENT_ADDR}, calls[-5:]
        assert all(e["requestId"] and e["durationMs"] >= 0 for e in calls), calls[-5:]


@dataclass
class _Load:
    session_token: str
    lb: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, Decimal] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)
    failures: list[tuple[float, str, str]] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)

    def run(self, thread_no: int) -> None:
        session = client_session()
        headers = {"Authorization": f"Bearer {self.session_token}"}
        n = 0
        while not self.stop.is_set():
            n += 1
            no = f"load-{thread_no}-{n}-{uuid.uuid4().hex[:8]}"
            amount = Decimal(f"{thread_no + 1}.{n % 100:02d}")
            for _attempt in range(30):
                # The same requestNo on every attempt: the service applies it once.
                try:
                    r = session.post(
                        self.lb + "/api/v1/payments/recharges",
                        json={"amount": str(amount), "requestNo": no},
                        headers=headers,
                        timeout=30,
                    )
                    if r.status_code == 201 and r.json()["status"] in ("PENDING", "SUCCESS"):
                        with self.lock:
                            self.acked[no] = amount
                            self.ack_times.append(time.monotonic())
                        break
                    outcome = f"HTTP {r.status_code} {r.text[:120]}"
                except requests.RequestException as e:
                    outcome = type(e).__name__
                with self.lock:
                    self.failures.append((time.monotonic(), no, outcome))
                time.sleep(0.1)
            else:
                with self.lock:
                    self.gave_up.append(no)

    def acks_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for x in self.ack_times if x > t)


def test_a_worker_killed_mid_load_loses_nothing(layout, identities) -> None:
    session = client_session()
    member_id, token = _register_and_login(session, layout, "INVESTOR", identities())
    load = _Load(token, layout.lb)
    threads = [threading.Thread(target=load.run, args=(i,)) for i in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    victim = layout.ports[0]
    try:
        _wait("the load to get going", lambda: load.acks_since(0) >= 20, logs=layout.all_logs())
        old_pid = layout.pid(victim)
        assert old_pid > 0
        log_size = layout.logs[victim].stat().st_size
        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)

        # The balancer routes around it: calls keep being acknowledged.
        _wait(
            "calls to succeed after the kill",
            lambda: load.acks_since(killed_at) >= 30,
            logs=layout.all_logs(),
        )
        # supervisord restarts it; it answers /health; HAProxy takes it back; it serves again.
        _wait(
            "supervisord to restart the killed worker",
            lambda: layout.pid(victim) not in (0, old_pid) and layout.worker_health(victim) == 200,
            timeout=60,
            logs=layout.all_logs(),
        )
        _wait(
            "HAProxy to mark it UP again",
            lambda: layout.lb_status()[f"p2p-{victim}"] == "UP",
            logs=layout.all_logs(),
        )

        def served_again() -> bool:
            with layout.logs[victim].open("rb") as f:
                f.seek(log_size)
                return b"PaymentFacade.recharge OK" in f.read()

        _wait("the restarted worker to serve calls", served_again, logs=layout.all_logs())
    finally:
        load.stop.set()
        for t in threads:
            t.join(timeout=120)

    assert not load.gave_up, load.gave_up
    # Only the calls in flight on the killed worker fail: HAProxy answers 502, or, on a
    # kept-alive client connection, closes it without an answer (ConnectionError) as HTTP
    # allows. Calls that find the worker gone are redispatched by HAProxy: a refused
    # connection sent nothing, so nothing can be applied twice.
    after_kill = [f for f in load.failures if f[0] >= killed_at]
    assert after_kill == load.failures, "calls failed before the kill"
    assert len({no for _, no, _ in after_kill}) <= LOAD_THREADS, after_kill
    kinds = ("HTTP 502", "HTTP 503", "ConnectionError")
    assert all(f[2].startswith(kinds) for f in load.failures), load.failures

    # Every acknowledged recharge is stored exactly once; nothing unacknowledged is stored.
    from sqlalchemy import create_engine, text

    engine = create_engine(layout.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT request_no, COUNT(*), SUM(amount) FROM payment_order"
                " WHERE member_id = :m AND type = 'RECHARGE' GROUP BY request_no"
            ),
            {"m": member_id},
        ).all()
    engine.dispose()
    stored = {no: (count, total) for no, count, total in rows}
    assert set(stored) == set(load.acked)
    assert all(count == 1 for count, _ in stored.values())
    # amounts are integer fen in the database
    assert all(
        Decimal(total) == amt * 100
        for (_, total), amt in zip(
            (stored[no] for no in load.acked), load.acked.values(), strict=True
        )
    )
    # The bank completes every accepted recharge, its notifications reaching a worker through
    # the balancer (one sent to the killed worker is delivered again), exactly once each.
    _wait(
        "the bank to complete every acknowledged recharge",
        lambda: _available(session, layout, token) == sum(load.acked.values()),
        timeout=120,
        logs=layout.all_logs(),
    )
    retried = {f[1] for f in load.failures}
    print(
        f"\n{len(load.acked)} recharges acknowledged, {len(load.failures)} failed attempts "
        f"({len(after_kill)} after the kill), {len(retried)} requestNos retried, "
        "each stored once"
    )

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "check-ledger",
            "--set",
            f"database.url={layout.database_url}",
        ],
        cwd=layout.home,
        env={**layout.env, "P2P_ENV": "test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _operator_token(session: requests.Session, layout: Layout) -> str:
    """An operator, created with `p2p create-operator` as an administrator does, logged in."""
    mobile, password = f"139{uuid.uuid4().int % 10**8:08d}", "Operator123"
    done = subprocess.run(
        [sys.executable, "-m", "server", "create-operator", f"--mobile={mobile}"],
        cwd=layout.home,
        env={**layout.env, "P2P_ENV": "production"},
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    r = session.post(layout.lb + "/api/v1/sessions", json={"mobile": mobile, "password": password})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_beat_and_the_job_workers_close_an_expired_listing(layout, identities) -> None:
    """Nobody calls closeExpiredLoans: beat sends the periodic job, a job worker runs it."""
    status = layout.ctl("status")
    assert status.count("p2p-worker:p2p-worker-") == 2, status
    assert all(
        "RUNNING" in line
        for line in status.splitlines()
        if line.startswith(("p2p-worker", "p2p-beat"))
    ), status

    session = client_session()
    auth = {"Authorization": f"Bearer {_operator_token(session, layout)}"}
    borrower_id, _ = _register_and_login(session, layout, "BORROWER", identities())
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
    r = session.post(layout.lb + "/api/v1/loans", json=terms, headers=auth)
    assert r.status_code == 201, r.text
    loan_id = r.json()["loanId"]
    r = session.post(
        f"{layout.lb}/api/v1/loans/{loan_id}/audit", json={"approve": True}, headers=auth
    )
    assert r.json()["status"] == "RAISING", r.text

    # Its raising period ends (ten days pass in the database).
    from sqlalchemy import create_engine, text

    engine = create_engine(layout.database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE loan SET raise_deadline = :past WHERE id = :id"),
            {"past": "2020-01-01 00:00:00", "id": loan_id},
        )
    engine.dispose()

    def failed() -> bool:
        r = session.get(f"{layout.lb}/api/v1/loans/{loan_id}", headers=auth)
        return r.json()["status"] == "FAILED"

    worker_logs = [layout.home / f"var/log/p2p-worker-{n}.log" for n in range(2)]
    beat_log = layout.home / "var/log/p2p-beat.log"
    _wait(
        "beat and a job worker to close the listing",
        failed,
        timeout=60,
        logs=[*worker_logs, beat_log],
    )
    assert "Sending due task loan.close_expired" in beat_log.read_text()
    ran = "".join(log.read_text(errors="replace") for log in worker_logs)
    assert re.search(
        r"Task loan\.close_expired\[[^]]+\] succeeded .*ExpiredLoansVo\(failed=1\)", ran
    )
    # Both job workers share the machine's job metrics directory: each answers its totals.
    ran_once = 'p2p_jobs_total{name="loan.close_expired",outcome="succeeded"}'
    for url in layout.job_metrics:
        body = requests.get(url, timeout=10).text
        assert ran_once in body and "p2p_outbox_waiting" in body, body[-2000:]


# -- SIGKILL in the middle of the bank's work ----------------------------------------------


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a job worker and its pool processes), from /proc."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(c) for c in children)
    return found


def _kill_and_wait_for_restart(layout: Layout, programs: list[str]) -> None:
    """SIGKILL each supervisord program in ``programs`` with all its processes, then wait
    until supervisord has them RUNNING under new pids."""
    old = {name: int(layout.ctl("pid", name)) for name in programs}
    for pid in old.values():
        for p in _process_tree(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)

    def restarted() -> bool:
        for name, pid in old.items():
            now = layout.ctl("pid", name)
            if not now.isdigit() or int(now) in (0, pid):
                return False
        return all("RUNNING" in layout.ctl("status", name) for name in programs)

    _wait("supervisord to restart what was killed", restarted, timeout=90, logs=layout.all_logs())


def _recharge_postings(layout: Layout, order_no: str) -> list[tuple[str, int]]:
    """The postings of the payment order ``order_no``: (business type, count)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(layout.database_url)
    try:
        with engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    text(
                        "SELECT p.business_type, COUNT(*) FROM posting p JOIN payment_order o"
                        " ON p.ref_id = o.id AND p.ref_type = 'PAYMENT_ORDER'"
                        " WHERE o.order_no = :no GROUP BY p.business_type"
                    ),
                    {"no": order_no},
                )
            ]
    finally:
        engine.dispose()


def test_a_web_worker_killed_mid_notification_applies_it_once_after_restart(
    layout, identities
) -> None:
    """The bank's notification reaches a web worker, which is SIGKILLed while it applies it
    (held, inside its transaction, by a lock this test takes on the member's ledger
    account): nothing of it commits, the bank delivers it again, and it is applied once."""
    if not layout.database_url.startswith("mysql"):
        pytest.skip("holding a worker inside its transaction needs MariaDB's row locks")
    from sqlalchemy import create_engine, text

    session = client_session()
    member_id, token = _register_and_login(session, layout, "INVESTOR", identities())
    engine = create_engine(layout.database_url)
    blocker = engine.connect()
    try:
        blocker.execute(text("SET SESSION innodb_lock_wait_timeout = 120"))  # autobegins
        blocker.execute(
            text("SELECT id FROM account WHERE member_id = :m FOR UPDATE"), {"m": member_id}
        )
        r = session.post(
            layout.lb + "/api/v1/payments/recharges",
            json={"amount": "88.80", "requestNo": f"kill-{uuid.uuid4().hex}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201 and r.json()["status"] == "PENDING", r.text
        order_no = r.json()["orderNo"]

        def waiting() -> bool:  # a worker applies the notification and waits for the lock
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT COUNT(*) FROM information_schema.innodb_trx"
                            " WHERE trx_state = 'LOCK WAIT'"
                        )
                    ).scalar()
                )

        _wait("a worker to apply the notification", waiting, logs=layout.all_logs())
        _kill_and_wait_for_restart(layout, [f"p2p:p2p-{port}" for port in layout.ports])
    finally:
        blocker.rollback()
        blocker.close()
        engine.dispose()

    _wait(
        "the bank's next delivery to be applied",
        lambda: _available(session, layout, token) == Decimal("88.80"),
        timeout=120,
        logs=layout.all_logs(),
    )
    assert _recharge_postings(layout, order_no) == [("RECHARGE", 1)]


def test_a_job_worker_killed_mid_send_loses_and_repeats_nothing(layout, identities) -> None:
    """The bank moves a recharge's money and does not answer (timeout_after_moving); while
    the job worker waits for that answer, every job worker is SIGKILLed. The order was
    recorded SENT before the call, so after the restart the platform learns the outcome (the
    bank's notification, or the query on doubt) and applies it once; the bank holds one
    order."""
    session = client_session()
    _, token = _register_and_login(session, layout, "INVESTOR", identities())
    fault = {"orderType": "RECHARGE", "fault": "timeout_after_moving", "count": 1}
    assert layout.bank.admin("POST", "/admin/faults", json=fault).ok
    r = session.post(
        layout.lb + "/api/v1/payments/recharges",
        json={"amount": "66.60", "requestNo": f"kill-{uuid.uuid4().hex}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201 and r.json()["status"] == "PENDING", r.text
    order_no = r.json()["orderNo"]

    def at_the_bank() -> list:
        return layout.bank.admin("GET", f"/admin/orders?orderNo={order_no}").json()["orders"]

    _wait("the bank to take the order", at_the_bank, logs=layout.all_logs())
    _kill_and_wait_for_restart(layout, ["p2p-worker:p2p-worker-0", "p2p-worker:p2p-worker-1"])

    _wait(
        "the platform to learn the outcome",
        lambda: _available(session, layout, token) == Decimal("66.60"),
        timeout=120,
        logs=layout.all_logs(),
    )
    assert _recharge_postings(layout, order_no) == [("RECHARGE", 1)]
    assert len(at_the_bank()) == 1


def _call(session: requests.Session, layout: Layout, token: str, path: str, body=None) -> dict:
    """A REST call through the balancer: POST ``body`` when given, else GET; its answer."""
    headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        r = session.get(layout.lb + path, headers=headers)
    else:
        r = session.post(layout.lb + path, json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_a_job_worker_killed_mid_batch_payout_lends_each_investment_once(
    layout, identities
) -> None:
    """A listing's DISBURSE batch: the bank lends every item and does not answer
    (timeout_after_moving); while the job worker waits for that answer, every job worker is
    SIGKILLed. After the restart the platform learns each item's outcome (the bank's
    notifications, or the query on doubt) and lends each investment exactly once."""
    session = client_session()
    operator = _operator_token(session, layout)
    borrower_id, _ = _register_and_login(session, layout, "BORROWER", identities())
    investors = []
    for amount in ("600.00", "400.00"):
        _, token = _register_and_login(session, layout, "INVESTOR", identities())
        _call(
            session,
            layout,
            token,
            "/api/v1/payments/recharges",
            {"amount": amount, "requestNo": "f"},
        )
        _wait(
            "the bank to fund the investor",
            lambda t=token, a=amount: _available(session, layout, t) == Decimal(a),
            logs=layout.all_logs(),
        )
        investors.append((token, amount))
    terms = {
        "title": "Lent while a job worker dies",
        "description": "A DISBURSE batch interrupted by SIGKILL.",
        "borrowerId": borrower_id,
        "amount": "1000.00",
        "annualRate": "12",
        "termMonths": 3,
        "repaymentMethod": "EQUAL_INSTALLMENT",
        "minInvest": "100.00",
        "raiseDays": 10,
    }
    loan_id = _call(session, layout, operator, "/api/v1/loans", terms)["loanId"]
    _call(session, layout, operator, f"/api/v1/loans/{loan_id}/audit", {"approve": True})
    for token, amount in investors:
        path = f"/api/v1/loans/{loan_id}/investments"
        _call(session, layout, token, path, {"amount": amount, "requestNo": "inv"})
    loan = f"/api/v1/loans/{loan_id}"
    _wait(
        "the bank to freeze the investments",
        lambda: _call(session, layout, operator, loan)["status"] == "FULL",
        logs=layout.all_logs(),
    )

    fault = {"orderType": "DISBURSE", "fault": "timeout_after_moving", "count": 1}
    assert layout.bank.admin("POST", "/admin/faults", json=fault).ok
    lent = _call(session, layout, operator, f"{loan}/disbursement", {"requestNo": "lend"})
    assert lent["status"] == "DISBURSING"

    def lent_at_the_bank() -> list:
        orders = layout.bank.admin("GET", "/admin/orders").json()["orders"]
        return [o for o in orders if o["orderType"] == "DISBURSE"]

    _wait(
        "the bank to take the batch", lambda: len(lent_at_the_bank()) == 2, logs=layout.all_logs()
    )
    _kill_and_wait_for_restart(layout, ["p2p-worker:p2p-worker-0", "p2p-worker:p2p-worker-1"])

    _wait(
        "the platform to learn every item's outcome",
        lambda: _call(session, layout, operator, loan)["status"] == "REPAYING",
        timeout=120,
        logs=layout.all_logs(),
    )
    assert sorted(o["status"] for o in lent_at_the_bank()) == ["SUCCEEDED", "SUCCEEDED"]
    for token, _ in investors:
        mine = _call(session, layout, token, "/api/v1/accounts/me")
        assert (mine["available"], mine["frozen"]) == ("0.00", "0.00")

    from sqlalchemy import create_engine, text

    engine = create_engine(layout.database_url)
    try:
        with engine.connect() as conn:
            lent_postings = conn.execute(
                text(
                    "SELECT p.ref_id, COUNT(*) FROM posting p JOIN investment i"
                    " ON p.ref_type = 'investment' AND p.ref_id = i.id"
                    " WHERE i.loan_id = :l AND p.business_type = 'DISBURSE' GROUP BY p.ref_id"
                ),
                {"l": loan_id},
            ).all()
    finally:
        engine.dispose()
    assert sorted(count for _, count in lent_postings) == [1, 1]


def test_supervisorctl_stop_is_graceful(layout) -> None:
    """Last: stopping through supervisord sends SIGTERM; each worker stops cleanly."""
    out = layout.ctl("stop", "p2p:*")
    assert out.count("stopped") == WORKERS, out
    for port, log in layout.logs.items():
        # conf/production.toml logs JSON: one object a line.
        lifecycle = [
            entry["message"]
            for entry in map(json.loads, log.read_text().splitlines())
            if entry["logger"] == "p2p.lifecycle"
        ]
        assert "SIGTERM received: stopping gracefully" in lifecycle, port
        assert lifecycle[-1] == "stopped", lifecycle
    status = layout.ctl("status")
    assert status.count("STOPPED") == WORKERS, status
