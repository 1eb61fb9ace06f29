"""The outbox on SQLite and MariaDB: a job is written in the transaction of the business change
it follows, so both commit or neither does, and it runs only after the commit (here in the
test's thread: the integration platform's InProcessPublisher)."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
from sqlalchemy import text

from service.jobs import outbox_job_id
from service.monitoring import OutboxBacklogVo, WorkMonitor
from service.p2p import AuditRequest
from service.transaction import IllegalTransactionStateError


def outbox_rows(sql) -> list[tuple]:
    with sql.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT id, job, payload, dispatched_at IS NOT NULL FROM job_outbox")
            )
        ]


def loan_statuses(sql) -> list[str]:
    with sql.connect() as conn:
        return list(conn.execute(text("SELECT status FROM loan ORDER BY id")).scalars())


@pytest.fixture
def raising(loans, loan_request, operator, clock):
    """A RAISING listing whose raising period has just ended."""
    loan = loans.publish_loan(loan_request(raise_days=1), operator)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    clock.advance(days=1, seconds=1)
    return loan


def test_a_job_commits_with_its_business_change_and_runs_after_the_commit(
    platform, loans, loan_request, operator, raising, sql
) -> None:
    outbox, publisher = platform.components["outbox"], platform.components["publisher"]

    def publish_and_close_expired():
        loans.publish_loan(loan_request(), operator)
        row_id = outbox.add("loan.close_expired", {})
        assert loan_statuses(sql) == ["RAISING"], "nothing is visible before the commit"
        assert publisher.handed == []
        return row_id

    row_id = platform.tx.run(publish_and_close_expired)

    assert loan_statuses(sql) == ["FAILED", "PENDING_AUDIT"]  # the job closed the expired one
    assert outbox_rows(sql) == [(row_id, "loan.close_expired", "{}", 1)]
    assert publisher.handed == [(outbox_job_id(row_id), "loan.close_expired", {})]
    assert publisher.failures == []


def test_a_rollback_leaves_neither_the_change_nor_the_job(
    platform, loans, loan_request, operator, raising, sql
) -> None:
    outbox, publisher = platform.components["outbox"], platform.components["publisher"]

    def publish_close_and_fail():
        loans.publish_loan(loan_request(), operator)
        outbox.add("loan.close_expired", {})
        raise RuntimeError("the business change failed after the job was written")

    with pytest.raises(RuntimeError, match="failed after the job"):
        platform.tx.run(publish_close_and_fail)

    assert loan_statuses(sql) == ["RAISING"]
    assert outbox_rows(sql) == []
    assert publisher.handed == []


def test_a_job_is_refused_outside_a_transaction(platform, sql) -> None:
    with pytest.raises(IllegalTransactionStateError):
        platform.components["outbox"].add("loan.close_expired", {})

    assert outbox_rows(sql) == []


def test_the_backlog_counts_rows_waiting_and_given_up_and_how_late_the_oldest_is(
    platform, sql, clock
) -> None:
    """What the job workers' metrics read at each scrape: handed-over rows are not counted,
    a row due later is waiting but not late, a given-up row is counted apart."""
    monitor = WorkMonitor(platform.tx, clock)
    assert monitor.outbox_backlog() == OutboxBacklogVo(0, 0.0, 0)
    insert = text(
        "INSERT INTO job_outbox (job, payload, created_at, available_at, dispatched_at,"
        " attempts, failed_at) VALUES ('outbox.sweep', '{}', :at, :due, :dispatched, 0, :failed)"
    )
    now = clock()
    with sql.begin() as conn:
        for due, dispatched, failed in (
            (now - timedelta(seconds=90), None, None),  # waiting, 90 s late
            (now - timedelta(seconds=30), None, None),  # waiting, 30 s late
            (now + timedelta(minutes=10), None, None),  # waiting, not due yet
            (now - timedelta(hours=2), now, None),  # handed over
            (now - timedelta(hours=1), None, now),  # given up
        ):
            conn.execute(
                insert,
                {
                    "at": _stored(now - timedelta(hours=3)),
                    "due": _stored(due),
                    "dispatched": dispatched and _stored(dispatched),
                    "failed": failed and _stored(failed),
                },
            )
    assert monitor.outbox_backlog() == OutboxBacklogVo(3, 90.0, 1)
    assert monitor.bank_orders_in_doubt() == 0


def _stored(at) -> str:
    """A time as the UtcDateTime columns hold it (naive UTC)."""
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
