"""The job engine's composition: the Celery app from [jobs], the publishers' one interface, every
@job registered as a task with the delivery and retry rules, and the schedule on beat."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest
from celery.schedules import crontab

from conf import ConfigError, load_settings
from conf.live import LiveSettings
from server import worker
from server.app import create_platform
from server.jobs import QUEUE, CeleryPublisher, broker_url, celery_app, prepare_embedded_broker
from service import errors
from service.errors import BusinessError
from service.jobs import InProcessPublisher, JobPublisher, JobRegistry, PermanentJobError, job

ROOT = Path(__file__).resolve().parents[3]


def settings(tmp_path: Path, **overrides: object):
    values = {
        "database.url": f"sqlite:///{tmp_path / 'p2p.db'}",
        "jobs.embedded_broker_file": str(tmp_path / "jobs.db"),
        **overrides,
    }
    return load_settings({"P2P_ENV": "test"}, values)


# -- the publishers ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CeleryPublisher, InProcessPublisher])
def test_both_publishers_keep_the_interface(cls) -> None:
    assert issubclass(cls, JobPublisher)
    assert not cls.__abstractmethods__
    assert inspect.signature(cls.publish) == inspect.signature(JobPublisher.publish)


def test_the_platform_hands_jobs_to_the_engine_unless_a_test_says_otherwise(tmp_path) -> None:
    engine = create_platform(settings(tmp_path))
    chosen = create_platform(settings(tmp_path), publisher=InProcessPublisher)
    try:
        assert isinstance(engine.components["publisher"], CeleryPublisher)
        assert isinstance(chosen.components["publisher"], InProcessPublisher)
    finally:
        engine.close()
        chosen.close()


def test_the_celery_publisher_sends_the_job_by_name_with_its_id_and_time(tmp_path) -> None:
    app = celery_app(settings(tmp_path).jobs)
    app.conf.broker_url = "memory://"
    eta = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)

    CeleryPublisher(app).publish(
        "loan.close_expired", {"order_no": "A1"}, job_id="outbox-7", not_before=eta
    )

    with app.connection_for_read() as conn:
        message = conn.SimpleQueue(QUEUE).get(timeout=5)
    assert message.headers["task"] == "loan.close_expired"
    assert message.headers["id"] == "outbox-7"
    assert dt.datetime.fromisoformat(message.headers["eta"]) == eta
    assert message.content_type == "application/json"
    args, kwargs, _ = message.decode()
    assert (args, kwargs) == ([], {"order_no": "A1"})
    app.close()


def test_a_lazy_celery_publisher_makes_its_app_once_on_the_first_job(tmp_path) -> None:
    made = []

    def make_app():
        app = celery_app(settings(tmp_path).jobs)
        app.conf.broker_url = "memory://"
        made.append(app)
        return app

    publisher = CeleryPublisher(make_app=make_app)
    assert made == []
    publisher.publish("loan.close_expired", {}, job_id="outbox-1")
    publisher.publish("loan.mark_overdue", {}, job_id="outbox-2")

    assert len(made) == 1
    with made[0].connection_for_read() as conn:
        queue = conn.SimpleQueue(QUEUE)
        ids = [queue.get(timeout=5).headers["id"] for _ in range(2)]
    assert ids == ["outbox-1", "outbox-2"]
    publisher.close()


def test_a_lazy_celery_publisher_that_never_published_closes_nothing() -> None:
    def make_app():
        raise AssertionError("made an app only to close it")

    CeleryPublisher(make_app=make_app).close()
    with pytest.raises(TypeError):
        CeleryPublisher()


# -- the app's configuration -------------------------------------------------------------------


def test_the_embedded_broker_is_a_sqlite_file_in_wal_mode(tmp_path) -> None:
    jobs = settings(tmp_path, **{"jobs.embedded_broker_file": str(tmp_path / "q/jobs.db")}).jobs
    prepare_embedded_broker(jobs)

    assert broker_url(jobs) == f"sqla+sqlite:///{tmp_path / 'q/jobs.db'}"
    import sqlite3

    with sqlite3.connect(tmp_path / "q/jobs.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    app = celery_app(jobs)
    assert app.conf.broker_url == broker_url(jobs)
    assert app.conf.worker_enable_remote_control is False  # no fanout across processes


def test_the_embedded_broker_s_queue_is_declared_before_any_process_uses_it(tmp_path) -> None:
    """Processes starting at once on a new broker (a worker and its beat, a server publishing)
    each find the queue: declared once, whoever came first (kombu alone made each insert it,
    and the one that lost the race died)."""
    broker = tmp_path / "jobs.db"
    script = (
        "import sys, types; from server.jobs import prepare_embedded_broker; "
        "prepare_embedded_broker(types.SimpleNamespace(broker_url='', "
        "embedded_broker_file=sys.argv[1]))"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", script, str(broker)], cwd=ROOT, stderr=PIPE)
        for _ in range(4)
    ]
    errors_written = [p.communicate()[1].decode() for p in starts]
    assert [p.returncode for p in starts] == [0] * 4, errors_written
    import sqlite3

    with sqlite3.connect(broker) as conn:
        assert conn.execute("SELECT name FROM kombu_queue").fetchall() == [(QUEUE,)]
    conn.close()


def test_preparing_the_embedded_broker_leaves_no_connection_to_it_open(tmp_path) -> None:
    """A worker prepares the broker, then forks its beat and its pool: a SQLite connection
    carried across a fork fails there ("locking protocol") or worse."""
    jobs = settings(tmp_path).jobs
    prepare_embedded_broker(jobs)

    broker = Path(jobs.embedded_broker_file).resolve()
    opened = [Path(os.readlink(fd)) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()]
    assert [p for p in opened if p.name.startswith(broker.name)] == []


def test_a_redis_broker_gets_its_visibility_timeout_and_key_prefix(tmp_path) -> None:
    jobs = settings(
        tmp_path,
        **{
            "jobs.broker_url": "redis://127.0.0.1:6379/1",
            "jobs.broker_key_prefix": "p2p-jobs-test:",
            "jobs.visibility_timeout_seconds": 900,
        },
    ).jobs
    app = celery_app(jobs)

    assert app.conf.broker_url == "redis://127.0.0.1:6379/1"
    assert app.conf.broker_transport_options == {
        "visibility_timeout": 900,
        "global_keyprefix": "p2p-jobs-test:",
    }


def test_delivery_rules(tmp_path) -> None:
    conf = celery_app(settings(tmp_path).jobs).conf

    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result is True
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.timezone == "Asia/Shanghai"
    assert conf.enable_utc is True


# -- the worker's tasks ------------------------------------------------------------------------


def test_every_job_of_the_platform_is_a_task_with_the_retry_rules(tmp_path) -> None:
    s = settings(
        tmp_path,
        **{
            "jobs.max_retries": 7,
            "jobs.retry_backoff_seconds": 3,
            "jobs.retry_backoff_max_seconds": 300,
        },
    )
    engine = worker.build_engine(LiveSettings(s))

    assert engine.jobs == (
        "bank.reconcile",
        "loan.close_expired",
        "loan.mark_overdue",
        "loyalty.evaluate_levels",
        "loyalty.mature_experience",
        "loyalty.monthly_coupons",
        "marketing.pay",
        "marketing.pay_due",
        "outbox.sweep",
        "partner.deliver_callback",
        "partner.purge",
    )
    for name in engine.jobs:
        task = engine.app.tasks[name]
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
        assert task.ignore_result is True
        assert task.max_retries == 7
        assert (task.retry_backoff, task.retry_backoff_max, task.retry_jitter) == (3, 300, True)
        assert task.autoretry_for == (Exception,)
        assert task.dont_autoretry_for == (PermanentJobError,)


def test_the_schedule_goes_to_beat_intervals_expiring_and_crontabs_in_fields(tmp_path) -> None:
    s = settings(
        tmp_path,
        **{"jobs.schedule": "loan.close_expired=120;loan.mark_overdue=5 0 * * 1-5"},
    )
    schedule = worker.build_engine(LiveSettings(s)).app.conf.beat_schedule

    assert schedule["loan.close_expired"] == {
        "task": "loan.close_expired",
        "schedule": 120.0,
        "options": {"expires": 120},
    }
    assert schedule["loan.mark_overdue"]["schedule"] == crontab(
        minute="5", hour="0", day_of_month="*", month_of_year="*", day_of_week="1-5"
    )
    assert set(schedule) == {"loan.close_expired", "loan.mark_overdue"}


def test_a_schedule_naming_no_job_is_refused_at_start_up(tmp_path) -> None:
    s = settings(tmp_path, **{"jobs.schedule": "loan.close_expiredd=60"})

    with pytest.raises(ConfigError, match=r"jobs.schedule: no job named 'loan.close_expiredd'"):
        worker.build_engine(LiveSettings(s))


def test_a_job_that_needs_arguments_cannot_be_periodic() -> None:
    class Bank:
        @job("bank.send")
        def send(self, order_no: str) -> None: ...

    jobs = JobRegistry()
    jobs.discover([Bank()])

    with pytest.raises(ConfigError, match=r"'bank\.send' needs arguments"):
        worker.beat_schedule({"bank.send": 60}, jobs)


class FakeRuntime:
    """Runs every job by raising `error` (or returning) and counts the runs."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.runs: list[dict] = []
        self.outcomes: list[tuple[str, str]] = []

    def count(self, job: str, outcome: str) -> None:
        self.outcomes.append((job, outcome))

    def run(self, job: str, payload: dict) -> str:
        self.runs.append(payload)
        if self.error is not None:
            raise self.error
        return "done"


def _task(tmp_path, runtime: FakeRuntime, name: str = "demo.job"):
    s = settings(tmp_path, **{"jobs.max_retries": 2}).jobs
    app = celery_app(s)
    worker._register(app, name, runtime, s)
    return app.tasks[name]


def test_a_job_runs_with_its_payload(tmp_path) -> None:
    runtime = FakeRuntime(None)

    result = _task(tmp_path, runtime).apply(kwargs={"order_no": "A1"})

    assert (result.state, result.result) == ("SUCCESS", "done")
    assert runtime.runs == [{"order_no": "A1"}]


def test_a_failing_job_is_retried_up_to_max_retries(tmp_path) -> None:
    runtime = FakeRuntime(ConnectionError("the bank did not answer"))

    result = _task(tmp_path, runtime).apply(kwargs={"order_no": "A1"})

    assert result.state == "FAILURE"
    assert isinstance(result.result, ConnectionError)
    assert len(runtime.runs) == 3  # the first run and two retries


@pytest.mark.parametrize(
    "error", [BusinessError(errors.LOAN_NOT_FOUND), PermanentJobError("no such order")]
)
def test_a_permanent_failure_is_not_retried(tmp_path, error) -> None:
    runtime = FakeRuntime(error)

    result = _task(tmp_path, runtime).apply(kwargs={})

    assert result.state == "FAILURE"
    assert isinstance(result.result, PermanentJobError)
    assert len(runtime.runs) == 1


@pytest.mark.parametrize(
    ("error", "outcomes"),
    [
        (None, ["succeeded"]),
        (ConnectionError("the bank did not answer"), ["retried", "retried", "failed"]),
        (PermanentJobError("no such order"), ["failed"]),
    ],
)
def test_every_run_is_counted_by_its_outcome_from_celerys_signals(
    tmp_path, error, outcomes
) -> None:
    runtime = FakeRuntime(error)
    task = _task(tmp_path, runtime, name="counted.job")
    worker.count_outcomes(runtime, frozenset({"counted.job"}))

    task.apply(kwargs={})

    assert runtime.outcomes == [("counted.job", outcome) for outcome in outcomes]


def test_a_server_side_business_error_is_retried(tmp_path) -> None:
    runtime = FakeRuntime(BusinessError(errors.SERVICE_UNAVAILABLE))

    _task(tmp_path, runtime).apply(kwargs={})

    assert len(runtime.runs) == 3


# -- the commands ------------------------------------------------------------------------------


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys):
    """`p2p ARGS` in this process on a migrated SQLite file; (exit code, stdout, stderr)."""
    from dao import migrate
    from server import cli

    monkeypatch.setenv("P2P_ENV", "test")
    url = f"sqlite:///{tmp_path / 'p2p.db'}"
    migrate.upgrade(url)
    sets = [
        "--set",
        f"database.url={url}",
        "--set",
        f"jobs.embedded_broker_file={tmp_path / 'q.db'}",
    ]

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main([*args, *sets])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_a_worker_with_a_schedule_naming_no_job_stops_with_a_configuration_error(run_cli):
    code, _, err = run_cli("worker", "--set", "jobs.schedule=loan.nope=5")

    assert code == 2
    assert "configuration error: jobs.schedule: no job named 'loan.nope'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["loan.nope"], "no job named 'loan.nope'"),
        (["loan.close_expired", "--payload", "[1]"], "--payload must be a JSON object"),
        (["loan.close_expired", "--payload", "{x"], "--payload is not JSON"),
        (["loan.close_expired", "--payload", '{"x": 1}'], "unexpected keyword argument 'x'"),
    ],
)
def test_enqueue_refuses_a_job_it_cannot_run(run_cli, args, message):
    code, _, err = run_cli("enqueue", *args)

    assert code == 2
    assert message in err


def test_enqueue_writes_the_job_and_outbox_shows_it_handed_over(run_cli):
    code, out, _ = run_cli("enqueue", "loan.close_expired")
    assert (code, out) == (0, "job loan.close_expired written as outbox row 1\n")

    code, out, _ = run_cli("outbox")
    assert code == 0
    assert out.splitlines()[:2] == ["0 row(s) waiting to be handed over", "0 row(s) given up on"]
