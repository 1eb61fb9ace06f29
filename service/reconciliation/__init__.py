"""The daily two-way reconciliation with the depository bank, and its audited repairs.

A run reconciles one business day D (Asia/Shanghai): it fetches every order type's file and the
BALANCE file of D (docs/depository-protocol.md), then compares them with the platform's bank
orders and ledger both ways (compare.py says what each category means, ledger.py how the
platform's balance figure at the end of D is computed) and records what it found.

Three steps, the bank never called inside a transaction:

1. claim: the day's run row (one a day, reconciliation_run) is locked and moved to RUNNING
   with a new attempt number, and committed. A day whose run is RUNNING is refused
   (RECONCILIATION_RUNNING) unless that run started more than ``STALE_RUN`` ago (its worker
   died): two runs of one day cannot run at once. A day that has not begun (Asia/Shanghai) is
   refused; today is not: whether it is over is the bank's word (a bank closing its day early
   serves its files before midnight, otherwise the run fails FILE_NOT_READY).
2. fetch every file. A day not over at the bank (FILE_NOT_READY), a file whose signature
   fails, whose header's count or totals disagree with its lines, or whose lines are not
   well-formed, or a bank that does not answer, fails the run with that reason
   (FILE_NOT_READY, SIGNATURE_INVALID, FILE_HEADER_MISMATCH, FILE_MALFORMED,
   BANK_UNAVAILABLE) and the file's type: nothing of it is recorded. Anything else that breaks
   the run (a database error) fails it with ERROR and is raised (the job engine retries).
3. record, in one transaction, with the run row locked again and only if the attempt is still
   the run's latest: the discrepancies and the figures, and the run SUCCEEDED.

Re-running a day replaces nothing already resolved. A discrepancy is one row per (day,
category, subject); found again, an open one takes the new values; resolved by an operator
(APPLY, EXPLAIN) it stays as it was; one no longer found is closed as CLEARED (by nobody: the
books now agree); a CLEARED one found again is open again.

The scheduled job ``bank.reconcile`` (jobs.schedule, e.g. "30 4 * * *") reconciles every day of
the last ``bank.reconcile_catch_up_days`` whose run has not succeeded, oldest first, so a day
whose file was not ready is taken again by the next scheduled run; and, again, each of those
days with discrepancies still open, so that what time settled (a notification that came late,
an order the member let expire) is CLEARED and only what a person must look at stays open.
``p2p reconcile --date D`` runs one day at once, in the command's process; an operator's
runReconciliation hands the same job the day through the outbox, and a worker runs it.

Repairs, by operators, each with a request number (a repeat changes nothing), recorded on the
discrepancy: who (resolved_by), when, what (APPLY or EXPLAIN) and why (the reason).

* APPLY takes the bank's outcome through the normal path, for a STATUS discrepancy whose
  platform order is still open (or SUCCEEDED, the bank saying REVERSED): the order is settled
  by the order machine (service/ocp/machine.py) exactly as a query answer would settle it,
  with source "reconciliation", so its business effect and postings happen once. An order the
  machine will not move (another final status, another amount) is APPLY_NOT_APPLICABLE.
* EXPLAIN closes any discrepancy with a reason (required): the only way for one APPLY cannot
  fix (bank-only, platform-only, amount, fee, balance).

Operators also see the bank orders still open after bank.doubt_age_seconds (listOrdersInDoubt),
and list and re-issue the orders the bank FAILED that wait for a person (listOrdersWaiting,
reissueBankOrder; actions.py): p2p_bank_orders_in_doubt counts both kinds.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dao.ocp import FINAL_STATUSES, OPEN_STATUSES, BankOrderEntity, BankOrderRepository
from dao.reconciliation import (
    CATEGORIES,
    MAX_REASON,
    DiscrepancyEntity,
    ReconciliationRepository,
    ReconciliationRunEntity,
)
from service import errors
from service.errors import BusinessError, invalid
from service.idempotency import check_request_no
from service.jobs import job
from service.mapping import to_vo
from service.ocp import protocol
from service.ocp.machine import APPLIED, CONFIRMED, BankResult
from service.paging import PageVo, page_window
from service.reconciliation import compare
from service.reconciliation.actions import BankOrderActions, BankOrderReissueVo, OrderWaitingVo
from service.reconciliation.ledger import LedgerFigures
from service.security import Principal
from service.transaction import IllegalTransactionStateError, RetryTransaction, transactional

log = logging.getLogger("service.reconciliation")

#: The periodic job (jobs.schedule), and the one an operator's request hands a day to.
RECONCILE_JOB = "bank.reconcile"
#: A RUNNING run older than this is taken to be dead (its worker stopped) and may be taken
#: over: far beyond a day's fetch and comparison (bench/README.md), far below a day.
STALE_RUN = dt.timedelta(hours=1)
RUNNING, SUCCEEDED, FAILED = "RUNNING", "SUCCEEDED", "FAILED"
#: The failure reason of a run that broke for any other reason than the bank's files (a
#: database error, a bug): recorded, and the error raised to the job engine, which retries.
ERROR = "ERROR"
OPEN, RESOLVED = "OPEN", "RESOLVED"
APPLY, EXPLAIN, CLEARED = "APPLY", "EXPLAIN", "CLEARED"
ZERO = Decimal("0.00")
_CHUNK = 500
#: The run's count column of each category.
_COUNT_COLUMNS = {
    compare.BANK_ONLY: "bank_only",
    compare.PLATFORM_ONLY: "platform_only",
    compare.AMOUNT: "amount_mismatches",
    compare.STATUS: "status_mismatches",
    compare.FEE: "fee_mismatches",
    compare.BALANCE: "balance_mismatches",
}
_FOUND_FIELDS = compare.Found._fields[2:]  # the values beside category and subject


@dataclass(frozen=True)
class ReconciliationRunVo:
    business_date: dt.date
    status: str
    reason: str | None
    failed_file: str | None
    attempts: int
    failed_attempts: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    succeeded_at: dt.datetime | None
    bank_only: int
    platform_only: int
    amount_mismatches: int
    status_mismatches: int
    fee_mismatches: int
    balance_mismatches: int
    bank_lines: int
    bank_amount: Decimal
    bank_fee: Decimal
    platform_orders: int
    platform_amount: Decimal
    platform_fee: Decimal
    bank_balance: Decimal
    platform_balance: Decimal


@dataclass(frozen=True)
class DiscrepancyVo:
    discrepancy_id: int
    business_date: dt.date
    category: str
    subject: str
    order_type: str | None
    member_id: int | None
    bank_status: str | None
    platform_status: str | None
    bank_amount: Decimal | None
    platform_amount: Decimal | None
    bank_fee: Decimal | None
    platform_fee: Decimal | None
    bank_ref: str | None
    bank_finished_at: dt.datetime | None
    status: str
    resolution: str | None
    reason: str | None
    resolved_by: int | None
    resolved_at: dt.datetime | None
    found_at: dt.datetime


@dataclass(frozen=True)
class OrderInDoubtVo:
    order_no: str
    order_type: str
    member_id: int
    amount: Decimal | None
    status: str
    created_at: dt.datetime
    in_doubt_since: dt.datetime | None
    handed_to_reconciliation_at: dt.datetime


class FileRefused(Exception):
    """A daily file the run cannot use; ``reason`` is the run's failure reason."""

    def __init__(self, reason: str, file_type: str):
        super().__init__(f"{file_type}: {reason}")
        self.reason = reason
        self.file_type = file_type


@dataclass(frozen=True)
class DayFiles:
    """The bank's files of one day, read: its order lines and its members' sub-account
    totals (the platform's own account left out, service/reconciliation/ledger.py)."""

    lines: list[compare.BankLine]
    balances: list[tuple[str, Decimal]]


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The business day's start and end (Asia/Shanghai midnights), as aware UTC times."""
    start = dt.datetime.combine(day, dt.time(), protocol.BUSINESS_TIMEZONE)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), protocol.BUSINESS_TIMEZONE)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def read_files(day: dt.date, files: Iterable[tuple[str, list[dict[str, str]]]]) -> DayFiles:
    """The day's parsed files (file type, rows) as lines and balances; FileRefused for a line
    that is not well-formed, of another order type than its file, or finished outside the
    day."""
    start, end = day_bounds(day)
    lines: list[compare.BankLine] = []
    balances: list[tuple[str, Decimal]] = []
    for file_type, rows in files:
        try:
            if file_type == protocol.BALANCE:
                balances.extend(
                    (row["accountNo"], Decimal(row["available"]) + Decimal(row["frozen"]))
                    for row in rows
                    if row["memberId"]
                )
                continue
            for row in rows:
                line = compare.read_line(row)
                if line.order_type != file_type:
                    raise protocol.MessageInvalid("malformed", "orderType")
                if not start <= line.finished_at < end:
                    raise protocol.MessageInvalid("malformed", "finishedAt")
                lines.append(line)
        except protocol.MessageInvalid:
            raise FileRefused("FILE_MALFORMED", file_type) from None
    return DayFiles(lines, balances)


class ReconciliationService(BankOrderActions):
    """Runs, discrepancies and repairs, and the operators' actions on bank orders
    (actions.py). ``bank`` and ``bank_client`` are None unless payment.gateway is BANK: then
    running, APPLY and re-issuing are RECONCILIATION_UNAVAILABLE, a permanent refusal, and the
    rest reads or explains what is recorded."""

    def __init__(self, tx, settings, clock, outbox, bank=None, bank_client=None):
        self.tx = tx
        self._settings = settings
        self._clock = clock
        self._outbox = outbox
        self._bank = bank
        self._client = bank_client
        self._repo = ReconciliationRepository(tx.session)
        self._orders = BankOrderRepository(tx.session)

    # -- running ---------------------------------------------------------------------------

    @job(RECONCILE_JOB)
    def reconcile(self, date: str | None = None) -> int:
        """The ``bank.reconcile`` job: day ``date`` (YYYY-MM-DD) if given, else every recent
        day not yet reconciled or with discrepancies open (the schedule's); how many runs
        succeeded."""
        self._available()
        if date is not None:
            return int(self.run_day(_date(date)).status == SUCCEEDED)
        succeeded = 0
        for day in self._days_due():
            try:
                succeeded += self.run_day(day).status == SUCCEEDED
            except BusinessError as e:  # running elsewhere: that run records it
                log.warning("reconciliation %s not run: %s", day, e.message)
        return succeeded

    def run_day(self, day: dt.date) -> ReconciliationRunVo:
        """Reconcile business day ``day`` now: the run as it ended (SUCCEEDED or FAILED).
        RECONCILIATION_RUNNING while another run of the day is running."""
        if self.tx.in_transaction():
            raise IllegalTransactionStateError("the bank is never called inside a transaction")
        self._available()
        attempt = self._claim(day)
        try:
            files = read_files(day, self._fetch(day))
            return self._record(day, attempt, files)
        except FileRefused as refused:
            log.error(
                "ALERT reconciliation %s failed: %s (%s)", day, refused.reason, refused.file_type
            )
            return self._fail(day, attempt, refused.reason, refused.file_type)
        except Exception:  # the run must not stay RUNNING for an hour: failed, then raised
            log.exception("ALERT reconciliation %s failed unexpectedly", day)
            self._fail(day, attempt, ERROR, None)
            raise

    @transactional(read_only=True)
    def _days_due(self) -> list[dt.date]:
        yesterday = protocol.business_day(self._clock()) - dt.timedelta(days=1)
        first = yesterday - dt.timedelta(days=self._settings.bank.reconcile_catch_up_days - 1)
        done = self._repo.succeeded_dates(first) - self._repo.dates_with_open(first)
        days = (first + dt.timedelta(days=n) for n in range((yesterday - first).days + 1))
        return [day for day in days if day not in done]

    @transactional
    def _claim(self, day: dt.date) -> int:
        now = self._clock()
        if day > protocol.business_day(now):
            raise invalid("date", "the business day has not begun")
        run = self._repo.lock_run(day)
        if run is None:
            try:
                run = self._repo.add(
                    ReconciliationRunEntity(
                        business_date=day, status=RUNNING, attempts=1, started_at=now
                    )
                )
            except IntegrityError:  # the same day claimed at this moment: read it again
                raise RetryTransaction(f"reconciliation {day} claimed concurrently") from None
            return run.attempts
        if run.status == RUNNING and run.started_at > now - STALE_RUN:
            raise BusinessError(
                errors.RECONCILIATION_RUNNING, f"the reconciliation of {day} is running"
            )
        run.status = RUNNING
        run.attempts += 1
        run.started_at = now
        run.finished_at = None
        self.tx.session().flush()
        return run.attempts

    def _fetch(self, day: dt.date) -> Iterator[tuple[str, list[dict[str, str]]]]:
        """Each file of the day in turn (read_files takes one's rows before the next is
        fetched, so a day's rows are never all held as dictionaries at once)."""
        for file_type in protocol.FILE_TYPES:
            exchange = self._client.fetch_file(day, file_type)
            if exchange.error is not None or exchange.answer is None:
                raise FileRefused(_refusal(exchange, file_type), file_type)
            yield file_type, exchange.answer["rows"]

    @transactional
    def _fail(
        self, day: dt.date, attempt: int, reason: str, file_type: str | None
    ) -> ReconciliationRunVo:
        run = self._repo.lock_run(day)
        if run.attempts == attempt and run.status == RUNNING:
            run.status = FAILED
            run.reason = reason
            run.failed_file = file_type
            run.failed_attempts += 1
            run.finished_at = self._clock()
            self.tx.session().flush()
        return to_vo(ReconciliationRunVo, run)

    @transactional
    def _record(self, day: dt.date, attempt: int, files: DayFiles) -> ReconciliationRunVo:
        run = self._repo.lock_run(day)
        if run.attempts != attempt or run.status != RUNNING:  # taken over: that one records
            return to_vo(ReconciliationRunVo, run)
        start, end = day_bounds(day)
        bank = compare.bank_orders(files.lines)
        platform, of_the_day = self._platform_orders(start, end, {no for _, no in bank})
        found = list(compare.compare_orders(bank, platform, of_the_day))
        reversed_at = {
            line.order_no: line.finished_at
            for line in files.lines
            if line.status == protocol.REVERSED
        }
        figures = LedgerFigures(self.tx.session()).members_at(end, reversed_at)
        found.extend(compare.compare_balances(files.balances, figures))
        now = self._clock()
        self._keep(run, found, now)
        counts = dict.fromkeys(CATEGORIES, 0)
        for item in found:
            counts[item.category] += 1
        for category, column in _COUNT_COLUMNS.items():
            setattr(run, column, counts[category])
        run.bank_lines = len(files.lines)
        run.bank_amount = sum((line.amount for line in files.lines), ZERO)
        run.bank_fee = sum((line.fee for line in files.lines), ZERO)
        mine = [platform[no] for no in of_the_day]
        run.platform_orders = len(mine)
        run.platform_amount = sum((o.amount or ZERO for o in mine), ZERO)
        run.platform_fee = sum((o.fee or ZERO for o in mine), ZERO)
        run.bank_balance = sum((total for _, total in files.balances), ZERO)
        run.platform_balance = sum((figure for _, figure in figures.values()), ZERO)
        run.status = SUCCEEDED
        run.reason = run.failed_file = None
        run.finished_at = run.succeeded_at = now
        self.tx.session().flush()
        if found:
            log.error(
                "ALERT reconciliation %s: %s",
                day,
                ", ".join(f"{n} {c}" for c, n in counts.items() if n),
            )
        return to_vo(ReconciliationRunVo, run)

    def _platform_orders(
        self, start: dt.datetime, end: dt.datetime, listed: set[str]
    ) -> tuple[dict[str, compare.PlatformOrder], list[str]]:
        """The platform's orders by number: those of the day (also returned as a list of
        numbers) and those the bank lists."""
        o = BankOrderEntity
        columns = (o.order_no, o.order_type, o.member_id, o.amount, o.fee, o.status, o.finished_at)
        # Two reads, each on its index (finished_at; status), rather than one OR of both.
        finished = (o.status.in_(FINAL_STATUSES), o.finished_at >= start, o.finished_at < end)
        still_open = (o.status.in_(OPEN_STATUSES), o.created_at < end)
        session = self.tx.session()
        platform = {
            row[0]: compare.PlatformOrder(*row)
            for where in (finished, still_open)
            for row in session.execute(select(*columns).where(*where))
        }
        day_numbers = list(platform)
        wanted = sorted(listed - platform.keys())
        for first in range(0, len(wanted), _CHUNK):
            chunk = wanted[first : first + _CHUNK]
            for row in session.execute(select(*columns).where(o.order_no.in_(chunk))):
                if row[0] in listed:  # character for character (dao/ocp/order.py)
                    platform[row[0]] = compare.PlatformOrder(*row)
        return platform, day_numbers

    def _keep(self, run: ReconciliationRunEntity, found: list[compare.Found], now) -> None:
        """Record what the run found against what the day's earlier runs did."""
        known = self._repo.discrepancies_of(run.business_date)
        new = []
        for item in found:
            row = known.pop((item.category, item.subject), None)
            if row is None:
                new.append(
                    DiscrepancyEntity(
                        run_id=run.id,
                        business_date=run.business_date,
                        category=item.category,
                        subject=item.subject,
                        status=OPEN,
                        found_at=now,
                        last_seen_at=now,
                        **{field: getattr(item, field) for field in _FOUND_FIELDS},
                    )
                )
                continue
            if row.status == RESOLVED and row.resolution != CLEARED:
                continue  # an operator's resolution stands
            row.status, row.resolution, row.resolved_at = OPEN, None, None
            row.run_id, row.last_seen_at = run.id, now
            for field in _FOUND_FIELDS:
                setattr(row, field, getattr(item, field))
        for row in known.values():
            if row.status == OPEN:
                row.status, row.resolution, row.resolved_at = RESOLVED, CLEARED, now
        session = self.tx.session()
        session.add_all(new)
        session.flush()

    # -- operators ---------------------------------------------------------------------------

    @transactional
    def run_reconciliation(self, date: dt.date, caller: Principal) -> None:
        """Hand day ``date`` to the job engine (the ``bank.reconcile`` job)."""
        self._available()
        if date > protocol.business_day(self._clock()):
            raise invalid("date", "the business day has not begun")
        self._outbox.add(RECONCILE_JOB, {"date": date.isoformat()})
        log.info("reconciliation %s requested by operator %d", date, caller.member_id)

    @transactional(read_only=True)
    def get_run(self, date: dt.date) -> ReconciliationRunVo:
        run = self._repo.run(date)
        if run is None:
            raise BusinessError(
                errors.RECONCILIATION_RUN_NOT_FOUND, f"no reconciliation run for {date}"
            )
        return to_vo(ReconciliationRunVo, run)

    @transactional(read_only=True)
    def list_runs(
        self,
        from_date: dt.date | None = None,
        to_date: dt.date | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> PageVo[ReconciliationRunVo]:
        if from_date is not None and to_date is not None and from_date > to_date:
            raise invalid("fromDate", "must not be after toDate")
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.runs(
            from_date, to_date, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(to_vo(ReconciliationRunVo, r) for r in rows), total, page, page_size)

    @transactional(read_only=True)
    def list_discrepancies(
        self,
        date: dt.date | None = None,
        category: str | None = None,
        status: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> PageVo[DiscrepancyVo]:
        if category is not None and category not in CATEGORIES:
            raise invalid("category", f"must be one of {', '.join(CATEGORIES)}")
        if status is not None and status not in (OPEN, RESOLVED):
            raise invalid("status", "must be OPEN or RESOLVED")
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.discrepancies(
            date, category, status, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(_discrepancy_vo(r) for r in rows), total, page, page_size)

    @transactional
    def resolve_discrepancy(
        self,
        discrepancy_id: int,
        action: str,
        reason: str | None,
        request_no: str,
        caller: Principal,
    ) -> DiscrepancyVo:
        """Resolve an open discrepancy: APPLY the bank's outcome or EXPLAIN it with a reason
        (see the module's docstring); a repeat of the request number returns the
        discrepancy and changes nothing."""
        check_request_no(request_no)
        if action not in (APPLY, EXPLAIN):
            raise invalid("action", "must be APPLY or EXPLAIN")
        if reason is not None and (not reason.strip() or len(reason) > MAX_REASON):
            raise invalid("reason", f"must not be blank, at most {MAX_REASON} characters")
        if action == EXPLAIN and reason is None:
            raise invalid("reason", "is required to explain a discrepancy")
        scope = f"operator:{caller.member_id}"
        earlier = self._repo.by_request(scope, request_no)
        if earlier is not None:
            if (earlier.id, earlier.resolution, earlier.reason) != (discrepancy_id, action, reason):
                raise BusinessError(errors.REQUEST_NO_REUSED)
            return _discrepancy_vo(earlier)
        found = self._repo.discrepancy(discrepancy_id, lock=True)
        if found is None:
            raise BusinessError(
                errors.DISCREPANCY_NOT_FOUND, f"discrepancy {discrepancy_id} does not exist"
            )
        if found.status != OPEN:
            raise BusinessError(
                errors.DISCREPANCY_RESOLVED,
                f"discrepancy {discrepancy_id} is already resolved ({found.resolution})",
            )
        if action == APPLY:
            self._apply(found)
        found.status, found.resolution, found.reason = RESOLVED, action, reason
        found.resolved_by, found.resolved_at = caller.member_id, self._clock()
        found.request_scope, found.request_no = scope, request_no
        try:
            self.tx.session().flush()
        except IntegrityError:  # the same request number at this moment: read it again
            raise RetryTransaction(f"request {request_no} taken concurrently") from None
        log.info(
            "reconciliation %s: discrepancy %d (%s) resolved by %s, operator %d",
            found.business_date,
            found.id,
            found.category,
            action,
            caller.member_id,
        )
        return _discrepancy_vo(found)

    def _apply(self, found: DiscrepancyEntity) -> None:
        """Settle the order with the bank's outcome through the order machine, or
        APPLY_NOT_APPLICABLE."""
        self._available()
        order = None
        if found.category == compare.STATUS:
            order = self._orders.lock(found.subject)
        if order is None or order.order_type != found.order_type:
            raise BusinessError(
                errors.APPLY_NOT_APPLICABLE,
                f"a {found.category} discrepancy has no bank outcome to apply; explain it",
            )
        movable = order.status in OPEN_STATUSES or (
            order.status == protocol.SUCCEEDED and found.bank_status == protocol.REVERSED
        )
        result = BankResult(
            found.bank_status,
            "reconciliation",
            order_type=found.order_type,
            amount=found.bank_amount,
            fee=found.bank_fee,
            bank_ref=found.bank_ref,
            account_no=found.bank_account_no,
            finished_at=found.bank_finished_at,
        )
        outcome = self._bank.settle(order, result) if movable else None
        if outcome not in (APPLIED, CONFIRMED):
            raise BusinessError(
                errors.APPLY_NOT_APPLICABLE,
                f"order {order.order_no} is {order.status}: the bank's {found.bank_status} "
                "cannot be applied to it; explain it",
            )

    @transactional(read_only=True)
    def list_orders_in_doubt(
        self, page: int | None = None, page_size: int | None = None
    ) -> PageVo[OrderInDoubtVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.in_doubt(offset=(page - 1) * page_size, limit=page_size)
        return PageVo(tuple(to_vo(OrderInDoubtVo, r) for r in rows), total, page, page_size)

    # -- metrics ---------------------------------------------------------------------------

    @transactional(read_only=True)
    def figures(self) -> tuple[dict[str, int], int, int, dt.date | None]:
        """Open discrepancies by category, attempts succeeded and failed, the latest day
        reconciled (p2p_reconciliation_* metrics)."""
        return self._repo.open_by_category(), *self._repo.run_figures()

    def _available(self) -> None:
        if self._client is None or self._bank is None:
            raise BusinessError(errors.RECONCILIATION_UNAVAILABLE)


def _discrepancy_vo(entity: DiscrepancyEntity) -> DiscrepancyVo:
    return to_vo(DiscrepancyVo, entity, discrepancy_id=entity.id)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise invalid("date", "must be a date, YYYY-MM-DD") from None


def _refusal(exchange, file_type: str) -> str:
    """Why a file fetch gave no file, as a run's failure reason."""
    answer = exchange.answer or {}
    if exchange.http_status == 404 and answer.get("error") == "FILE_NOT_READY":
        return "FILE_NOT_READY"
    if exchange.http_status == 200 and exchange.signature not in (None, "VALID"):
        return "SIGNATURE_INVALID"
    if exchange.http_status == 200 and exchange.error == "unreadable":
        try:
            protocol.parse_file(file_type, exchange.response)
        except protocol.MessageInvalid as e:
            return "FILE_HEADER_MISMATCH" if e.field == "header" else "FILE_MALFORMED"
        return "FILE_MALFORMED"
    return "BANK_UNAVAILABLE"


__all__ = [
    "RECONCILE_JOB",
    "BankOrderReissueVo",
    "DiscrepancyVo",
    "OrderInDoubtVo",
    "OrderWaitingVo",
    "ReconciliationRunVo",
    "ReconciliationService",
    "day_bounds",
    "read_files",
]
