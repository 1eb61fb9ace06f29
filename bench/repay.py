"""Benchmark LoanService.repay: the time to repay one installment of a listing with many
investors (one posting with a leg per investor, a receipt and a message per investor).

Run from the repository root: ``python bench/repay.py [--investors 100,1000,10000]
[--backends sqlite,mariadb] [--term 12]``.

For each backend and investor count it builds a fresh database (a SQLite file in a temporary
folder; on MariaDB the database ``--mariadb-database``, dropped afterwards, at --mariadb-url),
funds a listing through the real services (register, verify, bind a card, open a fund
account, recharge, invest, disburse), then times ``repay`` of every installment in turn, in
process (no HTTP: the cost measured is the service and the database). It prints the set-up
time, the median and slowest repayment, the per-investor cost, the SQL statements one
repayment sends (its round trips: an executemany counts a statement per row, except an INSERT
on MariaDB, which mysqlclient sends as one multi-row INSERT) and the ratio between the
counts, and runs the ledger audit after the load.

The script uses the services' public calls only, so the same file measures an older checkout
too: copy it into that tree and run it there, for figures side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from sqlalchemy import event  # noqa: E402

from bench.members import sign_up  # noqa: E402
from bench.scratch import mariadb_database  # noqa: E402
from conf import load_settings  # noqa: E402
from dao import migrate  # noqa: E402
from server.app import create_platform  # noqa: E402
from service.audit import LedgerAudit  # noqa: E402
from service.member import MemberService  # noqa: E402
from service.p2p import AuditRequest, LoanRequest, LoanService  # noqa: E402
from service.payment import PaymentService  # noqa: E402
from service.security import Principal  # noqa: E402

PASSWORD = "Bench2024pass"  # noqa: S105 - a throwaway benchmark database
MARIADB_DATABASE = "p2p_bench_repay"


def run(url: str, investors: int, term: int) -> tuple[float, list[float], list[int]]:
    """The set-up's seconds, and the seconds and SQL statements taken by each of ``term``
    repayments of a listing funded by ``investors``."""
    started = time.perf_counter()
    migrate.upgrade(url)
    settings = load_settings({"P2P_ENV": "test"}, {"database.url": url})
    platform = create_platform(settings)
    sent = [0]
    engine = platform.database.engine
    multi_row = engine.dialect.name == "mysql"  # mysqlclient sends INSERTs' rows in one

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        one = not executemany or (multi_row and statement.lstrip().upper().startswith("INSERT"))
        sent[0] += 1 if one else len(parameters)

    event.listen(engine, "after_cursor_execute", count)
    try:
        members = platform.service(MemberService)
        loans = platform.service(LoanService)
        payments = platform.service(PaymentService)
        op = members.create_operator("13800000000", PASSWORD)
        operator = Principal(member_id=op.member_id, role="OPERATOR")
        borrower = sign_up(platform, "13900000000", PASSWORD, "BORROWER", 0)
        # Odd amounts, so every split has leftover fen to hand out.
        amounts = [Decimal(10000 + 37 * k).scaleb(-2) for k in range(investors)]
        vo = loans.publish_loan(
            LoanRequest(
                "Bench listing",
                "repay benchmark",
                borrower.member_id,
                sum(amounts),
                Decimal("11.3"),
                term,
                "EQUAL_INSTALLMENT",
                Decimal("0.01"),
                None,
                20,
            ),
            operator,
        )
        loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
        for k, amount in enumerate(amounts):
            who = sign_up(platform, f"137{k:08d}", PASSWORD, "INVESTOR", k + 1)
            payments.recharge(amount, f"r{k}", who)
            loans.invest(vo.loan_id, amount, f"i{k}", who)
        loans.disburse_loan(vo.loan_id, "d", operator)
        payments.recharge(sum(amounts), "topup", borrower)
        setup = time.perf_counter() - started
        times, counts = [], []
        for period in range(1, term + 1):
            first = sent[0]
            start = time.perf_counter()
            loans.repay(vo.loan_id, f"p{period}", borrower)
            times.append(time.perf_counter() - start)
            counts.append(sent[0] - first)
        report = LedgerAudit(platform.tx).run()
        if not report.ok:
            raise SystemExit(f"ledger audit failed: {[c.name for c in report.checks if not c.ok]}")
        return setup, times, counts
    finally:
        platform.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--investors", default="100,1000", help="comma-separated investor counts (10000 too)"
    )
    p.add_argument("--backends", default="sqlite,mariadb", help="sqlite and/or mariadb")
    p.add_argument("--term", type=int, default=12, help="installments repaid (and timed)")
    p.add_argument("--mariadb-url", default="mysql+mysqldb://root@127.0.0.1:3306")
    p.add_argument("--mariadb-database", default=MARIADB_DATABASE, help="made and dropped")
    args = p.parse_args()
    counts = [int(n) for n in args.investors.split(",")]
    print(f"repay one installment, EQUAL_INSTALLMENT over {args.term} months, in process")
    for backend in args.backends.split(","):
        medians = {}
        for n in counts:
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    url = f"sqlite:///{tmp}/bench.db"
                else:
                    url = mariadb_database(args.mariadb_url, args.mariadb_database, create=True)
                try:
                    setup, times, sent = run(url, n, args.term)
                finally:
                    if backend != "sqlite":
                        mariadb_database(args.mariadb_url, args.mariadb_database, create=False)
            medians[n] = statistics.median(times)
            print(
                f"  {backend:8} {n:5} investors: median {medians[n] * 1000:8.1f} ms, "
                f"slowest {max(times) * 1000:8.1f} ms, "
                f"{medians[n] / n * 1e6:6.0f} us/investor, "
                f"{statistics.median(sent):.0f} statements  "
                f"(set-up {setup:.0f} s, ledger audit OK)",
                flush=True,
            )
        if len(counts) > 1:
            low, high = min(counts), max(counts)
            print(
                f"  {backend:8} ratio {high}/{low} investors: "
                f"{medians[high] / medians[low]:.1f}x for {high / low:.0f}x the investors"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
