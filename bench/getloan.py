"""Benchmark getLoan (REST, SOAP), listLoans and invest against a bare werkzeug endpoint.

Run from the repository root: ``python bench/getloan.py [--seconds N] [--concurrency C]``.

It prepares a SQLite database in a temporary folder (migrate, create-operator, then through the
REST API a borrower and an investor signed up with the codes read from the servers' SMS outbox
and onboarded, the investor funded, 20 listings and a large one published), starts every
server as its own process under waitress on a free loopback port (a platform worker with
Redis as its cache when ``--redis`` or P2P_TEST_REDIS_URL names one, one without a cache,
and the bare endpoint), drives each target in turn with load-generator processes (one
keep-alive http.client connection each, bounded by count and by time; an invest's requestNo
is new for every request), then prints, per round, requests/s, p50/p99 latency, CPU per
request, the target ratios and the ratios between targets, and the peak RSS of every server.
The two targets of each ratio run back to back, and rounds alternate their order, so drift
on a noisy machine shows and a ratio's two sides share its moments. Every process it starts is
stopped on the way out, on error and on Ctrl-C too.

Absolute figures depend on the machine and its neighbours; compare only the ratios measured
side by side in one run. ``--base DIR`` starts a worker of the code checked out in DIR too
(e.g. a ``git worktree`` of the commit before a change), configured as the cached one, and
measures its REST and SOAP getLoan each right beside this tree's, so that a before and an
after share the machine's moments. ``--profile N`` instead profiles N in-process getLoan
calls of the platform (werkzeug test client, cProfile) and prints the hot spots.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import io
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NS = "http://p2p.hry.com/facade/p2p"
OPERATOR_MOBILE, BORROWER_MOBILE, PASSWORD = "13800000000", "13900000001", "Bench2024pass"
BORROWER_SERIAL = 1  # makes the borrower's ID and card numbers (bench/members.py)
INVESTOR_MOBILE, INVESTOR_SERIAL = "13900000002", 2
OUTBOX = "sms-outbox.jsonl"  # in the run's folder: the SANDBOX SMS sender's messages
MAX_REQUESTS_PER_WORKER = 1_000_000  # the count bound; the time bound normally ends first
READY_TIMEOUT = 60.0

SOAP_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    f'xmlns:p="{NS}"><soapenv:Body><p:getLoan><p:loanId>{{loan_id}}</p:loanId></p:getLoan>'
    "</soapenv:Body></soapenv:Envelope>"
)
LISTING = {
    "title": "Bench listing",
    "description": "A listing for the getLoan benchmark.",
    "amount": "120000.00",
    "annualRate": "9.8",
    "termMonths": 12,
    "repaymentMethod": "EQUAL_INSTALLMENT",
    "minInvest": "100.00",
    "maxInvestPerInvestor": "20000.00",
    "raiseDays": 20,
}
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
LIST_SIZE = 20  # listings published, and listLoans' page size
LIST_PATH = f"/api/v1/loans?pageSize={LIST_SIZE}"


# --- the bare endpoint (runs in its own process: ``getloan.py --serve-bare PORT``) ------------


def _bare_app(url: str, answers: dict[str, bytes] | None = None):
    """A WSGI app answering GET /bare/loans/<id> (one SELECT, autocommit) and
    GET /bare-tx/loans/<id> (the same SELECT in a read-only transaction, as the platform
    runs it) with the JSON the platform's REST getLoan returns to the public (the listing is
    approved: RAISING, without borrowerId and rejectReason); and GET or POST /bytes/<name>
    with the bytes of ``answers[name]`` from memory (the platform's own answers, read from it
    before this server starts) and their Content-Type: what a cache of encoded answers could
    at best do."""
    from sqlalchemy import (
        BigInteger,
        Column,
        DateTime,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        bindparam,
        select,
    )
    from werkzeug.wrappers import Request, Response

    from dao.db import READ_ONLY_OPTION, Database

    loan = Table(
        "loan",
        MetaData(),
        Column("id", BigInteger, primary_key=True),
        Column("title", String),
        Column("description", Text),
        Column("amount", BigInteger),
        Column("annual_rate", BigInteger),
        Column("term_months", Integer),
        Column("repayment_method", String),
        Column("min_invest", BigInteger),
        Column("max_invest_per_investor", BigInteger),
        Column("raise_days", Integer),
        Column("status", String),
        Column("raise_deadline", DateTime),
        Column("raised", BigInteger),
        Column("created_at", DateTime),
        Column("updated_at", DateTime),
    )
    query = select(loan).where(loan.c.id == bindparam("id"))
    engine = Database(url).engine

    def money(units, scale):
        return None if units is None else str(Decimal(units).scaleb(-scale))

    def stamp(value: datetime | None):
        return None if value is None else value.isoformat() + "Z"  # stored as naive UTC

    def as_json(r) -> bytes:
        fields = {
            "loanId": r.id,
            "title": r.title,
            "description": r.description,
            "amount": money(r.amount, 2),
            "annualRate": money(r.annual_rate, 4),
            "termMonths": r.term_months,
            "repaymentMethod": r.repayment_method,
            "minInvest": money(r.min_invest, 2),
            "maxInvestPerInvestor": money(r.max_invest_per_investor, 2),
            "raiseDays": r.raise_days,
            "status": r.status,
            "raised": money(r.raised, 2),
            "raiseDeadline": stamp(r.raise_deadline),
            "createdAt": stamp(r.created_at),
            "updatedAt": stamp(r.updated_at),
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    answers = answers or {}

    def app(environ, start_response):
        request = Request(environ)
        if request.path.startswith("/bytes/"):
            name = request.path[len("/bytes/") :]
            if name not in answers:
                return Response("not found", 404)(environ, start_response)
            request.get_data()  # a SOAP request's envelope is read, as the platform reads it
            media = "text/xml; charset=utf-8" if name.startswith("soap") else "application/json"
            return Response(answers[name], content_type=media)(environ, start_response)
        kind, _, rest = request.path.strip("/").partition("/loans/")
        if request.method != "GET" or kind not in ("bare", "bare-tx") or not rest.isdigit():
            return Response("not found", 404)(environ, start_response)
        with engine.connect() as conn:
            if kind == "bare":
                conn.execution_options(isolation_level="AUTOCOMMIT")
                row = conn.execute(query, {"id": int(rest)}).first()
            else:
                conn.execution_options(**{READ_ONLY_OPTION: True})
                with conn.begin():
                    row = conn.execute(query, {"id": int(rest)}).first()
        if row is None:
            return Response("no such loan", 404)(environ, start_response)
        return Response(as_json(row), mimetype="application/json")(environ, start_response)

    return app


def serve_bare(port: int, url: str, threads: int, answers_dir: str | None) -> int:
    import waitress

    answers = {}
    if answers_dir:
        answers = {p.name: p.read_bytes() for p in Path(answers_dir).iterdir()}
    waitress.serve(
        _bare_app(url, answers), host="127.0.0.1", port=port, threads=threads, ident="bare"
    )
    return 0


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(root: Path = ROOT) -> dict[str, str]:
    """The environment of a process running ``root``'s code (this tree's by default)."""
    env = dict(os.environ, P2P_ENV="test")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


def read_proc_status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process (all its threads) and of the children it has
    waited for (a worker's contract compiler, server/contract.py), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return sum(int(t) for t in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches summed over every thread of the process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = read_proc_status(int(task.name))
        total += int(status.get("voluntary_ctxt_switches", 0))
        total += int(status.get("nonvoluntary_ctxt_switches", 0))
    return total


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    threads: int
    ready_path: str
    log: Path
    root: Path = ROOT  # whose code it runs
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as out:
            # Its own session: Ctrl-C reaches only this script, which then stops it cleanly.
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.root,
                env=child_env(self.root),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", self.ready_path)
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def memory(self) -> tuple[float, float]:
        """(peak RSS, current RSS) in MiB, from VmHWM and VmRSS."""
        status = read_proc_status(self.proc.pid)

        def mib(key):
            return int(status.get(key, "0 kB").split()[0]) / 1024

        return mib("VmHWM"), mib("VmRSS")


def platform_server(
    tmp: Path, url: str, threads: int, cache_url: str = "", root: Path = ROOT
) -> Server:
    """A platform worker of ``root``'s code; with `cache_url` (Redis) listings are read
    through the cache."""
    port = free_port()
    argv = [sys.executable, "-m", "server.cli", "serve", "--set", f"database.url={url}"]
    argv += ["--set", f"server.port={port}", "--set", f"server.threads={threads}"]
    argv += ["--set", f"verification.outbox_file={tmp / OUTBOX}"]
    name = f"platform t={threads}"
    if cache_url:
        argv += ["--set", f"cache.url={cache_url}", "--set", f"cache.key_prefix=bench{port}:"]
        name = f"cached t={threads}"
    if root != ROOT:
        name = f"base t={threads}"
    log = tmp / f"{name.replace(' ', '-')}.log"
    return Server(name, argv, port, threads, "/health", log, root)


def bare_server(tmp: Path, url: str, threads: int, loan_id: int) -> Server:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
    argv += ["--db", url, "--threads", str(threads), "--answers", str(tmp / "answers")]
    return Server(f"bare t={threads}", argv, port, threads, f"/bare/loans/{loan_id}", tmp / "b.log")


def cli(url: str, *args: str, stdin: str = "") -> str:
    argv = [sys.executable, "-m", "server.cli", *args, "--set", f"database.url={url}"]
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env=child_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"p2p {args[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def call(port: int, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def last_code(outbox: Path, mobile: str, purpose: str) -> str:
    """The code last "sent" to `mobile` for `purpose`: read from the servers' SMS outbox."""
    lines = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
    codes = [
        m["code"]
        for m in map(json.loads, lines)
        if (m["mobile"], m["purpose"]) == (mobile, purpose)
    ]
    if not codes:
        raise RuntimeError(f"no {purpose} code in {outbox}")
    return codes[-1]


@dataclass(frozen=True)
class Seeded:
    loan_id: int  # the first of the listings listLoans pages through
    invest_loan_id: int  # a listing of 50,000,000.00 without a cap per investor
    investor_token: str  # an investor with 40,000,000.00 available


def seed(port: int, outbox: Path, listings: int = LIST_SIZE) -> Seeded:
    """Sign a borrower and an investor up as members do (a REGISTER code, registration,
    real-name verification, a bound card, a fund account), fund the investor with a recharge,
    log the operator in, publish and approve `listings` listings (a full page of listLoans)
    and one large listing to invest in."""
    from bench.members import card_number, id_number

    def post(path: str, body: dict, what: str, token: str = "", status: int = 201) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        got, answer = call(port, "POST", path, body, headers)
        if got != status:
            raise RuntimeError(f"{what}: {got} {answer[:300]!r}")
        return json.loads(answer)

    def member(mobile: str, serial: int, role: str) -> tuple[int, str]:
        post("/api/v1/verification-codes", {"mobile": mobile, "purpose": "REGISTER"}, "code")
        login = {"mobile": mobile, "password": PASSWORD}
        code = last_code(outbox, mobile, "REGISTER")
        registration = dict(login, role=role, verificationCode=code)
        member_id = post("/api/v1/members", registration, f"register {role}")["memberId"]
        token = post("/api/v1/sessions", login, f"{role} login")["token"]
        identity = {"realName": "张测试", "idNumber": id_number(serial)}
        post("/api/v1/members/current/identity", identity, "verify identity", token, status=200)
        card = {"cardNumber": card_number(serial), "bankName": "中国工商银行", "mobile": mobile}
        card_id = post("/api/v1/members/current/cards", card, "bind card", token)["cardId"]
        post("/api/v1/members/current/fund-account", {"cardId": card_id}, "fund account", token)
        return member_id, token

    borrower_id, _ = member(BORROWER_MOBILE, BORROWER_SERIAL, "BORROWER")
    _, investor_token = member(INVESTOR_MOBILE, INVESTOR_SERIAL, "INVESTOR")
    recharge = {"amount": "40000000.00", "requestNo": "bench-funds"}
    post("/api/v1/payments/recharges", recharge, "recharge", investor_token)
    login = {"mobile": OPERATOR_MOBILE, "password": PASSWORD}
    token = post("/api/v1/sessions", login, "operator login")["token"]

    def listing(body: dict) -> int:
        loan_id = post("/api/v1/loans", body, "publish listing", token)["loanId"]
        # Approved, so anyone may read it (a listing pending audit is the parties' only).
        post(f"/api/v1/loans/{loan_id}/audit", {"approve": True}, "approve", token, status=200)
        return loan_id

    ids = [listing(dict(LISTING, borrowerId=borrower_id)) for _ in range(listings)]
    large = {k: v for k, v in LISTING.items() if k != "maxInvestPerInvestor"}
    invest_id = listing(dict(large, amount="50000000.00", borrowerId=borrower_id))
    return Seeded(ids[0], invest_id, investor_token)


# --- load generation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    server: Server
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200  # what a request that succeeded answers


#: In a target's body, replaced by a number no other request of the run has (a requestNo).
UNIQUE = b"{unique}"


def _worker(port, method, path, body, headers, status_ok, warmup, seconds, limit, go, results):
    """One keep-alive connection: warm up, then time each request until the time or the
    count runs out. Sends back latencies, counts, statuses and its own CPU time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (forked)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = array("d")
    ok = warm = errors = 0
    bad: dict[str, int] = {}
    perf = time.perf_counter
    go.wait(60)
    cpu0 = time.process_time()
    warm_end = perf() + warmup
    t0 = end = 0.0
    template = body if body and UNIQUE in body else None
    started = time.time_ns()  # with the pid: unique across this run's workers and rounds
    for n in range(limit):
        if template is not None:
            body = template.replace(UNIQUE, f"{os.getpid()}-{started}-{n}".encode())
        start = perf()
        if warm_end and start >= warm_end:
            warm_end = 0.0  # warm-up over: the measured window starts now
            t0, end = start, start + seconds
        elif not warm_end and start >= end:
            break
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
            conn.close()  # http.client reconnects on the next request
        if warm_end:
            warm += 1
            if status != status_ok:
                errors += 1
                bad[str(status)] = bad.get(str(status), 0) + 1
            continue
        latencies.append(perf() - start)
        if status == status_ok:
            ok += 1
        else:
            errors += 1
            bad[str(status)] = bad.get(str(status), 0) + 1
    stopped = perf()
    conn.close()
    elapsed = stopped - t0 if t0 else 0.0
    cpu = time.process_time() - cpu0
    results.put((ok, warm, errors, bad, elapsed, cpu, latencies.tobytes()))


@dataclass
class Measurement:
    target: str
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    server_us: float  # server CPU per request (warm-up included), microseconds
    client_us: float  # load-generator CPU per request
    switches: float  # server context switches per request, all threads
    errors: int
    bad: dict[str, int]


def percentile(sorted_values: array, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(target: Target, concurrency: int, warmup: float, seconds: float) -> Measurement:
    ctx = mp.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(
                target.server.port,
                target.method,
                target.path,
                target.body,
                target.headers,
                target.status,
                warmup,
                seconds,
                MAX_REQUESTS_PER_WORKER,
                go,
                results,
            ),
            daemon=True,
        )
        for _ in range(concurrency)
    ]
    try:
        for w in workers:
            w.start()
        pid = target.server.proc.pid
        cpu_before, switches_before = cpu_seconds(pid), context_switches(pid)
        go.set()
        parts = [results.get(timeout=warmup + seconds + 60) for _ in workers]
        cpu_after, switches_after = cpu_seconds(pid), context_switches(pid)
        for w in workers:
            w.join(10)
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join(5)
    latencies = array("d")
    ok = total = errors = 0
    client_cpu = 0.0
    rps = 0.0
    bad: dict[str, int] = {}
    for w_ok, w_warm, w_errors, w_bad, elapsed, cpu, raw in parts:
        chunk = array("d")
        chunk.frombytes(raw)
        latencies.extend(chunk)
        ok += w_ok
        total += w_warm + len(chunk)
        errors += w_errors
        client_cpu += cpu
        rps += w_ok / elapsed if elapsed else 0.0
        for k, v in w_bad.items():
            bad[k] = bad.get(k, 0) + v
    ordered = array("d", sorted(latencies))
    per_request = 1e6 / total if total else float("nan")
    return Measurement(
        target.name,
        target.server.name,
        rps,
        percentile(ordered, 0.50) * 1e3,
        percentile(ordered, 0.99) * 1e3,
        (cpu_after - cpu_before) * per_request,
        client_cpu * per_request,
        (switches_after - switches_before) * per_request / 1e6,
        errors,
        bad,
    )


# --- report ----------------------------------------------------------------------------------


def print_round(number: int, rows: list[Measurement]) -> None:
    print(f"\nround {number} (measured in this order)")
    print(
        f"  {'target':<10} {'server':<13} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU us/req':>14} {'srv cores':>9} {'ctx sw/req':>10} {'cli CPU us/req':>14} "
        f"{'errors':>6}"
    )
    for m in rows:
        print(
            f"  {m.target:<10} {m.server:<13} {m.rps:>8.0f} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f} "
            f"{m.server_us:>14.0f} {m.rps * m.server_us / 1e6:>9.2f} {m.switches:>10.1f} "
            f"{m.client_us:>14.0f} "
            f"{m.errors:>6}" + (f"  {m.bad}" if m.bad else "")
        )


RATIOS = [
    ("REST", "REST base"),
    ("SOAP", "SOAP base"),
    ("REST", "bytes"),
    ("SOAP", "bytes-SOAP"),
    ("list", "bytes-list"),
    ("REST unc", "bare"),
    ("list unc", "bytes-list"),
    ("SOAP", "REST"),
    ("REST unc", "bare-tx"),
]
#: The throughput the platform should reach, as a share of the bare endpoint's (issue 15).
TARGETS = [
    ("cached REST getLoan / bytes from memory", "REST", "bytes", 0.85),
    ("cached SOAP getLoan / bytes from memory", "SOAP", "bytes-SOAP", 0.70),
    ("the same, --base's code: REST", "REST base", "bytes", 0.85),
    ("the same, --base's code: SOAP", "SOAP base", "bytes-SOAP", 0.70),
    ("uncached REST getLoan / bare SELECT", "REST unc", "bare", 0.80),
    ("cached listLoans 20 / bytes from memory", "list", "bytes-list", None),
    ("uncached listLoans 20 / bytes from memory", "list unc", "bytes-list", None),
    ("invest (a write) / bare SELECT", "invest", "bare", None),
]


def target_lines(rounds: list[list[Measurement]]) -> list[str]:
    """Each target ratio (throughput over the bare one's) per round, beside its target."""
    lines = []
    for label, a, b, goal in TARGETS:
        values = []
        for rows in rounds:
            by_name = {m.target: m for m in rows}
            if a in by_name and b in by_name and by_name[b].rps:
                values.append(by_name[a].rps / by_name[b].rps)
        if values:
            shown = "  ".join(f"{v:4.2f}x" for v in values)
            want = f"target >= {goal:.2f}x" if goal else "no target"
            lines.append(f"  {label:<42} {shown}   ({want})")
    return lines


def ratio_lines(by_name: dict[str, Measurement]) -> list[str]:
    lines = []
    for a, b in RATIOS:
        x, y = by_name.get(a), by_name.get(b)
        if not x or not y or not x.rps:
            continue
        lines.append(
            f"  {a + '/' + b:<20} cost per request {y.rps / x.rps:5.2f}x  "
            f"(req/s {x.rps / y.rps:4.2f}x, p50 {x.p50_ms / y.p50_ms:5.2f}x, "
            f"server CPU/req {x.server_us / y.server_us:5.2f}x)"
        )
    return lines


def thread_lines(by_name: dict[str, Measurement]) -> list[str]:
    rows = [by_name[n] for n in ("REST t=1", "REST t=4", "REST t=8") if n in by_name]
    if len(rows) < 2:
        return []
    base = rows[0].rps or float("nan")
    parts = [f"{m.target[5:]}: {m.rps:.0f} req/s ({m.rps / base:4.2f}x)" for m in rows]
    return ["  threads      " + ", ".join(parts)]


def report(rounds: list[list[Measurement]], servers: list[Server]) -> int:
    for number, rows in enumerate(rounds, 1):
        print_round(number, rows)
    print("\ntarget ratios, throughput, round by round")
    for line in target_lines(rounds):
        print(line)
    print("\nratios, round by round (cost per request = inverse throughput ratio)")
    for number, rows in enumerate(rounds, 1):
        by_name = {m.target: m for m in rows}
        print(f" round {number}")
        for line in ratio_lines(by_name) + thread_lines(by_name):
            print(line)
    if len(rounds) > 1:
        print("\nmean over rounds (req/s: mean, and spread max/min - 1 showing drift)")
        names = [m.target for m in rounds[0]]
        for name in names:
            values = [m.rps for rows in rounds for m in rows if m.target == name]
            spread = max(values) / min(values) - 1 if min(values) else float("nan")
            print(f"  {name:<10} {statistics.mean(values):>8.0f} req/s  spread {spread:6.1%}")
    print("\nserver processes (memory after the run)")
    print(f"  {'server':<13} {'pid':>7} {'peak RSS MiB':>12} {'RSS MiB':>8}")
    for s in servers:
        peak, now = s.memory()
        print(f"  {s.name:<13} {s.proc.pid:>7} {peak:>12.1f} {now:>8.1f}")
    errors = sum(m.errors for rows in rounds for m in rows)
    if errors:
        banner = "!" * 72
        print(
            f"\n{banner}\n!!! {errors} REQUESTS FAILED (another status or a connection error): "
            f"the figures above are NOT valid.\n{banner}",
            file=sys.stderr,
        )
        return 1
    print("\nevery response as expected (200, 201 for invest), no errors")
    return 0


def with_base(targets: dict[str, Target], base: Server) -> dict[str, Target]:
    """``targets`` with REST and SOAP getLoan asked of ``base`` too, each beside this tree's
    and this tree's still beside its bytes: bytes, REST, REST base, SOAP base, SOAP,
    bytes-SOAP."""
    rows: list[Target] = []
    for t in targets.values():
        if t.name == "SOAP":
            rows.append(dataclasses.replace(t, name="SOAP base", server=base))
        rows.append(t)
        if t.name == "REST":
            rows.append(dataclasses.replace(t, name="REST base", server=base))
    return {t.name: t for t in rows}


def check_answers(targets: dict[str, Target]) -> None:
    """Every target answers its success status (an investment is made once, "check"), the
    bytes endpoints the platform's bytes, and the bare JSON field for field the platform's."""
    bodies = {}
    for name, t in targets.items():
        sent = t.body.replace(UNIQUE, b"check") if t.body else t.body
        status, body = call(t.server.port, t.method, t.path, sent, t.headers)
        if status != t.status:
            raise RuntimeError(f"{name} answered {status}: {body[:300]!r}")
        bodies[name] = body
    for name, same in (("bytes", "REST"), ("bytes-SOAP", "SOAP"), ("bytes-list", "list")):
        if bodies[name] != bodies[same]:
            raise RuntimeError(f"{name} is not the bytes {same} answers")
    rest = json.loads(bodies["REST"])
    for name in ("bare", "bare-tx", "REST unc"):
        if json.loads(bodies[name]) != rest:
            raise RuntimeError(f"{name} JSON differs from REST:\n{bodies[name]!r}\n{rest!r}")
    if (
        b"getLoanResponse" not in bodies["SOAP"]
        or f">{rest['loanId']}<".encode() not in (bodies["SOAP"])
    ):
        raise RuntimeError(f"unexpected SOAP answer: {bodies['SOAP'][:300]!r}")


def run(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="p2p-bench-"))
    url = f"sqlite:///{tmp / 'p2p.db'}"
    servers: list[Server] = []
    try:
        print(f"preparing {url}", flush=True)
        cli(url, "migrate")
        cli(url, "create-operator", "--mobile", OPERATOR_MOBILE, stdin=PASSWORD + "\n")
        redis_url = args.redis
        main = platform_server(tmp, url, args.threads)
        servers.append(main)
        main.start()
        main.wait_ready()
        seeded = seed(main.port, tmp / OUTBOX)
        loan_id = seeded.loan_id
        # The cached worker (Redis) answers the cached targets; `main` (the embedded cache,
        # which listings bypass) the uncached ones. Without Redis both are `main`.
        cached = platform_server(tmp, url, args.threads, redis_url) if redis_url else main
        if cached is not main:
            servers.append(cached)
            cached.start()
            cached.wait_ready()
        # --base: a worker of the other code, configured as `cached` is (a before beside an after).
        base = None
        if args.base:
            base = platform_server(tmp, url, args.threads, redis_url, root=args.base.resolve())
            servers.append(base)
            base.start()
            base.wait_ready()
        investor_token = seeded.investor_token
        if cached is not main:  # sessions live in the cache: log in where the calls go
            login = {"mobile": INVESTOR_MOBILE, "password": PASSWORD}
            status, answer = call(cached.port, "POST", "/api/v1/sessions", login)
            if status != 201:
                raise RuntimeError(f"investor login: {status} {answer[:300]!r}")
            investor_token = json.loads(answer)["token"]
        rest_path = f"/api/v1/loans/{loan_id}"
        envelope = SOAP_ENVELOPE.format(loan_id=loan_id).encode()
        answers = tmp / "answers"
        answers.mkdir()
        for name, method, path, body, headers in (
            ("rest-loan", "GET", rest_path, None, None),
            ("soap-loan", "POST", "/services/LoanFacade", envelope, SOAP_HEADERS),
            ("rest-list", "GET", LIST_PATH, None, None),
        ):
            status, answer = call(cached.port, method, path, body, headers)
            if status != 200:
                raise RuntimeError(f"{name} answered {status}: {answer[:300]!r}")
            (answers / name).write_bytes(answer)
        bare = bare_server(tmp, url, args.threads, loan_id)
        servers.append(bare)
        extra = [] if args.no_threads else [t for t in (1, 4, 8) if t != args.threads]
        servers += [platform_server(tmp, url, t, redis_url) for t in extra]
        for s in [bare, *servers[len(servers) - len(extra) :]]:
            s.start()
        for s in [bare, *servers[len(servers) - len(extra) :]]:
            s.wait_ready()
        # Each ratio's two targets back to back (rounds alternate the order), so that both
        # share the machine's moment: this machine's speed drifts from one minute to the next.
        targets = {
            "bytes": Target("bytes", bare, "GET", "/bytes/rest-loan"),
            "REST": Target("REST", cached, "GET", rest_path),
            "SOAP": Target("SOAP", cached, "POST", "/services/LoanFacade", envelope, SOAP_HEADERS),
            "bytes-SOAP": Target(
                "bytes-SOAP", bare, "POST", "/bytes/soap-loan", envelope, SOAP_HEADERS
            ),
            "bytes-list": Target("bytes-list", bare, "GET", "/bytes/rest-list"),
            "list": Target("list", cached, "GET", LIST_PATH),
            "list unc": Target("list unc", main, "GET", LIST_PATH),
            "bare": Target("bare", bare, "GET", f"/bare/loans/{loan_id}"),
            "REST unc": Target("REST unc", main, "GET", rest_path),
            "bare-tx": Target("bare-tx", bare, "GET", f"/bare-tx/loans/{loan_id}"),
            "invest": Target(
                "invest",
                cached,
                "POST",
                f"/api/v1/loans/{seeded.invest_loan_id}/investments",
                b'{"amount":"100.00","requestNo":"bench-' + UNIQUE + b'"}',
                {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {investor_token}",
                },
                status=201,
            ),
        }
        if base is not None:
            targets = with_base(targets, base)
        check_answers(targets)
        if not args.no_threads:
            platforms = sorted(
                [cached, *servers[len(servers) - len(extra) :]], key=lambda s: s.threads
            )
            for s in platforms:
                name = f"REST t={s.threads}"
                targets[name] = Target(name, s, "GET", rest_path)
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}, concurrency {args.concurrency}, "
            f"waitress threads {args.threads}, {args.warmup:g}s warm-up + {args.seconds:g}s "
            f"per measurement, {args.rounds} rounds, listing {loan_id}, "
            f"cache {'Redis' if redis_url else 'none (embedded: listings are not cached)'}",
            flush=True,
        )
        order = list(targets.values())
        rounds = []
        for number in range(1, args.rounds + 1):
            rows = []
            for t in order if number % 2 else reversed(order):
                print(f"  round {number}: {t.name:<10} ...", end=" ", flush=True)
                m = measure(t, args.concurrency, args.warmup, args.seconds)
                print(f"{m.rps:.0f} req/s" + (f"  ERRORS {m.errors}" if m.errors else ""))
                rows.append(m)
            rounds.append(rows)
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
        return report(rounds, servers)
    finally:
        for s in servers:
            s.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# --- profile ---------------------------------------------------------------------------------


def _wsgi_caller(app, method: str, path: str, body: bytes = b"", headers=None):
    """A function making one in-process WSGI call (no socket, no server) and checking it."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path, method=method, data=body, headers=headers).get_environ()
    status = []

    def start_response(line, _headers, _exc_info=None):
        status.append(line)

    def one() -> None:
        env = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        b"".join(app(env, start_response))
        if not status.pop().startswith("200"):
            raise RuntimeError(f"{method} {path} did not answer 200")

    return one


def profile(calls: int, top: int, redis_url: str = "") -> int:
    """Time `calls` in-process getLoan calls of each target (WSGI callables called directly:
    no socket, no waitress), then cProfile the platform's REST and SOAP paths; with
    `redis_url`, the platform reads listings through Redis as its cache (the cached path),
    else from the database (the embedded cache does not keep listings)."""
    import cProfile
    import logging
    import pstats

    from werkzeug.test import Client

    from bench.members import sign_up
    from conf import load_settings
    from server.app import create_app

    tmp = Path(tempfile.mkdtemp(prefix="p2p-bench-profile-"))
    url = f"sqlite:///{tmp / 'p2p.db'}"
    try:
        cli(url, "migrate")
        cli(url, "create-operator", "--mobile", OPERATOR_MOBILE, stdin=PASSWORD + "\n")
        overrides = {"database.url": url}
        if redis_url:
            prefix = f"bench-profile{os.getpid()}:"
            overrides |= {"cache.url": redis_url, "cache.key_prefix": prefix}
        settings = load_settings(dict(os.environ, P2P_ENV="test"), overrides)
        logging.basicConfig(level=logging.INFO, stream=io.StringIO())  # as served: access log on
        app = create_app(settings)
        client = Client(app)
        # In process: the borrower's code is read from the sandbox sender's memory.
        borrower = sign_up(app.platform, BORROWER_MOBILE, PASSWORD, "BORROWER", BORROWER_SERIAL)
        borrower_id = borrower.member_id
        login = {"mobile": OPERATOR_MOBILE, "password": PASSWORD}
        token = client.post("/api/v1/sessions", json=login).json["token"]
        auth = {"Authorization": f"Bearer {token}"}
        listing = dict(LISTING, borrowerId=borrower_id)
        loan_id = client.post("/api/v1/loans", json=listing, headers=auth).json["loanId"]
        client.post(f"/api/v1/loans/{loan_id}/audit", json={"approve": True}, headers=auth)
        envelope = SOAP_ENVELOPE.format(loan_id=loan_id).encode()
        bare = _bare_app(url)
        targets = {
            "REST": _wsgi_caller(app, "GET", f"/api/v1/loans/{loan_id}"),
            "SOAP": _wsgi_caller(app, "POST", "/services/LoanFacade", envelope, SOAP_HEADERS),
            "bare": _wsgi_caller(bare, "GET", f"/bare/loans/{loan_id}"),
            "bare-tx": _wsgi_caller(bare, "GET", f"/bare-tx/loans/{loan_id}"),
        }
        read = "through Redis" if redis_url else "from the database"
        print(f"in-process WSGI calls, {calls} each, not profiled (two passes, alternating);")
        print(f"the platform reads the listing {read}:")
        timings: dict[str, list[float]] = {name: [] for name in targets}
        for names in (list(targets), list(reversed(targets))):
            for name in names:
                one = targets[name]
                for _ in range(min(calls, 300)):
                    one()
                started = time.perf_counter()
                for _ in range(calls):
                    one()
                timings[name].append((time.perf_counter() - started) / calls * 1e6)
        base = statistics.mean(timings["bare"])
        for name, values in timings.items():
            mean = statistics.mean(values)
            shown = " / ".join(f"{v:.0f}" for v in values)
            print(f"  {name:<8} {shown:>11} us/call   {mean / base:4.2f}x bare")
        for name in ("REST", "SOAP"):
            one = targets[name]
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(calls):
                one()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            print(f"\n=== {name} getLoan under cProfile, {calls} calls (compare shares, not times)")
            stats.sort_stats("tottime").print_stats(top)
            project = str(ROOT).replace("\\", "/") + "/(?!bench)"
            stats.sort_stats("cumulative").print_stats(project + "|orm/session.py", top)
            print(out.getvalue())
        app.platform.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


# --- entry -----------------------------------------------------------------------------------


def _terminate(signum, frame):
    raise KeyboardInterrupt  # run()'s finally stops the servers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per target (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per target (1)")
    p.add_argument("--concurrency", type=int, default=4, help="client connections (4)")
    p.add_argument("--threads", type=int, default=4, help="waitress threads of the servers (4)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, alternating order (2)")
    p.add_argument("--no-threads", action="store_true", help="skip the 1/4/8-thread comparison")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    p.add_argument(
        "--base",
        type=Path,
        help="a checkout of other code (e.g. a git worktree of the commit before a change): "
        "its worker, configured as the cached one, answers getLoan in targets of its own, "
        "each measured right after this tree's",
    )
    p.add_argument("--profile", type=int, metavar="N", help="profile N in-process calls instead")
    p.add_argument("--top", type=int, default=30, help="rows of each profile listing (30)")
    p.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--answers", help=argparse.SUPPRESS)
    p.add_argument(
        "--redis",
        default=os.environ.get("P2P_TEST_REDIS_URL", ""),
        help="Redis URL of the cached worker and of --profile's platform "
        '(default $P2P_TEST_REDIS_URL; "": none)',
    )
    args = p.parse_args(argv)
    if args.serve_bare:
        return serve_bare(args.serve_bare, args.db, args.threads, args.answers)
    if args.profile:
        return profile(args.profile, args.top, args.redis)
    if min(args.concurrency, args.threads, args.rounds) < 1 or min(args.seconds, args.warmup) < 0:
        p.error("concurrency, threads and rounds must be >= 1; seconds and warm-up >= 0")
    if args.seconds <= 0:
        p.error("--seconds must be > 0")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; every server stopped", file=sys.stderr)
        return 130
    except RuntimeError as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the bare server imports dao.db
    sys.exit(main())
