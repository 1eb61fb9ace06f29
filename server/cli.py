"""The ``p2p`` command: serve, migrate, export-contracts, export-docs, create-operator,
bank-sim, the job engine's worker and beat, and the operators' commands.

Settings come from conf/ and the environment exactly as for the server; ``--set key=value``
overrides any of them (e.g. ``--set database.url=sqlite:///var/p2p.db``), and wins over the
Apollo configuration centre too, which the commands building the platform read.

A server a command needs and cannot use (the database, Redis) is one line on standard error
and exit code 3, never the driver's traceback; a bad setting is exit code 2.

What only some commands use (Alembic, the contract documents and the compatibility check, the
job worker, the demo's HTTP client) is imported by those commands, so that ``p2p serve``
starts without it.

Python's cyclic garbage collector is paused while the imports below load: they make some
140,000 objects that live as long as the process, and as they pile up the collector would walk
them all, again and again, to find almost nothing (about a fifth of a worker's start). It is
resumed as it was once they are loaded, and ``p2p serve`` freezes what the start made
(``gc.freeze``) before it serves, so that a full collection while serving walks only what came
after, a few milliseconds rather than a pause of a tenth of a second.
"""

# ruff: noqa: E402 (the collector is paused before the imports, resumed after them)
import gc
import sys

from server.contract import Compiler

#: ``p2p serve`` binds a contract compiled by a child (server/contract.py), started before the
#: imports below load, so that the two run at once (a worker's start waits for neither alone).
_SERVE_COMPILER = Compiler() if sys.argv[1:2] == ["serve"] else None

_COLLECTING = gc.isenabled()
gc.disable()

import argparse
import datetime as dt
import getpass
import json
import logging
import os
from pathlib import Path

from sqlalchemy.exc import InterfaceError, OperationalError

import banksim.options
from conf import ConfigError, load_settings
from conf.live import LiveSettings
from conf.settings import hide_password
from dao.db import Database
from server import lifecycle, package_version
from server.app import VERSION, create_app, create_platform, openapi_document
from server.embeddedbank import EmbeddedBank
from server.jobs import prepare_embedded_broker
from server.logformat import formatter
from server.metrics import start_multiprocess_worker
from service.audit import LedgerAudit
from service.clock import (
    ClockNotAdjustable,
    PlatformClock,
    fixed_clock,
    parse_duration,
    parse_instant,
)
from service.errors import BusinessError
from service.jobs import Outbox
from service.member import MemberService
from service.ocp import protocol
from service.p2p import LoanService
from service.reconciliation import ReconciliationService
from service.transaction import TransactionManager

if _COLLECTING:
    gc.enable()

log = logging.getLogger("p2p")

#: The exit code when a server the command needs (the database, Redis) cannot be used.
EXIT_UNREACHABLE = 3


class Unreachable(Exception):
    """A server the command needs cannot be reached; its text is the operator's one line."""


def _settings(args):
    overrides = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(item, "--set takes key=value")
        overrides[key.strip()] = value
    # The overridden keys are pinned: Apollo (conf/apollo.py) never replaces them.
    return LiveSettings(load_settings(os.environ, overrides), pinned=overrides)


def _sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file, so the embedded default needs no set-up."""
    if url.startswith("sqlite:///") and url != "sqlite://":
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def cmd_serve(args, settings) -> int:
    from server import httpserver, logwriter, malloc

    # A password check's memory goes back to the system when it ends (server/malloc.py).
    malloc.map_large_blocks()
    # Every call logs its access log line: written by a thread of their own, many at a time,
    # rather than by the thread serving the call, one write each (server/logwriter.py).
    log_writer = logwriter.start(formatter(settings.logging.format), settings.logging.level)
    start_multiprocess_worker()  # before any metric exists (see server/metrics.py)
    # The facades compiled by a child: spyne and its classes never load here (server/contract.py).
    app = create_app(settings, (args.compiler or Compiler()).contract(), log_writer)
    # What the start made lives as long as the worker: kept out of every later collection.
    gc.freeze()
    server = settings.server
    log.info("starting with %s", settings.describe())
    # httpserver.create_server + lifecycle.serve rather than waitress.serve: the worker's limits
    # and deadlines come from the settings, and SIGTERM stops gracefully (readiness 503, no
    # new connections, in-flight requests finish) instead of abruptly.
    bank = settings.bank
    simulator = (
        EmbeddedBank(bank) if bank.simulator and settings.payment.gateway == "BANK" else None
    )
    if simulator is not None:
        simulator.start()  # before the first call can make an order
    worker = None
    if settings.jobs.embedded_worker:
        from server.worker import EmbeddedWorker, beat_schedule

        worker = EmbeddedWorker(args.set or (), metrics=settings.jobs.metrics_port > 0)
    try:
        listener = httpserver.create_server(app, server)
        if worker is not None:
            beat_schedule(settings.jobs.schedule, app.platform.jobs)  # what it will check
            prepare_embedded_broker(settings.jobs)
            worker.start()
        lifecycle.serve(
            listener, drain_seconds=server.drain_seconds, grace_seconds=server.shutdown_timeout
        )
    finally:
        if worker is not None:
            worker.stop(timeout=server.shutdown_timeout)
        if simulator is not None:
            simulator.stop(timeout=server.shutdown_timeout)
        log_writer.stop()
    return 0


def cmd_worker(args, settings) -> int:
    """Run jobs from the broker until SIGTERM (supervisord's program p2p-worker)."""
    from server.worker import run_worker

    return run_worker(settings, beat=args.beat, parent_pid=args.parent_pid)


def cmd_beat(args, settings) -> int:
    """Send the periodic jobs of jobs.schedule when due (exactly one beat per broker)."""
    from server.worker import run_beat

    return run_beat(settings)


def cmd_enqueue(args, settings) -> int:
    """Write a job to the outbox and hand it to the workers (e.g. a periodic job now)."""
    try:
        payload = json.loads(args.payload)
    except ValueError as e:
        print(f"error: --payload is not JSON: {e}", file=sys.stderr)
        return 2
    if not isinstance(payload, dict):
        print("error: --payload must be a JSON object of the job's arguments", file=sys.stderr)
        return 2
    prepare_embedded_broker(settings.jobs)
    platform = create_platform(settings)
    try:
        outbox: Outbox = platform.components["outbox"]
        row_id = platform.tx.run(outbox.add, args.job, payload)
    except (KeyError, TypeError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    finally:
        platform.close()
    print(f"job {args.job} written as outbox row {row_id}")
    return 0


def cmd_outbox(args, settings) -> int:
    """Show the outbox rows not handed over; with --retry, try the given-up ones again."""
    platform = create_platform(settings)
    try:
        outbox: Outbox = platform.components["outbox"]
        if args.retry:
            print(f"{outbox.retry_failed()} given-up row(s) will be tried again")
        status = outbox.status()
    finally:
        platform.close()
    print(f"{status.waiting} row(s) waiting to be handed over")
    print(f"{len(status.failed)} row(s) given up on")
    for row in status.failed:
        print(
            f"  row {row.row_id} {row.job} written {row.created_at:%Y-%m-%d %H:%M:%S}Z, "
            f"{row.attempts} attempt(s): {row.last_error}"
        )
    return 1 if status.failed else 0


def cmd_migrate(args, settings) -> int:
    from dao import migrate

    url = settings.database.url
    _sqlite_dir(url)
    if args.downgrade:
        migrate.downgrade(url, args.downgrade)
    else:
        migrate.upgrade(url, args.revision)
    print(f"database at revision {migrate.current(url) or 'base'}")
    return 0


def _export_base(settings) -> str:
    """The base URL the committed contracts and documents name: the public one, else where
    the settings listen."""
    return settings.server.public_url or f"http://{settings.server.host}:{settings.server.port}"


def export_contracts(settings, out: Path) -> list[Path]:
    """Write wsdl/<Facade>.wsdl and swagger/openapi.json as the code generates them."""
    from server.openapi import render
    from server.wsdl import Wsdl

    platform = create_platform(settings)
    try:
        base = _export_base(settings)
        written = []
        (out / "wsdl").mkdir(parents=True, exist_ok=True)
        (out / "swagger").mkdir(parents=True, exist_ok=True)
        for bound in platform.facades:
            path = out / "wsdl" / f"{bound.name}.wsdl"
            path.write_bytes(Wsdl(bound).render(base, f"/services/{bound.name}"))
            written.append(path)
        path = out / "swagger" / "openapi.json"
        path.write_bytes(render(openapi_document(platform)))
        written.append(path)
        return written
    finally:
        platform.close()


def cmd_export_contracts(args, settings) -> int:
    for path in export_contracts(settings, Path(args.out)):
        print(path)
    return 0


def export_docs(settings, root: Path, out: Path) -> list[Path]:
    """Write docs/contracts/<Facade>.html and docs/contracts/changelog.html under ``out`` as
    the code generates them, the releases read from ``root``'s contracts/released/."""
    from server import contractdoc

    platform = create_platform(settings)
    try:
        return contractdoc.export(platform.facades, VERSION, _export_base(settings), root, out)
    finally:
        platform.close()


def cmd_export_docs(args, settings) -> int:
    root = Path(args.root)
    for path in export_docs(settings, root, Path(args.out) if args.out else root):
        print(path)
    return 0


def cmd_check_contracts(args, settings) -> int:
    """Print how the published contracts differ from the last release; exit 1 on a break."""
    from server import compat

    found = compat.check(Path(args.root))
    if found.released is None:
        print("no contract released yet (contracts/released/ is empty): nothing to compare")
        return 0
    for change in found.changes:
        print(change)
    breaking = len(found.breaking)
    print(
        f"{len(found.changes)} change(s) since release {found.released}, {breaking} breaking"
        + (": release a new major version (docs/contracts.md) or undo them" if breaking else "")
    )
    return 1 if breaking else 0


def cmd_release_contracts(args, settings) -> int:
    from server import compat

    try:
        version = compat.release(Path(args.root))
    except compat.ReleaseRefused as refused:
        print(f"not released: {refused}", file=sys.stderr)
        return 1
    print(f"released contracts {version} into {compat.RELEASED / version}")
    return 0


def _password() -> str:
    """The new operator's password: asked twice on a terminal (never echoed), else the first
    line of standard input, so that it never appears in a command line (ps, shell history)."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("The password again: ") != password:
            raise ValueError("the two passwords differ")
        return password
    line = sys.stdin.readline()
    if not line:
        raise ValueError("no password on standard input (one line is read)")
    return line.removesuffix("\n").removesuffix("\r")


def cmd_create_operator(args, settings) -> int:
    try:
        password = _password()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return _create_operator(args.mobile, password, settings)


def _create_operator(mobile: str, password: str, settings) -> int:
    platform = create_platform(settings)
    try:
        member = platform.service(MemberService).create_operator(mobile, password)
    except BusinessError as e:
        print(f"error: {e.code}: {e.message}", file=sys.stderr)
        return 1
    finally:
        platform.close()
    print(f"operator {member.member_id} created ({member.mobile})")
    return 0


def cmd_check_ledger(args, settings) -> int:
    """Print every invariant with OK or what breaks it; exit 1 when anything is off."""
    platform = create_platform(settings)
    try:
        report = LedgerAudit(platform.tx).run()
    finally:
        platform.close()
    counts = ", ".join(f"{n} {table}" for table, n in report.counts.items())
    print(f"checked {counts}")
    for check in report.checks:
        print(f"{'OK  ' if check.ok else 'FAIL'} {check.name}")
        for problem in check.problems[:50]:
            print(f"     {problem}")
        if len(check.problems) > 50:
            print(f"     ... and {len(check.problems) - 50} more")
    print("ledger OK" if report.ok else "ledger NOT OK")
    return 0 if report.ok else 1


def cmd_reconcile(args, settings) -> int:
    """Reconcile one business day with the depository bank now, in this process; exit 1
    unless the run succeeded with no discrepancy."""
    day = args.date
    platform = create_platform(settings)
    try:
        service = platform.service(ReconciliationService)
        if day is None:
            today = protocol.business_day(platform.components["clock"]())
            day = today - dt.timedelta(days=1)
        run = service.run_day(day)
    except BusinessError as e:
        print(f"{e.code}: {e.message}", file=sys.stderr)
        return 2
    finally:
        platform.close()
    found = {
        "bank-only": run.bank_only,
        "platform-only": run.platform_only,
        "amount": run.amount_mismatches,
        "status": run.status_mismatches,
        "fee": run.fee_mismatches,
        "balance": run.balance_mismatches,
    }
    if run.status != "SUCCEEDED":
        print(f"reconciliation {run.business_date} {run.status}: {run.reason} ({run.failed_file})")
        return 1
    print(
        f"reconciliation {run.business_date} SUCCEEDED: bank {run.bank_lines} lines"
        f" {run.bank_amount} fee {run.bank_fee}, platform {run.platform_orders} orders"
        f" {run.platform_amount} fee {run.platform_fee}; balances bank {run.bank_balance}"
        f" platform {run.platform_balance}"
    )
    print("discrepancies: " + ", ".join(f"{name} {n}" for name, n in found.items()))
    return 0 if not any(found.values()) else 1


def cmd_clock(args, settings) -> int:
    """Show or move the development clock (service/clock.py) for every process on the
    database; refused where clock.adjustable is false (production)."""
    database = Database.from_settings(settings.database)
    clock = PlatformClock(TransactionManager(database), adjustable=settings.clock.adjustable)
    try:
        if args.action == "set":
            clock.set(parse_instant(args.value))
        elif args.action == "advance":
            clock.advance(parse_duration(args.value))
        elif args.action == "reset":
            clock.reset()
        offset = clock.offset()
        now = clock()
    except ClockNotAdjustable as e:
        print(f"REFUSED: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(f"platform time {now:%Y-%m-%dT%H:%M:%SZ} (wall clock {_signed(offset)})")
    return 0


def _signed(offset: dt.timedelta) -> str:
    """``+0``, ``+40 days, 0:00:00``, ``-1:30:00``: to the second."""
    seconds = round(offset.total_seconds())
    if not seconds:
        return "+0"
    return ("-" if seconds < 0 else "+") + str(dt.timedelta(seconds=abs(seconds)))


def _as_of_platform(args, settings):
    """The platform, its business clock fixed at --as-of when given."""
    return create_platform(settings, clock=fixed_clock(args.as_of) if args.as_of else None)


def cmd_close_expired_loans(args, settings) -> int:
    """Fail (流标) every RAISING listing past its deadline, releasing its investors' funds."""
    platform = _as_of_platform(args, settings)
    try:
        _require_shared_cache(platform, settings)
        outcome = platform.service(LoanService).close_expired_loans()
    finally:
        platform.close()
    print(f"{outcome.failed} expired listing(s) marked FAILED")
    return 0


def _require_shared_cache(platform, settings) -> None:
    """A command that changes listings evicts them from the shared cache after its commit; a
    Redis it cannot reach would leave the web workers serving the old listings until they
    expire, so the command stops before changing anything."""
    url = settings.cache.url
    if url and not platform.components["cache"].ping():
        raise Unreachable(
            f"Redis (cache.url {hide_password(url)}) cannot be reached; nothing was changed "
            "(the changed listings could not be evicted from the cache)"
        )


def cmd_mark_overdue(args, settings) -> int:
    """Mark unpaid installments past their due date OVERDUE (run daily, e.g. from cron)."""
    platform = _as_of_platform(args, settings)
    try:
        marked = platform.service(LoanService).mark_overdue_installments().marked
    finally:
        platform.close()
    print(f"{marked} installment(s) marked overdue")
    return 0


def cmd_demo(args, settings) -> int:
    """Walk a listing's whole life over REST (or a short walk over SOAP) against a running
    server on the same database and SMS outbox as these settings; exit 1 if a step fails
    or the ledger is not clean at the end."""
    if not settings.verification.outbox_file:
        refusal = "verification.outbox_file is empty: the demo reads the development SMS outbox"
    elif not (args.soap or settings.clock.adjustable):
        refusal = "clock.adjustable is false: the walk moves the development clock"
    else:
        refusal = None
    if refusal is not None:
        print(f"error: {refusal} (as under make run)", file=sys.stderr)
        return 2
    from server.demo.journey import Journey, Operator
    from server.demo.people import SmsOutbox
    from server.demo.soap import soap_walk
    from server.demo.wire import DemoFailed, Wire

    wire = Wire(args.base_url)
    sms = SmsOutbox(settings.verification.outbox_file)
    database = Database.from_settings(settings.database)
    clock = PlatformClock(TransactionManager(database), adjustable=settings.clock.adjustable)
    try:
        if args.soap:
            soap_walk(wire, sms)
        else:
            create = None
            if args.create_operator:

                def create(mobile: str, password: str) -> bool:
                    return _create_operator(mobile, password, settings) == 0

            operator = Operator(args.operator_mobile, args.operator_password, create)
            Journey(wire, sms, clock, operator).walk()
    except DemoFailed as e:
        print(f"\ndemo stopped: {e}", file=sys.stderr)
        return 1
    finally:
        if not args.soap and clock.adjustable:
            clock.reset()  # a walk that stopped half-way does not leave the clock moved
        database.dispose()
    wire.section("The ledger")
    print("$ p2p check-ledger")
    return cmd_check_ledger(args, settings)


def cmd_bank_sim(args, settings) -> int:
    """The depository bank simulator: a program of its own with its own options (banksim/)."""
    import banksim.main

    return banksim.main.run(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="p2p", description="The P2P lending platform.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, fn, help_text):
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a setting, e.g. database.url=sqlite:///var/p2p.db",
        )
        c.set_defaults(fn=fn)
        return c

    command("serve", cmd_serve, "Serve SOAP and REST with waitress (host, port from settings).")
    m = command("migrate", cmd_migrate, "Upgrade the database schema (or downgrade it).")
    m.add_argument("--revision", default="head", help="target revision (default head)")
    m.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION instead")
    e = command(
        "export-contracts",
        cmd_export_contracts,
        "Write wsdl/*.wsdl and swagger/openapi.json from the code.",
    )
    e.add_argument("--out", default=".", help="folder holding wsdl/ and swagger/ (default .)")
    d = command(
        "export-docs",
        cmd_export_docs,
        "Write the facades' documents and the changelog page into docs/contracts/.",
    )
    d.add_argument("--root", default=".", help="the repository, for its releases (default .)")
    d.add_argument("--out", help="folder to write docs/contracts/ under (default: --root)")
    for name, fn, text in (
        (
            "check-contracts",
            cmd_check_contracts,
            "Compare wsdl/ and swagger/ with the last released contracts; exit 1 on a break.",
        ),
        (
            "release-contracts",
            cmd_release_contracts,
            "Release wsdl/ and swagger/ under their version into contracts/released/.",
        ),
    ):
        c = command(name, fn, text)
        c.add_argument("--root", default=".", help="the repository (default .)")
    command("check-ledger", cmd_check_ledger, "Check the ledger's invariants; exit 1 if broken.")
    r = command(
        "reconcile", cmd_reconcile, "Reconcile a business day with the depository bank now."
    )
    r.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the business day (Asia/Shanghai; default yesterday)",
    )
    as_of = {
        "type": parse_instant,
        "metavar": "TIME",
        "help": "as if it were TIME (ISO 8601 with its zone, e.g. 2027-01-05T10:00:00Z)",
    }
    command(
        "mark-overdue", cmd_mark_overdue, "Mark installments past their due date OVERDUE."
    ).add_argument("--as-of", **as_of)
    command(
        "close-expired-loans",
        cmd_close_expired_loans,
        "Mark RAISING listings past their deadline FAILED and release their funds (for cron).",
    ).add_argument("--as-of", **as_of)
    k = command(
        "clock",
        cmd_clock,
        "Show or move the platform's business clock (not in production: clock.adjustable).",
    )
    k.add_argument(
        "action",
        nargs="?",
        default="show",
        choices=("show", "set", "advance", "reset"),
        help="show (default); set TIME; advance DURATION (40d, 12h, 90m, 1d12h); reset",
    )
    k.add_argument("value", nargs="?", help="set: an ISO 8601 time; advance: a duration")
    demo = command(
        "demo",
        cmd_demo,
        "Walk a listing's whole life over REST against a running server, printing each call.",
    )
    demo.add_argument(
        "--base-url", default="http://127.0.0.1:8080", help="the running server (make run)"
    )
    demo.add_argument("--soap", action="store_true", help="a short walk over SOAP (zeep)")
    demo.add_argument("--operator-mobile", default="13900000000", help="the operator's login")
    demo.add_argument("--operator-password", default="Operator123", help="its password")
    demo.add_argument(
        "--create-operator",
        action="store_true",
        help="create the operator (p2p create-operator) when it cannot log in",
    )
    b = sub.add_parser(
        "bank-sim",
        help="Run the depository bank simulator (its own options, not --set).",
        description="The depository bank simulator (docs/depository-protocol.md).",
    )
    banksim.options.add_arguments(b)
    b.set_defaults(fn=cmd_bank_sim, set=None)  # the platform's settings as they are
    w = command("worker", cmd_worker, "Run jobs (the job engine's worker) until SIGTERM.")
    w.add_argument("--beat", action="store_true", help="also run the scheduler (one per broker)")
    w.add_argument(
        "--parent-pid",
        type=int,
        metavar="PID",
        help="stop when PID, the process that started this one, ends (p2p serve's worker)",
    )
    command("beat", cmd_beat, "Send the periodic jobs of jobs.schedule when due (run one).")
    q = command("enqueue", cmd_enqueue, "Hand a job to the workers through the outbox.")
    q.add_argument("job", help="the job's name, e.g. loan.close_expired")
    q.add_argument("--payload", default="{}", help="the job's arguments as a JSON object")
    b = command("outbox", cmd_outbox, "Show outbox rows not handed over; exit 1 if any failed.")
    b.add_argument("--retry", action="store_true", help="try the given-up rows again")
    o = command(
        "create-operator",
        cmd_create_operator,
        "Create an operator account. The password (8-64 characters, a letter and a digit) is "
        "asked for twice on a terminal, else read as the first line of standard input.",
    )
    o.add_argument("--mobile", required=True, help="the operator's mobile number (login name)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    # What the command line's own command started as this module loaded (None for others).
    args.compiler = _SERVE_COMPILER if argv is None else None
    try:
        settings = _settings(args)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    # Every record through one handler whose formatter (logging.format: plain or JSON)
    # escapes what a caller could use to forge a line (server/logformat.py).
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(settings.logging.format))
    logging.basicConfig(level=settings.logging.level, handlers=[handler])
    try:
        return args.fn(args, settings)
    except ConfigError as e:  # a check that needs the platform built (e.g. jobs.schedule)
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except (OperationalError, InterfaceError) as e:
        # The DB-API's errors of the database's operation, not the program's: unreachable,
        # refused credentials, a missing schema. The driver's own words, on one line.
        reason = " ".join(str(e.orig).split())
        url = hide_password(settings.database.url)
        print(f"error: the database ({url}) cannot be used: {reason}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except Unreachable as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
