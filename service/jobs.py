"""Jobs: work the platform does after a commit or on a schedule, run by the job engine.

* ``@job("bank.send")`` marks a service method as a job. Its parameters are plain keyword
  arguments of JSON values (ids, order numbers, amounts as decimal strings; never personal
  data: payloads sit in the broker and the outbox in clear). A job may run more than once (a
  worker that dies before acknowledging it has it redelivered), so every job is idempotent.
  A job that fails is retried with backoff by the engine, unless the failure is permanent
  (:func:`is_permanent`): a :class:`PermanentJobError`, or a BusinessError that is the
  request's fault (a 4xx code), which no retry can change.
* :class:`JobRegistry` finds the marked methods on the platform's services and components,
  as the facades' operations are found (server/registry.py).
* :class:`Outbox` writes a job in the current transaction (refused outside one) and, once
  that transaction commits, hands it to the engine through a :class:`JobPublisher`; a
  rollback writes nothing and hands over nothing. A crash between commit and hand-over leaves
  the row to the sweeper (the periodic job ``outbox.sweep``).
* The engine itself lives in server/ (server/jobs.py: Celery); :class:`InProcessPublisher`
  runs jobs in the caller's thread for tests, which choose it explicitly.
"""

from __future__ import annotations

import abc
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dao.outbox import OutboxEntity, OutboxRepository
from service.errors import BusinessError
from service.transaction import Propagation, transactional

log = logging.getLogger(__name__)

_MARK = "__p2p_job__"
#: A job's name: dotted lower-case words, the module first ("loan.close_expired").
JOB_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
#: The largest payload a job may carry, as JSON bytes (the outbox column is a TEXT).
MAX_PAYLOAD_BYTES = 16_384


def job(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a service method as the job `name` ("module.action", e.g. "loan.close_expired")."""
    if not JOB_NAME.fullmatch(name):
        raise ValueError(f"job name must be dotted lower-case words, got {name!r}")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, _MARK, name)
        return fn

    return mark


class PermanentJobError(Exception):
    """Raised by a job whose failure no retry can change: the engine does not retry it."""


def is_permanent(exc: BaseException) -> bool:
    """Whether a job's failure is final: a PermanentJobError, or a BusinessError that is the
    request's fault (a 4xx code). Anything else (a database or network error, a 5xx
    BusinessError such as SERVICE_UNAVAILABLE) is worth retrying."""
    if isinstance(exc, PermanentJobError):
        return True
    return isinstance(exc, BusinessError) and exc.error.client


def outbox_job_id(row_id: int) -> str:
    """The engine's id of the hand-over of outbox row `row_id`: the same on every hand-over,
    so a repeat (the sweeper after a crash) is recognisable."""
    return f"outbox-{row_id}"


class JobRegistry:
    """The jobs of a platform: job name -> the bound service method that runs it."""

    def __init__(self) -> None:
        self._jobs: dict[str, Callable[..., Any]] = {}

    def discover(self, objects: Iterable[object]) -> None:
        """Register every @job method of `objects` (each object once); two methods claiming
        one name fail here, at start-up."""
        seen: set[int] = set()
        for obj in objects:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            for attr, value in inspect.getmembers(type(obj)):
                name = getattr(value, _MARK, None)
                if name is None:
                    continue
                bound = getattr(obj, attr)
                if name in self._jobs and self._jobs[name] != bound:
                    raise TypeError(
                        f"job {name!r} is claimed by {_where(self._jobs[name])} and {_where(bound)}"
                    )
                self._jobs[name] = bound

    def names(self) -> list[str]:
        return sorted(self._jobs)

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def get(self, name: str) -> Callable[..., Any]:
        """The method running job `name`; KeyError naming it when there is none."""
        try:
            return self._jobs[name]
        except KeyError:
            raise KeyError(f"no job named {name!r}") from None

    def check(self, name: str, payload: Mapping[str, Any]) -> None:
        """Refuse (TypeError) a payload the job's method cannot be called with."""
        try:
            inspect.signature(self.get(name)).bind(**payload)
        except TypeError as exc:
            raise TypeError(f"job {name!r}: {exc}") from None

    def takes_no_arguments(self, name: str) -> bool:
        """Whether job `name` can run with no payload (a periodic job must)."""
        params = inspect.signature(self.get(name)).parameters.values()
        return all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
        )


def _where(method: Callable[..., Any]) -> str:
    return getattr(method, "__qualname__", repr(method))


class JobPublisher(abc.ABC):
    """Hands jobs to the engine. Implementations: server.jobs.CeleryPublisher (the engine)
    and :class:`InProcessPublisher` (tests)."""

    @abc.abstractmethod
    def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        job_id: str,
        not_before: datetime | None = None,
    ) -> None:
        """Hand over `job` to run with `payload` as its keyword arguments, not before
        `not_before`; `job_id` names this hand-over (the same on a repeat). Returns once the
        engine has it; raises when it cannot take it."""

    def close(self) -> None:  # noqa: B027 - optional: most publishers hold nothing
        """Release the publisher's connections (the platform is closing)."""


class InProcessPublisher(JobPublisher):
    """Runs each job at once in the caller's thread (after the commit, ignoring not_before):
    for unit and integration tests, which choose it explicitly; never a production fallback.
    Keeps what it was handed (`handed`) and the jobs that failed (`failures`), since a
    failing job is the job's outcome, not a failed hand-over."""

    def __init__(self, jobs: JobRegistry) -> None:
        self._jobs = jobs
        self.handed: list[tuple[str, str, dict[str, Any]]] = []
        self.failures: list[tuple[str, Exception]] = []

    def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        job_id: str,
        not_before: datetime | None = None,
    ) -> None:
        run = self._jobs.get(job)
        self.handed.append((job_id, job, dict(payload)))
        try:
            run(**payload)
        except Exception as exc:
            log.exception("job %s[%s] failed", job, job_id)
            self.failures.append((job_id, exc))


@dataclass(frozen=True)
class OutboxPolicy:
    """How the outbox hands rows over (conf: the outbox_* and max_eta_seconds [jobs] keys)."""

    batch: int = 100
    grace_seconds: int = 30
    max_attempts: int = 10
    retention_days: int = 7
    max_eta_seconds: int = 300

    @classmethod
    def from_settings(cls, jobs: Any) -> OutboxPolicy:
        return cls(
            batch=jobs.outbox_batch,
            grace_seconds=jobs.outbox_grace_seconds,
            max_attempts=jobs.outbox_max_attempts,
            retention_days=jobs.outbox_retention_days,
            max_eta_seconds=jobs.max_eta_seconds,
        )


@dataclass(frozen=True)
class OutboxSweepVo:
    handed_over: int
    failed: int
    purged: int


@dataclass(frozen=True)
class OutboxRowVo:
    row_id: int
    job: str
    created_at: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class OutboxStatusVo:
    waiting: int  # not handed over yet, still being tried
    failed: tuple[OutboxRowVo, ...]  # given up on: an operator decides (`p2p outbox --retry`)


class Outbox:
    """Jobs written with the change they follow; see the module docstring."""

    def __init__(
        self,
        tx,
        clock: Callable[[], datetime],
        publisher: JobPublisher,
        jobs: JobRegistry,
        policy: OutboxPolicy | None = None,
    ) -> None:
        self.tx = tx
        self._clock = clock
        self._publisher = publisher
        self._jobs = jobs
        self._policy = policy or OutboxPolicy()
        self._rows = OutboxRepository(tx.session)

    @transactional(propagation=Propagation.MANDATORY)
    def add(self, job: str, payload: Mapping[str, Any], not_before: datetime | None = None) -> int:
        """Write `job` with `payload` in the current transaction (IllegalTransactionStateError
        outside one) and return its row id; the job is handed to the engine once the
        transaction commits, never if it rolls back. `not_before` (aware) delays it."""
        self._jobs.check(job, payload)
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        if len(body.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"job {job!r}: payload over {MAX_PAYLOAD_BYTES} bytes")
        now = self._clock()
        due = max(now, not_before) if not_before is not None else now
        row = self._rows.add(
            OutboxEntity(job=job, payload=body, created_at=now, available_at=due, attempts=0)
        )
        if due - now <= timedelta(seconds=self._policy.max_eta_seconds):
            eta = due if due > now else None
            row_id, args = row.id, json.loads(body)
            self.tx.after_commit(lambda: self._hand_over(row_id, job, args, eta))
        return row.id

    @job("outbox.sweep")
    def sweep(self) -> OutboxSweepVo:
        """Hand over rows whose commit did not (a crash, the broker down), due within
        max_eta_seconds, oldest first, a bounded batch; delete rows handed over longer ago
        than the retention. Each step is its own short transaction."""
        p, now = self._policy, self._clock()
        rows = self.tx.run(
            self._due,
            now + timedelta(seconds=p.max_eta_seconds),
            now - timedelta(seconds=p.grace_seconds),
            p.batch,
            read_only=True,
        )
        handed = 0
        for row_id, job_name, payload, due in rows:
            eta = due if due > now else None
            handed += self._hand_over(row_id, job_name, json.loads(payload), eta)
        purged = self.tx.run(
            self._rows.purge_dispatched, now - timedelta(days=p.retention_days), p.batch
        )
        if rows or purged:
            log.info(
                "outbox sweep: %d handed over, %d failed, %d old rows deleted",
                handed,
                len(rows) - handed,
                purged,
            )
        return OutboxSweepVo(handed, len(rows) - handed, purged)

    @transactional(read_only=True)
    def status(self, limit: int = 50) -> OutboxStatusVo:
        """How many rows wait, and the rows given up on (at most `limit`), for operators."""
        failed = tuple(
            OutboxRowVo(r.id, r.job, r.created_at, r.attempts, r.last_error)
            for r in self._rows.failed(limit)
        )
        return OutboxStatusVo(self._rows.count_waiting(), failed)

    @transactional
    def retry_failed(self) -> int:
        """Let the sweeper try the rows it gave up on again (after the cause is fixed)."""
        return self._rows.retry_failed()

    def _due(
        self, until: datetime, created_before: datetime, limit: int
    ) -> list[tuple[int, str, str, datetime]]:
        return [
            (r.id, r.job, r.payload, r.available_at)
            for r in self._rows.due(until, created_before, limit)
        ]

    def _hand_over(
        self, row_id: int, job: str, payload: dict[str, Any], eta: datetime | None
    ) -> bool:
        """Publish one row, then mark it dispatched; on failure count the attempt. A crash
        between the two hands it over again later under the same job id."""
        try:
            self._publisher.publish(job, payload, job_id=outbox_job_id(row_id), not_before=eta)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            attempts = self.tx.run(
                self._rows.record_failure,
                row_id,
                error,
                self._clock(),
                self._policy.max_attempts,
                propagation=Propagation.REQUIRES_NEW,
            )
            if attempts >= self._policy.max_attempts:
                log.error(
                    "outbox row %d (%s) given up after %d hand-overs failed: %s "
                    "(`p2p outbox` lists such rows, `p2p outbox --retry` tries them again)",
                    row_id,
                    job,
                    attempts,
                    error,
                )
            else:
                log.warning("outbox row %d (%s) not handed over: %s", row_id, job, error)
            return False
        self.tx.run(
            self._rows.mark_dispatched,
            row_id,
            self._clock(),
            propagation=Propagation.REQUIRES_NEW,
        )
        return True
