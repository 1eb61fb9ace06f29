"""Prometheus metrics: the ``Metrics`` interceptor, the database, cache and business counters,
and ``/metrics`` in the text format, correct across several worker processes.

Every label value is bounded: facade and operation are declared names ("-" when the call never
resolved to one), protocol is soap (SOAP 1.1), soap12 (SOAP 1.2) or rest, outcome is "OK" or a
code of the error catalogue, an exception type is a class's dotted name. Never a URL, an id or
a member.

Several workers (supervisord runs N ``p2p serve``): set ``PROMETHEUS_MULTIPROC_DIR`` to one
directory per machine in every worker's environment. prometheus-client then keeps each
worker's values in files named by its pid there, and whichever worker answers ``/metrics``
adds up the files of all of them, dead workers' counters included, so the machine's totals
never go down when a worker dies. Housekeeping (:func:`start_multiprocess_worker`): a
starting ``p2p serve`` wipes the directory only when no worker that wrote it is alive (the
whole group starts: a counter reset, as any restart is), otherwise drops just the gauges of
dead workers; a scrape drops them too, so a SIGKILLed worker's in-flight calls leave the
gauge; a worker that exits drops its own. Without the variable, one process's own registry.

Job workers (``p2p worker``, server/worker.py) run their jobs in pool processes, so they use
the same multiprocess mode with a directory of their own (the job workers of a machine share
one, apart from the web's) and the same housekeeping; the worker's main process answers
``/metrics`` on ``jobs.metrics_port`` (:class:`JobWorkerExporter`) with the machine's job
totals and what it reads from the database at each scrape (the outbox's backlog, the bank
orders in doubt).
"""

from __future__ import annotations

import atexit
import calendar
import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import event
from sqlalchemy.pool import QueuePool
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Response

from service import errors
from service.monitoring import OutboxBacklogVo

log = logging.getLogger("server.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNRESOLVED = "-"
OTHER = "OTHER"
# The classic text format every Prometheus reads (Debian's 2.x included); our names and
# labels are plain ASCII, so the body is the same as prometheus-client's newer 1.0.0.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Call latency on a 2-core worker: a cached read answers in 1-5 ms, a write in 5-50 ms, a
# login (Argon2id) in 50-250 ms; past 2.5 s something waits (locks, pool, the gateway).
REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SQL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CHECKOUT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0)
# A job: a send to the bank or a sweep takes 10 ms-1 s, a batch (closing listings, marking
# overdue installments, querying the bank) up to minutes; past 5 minutes something waits.
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: How a job run ended (p2p_jobs_total's outcome).
JOB_OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "retried")

_MARKER = re.compile(r"p2p-worker-(\d+)\.pid\Z")
_DB_FILE = re.compile(r"(?:counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db\Z")
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db\Z")


class PlatformMetrics:
    """Every metric of this process, on a registry of its own (built by the composition root;
    nothing is registered at import). ``multiprocess_dir`` is PROMETHEUS_MULTIPROC_DIR, which
    prometheus-client reads when it is imported: pass what the environment says."""

    def __init__(self, multiprocess_dir: str | None = None):
        self.multiprocess_dir = multiprocess_dir or None
        if self.multiprocess_dir is not None:
            # One-off commands (p2p migrate, check-ledger, ...) run with the variable too:
            # their database activity joins the machine's totals, their gauges are swept.
            Path(self.multiprocess_dir).mkdir(parents=True, exist_ok=True)
        r = self.registry = CollectorRegistry(auto_describe=True)
        call = ["facade", "operation", "protocol"]
        # A call's counter and duration by (facade, operation, protocol, outcome), found once:
        # labels() checks and locks on every call. Bounded: the operations, protocols and
        # catalogue codes are.
        self._call_series: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self.requests = Counter(
            "p2p_requests",
            "Calls through the dispatcher, by operation, protocol and outcome "
            "(OK or the error code).",
            [*call, "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "p2p_request_duration_seconds",
            "Time from reading a call to its result or error, by operation and protocol.",
            call,
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "p2p_requests_in_flight",
            "Calls inside the dispatcher now (summed over live workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.exceptions = Counter(
            "p2p_exceptions",
            "Unexpected exceptions (answered INTERNAL_ERROR), by class.",
            ["type"],
            registry=r,
        )
        # Pool gauges per worker and pool ("main", "reads": dao/db.py): each is exhausted on
        # its own, so in multiprocess mode they carry the worker's pid (live workers only,
        # so bounded).
        self.pool_checked_out = Gauge(
            "p2p_db_pool_checked_out",
            "Pooled database connections in use.",
            ["pool"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.pool_overflow = Gauge(
            "p2p_db_pool_overflow",
            "Connections open beyond the pool size (up to max_overflow).",
            ["pool"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.pool_size = Gauge(
            "p2p_db_pool_size",
            "Configured pool size (connections kept open).",
            ["pool"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.pool_max = Gauge(
            "p2p_db_pool_max_connections",
            "Most connections the pool opens: pool size plus max overflow.",
            ["pool"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.pool_checkout = Histogram(
            "p2p_db_pool_checkout_seconds",
            "Time to obtain a pooled connection (waiting for a free one, connecting, pre-ping).",
            buckets=CHECKOUT_BUCKETS,
            registry=r,
        )
        self.pool_timeouts = Counter(
            "p2p_db_pool_timeouts",
            "Checkouts that gave up after database.pool_timeout (the pool was exhausted).",
            registry=r,
        )
        self.sql_duration = Histogram(
            "p2p_sql_statement_seconds",
            "Time of each SQL statement.",
            buckets=SQL_BUCKETS,
            registry=r,
        )
        self.sql_slow = Counter(
            "p2p_sql_slow",
            "SQL statements at or over database.slow_sql_ms (each is also logged).",
            registry=r,
        )
        self.cache = Counter(
            "p2p_cache_lookups",
            "Reads of the shared cache: hit, miss, or error (cache unreachable).",
            ["result"],
            registry=r,
        )
        self.loans_published = Counter(
            "p2p_loans_published",
            "Listings published (committed).",
            registry=r,
        )
        # Money as integer fen: a Prometheus sample is a float64, which holds every whole
        # number of fen exactly up to 2**53 (90 trillion yuan), while yuan with cents would
        # be rounded on every addition (0.1 + 0.2 != 0.3). Divide by 100 to display yuan.
        self.invested_fen = Counter(
            "p2p_invested_fen",
            "Amount invested, in fen (1/100 yuan), counted after commit.",
            registry=r,
        )
        self.repaid_fen = Counter(
            "p2p_repaid_fen",
            "Amount borrowers repaid (installments, penalties, early settlements), in fen, "
            "counted after commit.",
            registry=r,
        )
        self.invest_group_size = Histogram(
            "p2p_invest_group_size",
            "Investments one group of a worker's concurrent investments in a listing made in "
            "its one transaction, counted after commit.",
            buckets=(2, 4, 8, 16, 32, 64, 128, 256, 500),
            registry=r,
        )
        self.bank_notifications = Counter(
            "p2p_bank_notifications",
            "Notifications from the depository bank (POST /bank/notify), by outcome: applied, "
            "confirmed, conflict, repeat (acknowledged), or why refused (never acknowledged).",
            ["outcome"],
            registry=r,
        )
        self.bank_conflicts = Counter(
            "p2p_bank_conflicts",
            "The bank said something that conflicts with what the platform holds (kept as "
            "evidence, alerted, nothing changed), by kind; counted after commit.",
            ["kind"],
            registry=r,
        )
        # Job names are the declared @job names (service/jobs.py). The label is "name", not
        # "job": Prometheus gives every target a "job" label of its own.
        self.jobs = Counter(
            "p2p_jobs",
            "Job runs in the job workers, by job name and outcome: succeeded, failed (no retry "
            "left, or a permanent error), retried (failed, will run again).",
            ["name", "outcome"],
            registry=r,
        )
        self.job_duration = Histogram(
            "p2p_job_duration_seconds",
            "Time a job run took, whatever its outcome, by job name.",
            ["name"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self._exposition = self._exposition_registry()

    @classmethod
    def from_environment(cls, environ=os.environ) -> PlatformMetrics:
        return cls(environ.get(MULTIPROC_ENV))

    def _exposition_registry(self) -> CollectorRegistry:
        if self.multiprocess_dir is None:
            return self.registry
        exposition = CollectorRegistry()
        multiprocess.MultiProcessCollector(exposition, self.multiprocess_dir)
        return exposition

    # -- feeding -----------------------------------------------------------------------

    def record_call(self, inv, seconds: float, escaped: bool) -> None:
        """One finished call: its count, duration, and unexpected exception if any."""
        op = inv.operation
        facade, operation = (op.facade_name, op.name) if op else (UNRESOLVED, UNRESOLVED)
        outcome = inv.outcome
        if escaped and outcome == "OK":
            outcome = errors.INTERNAL_ERROR.code
        elif outcome != "OK" and outcome not in errors.CATALOGUE:
            outcome = OTHER
        key = (facade, operation, inv.protocol, outcome)
        series = self._call_series.get(key)
        if series is None:
            series = self._call_series.setdefault(
                key, (self.requests.labels(*key), self.duration.labels(*key[:3]))
            )
        series[0].inc()
        series[1].observe(seconds)
        if inv.error_type:
            self.exceptions.labels(inv.error_type).inc()

    def count_exception(self, e: BaseException) -> None:
        """An unexpected exception met outside the dispatcher (the WSGI layer): counted as
        the error funnel's are, by its class's dotted name."""
        self.exceptions.labels(f"{type(e).__module__}.{type(e).__qualname__}").inc()

    def watch_database(self, database, settings) -> None:
        """Pool gauges of each pool kept current on its every checkout and checkin, and
        statement and checkout timings from the database's observer hook."""
        if not isinstance(database.engine.pool, QueuePool):
            return  # in-memory SQLite: one static connection, nothing to watch
        for name, engine in (("main", database.engine), ("reads", database.reads)):
            self._watch_pool(name, engine, settings)
        database.observe(_DatabaseObserver(self))

    def _watch_pool(self, name: str, engine, settings) -> None:
        checked_out = self.pool_checked_out.labels(name)
        overflow = self.pool_overflow.labels(name)

        def pool_changed(*_args) -> None:
            pool = engine.pool  # the current one: dispose() replaces it
            checked_out.set(pool.checkedout())
            overflow.set(max(0, pool.overflow()))

        self.pool_size.labels(name).set(settings.pool_size)
        self.pool_max.labels(name).set(settings.pool_size + settings.max_overflow)
        pool_changed()
        event.listen(engine, "checkout", pool_changed)
        event.listen(engine, "checkin", pool_changed)

    def count_cache(self, cache) -> CountedCache:
        return CountedCache(cache, self.cache)

    def business_recorder(self) -> PrometheusBusinessRecorder:
        return PrometheusBusinessRecorder(self)

    def bank_recorder(self) -> PrometheusBankRecorder:
        return PrometheusBankRecorder(self)

    def record_job(self, name: str, outcome: str) -> None:
        if outcome not in JOB_OUTCOMES:
            raise ValueError(f"unknown job outcome {outcome!r}")
        self.jobs.labels(name, outcome).inc()

    def count_bank_notification(self, outcome: str) -> None:
        self.bank_notifications.labels(outcome).inc()

    def watch_bank_orders(self, in_doubt: Callable[[], int]) -> None:
        """``p2p_bank_orders_in_doubt``: counted in the database at every scrape, so every
        worker answers the same number whichever process marked the orders."""
        self._exposition.register(_InDoubtCollector(in_doubt))

    def watch_reconciliation(self, figures: Callable[[], tuple]) -> None:
        """``p2p_reconciliation_*``: read from the database at every scrape (runs happen in
        the job workers, which export no metrics), so every worker answers the same."""
        self._exposition.register(_ReconciliationCollector(figures))

    # -- exposing ----------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text format: this process's metrics, or the sum of every worker's."""
        if self.multiprocess_dir is not None:
            sweep_dead_workers(Path(self.multiprocess_dir))
        return generate_latest(self._exposition)

    def response(self) -> Response:
        return Response(self.render(), 200, content_type=CONTENT_TYPE)


class Metrics:
    """The outermost interceptor: counts every call, times it, tracks calls in flight.

    Outermost rather than inside AccessLog, so that what it measures is all the chain does,
    the access log's own line included, and so that the in-flight gauge rises before any
    other interceptor runs. It reads what the inner ones leave on the Invocation: the
    operation (Resolve), the outcome and an unexpected exception's type (ErrorFunnel). The
    duration starts where the access log's does (``inv.started``), so the two agree."""

    def __init__(self, metrics: PlatformMetrics):
        self._m = metrics

    def __call__(self, inv, proceed):
        self._m.in_flight.inc()
        escaped = True
        try:
            result = proceed(inv)
            escaped = False
            return result
        except errors.BusinessError:
            escaped = False
            raise
        finally:
            self._m.in_flight.dec()
            self._m.record_call(inv, time.perf_counter() - inv.started, escaped)


class _DatabaseObserver:
    """What dao/db.py reports, turned into metrics."""

    def __init__(self, metrics: PlatformMetrics):
        self._m = metrics

    def statement(self, seconds: float, slow: bool) -> None:
        self._m.sql_duration.observe(seconds)
        if slow:
            self._m.sql_slow.inc()

    def checkout(self, seconds: float, timed_out: bool) -> None:
        if timed_out:
            self._m.pool_timeouts.inc()
        else:
            self._m.pool_checkout.observe(seconds)


class CountedCache:
    """The platform's cache, counting its reads by result; otherwise the cache itself."""

    def __init__(self, cache, counter: Counter):
        self._cache = cache
        self._hit = counter.labels("hit")
        self._miss = counter.labels("miss")
        self._error = counter.labels("error")

    def get(self, key: str) -> str | None:
        try:
            value = self._cache.get(key)
        except Exception:
            self._error.inc()
            raise
        (self._miss if value is None else self._hit).inc()
        return value

    def get_many(self, keys: list[str]) -> list[str | None]:
        """Bookkeeping reads (the cache-aside's generations, a stampede's wait): only
        errors are counted, so hits and misses stay one per lookup of a value."""
        try:
            return self._cache.get_many(keys)
        except Exception:
            self._error.inc()
            raise

    def get_versioned(self, generation_key: str, prefix: str) -> tuple[str | None, str | None]:
        """A cache-aside lookup: counted as a hit or a miss of its value when the generation
        exists (without one, the value is looked up with get() once the generation is made)."""
        try:
            generation, value = self._cache.get_versioned(generation_key, prefix)
        except Exception:
            self._error.inc()
            raise
        if generation is not None:
            (self._miss if value is None else self._hit).inc()
        return generation, value

    def get_versioned_many(
        self, generation_keys: Sequence[str], prefixes: Sequence[str]
    ) -> list[tuple[str | None, str | None]]:
        """Cache-aside lookups of many values at once: each counted as get_versioned's is."""
        try:
            found = self._cache.get_versioned_many(generation_keys, prefixes)
        except Exception:
            self._error.inc()
            raise
        for generation, value in found:
            if generation is not None:
                (self._miss if value is None else self._hit).inc()
        return found

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._cache.set(key, value, ttl_seconds)

    def delete(self, key: str) -> None:
        self._cache.delete(key)

    def ping(self) -> bool:
        return self._cache.ping()

    def __getattr__(self, name: str):
        return getattr(self._cache, name)


class PrometheusBusinessRecorder:
    """service.events.EventRecorder on Prometheus counters (called after commit only)."""

    def __init__(self, metrics: PlatformMetrics):
        self._m = metrics

    def loan_published(self) -> None:
        self._m.loans_published.inc()

    def invested(self, fen: int) -> None:
        self._m.invested_fen.inc(fen)

    def repaid(self, fen: int) -> None:
        self._m.repaid_fen.inc(fen)

    def invested_together(self, count: int) -> None:
        self._m.invest_group_size.observe(count)


class PrometheusBankRecorder:
    """service.ocp.alerts.BankRecorder on Prometheus counters (called after commit only)."""

    def __init__(self, metrics: PlatformMetrics):
        self._m = metrics

    def conflict(self, kind: str) -> None:
        self._m.bank_conflicts.labels(kind).inc()


class _InDoubtCollector:
    """The gauge of bank orders in doubt, read when scraped; no sample when the database
    cannot answer (the scrape still succeeds; /health reports the database)."""

    NAME = "p2p_bank_orders_in_doubt"
    HELP = (
        "Bank orders still open after bank.doubt_age_seconds, handed to reconciliation: "
        "a person must look."
    )

    def __init__(self, count: Callable[[], int]):
        self._count = count

    def describe(self):
        yield GaugeMetricFamily(self.NAME, self.HELP)

    def collect(self):
        try:
            value = self._count()
        except Exception:
            log.warning("metrics: cannot count the bank orders in doubt", exc_info=True)
            return
        family = GaugeMetricFamily(self.NAME, self.HELP)
        family.add_metric([], value)
        yield family


class _ReconciliationCollector:
    """Open discrepancies by category, attempts by result and the latest day reconciled,
    from service.reconciliation's figures(); no sample when the database cannot answer."""

    OPEN = "p2p_reconciliation_open_discrepancies"
    OPEN_HELP = "Discrepancies with the depository bank not yet resolved, by category."
    RUNS = "p2p_reconciliation_runs"
    RUNS_HELP = "Reconciliation attempts, by result."
    LAST = "p2p_reconciliation_last_success_date"
    LAST_HELP = (
        "The latest business day reconciled successfully, as the Unix time of its date's "
        "midnight in UTC (compare with time())."
    )

    def __init__(self, figures: Callable[[], tuple]):
        self._figures = figures

    def describe(self):
        yield GaugeMetricFamily(self.OPEN, self.OPEN_HELP, labels=["category"])
        yield CounterMetricFamily(self.RUNS, self.RUNS_HELP, labels=["result"])
        yield GaugeMetricFamily(self.LAST, self.LAST_HELP)

    def collect(self):
        try:
            open_counts, succeeded, failed, last = self._figures()
        except Exception:
            log.warning("metrics: cannot read the reconciliation's figures", exc_info=True)
            return
        discrepancies = GaugeMetricFamily(self.OPEN, self.OPEN_HELP, labels=["category"])
        for category, count in open_counts.items():
            discrepancies.add_metric([category], count)
        yield discrepancies
        runs = CounterMetricFamily(self.RUNS, self.RUNS_HELP, labels=["result"])
        runs.add_metric(["succeeded"], succeeded)
        runs.add_metric(["failed"], failed)
        yield runs
        if last is not None:
            day = GaugeMetricFamily(self.LAST, self.LAST_HELP)
            day.add_metric([], calendar.timegm(last.timetuple()))
            yield day


class _OutboxCollector:
    """The outbox's backlog, read from the database when scraped: rows waiting to be handed
    to the job engine, how late the earliest due one is, and rows given up on. No sample when
    the database cannot answer."""

    WAITING = ("p2p_outbox_waiting", "Outbox rows not handed to the job engine yet.")
    OLDEST = (
        "p2p_outbox_oldest_due_seconds",
        "Seconds since the earliest waiting outbox row became due (0 when none is due): "
        "normally under jobs.outbox_grace_seconds plus the sweeper's interval.",
    )
    GIVEN_UP = (
        "p2p_outbox_given_up",
        "Outbox rows the sweeper gave up on after jobs.outbox_max_attempts (p2p outbox).",
    )

    def __init__(self, backlog: Callable[[], OutboxBacklogVo]):
        self._backlog = backlog

    def describe(self):
        for name, text in (self.WAITING, self.OLDEST, self.GIVEN_UP):
            yield GaugeMetricFamily(name, text)

    def collect(self):
        try:
            b = self._backlog()
        except Exception:
            log.warning("metrics: cannot read the outbox's backlog", exc_info=True)
            return
        values = (b.waiting, b.oldest_due_seconds, b.given_up)
        for (name, text), value in zip(
            (self.WAITING, self.OLDEST, self.GIVEN_UP), values, strict=True
        ):
            family = GaugeMetricFamily(name, text)
            family.add_metric([], value)
            yield family


class JobWorkerExporter:
    """``/metrics`` of a job worker, served from its main process on a thread of its own:
    the sum of the files in its multiprocess directory (the pool processes' job counts and
    durations, bank conflicts, database timings) and the database reads done at each scrape.

    ``outbox_backlog`` reads the outbox's backlog (service.monitoring); ``in_doubt`` counts
    the bank orders in doubt (None when the platform has no bank)."""

    def __init__(
        self,
        directory: str,
        outbox_backlog: Callable[[], OutboxBacklogVo],
        in_doubt: Callable[[], int] | None = None,
    ):
        self._directory = Path(directory)
        self._registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(self._registry, directory)
        self._registry.register(_OutboxCollector(outbox_backlog))
        if in_doubt is not None:
            self._registry.register(_InDoubtCollector(in_doubt))
        self._server: BaseWSGIServer | None = None

    def render(self) -> bytes:
        sweep_dead_workers(self._directory)
        return generate_latest(self._registry)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            response = Response("not found\n", 404, content_type="text/plain")
        else:
            response = Response(self.render(), 200, content_type=CONTENT_TYPE)
        return response(environ, start_response)

    def start(self, host: str, port: int) -> None:
        """Listen on ``host``:``port`` (OSError when taken) and answer from a daemon thread."""
        self._server = make_server(host, port, self, threaded=True)
        thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        thread.start()
        log.info("job worker metrics on http://%s:%d/metrics", host, port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# -- the multiprocess directory --------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:  # a killed child its parent has not reaped yet is a zombie: dead to us
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _pids(directory: Path, pattern: re.Pattern) -> set[int]:
    return {int(m.group(1)) for p in directory.iterdir() if (m := pattern.match(p.name))}


def _drop_worker(directory: Path, pid: int) -> None:
    """A dead (or stopping) worker: its live gauges go, its counters and histograms stay."""
    multiprocess.mark_process_dead(pid, str(directory))
    with contextlib.suppress(FileNotFoundError):
        (directory / f"p2p-worker-{pid}.pid").unlink()


def sweep_dead_workers(directory: Path) -> None:
    """Drop the live gauges of every worker that is no longer running."""
    for pid in _pids(directory, _LIVE_GAUGE_FILE) | _pids(directory, _MARKER):
        if pid != os.getpid() and not _alive(pid):
            _drop_worker(directory, pid)


def prepare_directory(directory: Path, pid: int) -> bool:
    """Called by a worker before it creates any metric, under a lock on the directory.

    No worker that wrote here is alive: the group is (re)starting, so every file goes
    (a counter reset, which Prometheus's rate() expects after a restart). Some are alive:
    only the gauges of dead ones go; their counters must stay, or the machine's totals would
    drop. Either way the worker then leaves a marker, so that a sibling starting at the same
    moment sees it alive and wipes nothing. Returns True when the directory was wiped."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pids = (_pids(directory, _DB_FILE) | _pids(directory, _MARKER)) - {pid}
        wiped = not any(_alive(p) for p in pids)
        if wiped:
            for path in directory.iterdir():
                if _DB_FILE.match(path.name) or _MARKER.match(path.name):
                    path.unlink()
        else:
            for p in pids:
                if not _alive(p):
                    _drop_worker(directory, p)
            _drop_worker(directory, pid)  # a reused pid must not inherit stale gauges
        (directory / f"p2p-worker-{pid}.pid").write_text(f"{pid}\n")
    return wiped


def start_multiprocess_worker(environ=os.environ) -> None:
    """``p2p serve``'s housekeeping of PROMETHEUS_MULTIPROC_DIR (nothing when it is unset):
    prepare the directory now, drop this worker's gauges when it exits normally. A worker
    killed outright leaves them to the next scrape's sweep or sibling's start."""
    path = environ.get(MULTIPROC_ENV)
    if not path:
        return
    directory, pid = Path(path), os.getpid()
    wiped = prepare_directory(directory, pid)
    log.info("metrics: multiprocess directory %s (%s)", directory, "wiped" if wiped else "kept")
    atexit.register(_drop_worker, directory, pid)
