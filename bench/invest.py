"""Benchmark LoanFacade.invest on MariaDB: invests a second on one hot listing and across many
listings, then a race to fill small listings to the last fen, then the money checks.

Run from the repository root::

    python bench/invest.py [--url mysql+mysqldb://root@127.0.0.1:3306/p2p_bench]
                           [--processes 4] [--threads 4] [--seconds 10] [--listings 200]
                           [--rate R] [--phases hot,spread,race]

It recreates the named database (its name must start with p2p_bench or p2p_test, as a test
database's does), migrates it, and sets up an operator, a borrower and one funded investor per
worker thread through the services. Every worker process builds its own platform (its own
connection pool) and calls the service layer directly, as the server's worker threads do; each
thread invests as its own investor, once before the clock starts (its process's platform built,
its statements compiled, all processes ready). After the load it checks with plain SQL that no
listing is oversubscribed, that raised equals each listing's investments, that every investor's
frozen balance equals their FROZEN investments, that every posting balances, and runs the
ledger audit (``p2p check-ledger``). It exits 1 when a check fails. Figures depend on the
machine; run it on a quiet one.

Under each load's figures a second line says where an invest's time went: the CPU the worker
processes used per invest (Python), the CPU MariaDB's server used per invest (every client of
the server counts, so other work on the machine shows there), and the time per invest spent in
the statements on a listing's row (SELECT ... FOR UPDATE of the listing, UPDATE of the
listing): waiting for the row's lock, and running; and how many investments a transaction made
(a worker's concurrent investments in one listing are made together, service/p2p/hotlisting.py:
more threads a process on the hot listing make larger groups).

By default every thread invests again as soon as its last invest returns (a closed loop): the
load is as much as the workers can take, so more workers queue longer and p50 grows with them
(Little's law), whatever the listing's design. ``--rate R`` offers R invests a second in all
instead (an open loop, the same for any number of workers): each thread starts its invests on
a fixed schedule, and an invest's latency counts from its scheduled start, so time spent behind
a late one counts too. At a rate the machine can take, p99 as workers are added then tells
whether the hot listing's row makes them wait for each other.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.members import sign_up
from conf import load_settings
from dao import migrate
from server.app import create_platform
from service.audit import LedgerAudit
from service.errors import BusinessError
from service.member import MemberService
from service.p2p import AuditRequest, LoanRequest, LoanService
from service.payment import PaymentService
from service.security import Principal

D = Decimal
FUNDS = D("40000000.00")
STEP = D("100.00")


@dataclass(frozen=True)
class Cache:
    """The Redis every process of a run shares, under a key prefix of the run's own."""

    url: str
    prefix: str


def platform_for(url: str, cache: Cache | None = None):
    """A platform on ``url``; with ``cache`` listings are read through Redis and every
    command evicts what it changes there, as in production."""
    values: dict[str, object] = {"database.url": url, "database.pool_size": 8}
    if cache is not None:
        values |= {"cache.url": cache.url, "cache.key_prefix": cache.prefix}
    return create_platform(load_settings({"P2P_ENV": "test"}, values))


def recreate(url: str) -> None:
    parsed = make_url(url)
    if not (parsed.database or "").startswith(("p2p_bench", "p2p_test")):
        sys.exit(
            "the database name must start with p2p_bench or p2p_test (it is dropped and recreated)"
        )
    admin = create_engine(parsed.set(database=""), poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{parsed.database}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{parsed.database}` CHARACTER SET utf8mb4")
    admin.dispose()
    migrate.upgrade(url)


def publish(loans, operator, borrower_id: int, amount: D, n: int) -> list[int]:
    ids = []
    for i in range(n):
        request = LoanRequest(
            title=f"bench {i}",
            description="invest benchmark",
            borrower_id=borrower_id,
            amount=amount,
            annual_rate=D("10"),
            term_months=12,
            repayment_method="EQUAL_INSTALLMENT",
            min_invest=STEP,
            max_invest_per_investor=None,
            raise_days=30,
        )
        vo = loans.publish_loan(request, operator)
        loans.audit_loan(vo.loan_id, AuditRequest(approve=True, reason=None), operator)
        ids.append(vo.loan_id)
    return ids


def setup(url: str, n_investors: int, n_listings: int, n_race: int) -> dict:
    platform = platform_for(url)
    try:
        members = platform.service(MemberService)
        loans = platform.service(LoanService)
        payments = platform.service(PaymentService)
        op = members.create_operator("13800000000", "Bench2024pass")
        operator = Principal(member_id=op.member_id, role="OPERATOR")
        borrower = sign_up(platform, "13900000001", "Bench2024pass", "BORROWER", 0)
        investors = []
        for i in range(n_investors):
            who = sign_up(platform, f"137{i:08d}", "Bench2024pass", "INVESTOR", i + 1)
            payments.recharge(FUNDS, f"fund-{i}", who)
            investors.append(who.member_id)
        big = D("50000000.00")
        return {
            "investors": investors,
            "hot": publish(loans, operator, borrower.member_id, big, 1),
            "spread": publish(loans, operator, borrower.member_id, big, n_listings),
            "race": publish(loans, operator, borrower.member_id, D("5000.00"), n_race),
        }
    finally:
        platform.close()


def on_listing(statement: str) -> bool:
    """A statement on a listing's row: its lock (SELECT ... FOR UPDATE) or its UPDATE."""
    if statement.startswith("UPDATE loan "):
        return True
    return statement.startswith("SELECT loan.") and statement.rstrip().endswith("FOR UPDATE")


def time_listing_statements(engine, spent: list[float], raised: list[int]) -> None:
    """Append to ``spent`` the seconds each statement on a listing's row took on ``engine``,
    and to ``raised`` a 1 for each UPDATE of a listing (one a transaction that invests: alone,
    or a group of investments made together)."""

    def before(conn, cursor, statement, *_) -> None:
        if on_listing(statement):
            conn.info["bench_started"] = time.perf_counter()

    def after(conn, cursor, statement, *_) -> None:
        started = conn.info.pop("bench_started", None)
        if started is not None:
            spent.append(time.perf_counter() - started)
            if statement.startswith("UPDATE loan "):
                raised.append(1)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds() -> float | None:
    """CPU seconds MariaDB's server process has used so far (None when it is not found)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
        except OSError:
            continue
        if name in ("mariadbd", "mysqld"):
            utime, stime = fields[1].split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return None


def worker(url, cache, phase, loan_ids, warm_id, investor_ids, seconds, interval, start, out):
    """One process: its own platform; one thread per investor, which invests once in
    ``warm_id`` (the statements compiled, the pool filled), waits for ``start`` (the time
    every process is ready by) and then invests until time is up (or, in the race, until every
    listing is full): each invest after the last, or with ``interval`` each thread's invests
    start that many seconds apart."""
    platform = platform_for(url, cache)
    loans = platform.service(LoanService)
    results = []
    on_listing_spent: list[float] = []
    raised: list[int] = []
    time_listing_statements(platform.database.engine, on_listing_spent, raised)
    warm = threading.Barrier(len(investor_ids) + 1)
    go = threading.Event()

    def run(index: int, member_id: int) -> None:
        who = Principal(member_id=member_id, role="INVESTOR")
        rng = random.Random(member_id)
        loans.invest(warm_id, STEP, f"warm-{phase}-{member_id}", who)
        warm.wait()
        go.wait()
        ok = refused = 0
        latencies = []
        open_ids = list(loan_ids)
        deadline = start.value + seconds
        due = start.value + (rng.random() * interval if interval else 0.0)
        n = 0
        while open_ids and (phase == "race" or due < deadline):
            time.sleep(max(due - time.time(), 0.0))
            loan_id = rng.choice(open_ids)
            amount = STEP
            if phase == "race":
                amount = rng.choice([STEP, D("250.50"), D("333.33"), D("1000.00")])
            n += 1
            t0 = due if interval else time.time()
            try:
                loans.invest(loan_id, amount, f"{phase}-{member_id}-{n}", who)
                ok += 1
            except BusinessError as e:
                refused += 1
                if e.code in ("LOAN_STATE_INVALID", "INVEST_BELOW_MINIMUM"):
                    open_ids.remove(loan_id)  # full, or less than minInvest left
                elif e.code == "INVEST_ABOVE_REMAINING":
                    left = loans.get_loan(loan_id)
                    rest = left.amount - left.raised
                    if rest > 0:
                        try:
                            loans.invest(loan_id, rest, f"{phase}-{member_id}-{n}r", who)
                            ok += 1
                        except BusinessError:
                            refused += 1
            latencies.append(time.time() - t0)
            due = due + interval if interval else time.time()
        results.append((ok, refused, latencies))

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(investor_ids)]
    for t in threads:
        t.start()
    warm.wait()
    on_listing_spent.clear()
    raised.clear()
    cpu = measured(threads, go, start, out)
    platform.close()
    out.put((results, cpu, sum(on_listing_spent), len(raised)))


def measured(threads, go, start, out) -> float:
    """Tell the parent this process is ready, wait for the start, let `threads` go and wait
    for them: the CPU seconds this process used meanwhile."""
    out.put("ready")
    start.wait_set()
    cpu = cpu_seconds()
    go.set()
    for t in threads:
        t.join()
    return cpu_seconds() - cpu


def is_page_read(statement: str) -> bool:
    """listLoans' read of a page of listings from the database (not from the cache)."""
    return statement.startswith("SELECT") and "FROM loan" in statement and "LIMIT" in statement


def reader(url, cache, threads, seconds, start, out) -> None:
    """One process reading the market's first page (listLoans, 20 listings, anonymous) in
    ``threads`` threads, each read after the last, while the workers invest."""
    platform = platform_for(url, cache)
    loans = platform.service(LoanService)
    pages_read: list[float] = []

    def count(conn, cursor, statement, *_) -> None:
        if is_page_read(statement):
            pages_read.append(1.0)

    event.listen(platform.database.engine, "before_cursor_execute", count)
    latencies: list[float] = []
    go = threading.Event()

    def run() -> None:
        go.wait()
        deadline = start.value + seconds
        while time.time() < deadline:
            t0 = time.time()
            loans.list_loans(page=1, page_size=20)
            latencies.append(time.time() - t0)

    loans.list_loans(page=1, page_size=20)  # warm up
    pages_read.clear()
    runners = [threading.Thread(target=run) for _ in range(threads)]
    for t in runners:
        t.start()
    cpu = measured(runners, go, start, out)
    platform.close()
    out.put(("reader", latencies, cpu, len(pages_read)))


class Start:
    """The time the load starts at, told to every process once all of them are ready."""

    def __init__(self, ctx):
        self._value = ctx.Value("d", 0.0)
        self._set = ctx.Event()

    @property
    def value(self) -> float:
        return self._value.value

    def set(self, at: float) -> None:
        self._value.value = at
        self._set.set()

    def wait_set(self) -> None:
        self._set.wait()


def load(
    url, cache, phase, loan_ids, warm_id, investors, processes, threads, seconds, rate, readers
) -> str:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start = Start(ctx)
    interval = processes * threads / rate if rate else 0.0
    groups = [investors[p * threads : (p + 1) * threads] for p in range(processes)]
    procs = [
        ctx.Process(
            target=worker,
            args=(url, cache, phase, loan_ids, warm_id, g, seconds, interval, start, out),
        )
        for g in groups
    ]
    if readers and phase != "race":
        procs.append(ctx.Process(target=reader, args=(url, cache, readers, seconds, start, out)))
    for p in procs:
        p.start()
    for _ in procs:
        out.get(timeout=600)  # each process built and warmed up
    server_cpu = server_cpu_seconds()
    start.set(time.time() + 0.1)
    reports = [out.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join()
    read = [r for r in reports if r[0] == "reader"]
    reports = [r for r in reports if r[0] != "reader"]
    elapsed = time.time() - start.value
    if server_cpu is not None:
        server_cpu = (server_cpu_seconds() or 0.0) - server_cpu
    results = [r for report in reports for r in report[0]]
    worker_cpu = sum(report[1] for report in reports)
    listing_time = sum(report[2] for report in reports)
    transactions = max(sum(report[3] for report in reports), 1)
    ok = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    p50 = statistics.median(lat) * 1000 if lat else 0
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0
    # closed loop: the invests done in the seconds given; open loop (behind its schedule, an
    # overloaded machine finishes late) and the race: until the last one returned
    wall = elapsed if rate or phase == "race" else seconds
    calls = max(ok + refused, 1)
    server = "?" if server_cpu is None else f"{server_cpu / calls * 1000:.1f}"
    return (
        f"  {phase:<7} {len(loan_ids):>5} listing(s) {processes}x{threads} workers: "
        f"{ok / wall:8.1f} invests/s ({ok} ok, {refused} refused in {wall:.1f}s), "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms\n"
        f"          per call: workers' CPU {worker_cpu / calls * 1000:.1f} ms, MariaDB's CPU "
        f"{server} ms, on the listing's row {listing_time / calls * 1000:.1f} ms, "
        f"{ok / transactions:.1f} invests a transaction"
    ) + "".join(reader_line(r, readers, seconds) for r in read)


def reader_line(report, threads: int, seconds: float) -> str:
    _, latencies, cpu, pages_read = report
    lat = sorted(latencies)
    n = max(len(lat), 1)
    p50 = statistics.median(lat) * 1000 if lat else 0
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0
    return (
        f"\n          listLoans by {threads} reader(s) meanwhile: "
        f"{len(lat) / seconds:.1f} reads/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"CPU {cpu / n * 1000:.2f} ms a read, "
        f"{pages_read} of {len(lat)} pages read from the database"
    )


CHECKS = {
    "no listing oversubscribed": "SELECT id FROM loan WHERE raised > amount",
    "raised equals its investments": (
        "SELECT l.id FROM loan l LEFT JOIN investment i ON i.loan_id = l.id"
        " AND i.status <> 'RELEASED' GROUP BY l.id, l.raised"
        " HAVING l.raised <> COALESCE(SUM(i.amount), 0)"
    ),
    "frozen equals FROZEN investments": (
        "SELECT a.member_id FROM account a LEFT JOIN investment i ON i.investor_id = a.member_id"
        " AND i.status = 'FROZEN' WHERE a.member_id IS NOT NULL GROUP BY a.member_id, a.frozen"
        " HAVING a.frozen <> COALESCE(SUM(i.amount), 0)"
    ),
    "every posting balances": (
        "SELECT posting_id FROM posting_entry GROUP BY posting_id"
        " HAVING SUM(CASE WHEN direction = 'D' THEN amount ELSE -amount END) <> 0"
    ),
    "one freeze posting per investment": (
        "SELECT i.id FROM investment i LEFT JOIN posting p ON p.ref_type = 'investment'"
        " AND p.ref_id = i.id AND p.business_type = 'INVEST' GROUP BY i.id"
        " HAVING COUNT(p.id) <> 1"
    ),
}


def check(url: str, race_ids: list[int]) -> bool:
    engine = create_engine(url, poolclass=NullPool)
    ok = True
    with engine.connect() as conn:
        n, total = conn.execute(text("SELECT COUNT(*), SUM(amount) FROM investment")).one()
        print(f"  {n} investments, {D(total or 0) / 100} yuan frozen")
        for name, sql in CHECKS.items():
            bad = conn.execute(text(sql)).all()
            ok &= not bad
            print(f"  {'OK  ' if not bad else 'FAIL'} {name}" + (f": {bad[:5]}" if bad else ""))
        full = conn.execute(
            text("SELECT COUNT(*) FROM loan WHERE status = 'FULL' AND raised = amount")
        ).scalar_one()
        print(f"  {'OK  ' if full == len(race_ids) else 'FAIL'} race: {full}/{len(race_ids)} full")
        ok &= full == len(race_ids)
    engine.dispose()
    platform = platform_for(url)
    try:
        report = LedgerAudit(platform.tx).run()
    finally:
        platform.close()
    for c in report.checks:
        print(f"  {'OK  ' if c.ok else 'FAIL'} audit: {c.name}")
    return ok and report.ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="mysql+mysqldb://root@127.0.0.1:3306/p2p_bench")
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--listings", type=int, default=200)
    p.add_argument("--race", type=int, default=50, help="small listings raced to full")
    p.add_argument(
        "--rate", type=float, help="invests a second offered in all (open loop); default: closed"
    )
    p.add_argument(
        "--redis",
        help="read listings through this Redis (and evict them there), as in production",
    )
    p.add_argument(
        "--readers",
        type=int,
        default=0,
        help="threads of one more process reading listLoans' first page meanwhile (needs --redis)",
    )
    p.add_argument(
        "--phases",
        default="hot,spread,race",
        help="which loads to run, in order (default hot,spread,race)",
    )
    a = p.parse_args()
    if not set(a.phases.split(",")) <= {"hot", "spread", "race"}:
        p.error("--phases: a comma-separated list of hot, spread and race")
    workers = a.processes * a.threads
    recreate(a.url)
    ids = setup(a.url, workers, a.listings, a.race)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}, MariaDB, {a.processes} processes x {a.threads} threads, "
        + (f"{a.rate:g} invests a second offered" if a.rate else "each invest after the last")
    )
    warm_id = ids["hot"][0]
    cache = Cache(a.redis, f"bench-invest-{time.time_ns()}:") if a.redis else None
    args = (warm_id, ids["investors"], a.processes, a.threads, a.seconds, a.rate, a.readers)
    for phase in a.phases.split(","):
        print(load(a.url, cache, phase, ids[phase], *args))
    print("checks after the load")
    return 0 if check(a.url, ids["race"] if "race" in a.phases else []) else 1


if __name__ == "__main__":
    sys.exit(main())
