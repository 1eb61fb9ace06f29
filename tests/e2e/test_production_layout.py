"""The production layout on one machine, deployed by following docs/deployment.md as written:
its ```sh deploy blocks run in order in a deploy root holding this checkout's files, with only
the variables of deploy/layout.env changed (ports, paths, the database's and Redis' names, the
bank's test values, the staging SMS outbox) and a few settings of this test's own appended
there (fast hashing, beat every few seconds, this run's key prefixes). A guide edit that breaks
the deployment fails here.

What the guide sets up: supervisord running HAProxy, two waitress workers, the job workers and
the one beat, on MariaDB and Redis. The depository is the bank simulator as a separate process
(``p2p bank-sim``), as a real bank would be: money moves when it notifies the workers through
the balancer.

The client calls from 127.0.0.3 (its socket bound there), HAProxy connects to the workers
from 127.0.0.1: the `client` the workers log (as JSON, conf/production.toml) must be the former.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import zeep
from requests.adapters import HTTPAdapter
from sqlalchemy.engine import make_url
from zeep.transports import Transport

from tests.banksupport import (
    BANK_KEY_ID,
    BANK_PUBLIC,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
    BankSim,
    start_bank_sim,
)
from tests.e2e.conftest import log_barrier

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs/deployment.md"
CLIENT_ADDR = "127.0.0.3"
WORKERS = 2
JOB_WORKERS = 2
LOAD_THREADS = 4
JOB_INTERVAL = 2

if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
    pytest.skip(
        "haproxy is not installed (deploy/prerequisites.sh --install)", allow_module_level=True
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


# -- the guide ---------------------------------------------------------------------------------


def guide_blocks(text: str) -> list[str]:
    """The commands of the guide's ```sh deploy blocks, in order."""
    return re.findall(r"(?ms)^```sh deploy\n(.*?)^```$", text)


def set_variables(text: str, values: dict[str, str]) -> str:
    """deploy/layout.env's text with each variable of `values` set to its value; each must be
    set by exactly one line, so a renamed variable fails here rather than going untested."""
    for name, value in values.items():
        text, count = re.subn(
            rf"(?m)^{name}=.*$", lambda _m, n=name, v=value: f"{n}={shlex.quote(v)}", text
        )
        assert count == 1, f"deploy/layout.env: expected one line setting {name}"
    return text


def _checkout_files() -> list[str]:
    """This checkout's files as a release holds them: tracked and new ones, not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listed.stdout.decode().split("\0") if name]


def _base_environment() -> dict[str, str]:
    """An operator's shell: nothing of the test's settings, nor its checkout on PYTHONPATH."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("P2P_") and k not in ("PORT", "PYTHONPATH", "VIRTUAL_ENV")
    }


def _loaded(home: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment after `set -a; . deploy/layout.env; set +a` in the deploy root."""
    done = subprocess.run(
        ["bash", "-c", "set -a; . deploy/layout.env; set +a; exec env -0"],
        cwd=home,
        env=base,
        capture_output=True,
        check=True,
    )
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)


# -- the layout --------------------------------------------------------------------------------


@dataclass
class Layout:
    home: Path
    conf: Path
    env: dict
    lb: str
    stats: str
    ports: list[int]
    job_ports: list[int]
    database_url: str  # the platform's database, as the server's administrator: the tests look
    outbox: Path  # the staging SMS outbox: the codes the SANDBOX sender "sent"
    bank: BankSim
    logs: dict[int, Path] = field(default_factory=dict)

    @property
    def job_metrics(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/metrics" for port in self.job_ports]

    @property
    def job_logs(self) -> list[Path]:
        return [self.home / f"var/log/p2p-worker-{port}.log" for port in self.job_ports]

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.home / ".venv/bin/supervisorctl"), "-c", str(self.conf), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        return done.stdout.strip()

    def p2p(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
        """The deploy root's own `p2p` command, with the layout loaded (``stdin`` its input)."""
        return subprocess.run(
            [str(self.home / ".venv/bin/p2p"), *args],
            cwd=self.home,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

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
        return [
            *self.logs.values(),
            self.home / "var/log/haproxy.log",
            self.home / "var/log/supervisord.log",
        ]


def _delete_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


def _admin_command(url) -> str:
    """P2P_LAYOUT_DATABASE_ADMIN for the test server: its administrator over TCP."""
    command = ["mariadb", "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306)]
    command += ["-u", url.username or "root"]
    if url.password:
        command.append(f"--password={url.password}")
    return shlex.join(command)


def _drop(url, name: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(url.set(database=""), poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            for host in ("127.0.0.1", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{name}'@'{host}'"))
    finally:
        admin.dispose()


def _stop_supervisord(home: Path, env: dict) -> None:
    """`supervisorctl shutdown` (each program stopped with its stop signal), then wait."""
    pidfile = home / "var/run/supervisord.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip())
    conf = str(home / "supervisor/supervisord.conf")
    subprocess.run(
        [str(home / ".venv/bin/supervisorctl"), "-c", conf, "shutdown"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    deadline = time.monotonic() + 120
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Iterator[Layout]:
    raw_db, redis_url = (
        os.environ.get("P2P_TEST_DATABASE_URL"),
        os.environ.get("P2P_TEST_REDIS_URL"),
    )
    if not raw_db or not redis_url:
        pytest.skip("the layout needs MariaDB and Redis (see the run's backend tiers)")
    db = make_url(raw_db)
    if db.get_backend_name() != "mysql" or not (db.database or "").startswith("p2p_test"):
        pytest.fail("P2P_TEST_DATABASE_URL must be a mysql URL of a database named p2p_test*")
    if not (ROOT / "constraints.txt").exists():
        pytest.fail("constraints.txt is missing: the guide installs with -c constraints.txt")

    # The release in its deploy root, and the secrets folder (section 1 of the guide).
    home = tmp_path_factory.mktemp("srv-p2p")
    for name in _checkout_files():
        target = home / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    secrets = tmp_path_factory.mktemp("etc-p2p")
    (secrets / "bank").mkdir()
    secrets.chmod(0o700)
    # Keys from the bank's onboarding: ours (the bank knows its public half) and the bank's.
    (secrets / "bank/platform.pem").write_bytes(PLATFORM_PRIVATE)
    (secrets / "bank/platform.pem").chmod(0o600)
    (secrets / "bank/bank.pub.pem").write_bytes(BANK_PUBLIC)
    sim = start_bank_sim(tmp_path_factory.mktemp("bank"), "--delay", "0.2", "--auto-authorize")

    base = _consecutive_free_ports(WORKERS)
    job_base = _consecutive_free_ports(JOB_WORKERS)
    lb_port, stats_port = _consecutive_free_ports(1), _consecutive_free_ports(1)
    name, run = f"{db.database}_layout", uuid.uuid4().hex[:8]
    outbox = home / "var/sms-outbox.jsonl"
    layout_env = home / "deploy/layout.env"
    text = set_variables(
        layout_env.read_text(),
        {
            "P2P_CONFIG": str(secrets / "p2p.toml"),
            "P2P_LAYOUT_BALANCER": f"127.0.0.1:{lb_port}",
            "P2P_LAYOUT_STATS": f"127.0.0.1:{stats_port}",
            "P2P_LAYOUT_WORKERS": str(WORKERS),
            "P2P_LAYOUT_WORKER_FIRST_PORT": str(base),
            "P2P_LAYOUT_JOB_WORKERS": str(JOB_WORKERS),
            "P2P_LAYOUT_JOB_METRICS_FIRST_PORT": str(job_base),
            "P2P_LAYOUT_DATABASE_SERVER": f"{db.host or '127.0.0.1'}:{db.port or 3306}",
            "P2P_LAYOUT_DATABASE_NAME": name,
            "P2P_LAYOUT_DATABASE_USER": name,
            "P2P_LAYOUT_DATABASE_ADMIN": _admin_command(db),
            "P2P_CACHE_URL": redis_url,
            "P2P_JOBS_BROKER_URL": redis_url,
            "P2P_BANK_URL": sim.url,
            "P2P_BANK_MERCHANT_ID": MERCHANT,
            "P2P_BANK_PLATFORM_KEY_ID": PLATFORM_KEY_ID,
            "P2P_BANK_PLATFORM_PRIVATE_KEY": str(secrets / "bank/platform.pem"),
            "P2P_BANK_BANK_PUBLIC_KEYS": f"{BANK_KEY_ID}={secrets / 'bank/bank.pub.pem'}",
            "P2P_BANK_NOTIFY_URL": f"http://127.0.0.1:{lb_port}/bank/notify",
            "P2P_VERIFICATION_OUTBOX_FILE": str(outbox),
        },
    )
    # This test's own settings, as an operator may add any: fast hashing, beat closing
    # expired listings and querying orders in doubt every few seconds, this run's key prefixes
    # (the cache and the broker share the test's Redis database).
    layout_env.write_text(
        text
        + "P2P_SECURITY_ARGON2_TIME_COST=1\nP2P_SECURITY_ARGON2_MEMORY_KIB=8192\n"
        + "P2P_SECURITY_ARGON2_PARALLELISM=1\nP2P_BANK_QUERY_FIRST_AFTER_SECONDS=5\n"
        + f"P2P_JOBS_SCHEDULE='loan.close_expired={JOB_INTERVAL};outbox.sweep=30;"
        + f"bank.query_due={JOB_INTERVAL}'\n"
        + f"P2P_CACHE_KEY_PREFIX=p2p-layout-{run}:\n"
        + f"P2P_JOBS_BROKER_KEY_PREFIX=p2p-layout-jobs-{run}:\n"
    )
    shell = _base_environment()
    env = _loaded(home, shell)
    check = subprocess.run(
        ["deploy/prerequisites.sh"], cwd=home, env=env, capture_output=True, text=True
    )
    if check.returncode != 0:
        pytest.skip(f"this machine lacks the guide's prerequisites: {check.stdout}")

    blocks = guide_blocks(GUIDE.read_text())
    assert len(blocks) >= 5, "docs/deployment.md has lost its ```sh deploy blocks"
    conf = home / "supervisor/supervisord.conf"
    result = Layout(
        home=home,
        conf=conf,
        env=env,
        lb=f"http://127.0.0.1:{lb_port}",
        stats=f"http://127.0.0.1:{stats_port}",
        ports=list(range(base, base + WORKERS)),
        job_ports=list(range(job_base, job_base + JOB_WORKERS)),
        database_url=db.set(database=name).render_as_string(hide_password=False),
        outbox=outbox,
        bank=sim,
        logs={p: home / f"var/log/p2p-{p}.log" for p in range(base, base + WORKERS)},
    )
    try:
        for number, block in enumerate(blocks, 1):
            log = tmp_path_factory.getbasetemp() / f"guide-block-{number}.log"
            with log.open("w") as out:
                done = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", block],
                    cwd=home,
                    env=shell,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=600,
                    check=False,
                )
            if done.returncode != 0:
                tails = "\n".join(
                    f"--- {p}\n{p.read_text(errors='replace')[-2000:]}"
                    for p in result.all_logs()
                    if p.exists()
                )
                pytest.fail(
                    f"docs/deployment.md, deploy block {number} failed ({done.returncode}):\n"
                    f"{block}\n--- its output\n{log.read_text()[-4000:]}\n{tails}"
                )
        # deploy/create-database.sh gave the platform a user of its own on that database.
        platform_db = make_url(tomllib.loads((secrets / "p2p.toml").read_text())["database"]["url"])
        assert (platform_db.database, platform_db.username) == (name, name)
        env["P2P_SECURITY_SECRET_KEY"] = (secrets / "secret.key").read_text().strip()
        _wait(
            "both workers UP behind HAProxy",
            lambda: set(result.lb_status().values()) == {"UP"} and len(result.lb_status()) == 2,
            timeout=60,
            logs=result.all_logs(),
        )
        yield result
    finally:
        _stop_supervisord(home, env)
        sim.stop()
        _delete_keys(redis_url, f"p2p-layout-{run}:")
        _delete_keys(redis_url, f"p2p-layout-jobs-{run}:")
        _drop(db, name)


def test_the_guide_leaves_metrics_to_prometheus_and_secrets_to_their_owner(layout) -> None:
    """/metrics is refused through the balancer however its path is spelled, and answered by
    each worker directly; the database password is in a file only its owner reads."""
    for path in ("/metrics", "/%6Detrics", "/metrics?x=1"):
        r = requests.get(layout.lb + path, timeout=10)
        assert r.status_code == 404, (path, r.status_code)
        assert "p2p_requests_in_flight" not in r.text
    for port in layout.ports:
        r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert r.status_code == 200 and "p2p_requests_in_flight" in r.text
    assert requests.get(layout.lb + "/health", timeout=10).status_code == 200
    config = Path(layout.env["P2P_CONFIG"])
    assert config.stat().st_mode & 0o777 == 0o600
    assert (config.parent / "secret.key").stat().st_mode & 0o777 == 0o600
    programs = 1 + WORKERS + JOB_WORKERS + 1  # HAProxy, the web and job workers, beat
    deadline = time.monotonic() + 60  # a loaded machine starts a job worker slowly
    while (status := layout.ctl("status")).count("RUNNING") < programs:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert "haproxy" in status and status.count("RUNNING") == programs, status


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
        text = log_barrier(f"http://127.0.0.1:{port}", log, lambda: True)
        entries = [json.loads(line) for line in text.splitlines()]
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
    # allows, or cuts an answer whose head it had already passed on (ChunkedEncodingError:
    # the body ends early). Calls that find the worker gone are redispatched by HAProxy: a
    # refused connection sent nothing, so nothing can be applied twice.
    after_kill = [f for f in load.failures if f[0] >= killed_at]
    assert after_kill == load.failures, "calls failed before the kill"
    assert len({no for _, no, _ in after_kill}) <= LOAD_THREADS, after_kill
    kinds = ("HTTP 502", "HTTP 503", "ConnectionError", "ChunkedEncodingError")
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

    done = layout.p2p("check-ledger")  # as the guide's cron line runs it
    assert done.returncode == 0, done.stdout + done.stderr


def _operator_token(session: requests.Session, layout: Layout) -> str:
    """An operator, created with `p2p create-operator` as an administrator does, logged in."""
    mobile, password = f"139{uuid.uuid4().int % 10**8:08d}", "Operator123"
    done = layout.p2p("create-operator", f"--mobile={mobile}", stdin=password + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    r = session.post(layout.lb + "/api/v1/sessions", json={"mobile": mobile, "password": password})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_beat_and_the_job_workers_close_an_expired_listing(layout, identities) -> None:
    """Nobody calls closeExpiredLoans: beat sends the periodic job, a job worker runs it."""
    status = layout.ctl("status")
    assert status.count("p2p-worker:p2p-worker-") == JOB_WORKERS, status
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

    worker_logs = layout.job_logs
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
    until supervisord has them RUNNING under new pids, and HAProxy has the web workers UP."""
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
    _wait(
        "HAProxy to see every web worker UP",
        lambda: set(layout.lb_status().values()) == {"UP"},
        timeout=60,
        logs=layout.all_logs(),
    )


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
    _kill_and_wait_for_restart(layout, [f"p2p-worker:p2p-worker-{p}" for p in layout.job_ports])

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
    _kill_and_wait_for_restart(layout, [f"p2p-worker:p2p-worker-{p}" for p in layout.job_ports])

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
