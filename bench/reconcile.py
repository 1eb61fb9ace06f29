"""Benchmark the daily reconciliation: a business day of 100,000 bank orders (by default)
compared both ways and recorded, on SQLite and MariaDB.

Run from the repository root: ``python bench/reconcile.py [--orders 100000] [--members 1000]
[--faults 0.01] [--backends sqlite,mariadb] [--mariadb-url mysql+mysqldb://root@127.0.0.1]``.

For each backend it builds a fresh database (a SQLite file in a temporary folder; on MariaDB
the database ``p2p_bench_reconcile``, dropped afterwards), inserts the members (each with a
fund account and an account), the day's bank orders (recharges and withdrawals, finished in
the day) in bulk with plain INSERTs, and the bank's files of the day as the bank would write
them (the same orders, with a share of faults: amounts, statuses and fees that differ, orders
only one side has; every member's balance). The files' bytes are made with the protocol's
``format_file`` and read back with ``parse_file`` (timed apart: the client does it when it
fetches). Then it times ``ReconciliationService.run_day`` with a client that answers from
memory (no HTTP): the claim, the comparison and the recording of every discrepancy in one
transaction; then a re-run of the same day (what a re-run costs: nothing new to insert), and
the re-run again under tracemalloc for the peak of Python memory it allocates. It prints the
figures, the discrepancies found per category, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from bench.scratch import mariadb_database  # noqa: E402
from conf import load_settings  # noqa: E402
from dao import migrate  # noqa: E402
from dao.ledger import AccountEntity  # noqa: E402
from dao.member import MemberEntity  # noqa: E402
from dao.ocp import BankOrderEntity  # noqa: E402
from server.app import create_platform  # noqa: E402
from service.ocp import protocol  # noqa: E402
from service.ocp.client import Exchange  # noqa: E402
from service.reconciliation import ReconciliationService, day_bounds  # noqa: E402

MARIADB_DATABASE = "p2p_bench_reconcile"
DAY = dt.date(2026, 12, 1)
CHUNK = 5000


class MemoryBank:
    """The bank's fetch_file, answered from prepared files."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def fetch_file(self, day: dt.date, file_type: str) -> Exchange:
        body = self.files[file_type]
        rows = protocol.parse_file(file_type, body)
        now = dt.datetime.now(dt.UTC)
        answer = {"date": day.isoformat(), "fileType": file_type, "rows": rows}
        return Exchange(b"", body, 200, now, now, "VALID", None, answer)


def build(url: str, orders: int, members: int, faults: float) -> tuple[dict[str, bytes], dict]:
    """The database's rows and the bank's files; the faults planted, by category."""
    rng = random.Random(7)
    start, _ = day_bounds(DAY)
    now = start + dt.timedelta(days=1, hours=1)
    engine = create_engine(url, poolclass=NullPool)
    planted = dict.fromkeys(("BANK_ONLY", "PLATFORM_ONLY", "AMOUNT", "STATUS", "FEE"), 0)
    lines: dict[str, list[dict[str, str]]] = {t: [] for t in protocol.ORDER_TYPES}
    with engine.begin() as conn:
        conn.execute(
            insert(MemberEntity),
            [
                {
                    "id": m,
                    "mobile": f"139{m:08d}",
                    "password_hash": "x",
                    "role": "INVESTOR",
                    "status": "ACTIVE",
                    "fund_account_no": f"SA{m:08d}",
                    "created_at": now,
                    "updated_at": now,
                }
                for m in range(1, members + 1)
            ],
        )
        conn.execute(
            insert(AccountEntity),
            [
                {
                    "member_id": m,
                    "normal_side": "C",
                    "available": Decimal(0),
                    "frozen": Decimal(0),
                    "created_at": now,
                    "updated_at": now,
                }
                for m in range(1, members + 1)
            ],
        )
        rows = []
        for n in range(orders):
            order_type = "RECHARGE" if n % 3 else "WITHDRAW"
            member = 1 + n % members
            amount = Decimal(rng.randrange(100, 10_000_000)).scaleb(-2)
            finished = start + dt.timedelta(seconds=n * 86399 // orders)
            order_no = f"{order_type[0]}{n:012d}"
            status = "SUCCEEDED" if rng.random() > 0.05 else "FAILED"
            row = {
                "order_no": order_no,
                "order_type": order_type,
                "ref_type": "PAYMENT_ORDER",
                "ref_id": n + 1,
                "member_id": member,
                "account_no": f"SA{member:08d}",
                "amount": amount,
                "fee": Decimal("0.00"),
                "status": status,
                "bank_ref": f"BR{n:012d}",
                "send_count": 1,
                "query_count": 0,
                "created_at": finished - dt.timedelta(minutes=1),
                "updated_at": finished,
                "finished_at": finished,
            }
            line = {
                "orderNo": order_no,
                "orderType": order_type,
                "accountNo": row["account_no"],
                "amount": protocol.format_amount(amount),
                "fee": "0.00",
                "status": status,
                "bankRef": row["bank_ref"],
                "finishedAt": protocol.format_time(finished),
            }
            fault = rng.random() < faults and rng.choice(list(planted))
            if fault:
                planted[fault] += 1
            if fault == "BANK_ONLY":
                row = None
            elif fault == "PLATFORM_ONLY":
                line = None
            elif fault == "AMOUNT":
                line["amount"] = protocol.format_amount(amount + Decimal("0.01"))
            elif fault == "STATUS":
                row.update(status="ACCEPTED", finished_at=None, fee=None)
            elif fault == "FEE":
                line["fee"] = "1.00"
            if row is not None:
                rows.append(row)
            if line is not None:
                lines[order_type].append(line)
            if len(rows) >= CHUNK:
                conn.execute(insert(BankOrderEntity), rows)
                rows = []
        if rows:
            conn.execute(insert(BankOrderEntity), rows)
    engine.dispose()
    files = {t: protocol.format_file(t, lines[t]) for t in protocol.ORDER_TYPES}
    balance = [
        {"accountNo": f"SA{m:08d}", "memberId": str(m), "available": "0.00", "frozen": "0.00"}
        for m in range(1, members + 1)
    ]
    files[protocol.BALANCE] = protocol.format_file(protocol.BALANCE, balance)
    return files, planted


def measure(url: str, orders: int, members: int, faults: float) -> None:
    migrate.upgrade(url)
    started = time.perf_counter()
    files, planted = build(url, orders, members, faults)
    print(f"  built {orders} orders, {members} members in {time.perf_counter() - started:.1f} s")
    size = sum(len(body) for body in files.values())
    started = time.perf_counter()
    for file_type, body in files.items():
        protocol.parse_file(file_type, body)
    print(f"  files: {size / 1e6:.1f} MB, parsed in {time.perf_counter() - started:.2f} s")
    platform = create_platform(load_settings({"P2P_ENV": "test"}, {"database.url": url}))
    try:
        clock_now = day_bounds(DAY)[1] + dt.timedelta(hours=1)
        service = ReconciliationService(
            platform.tx,
            platform.settings,
            lambda: clock_now,
            platform.components["outbox"],
            bank=object(),  # only APPLY needs the order machine
            bank_client=MemoryBank(files),
        )
        for label in ("first run", "re-run"):
            started = time.perf_counter()
            run = service.run_day(DAY)
            seconds = time.perf_counter() - started
            print(
                f"  {label}: {seconds:.2f} s ({run.status}; bank {run.bank_lines} lines,"
                f" platform {run.platform_orders} orders)"
            )
        tracemalloc.start()
        service.run_day(DAY)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        found = {
            "BANK_ONLY": run.bank_only,
            "PLATFORM_ONLY": run.platform_only,
            "AMOUNT": run.amount_mismatches,
            "STATUS": run.status_mismatches,
            "FEE": run.fee_mismatches,
            "BALANCE": run.balance_mismatches,
        }
        print(f"  planted {planted}")
        print(f"  found   {found}")
        print(f"  re-run under tracemalloc: peak {peak / 1e6:.0f} MB allocated by Python")
    finally:
        platform.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--faults", type=float, default=0.01, help="share of orders with one")
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--mariadb-url", default="mysql+mysqldb://root@127.0.0.1:3306")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        print(f"{backend}:")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                measure(f"sqlite:///{folder}/bench.db", args.orders, args.members, args.faults)
        else:
            url = mariadb_database(args.mariadb_url, MARIADB_DATABASE, create=True)
            try:
                measure(url, args.orders, args.members, args.faults)
            finally:
                mariadb_database(args.mariadb_url, MARIADB_DATABASE, create=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
