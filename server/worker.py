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
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init, worker_process_shutdown

from conf import ConfigError
from conf.live import LiveSettings
from conf.settings import crontab_fields
from server.app import Platform, create_platform
from server.jobs import celery_app, prepare_embedded_broker
from server.metrics import MULTIPROC_ENV
from service.jobs import JobRegistry, PermanentJobError, is_permanent

log = logging.getLogger("p2p.worker")


class JobRuntime:
    """The Platform the jobs of this process run on, built once per process."""

    def __init__(self, settings: LiveSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._platform: Platform | None = None
        self._pid = 0

    def platform(self) -> Platform:
        with self._lock:
            if self._platform is None or self._pid != os.getpid():
                self._platform = create_platform(self._settings)
                self._pid = os.getpid()
            return self._platform

    def run(self, job: str, payload: Mapping[str, Any]) -> Any:
        return self.platform().jobs.get(job)(**payload)

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
    found = create_platform(settings)  # the jobs this platform has; closed before any fork
    try:
        jobs = found.jobs
        schedule = beat_schedule(settings.jobs.schedule, jobs)
    finally:
        found.close()
    s = settings.jobs
    app = celery_app(s)
    runtime = JobRuntime(settings)
    for name in jobs.names():
        _register(app, name, runtime, s)
    app.conf.beat_schedule = schedule
    worker_process_init.connect(lambda **_: runtime.platform(), weak=False)
    worker_process_shutdown.connect(lambda **_: runtime.close(), weak=False)
    return Engine(app, runtime, tuple(jobs.names()))


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


def run_worker(settings: LiveSettings, *, beat: bool, stop_with_parent: bool) -> int:
    """Run a job worker (with beat inside when `beat`) until SIGTERM, which lets the running
    jobs finish (Celery's warm shutdown); its exit code."""
    jobs = settings.jobs
    prepare_embedded_broker(jobs)
    if beat:
        Path(jobs.beat_schedule_file).parent.mkdir(parents=True, exist_ok=True)
    engine = build_engine(settings)
    if stop_with_parent:
        _stop_with_parent()
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
    worker.start()
    return worker.exitcode or 0


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


def _stop_with_parent() -> None:
    """Warm-stop this worker (SIGTERM to itself) once the process that started it is gone,
    even if that one was killed and could not stop it."""
    parent = os.getppid()

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

    def __init__(self, overrides: Sequence[str]) -> None:
        self._overrides = list(overrides)
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        sets = [x for item in self._overrides for x in ("--set", item)]
        command = [sys.executable, "-m", "server.cli", "worker", "--beat", "--stop-with-parent"]
        # Job workers export no metrics yet: kept out of the web workers' multiprocess
        # directory, whose housekeeping (server/metrics.py) knows only `p2p serve` processes.
        env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
        self._proc = subprocess.Popen(  # noqa: S603
            [*command, *sets], stdin=subprocess.DEVNULL, env=env
        )
        log.info("embedded job worker started (pid %d)", self._proc.pid)

    def stop(self, timeout: float) -> None:
        """SIGTERM, then wait up to `timeout` for the running jobs to finish, then SIGKILL."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("embedded job worker did not stop within %.0f s; killing it", timeout)
            proc.kill()
            proc.wait()
        log.info("embedded job worker stopped (%s)", proc.returncode)
