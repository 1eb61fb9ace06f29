"""The job engine: a Celery app configured from the [jobs] settings, and the publisher the
outbox hands jobs to (service.jobs.JobPublisher).

Celery rather than a queue of our own: a well-kept engine with acknowledgements, retries with
backoff and its own scheduler (beat). Built on demand by the composition root; nothing here
connects or reads configuration at import.

Broker. Production: Redis (``jobs.broker_url``, a database of its own and
``jobs.broker_key_prefix``). Embedded default (``broker_url`` empty): kombu's SQLAlchemy
transport on a SQLite file (``jobs.embedded_broker_file``), which needs no server. It was
chosen over kombu's filesystem transport, which writes a message file before filling it: a
worker that takes the file in between reads it empty and the job is lost (about a fifth of
6,000 messages with two producers and two consumers on one machine), while SQLite's write lock
hands each message to one consumer only (none lost, none twice, in the same test).

Delivery: a job is acknowledged after it ran (acks_late), so a worker that dies mid-job has it
redelivered: at once when a pool process dies (task_reject_on_worker_lost), after
``visibility_timeout_seconds`` when the whole worker dies (Redis). The embedded broker keeps
no record of what a dead worker held: there such a job is lost (development only). One job at
a time per pool process (prefetch multiplier 1); results are not stored (ignore_result).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.jobs import JobPublisher

if TYPE_CHECKING:
    from celery import Celery

#: The queue every job goes to.
QUEUE = "p2p.jobs"
#: The embedded broker's transport: SQLite waits this long for the write lock before a
#: publish or a poll fails.
_EMBEDDED_TRANSPORT = {"connect_args": {"timeout": 30}}


def broker_url(jobs: Any) -> str:
    """The broker URL: ``jobs.broker_url``, or the embedded SQLite broker's."""
    if jobs.broker_url:
        return jobs.broker_url
    return "sqla+sqlite:///" + str(Path(jobs.embedded_broker_file).resolve())


def prepare_embedded_broker(jobs: Any) -> None:
    """Create the embedded broker's folder, put its SQLite file in WAL mode (readers and the
    one writer no longer block each other) and declare the queue; nothing for a Redis broker.

    kombu's SQLAlchemy transport creates a queue's row the first time a process uses it, with
    a lock of that process's own: a worker and the beat it forks, using it at once, both
    inserted it and one died of the unique name (a worker the embedded layout then ran
    without). Declared here, before any of them starts, every process finds it."""
    if jobs.broker_url:
        return
    import sqlite3  # the embedded broker's only: a worker on a Redis broker never loads it

    from kombu import Connection
    from sqlalchemy.exc import IntegrityError, OperationalError

    path = Path(jobs.embedded_broker_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    for attempt in (1, 2):
        with Connection(broker_url(jobs), transport_options=dict(_EMBEDDED_TRANSPORT)) as broker:
            channel = broker.default_channel
            try:
                channel.queue_declare(queue=QUEUE)
                return
            except (IntegrityError, OperationalError):
                # Another process's start made the tables or the row meanwhile: the second
                # declaration finds them.
                if attempt == 2:
                    raise
            finally:
                # No connection to the file outlives this: a worker forks its beat and its
                # pool after it, and a SQLite connection must never cross a fork.
                channel.session.close()
                channel.session.get_bind().dispose()


def celery_app(jobs: Any, *, name: str = "p2p") -> Celery:
    """A Celery app on the [jobs] settings `jobs`, with no job registered (server/worker.py
    registers them; a publisher sends by name)."""
    from celery import Celery  # here, not at import: a worker that never publishes skips it

    app = Celery(name, set_as_current=False)
    redis = bool(jobs.broker_url)
    transport: dict[str, Any] = {}
    if redis:
        transport = {
            "visibility_timeout": jobs.visibility_timeout_seconds,
            "global_keyprefix": jobs.broker_key_prefix,
        }
    else:
        transport = dict(_EMBEDDED_TRANSPORT)
    app.conf.update(
        broker_url=broker_url(jobs),
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A worker cut off from the broker stops the jobs it cannot acknowledge: they are
        # redelivered anyway, so finishing them would only run them twice.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # Remote control needs fanout, which the embedded broker has not across processes.
        worker_enable_remote_control=redis,
        # A hand-over that the broker refuses fails quickly; the outbox's sweeper tries again.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        timezone=jobs.timezone,
        enable_utc=True,
        beat_schedule_filename=str(Path(jobs.beat_schedule_file)),
    )
    return app


class CeleryPublisher(JobPublisher):
    """Hands jobs to Celery by name; `job_id` becomes the task id. Given ``make_app`` rather
    than an app, it makes the app on the first job it hands over, so a web worker loads
    Celery (about 5 MiB and 0.1 s) only once it has a job to hand over."""

    def __init__(
        self, app: Celery | None = None, *, make_app: Callable[[], Celery] | None = None
    ) -> None:
        if (app is None) == (make_app is None):
            raise TypeError("CeleryPublisher takes an app or make_app")
        self._app = app
        self._make_app = make_app
        self._lock = threading.Lock()

    def _celery(self) -> Celery:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._make_app()
        return self._app

    def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        job_id: str,
        not_before: datetime | None = None,
    ) -> None:
        self._celery().send_task(job, kwargs=dict(payload), task_id=job_id, eta=not_before)

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
