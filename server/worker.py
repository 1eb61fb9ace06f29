"""The job workers' composition root: the Celery app of server/jobs.py with every @job method
of the platform (service/jobs.py) registered as a task, run on the same Platform as the web
(server.app.create_platform), and the periodic jobs of ``jobs.schedule`` on beat.

Commands: ``p2p worker`` (``--beat`` embeds the scheduler), ``p2p beat``, and the worker
``p2p serve`` starts as its child process under ``jobs.embedded_worker``.

Each pool process builds its own Platform when it starts: the prefork pool forks after
start-up, and a child must share neither database connections nor the Apollo poller with its
parent, so the parent closes the one it built to find the jobs before it forks.

Retries: a job that raises is retried by Celery (autoretry) with exponential backoff and
jitter, up to ``jobs.max_retries`` times, waiting at most ``jobs.retry_backoff_max_seconds``;
a permanent failure (service.jobs.is_permanent) is logged as failed and not retried.
Periodic jobs expire after one interval: a worker back from an outage runs a missed interval
job once, not once per missed beat.

Metrics. With ``jobs.metrics_port`` set, the worker answers ``/metrics`` on that port from its
main process (server.metrics.JobWorkerExporter): each pool process counts its job runs by
outcome (Celery's success, retry and failure signals) and times them, and counts what its
platform counts (bank conflicts the query job finds, database timings), in the files of
``PROMETHEUS_MULTIPROC_DIR``, which the worker must then have: a directory the job workers of
a machine share, apart from the web workers' (prometheus-client reads the variable when it is
imported, so it comes from the environment, as for ``p2p serve``). The directory's
housekeeping is the web's (server/metrics.py): a starting worker wipes it when none that
wrote there is alive, a pool process that ends drops its gauges. The outbox's backlog and the
bank orders in doubt are read from the database at each scrape, on a connection of the main
process's own (never shared with a pool process it forks).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import (
    task_failure,
    task_retry,
    task_success,
    worker_process_init,
    worker_process_shutdown,
)
from prometheus_client import multiprocess

from conf import ConfigError
from conf.live import LiveSettings
from conf.settings import crontab_fields
from dao.db import Database
from server.app import Platform, create_platform, utc_now
from server.contract import Contract, compile_in_child
from server.jobs import celery_app, prepare_embedded_broker
from server.metrics import MULTIPROC_ENV, JobWorkerExporter, start_multiprocess_worker
from service.jobs import JobRegistry, PermanentJobError, is_permanent
from service.monitoring import WorkMonitor
from service.transaction import TransactionManager

log = logging.getLogger("p2p.worker")


class JobRuntime:
    """The Platform the jobs of this process run on, built once per process on the contract
    compiled once, before the worker forks its processes."""

    def __init__(self, settings: LiveSettings, contract: Contract) -> None:
        self._settings = settings
        self._contract = contract
        self._lock = threading.Lock()
        self._platform: Platform | None = None
        self._pid = 0

    def platform(self) -> Platform:
        with self._lock:
            if self._platform is None or self._pid != os.getpid():
                self._platform = create_platform(self._settings, contract=self._contract)
                self._pid = os.getpid()
            return self._platform

    def run(self, job: str, payload: Mapping[str, Any]) -> Any:
        platform = self.platform()
        started = time.perf_counter()
        try:
            return platform.jobs.get(job)(**payload)
        finally:
            platform.metrics.job_duration.labels(job).observe(time.perf_counter() - started)

    def count(self, job: str, outcome: str) -> None:
        """A run of ``job`` ended with ``outcome`` (succeeded, failed or retried)."""
        self.platform().metrics.record_job(job, outcome)

    def close(self) -> None:
        with self._lock:
            if self._platform is not None and self._pid == os.getpid():
                self._platform.close()
            self._platform = None


@dataclass(frozen=True)
class Engine:
    app: Celery
    runtime: JobRuntime
    jobs: tuple[str, ...]


def build_engine(settings: LiveSettings) -> Engine:
    """The Celery app with every job of the platform registered and the schedule on beat;
    ConfigError when jobs.schedule names an unknown job or one that needs arguments."""
    # Compiled by a child, so that neither this process nor the ones it forks imports spyne.
    contract = compile_in_child()
    found = create_platform(settings, contract=contract)  # its jobs; closed before any fork
    try:
        jobs = found.jobs
        schedule = beat_schedule(settings.jobs.schedule, jobs)
    finally:
        found.close()
    s = settings.jobs
    app = celery_app(s)
    runtime = JobRuntime(settings, contract)
    for name in jobs.names():
        _register(app, name, runtime, s)
    app.conf.beat_schedule = schedule
    worker_process_init.connect(lambda **_: runtime.platform(), weak=False)
    worker_process_shutdown.connect(lambda **_: _process_ends(runtime), weak=False)
    count_outcomes(runtime, frozenset(jobs.names()))
    return Engine(app, runtime, tuple(jobs.names()))


def count_outcomes(runtime, names: frozenset[str]) -> None:
    """Count every run of the jobs ``names`` in ``runtime`` (its ``count(job, outcome)``) as
    Celery's signals report them, in the process that ran it."""
    for signal_, outcome in (
        (task_success, "succeeded"),
        (task_retry, "retried"),
        (task_failure, "failed"),
    ):
        signal_.connect(_counter(runtime, names, outcome), weak=False)


def _counter(runtime, names: frozenset[str], outcome: str):
    """A handler of Celery's task signal for ``outcome``: counts the runs of our jobs."""

    def count(sender=None, **_: Any) -> None:
        name = getattr(sender, "name", None)
        if name in names:
            runtime.count(name, outcome)

    return count


def _process_ends(runtime: JobRuntime) -> None:
    """A pool process ends: its platform closes, its live gauges leave the directory."""
    runtime.close()
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.mark_process_dead(os.getpid(), directory)


def _register(app: Celery, name: str, runtime: JobRuntime, s: Any) -> None:
    def run(**payload: Any) -> Any:
        try:
            return runtime.run(name, payload)
        except Exception as exc:
            if is_permanent(exc):
                raise PermanentJobError(f"{type(exc).__name__}: {exc}") from exc
            raise

    app.task(
        name=name,
        shared=False,  # this app's task only, not every Celery app's in the process
        autoretry_for=(Exception,),
        dont_autoretry_for=(PermanentJobError,),
        retry_backoff=s.retry_backoff_seconds,
        retry_backoff_max=s.retry_backoff_max_seconds,
        retry_jitter=True,
        max_retries=s.max_retries,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )(run)


def beat_schedule(schedule: Mapping[str, int | str], jobs: JobRegistry) -> dict[str, dict]:
    """Celery's beat_schedule for jobs.schedule; ConfigError for a job `jobs` lacks or one
    that needs arguments."""
    entries = {}
    for name, spec in schedule.items():
        if name not in jobs:
            raise ConfigError(
                f"jobs.schedule: no job named {name!r} (jobs: {', '.join(jobs.names())})"
            )
        if not jobs.takes_no_arguments(name):
            raise ConfigError(f"jobs.schedule: job {name!r} needs arguments; it cannot be periodic")
        if isinstance(spec, int):
            # A periodic send the workers could not take within one interval is dropped: the
            # next one does the same work.
            entries[name] = {"task": name, "schedule": float(spec), "options": {"expires": spec}}
        else:
            minute, hour, day, month, weekday = crontab_fields(spec) or ()
            entries[name] = {
                "task": name,
                "schedule": crontab(
                    minute=minute,
                    hour=hour,
                    day_of_month=day,
                    month_of_year=month,
                    day_of_week=weekday,
                ),
            }
    return entries


def run_worker(settings: LiveSettings, *, beat: bool, parent_pid: int | None = None) -> int:
    """Run a job worker (with beat inside when `beat`) until SIGTERM, which lets the running
    jobs finish (Celery's warm shutdown), or until process `parent_pid`, which started it, is
    gone; its exit code."""
    jobs = settings.jobs
    directory = os.environ.get(MULTIPROC_ENV)
    if jobs.metrics_port and not directory:
        raise ConfigError(
            f"jobs.metrics_port: the job worker's pool processes count in files, so it needs "
            f"{MULTIPROC_ENV} (a directory of the job workers' own)"
        )
    prepare_embedded_broker(jobs)
    if beat:
        Path(jobs.beat_schedule_file).parent.mkdir(parents=True, exist_ok=True)
    if directory:
        start_multiprocess_worker()  # before any metric exists (see server/metrics.py)
    engine = build_engine(settings)
    exporter = None
    if jobs.metrics_port:
        # The platform built to find the jobs left pool gauges under this process's pid.
        multiprocess.mark_process_dead(os.getpid(), directory)
        exporter = _exporter(settings, directory)
        exporter.start(settings.server.host, jobs.metrics_port)
    if parent_pid is not None:
        _stop_with_parent(parent_pid)
    log.info("job worker: %d processes, jobs %s", jobs.concurrency, ", ".join(engine.jobs))
    worker = engine.app.Worker(
        hostname=f"p2p-{os.getpid()}@{socket.gethostname()}",
        concurrency=jobs.concurrency,
        pool="prefork",
        beat=beat,
        schedule_filename=jobs.beat_schedule_file,
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
        loglevel=settings.logging.level,
        quiet=True,
    )
    try:
        worker.start()
    finally:
        if exporter is not None:
            exporter.stop()
    return worker.exitcode or 0


def _exporter(settings: LiveSettings, directory: str) -> JobWorkerExporter:
    """The worker's /metrics, reading the database on one connection of this process's own:
    a pool process forked later lets go of it without closing it (SQLAlchemy's recipe)."""
    s = settings.current()
    database = Database(
        s.database.url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=s.database.pool_timeout,
        pool_recycle=s.database.pool_recycle,
        slow_sql_ms=s.database.slow_sql_ms,
    )
    os.register_at_fork(after_in_child=lambda: database.dispose(close=False))
    monitor = WorkMonitor(TransactionManager(database, max_retries=0), utc_now)
    in_doubt = monitor.bank_orders_in_doubt if s.payment.gateway == "BANK" else None
    return JobWorkerExporter(directory, monitor.outbox_backlog, in_doubt)


def run_beat(settings: LiveSettings) -> int:
    """Run the scheduler: it sends each periodic job to the workers when due. Exactly one
    beat may run per broker, or periodic jobs run once per beat."""
    jobs = settings.jobs
    prepare_embedded_broker(jobs)
    Path(jobs.beat_schedule_file).parent.mkdir(parents=True, exist_ok=True)
    engine = build_engine(settings)
    log.info("beat: %s", ", ".join(f"{n} ({s})" for n, s in jobs.schedule.items()))
    engine.app.Beat(
        schedule=jobs.beat_schedule_file, loglevel=settings.logging.level, quiet=True
    ).run()
    return 0


def _stop_with_parent(parent: int) -> None:
    """Warm-stop this worker (SIGTERM to itself) once its parent `parent` is gone, even if
    that one was killed and could not stop it. The parent names itself: by the time this runs
    it may already be gone, and this process adopted by another."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        log.warning("the process that started this worker is gone; stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class EmbeddedWorker:
    """The job worker, with beat, that `p2p serve` runs as its child process when
    jobs.embedded_worker is set: same settings (the command-line overrides are passed on),
    same log; stopped with the server."""

    def __init__(self, overrides: Sequence[str], *, metrics: bool = False) -> None:
        self._overrides = list(overrides)
        self._metrics = metrics
        self._metrics_dir: tempfile.TemporaryDirectory | None = None
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        sets = [x for item in self._overrides for x in ("--set", item)]
        command = [sys.executable, "-m", "server.cli", "worker", "--beat"]
        command += ["--parent-pid", str(os.getpid())]
        # Never the web workers' multiprocess directory: with jobs.metrics_port set, a
        # directory of its own, removed when it stops.
        env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
        if self._metrics:
            self._metrics_dir = tempfile.TemporaryDirectory(prefix="p2p-job-metrics-")
            env[MULTIPROC_ENV] = self._metrics_dir.name
        self._proc = subprocess.Popen(  # noqa: S603
            [*command, *sets], stdin=subprocess.DEVNULL, env=env
        )
        log.info("embedded job worker started (pid %d)", self._proc.pid)

    def stop(self, timeout: float) -> None:
        """SIGTERM, then wait up to `timeout` for the running jobs to finish, then SIGKILL."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded job worker did not stop within %.0f s; killing it", timeout)
                proc.kill()
                proc.wait()
            log.info("embedded job worker stopped (%s)", proc.returncode)
        if self._metrics_dir is not None:
            self._metrics_dir.cleanup()
            self._metrics_dir = None
