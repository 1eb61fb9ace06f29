"""The outbox and the job registry on a SQLite file: rows written only inside a transaction,
handed over only after the commit, nothing on a rollback, and the sweeper for what a crash or
a broker outage left behind."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from dao.db import Database
from dao.outbox import OutboxEntity
from service import errors
from service.errors import BusinessError
from service.jobs import (
    InProcessPublisher,
    JobPublisher,
    JobRegistry,
    Outbox,
    OutboxPolicy,
    OutboxStatusVo,
    OutboxSweepVo,
    PermanentJobError,
    is_permanent,
    job,
    outbox_job_id,
)
from service.transaction import IllegalTransactionStateError, Propagation, TransactionManager

T0 = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Recorder(JobPublisher):
    """Keeps what it is handed; fails while `down` (a broker outage)."""

    def __init__(self, tx: TransactionManager | None = None) -> None:
        self.handed: list[tuple[str, str, dict, dt.datetime | None]] = []
        self.down = False
        self.tx = tx
        self.in_transaction: list[bool] = []

    def publish(self, job, payload, *, job_id, not_before=None) -> None:
        if self.tx is not None:
            self.in_transaction.append(self.tx.in_transaction())
        if self.down:
            raise ConnectionError("broker unreachable")
        self.handed.append((job_id, job, dict(payload), not_before))


class Jobs:
    """A service with jobs."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []

    @job("demo.settle")
    def settle(self, order_no: str, amount: str = "0.00") -> None:
        self.ran.append(("settle", order_no))

    @job("demo.tick")
    def tick(self) -> None:
        self.ran.append(("tick", 0))

    @job("demo.fail")
    def fail(self) -> None:
        raise RuntimeError("the bank did not answer")


@pytest.fixture
def db(sqlite_database: Database) -> Iterator[Database]:
    OutboxEntity.__table__.create(sqlite_database.engine)
    with sqlite_database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE business (name VARCHAR(20) NOT NULL)")
    yield sqlite_database


@pytest.fixture
def tx(db: Database) -> TransactionManager:
    return TransactionManager(db, max_retries=0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service() -> Jobs:
    return Jobs()


@pytest.fixture
def registry(service: Jobs) -> JobRegistry:
    jobs = JobRegistry()
    jobs.discover([service])
    return jobs


@pytest.fixture
def publisher(tx: TransactionManager) -> Recorder:
    return Recorder(tx)


POLICY = OutboxPolicy(
    batch=2, grace_seconds=30, max_attempts=3, retention_days=7, max_eta_seconds=60
)


@pytest.fixture
def outbox(tx, clock, publisher, registry) -> Outbox:
    return Outbox(tx, clock, publisher, registry, POLICY)


def rows(db: Database) -> list[dict]:
    with db.engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM job_outbox ORDER BY id"))
        return [dict(r._mapping) for r in result]


def business(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT name FROM business")).scalars())


def change_and_add(tx, outbox, name="a", job_name="demo.settle", **payload):
    """A business change and its job in one transaction; the row id."""
    tx.session().execute(text("INSERT INTO business (name) VALUES (:n)"), {"n": name})
    return outbox.add(job_name, payload or {"order_no": name})


# -- writing -----------------------------------------------------------------------------------


def test_add_outside_a_transaction_is_refused_and_writes_nothing(db, outbox, publisher) -> None:
    with pytest.raises(IllegalTransactionStateError, match="MANDATORY"):
        outbox.add("demo.settle", {"order_no": "A1"})

    assert rows(db) == []
    assert publisher.handed == []


def test_add_in_a_non_transactional_scope_is_refused(tx, db, outbox) -> None:
    with pytest.raises(IllegalTransactionStateError):
        tx.run(outbox.add, "demo.settle", {"order_no": "A1"}, propagation=Propagation.SUPPORTS)

    assert rows(db) == []


def test_a_row_is_written_with_the_change_and_handed_over_only_after_the_commit(
    tx, db, outbox, publisher, clock
) -> None:
    def work() -> int:
        row_id = change_and_add(tx, outbox, order_no="A1", amount="10.00")
        assert publisher.handed == [], "handed over before the commit"
        return row_id

    row_id = tx.run(work)

    assert business(db) == ["a"]
    assert publisher.handed == [
        (outbox_job_id(row_id), "demo.settle", {"amount": "10.00", "order_no": "A1"}, None)
    ]
    assert publisher.in_transaction == [False]
    (row,) = rows(db)
    assert row["id"] == row_id and row["job"] == "demo.settle"
    assert row["payload"] == '{"amount":"10.00","order_no":"A1"}'
    assert row["attempts"] == 1 and row["last_error"] is None and row["failed_at"] is None
    assert row["dispatched_at"] is not None


def test_a_rollback_writes_nothing_and_hands_over_nothing(tx, db, outbox, publisher) -> None:
    def work() -> None:
        change_and_add(tx, outbox)
        raise ValueError("the business change failed")

    with pytest.raises(ValueError, match="business change"):
        tx.run(work)

    assert business(db) == []
    assert rows(db) == []
    assert publisher.handed == []


def test_a_row_in_a_rolled_back_savepoint_is_neither_kept_nor_handed_over(
    tx, db, outbox, publisher
) -> None:
    def inner() -> None:
        outbox.add("demo.settle", {"order_no": "inner"})
        raise ValueError("inner part failed")

    def outer() -> None:
        outbox.add("demo.settle", {"order_no": "outer"})
        with pytest.raises(ValueError):
            tx.run(inner, propagation=Propagation.NESTED)

    tx.run(outer)

    assert [h[2]["order_no"] for h in publisher.handed] == ["outer"]
    assert [r["payload"] for r in rows(db)] == ['{"order_no":"outer"}']


@pytest.mark.parametrize(
    ("job_name", "payload", "error", "match"),
    [
        ("demo.nothing", {}, KeyError, "no job named 'demo.nothing'"),
        ("demo.settle", {}, TypeError, "order_no"),
        ("demo.settle", {"order_no": "A", "colour": "red"}, TypeError, "colour"),
        ("demo.settle", {"order_no": "A", "amount": Decimal("1.00")}, TypeError, "Decimal"),
        ("demo.settle", {"order_no": float("nan")}, ValueError, "Out of range"),
        ("demo.settle", {"order_no": "x" * 20_000}, ValueError, "payload over"),
    ],
)
def test_a_job_it_cannot_run_is_refused_before_anything_is_written(
    tx, db, outbox, publisher, job_name, payload, error, match
) -> None:
    with pytest.raises(error, match=match):
        tx.run(outbox.add, job_name, payload)

    assert rows(db) == []
    assert publisher.handed == []


def test_a_job_due_soon_is_handed_over_with_its_time(tx, db, outbox, publisher, clock) -> None:
    later = T0 + dt.timedelta(seconds=60)

    tx.run(outbox.add, "demo.tick", {}, later)

    assert publisher.handed[0][3] == later
    assert rows(db)[0]["available_at"] == "2026-03-01 08:31:00.000000"


def test_a_job_due_later_waits_in_the_outbox_for_the_sweeper(tx, db, outbox, publisher, clock):
    later = T0 + dt.timedelta(seconds=61)

    tx.run(outbox.add, "demo.tick", {}, later)
    assert publisher.handed == []

    clock.advance(seconds=31)  # past the grace, due within max_eta_seconds: handed with its time
    assert outbox.sweep().handed_over == 1
    assert publisher.handed[0][1:] == ("demo.tick", {}, later)
    assert outbox.sweep().handed_over == 0


def test_a_not_before_in_the_past_means_now(tx, outbox, publisher) -> None:
    tx.run(outbox.add, "demo.tick", {}, T0 - dt.timedelta(hours=1))

    assert publisher.handed[0][3] is None


# -- failed hand-overs and the sweeper ---------------------------------------------------------


def test_a_failed_hand_over_is_counted_and_swept_later(tx, db, outbox, publisher, clock) -> None:
    publisher.down = True
    row_id = tx.run(change_and_add, tx, outbox)

    (row,) = rows(db)
    assert row["dispatched_at"] is None
    assert row["attempts"] == 1
    assert row["last_error"] == "ConnectionError: broker unreachable"
    assert business(db) == ["a"], "the business change stays committed"

    publisher.down = False
    clock.advance(seconds=29)
    assert outbox.sweep().handed_over == 0, "still within the grace period"
    clock.advance(seconds=2)
    assert outbox.sweep().handed_over == 1
    assert publisher.handed == [(outbox_job_id(row_id), "demo.settle", {"order_no": "a"}, None)]
    assert rows(db)[0]["dispatched_at"] is not None
    assert rows(db)[0]["attempts"] == 2


def test_a_crash_after_the_commit_leaves_the_row_to_the_sweeper(
    tx, db, outbox, publisher, clock, monkeypatch
) -> None:
    with monkeypatch.context() as m:  # the process dies between the commit and its hook
        m.setattr(tx, "after_commit", lambda hook: None)
        tx.run(change_and_add, tx, outbox)
    assert publisher.handed == []

    clock.advance(minutes=1)
    assert outbox.sweep() == OutboxSweepVo(handed_over=1, failed=0, purged=0)
    assert len(publisher.handed) == 1


def test_the_sweeper_takes_the_oldest_first_in_bounded_batches(tx, db, outbox, publisher, clock):
    publisher.down = True
    for name in ("a", "b", "c"):
        tx.run(change_and_add, tx, outbox, name=name)
        clock.advance(seconds=1)
    publisher.down = False
    clock.advance(minutes=1)

    first = outbox.sweep()
    assert (first.handed_over, first.failed) == (2, 0)  # the batch is 2
    assert [h[2]["order_no"] for h in publisher.handed] == ["a", "b"]
    outbox.sweep()
    assert [h[2]["order_no"] for h in publisher.handed] == ["a", "b", "c"]


def test_a_row_that_keeps_failing_is_given_up_and_shown_to_operators(
    tx, db, outbox, publisher, clock, caplog
) -> None:
    publisher.down = True
    row_id = tx.run(change_and_add, tx, outbox)
    clock.advance(minutes=1)
    assert outbox.sweep().failed == 1
    with caplog.at_level(logging.ERROR, logger="service.jobs"):
        assert outbox.sweep().failed == 1  # the third attempt: given up
    assert f"outbox row {row_id} (demo.settle) given up after 3" in caplog.text
    assert "order_no" not in caplog.text, "the payload is never logged"

    assert outbox.sweep().failed == 0, "a given-up row is not tried again"
    status = outbox.status()
    assert status.waiting == 0
    assert [(r.row_id, r.job, r.attempts) for r in status.failed] == [(row_id, "demo.settle", 3)]
    assert status.failed[0].last_error == "ConnectionError: broker unreachable"

    publisher.down = False
    assert outbox.retry_failed() == 1
    assert outbox.status().waiting == 1
    assert outbox.sweep().handed_over == 1
    assert outbox.status() == OutboxStatusVo(waiting=0, failed=())


def test_the_sweeper_deletes_rows_handed_over_before_the_retention(tx, db, outbox, clock) -> None:
    tx.run(change_and_add, tx, outbox, name="old")
    clock.advance(days=7, seconds=1)
    tx.run(change_and_add, tx, outbox, name="new")

    assert outbox.sweep().purged == 1
    assert [r["payload"] for r in rows(db)] == ['{"order_no":"new"}']


# -- the registry ------------------------------------------------------------------------------


def test_the_registry_finds_every_job_of_each_object_once(service) -> None:
    jobs = JobRegistry()
    jobs.discover([service, service, object()])

    assert jobs.names() == ["demo.fail", "demo.settle", "demo.tick"]
    assert jobs.get("demo.tick") == service.tick
    assert "demo.tick" in jobs and "demo.other" not in jobs
    assert jobs.takes_no_arguments("demo.tick")
    assert not jobs.takes_no_arguments("demo.settle")


def test_two_methods_claiming_one_job_name_are_refused() -> None:
    class Other:
        @job("demo.tick")
        def tock(self) -> None: ...

    jobs = JobRegistry()
    with pytest.raises(TypeError, match=r"job 'demo.tick' is claimed by Jobs.tick and .*tock"):
        jobs.discover([Jobs(), Other()])


@pytest.mark.parametrize("name", ["tick", "Demo.tick", "demo.", "demo..tick", "demo.tick-2"])
def test_a_job_name_must_be_dotted_lower_case_words(name) -> None:
    with pytest.raises(ValueError, match="dotted lower-case"):
        job(name)


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (PermanentJobError("no such order"), True),
        (BusinessError(errors.LOAN_NOT_FOUND), True),
        (BusinessError(errors.SERVICE_UNAVAILABLE), False),
        (BusinessError(errors.INTERNAL_ERROR), False),
        (ConnectionError("reset"), False),
        (RuntimeError("deadlock"), False),
    ],
)
def test_only_permanent_failures_are_not_retried(exc, permanent) -> None:
    assert is_permanent(exc) is permanent


# -- the in-process publisher ------------------------------------------------------------------


def test_the_in_process_publisher_runs_the_job_after_the_commit_in_this_thread(
    tx, db, clock, service, registry
) -> None:
    publisher = InProcessPublisher(registry)
    outbox = Outbox(tx, clock, publisher, registry, POLICY)

    def work() -> None:
        change_and_add(tx, outbox, order_no="A1")
        assert service.ran == []

    tx.run(work)

    assert service.ran == [("settle", "A1")]
    assert publisher.handed == [(outbox_job_id(1), "demo.settle", {"order_no": "A1"})]
    assert rows(db)[0]["dispatched_at"] is not None


def test_a_failing_job_is_recorded_by_the_in_process_publisher_not_a_failed_hand_over(
    tx, db, clock, registry
) -> None:
    publisher = InProcessPublisher(registry)
    outbox = Outbox(tx, clock, publisher, registry, POLICY)

    tx.run(outbox.add, "demo.fail", {})

    assert [(job_id, str(exc)) for job_id, exc in publisher.failures] == [
        ("outbox-1", "the bank did not answer")
    ]
    assert rows(db)[0]["dispatched_at"] is not None
