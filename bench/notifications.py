"""Benchmark POST /bank/notify: the depository bank's notifications applied per second through
the real endpoint, beside two baselines measured in the same run.

Run from the repository root: ``python bench/notifications.py [--count 300] [--rounds 2]``.
SQLite always; MariaDB too when P2P_TEST_DATABASE_URL is set (its server, database
``p2p_bench_notify``, dropped afterwards).

The platform is the composition root's with payment.gateway BANK (keys made for the run), its
WSGI application called in process through werkzeug's test client: the whole path of a
notification (the RSA-SHA256 signature verified over the raw bytes, the merchant and the
timestamp window, the order's row locked, the notification and its evidence recorded, the
recharge's posting, the signed acknowledgement after the commit). Jobs are held, not run: no
bank is called. One onboarded member (its account opened by a notification too) has
``count x rounds`` recharges waiting; the bank's notifications are signed before each round
(the bank's cost, not the platform's).

Each round measures, in alternating order: ``health`` (GET /health: the application's floor,
one trivial query), ``verify`` (the signature and the message's checks alone, no HTTP, no
database), ``notify`` (new SUCCEEDED notifications, each applied once) and ``repeat`` (the same
notifications delivered again: acknowledged, nothing moves). Each is sequential, one call at a
time. The figures to read are the ratios; the ledger check runs after the load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url, text  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from bench.members import sign_up  # noqa: E402
from bench.scratch import mariadb_database  # noqa: E402
from conf import load_settings  # noqa: E402
from dao import migrate  # noqa: E402
from server.app import Application, Platform, create_platform  # noqa: E402
from service.audit import LedgerAudit  # noqa: E402
from service.jobs import JobPublisher  # noqa: E402
from service.ocp import protocol  # noqa: E402
from service.ocp.signing import Signer, generate_keypair  # noqa: E402
from service.payment import PaymentService  # noqa: E402

PASSWORD = "Bench2024pass"  # noqa: S105 - a throwaway benchmark database
MARIADB_DATABASE = "p2p_bench_notify"
MERCHANT = "P2PBENCH"
BANK_KEY_ID = "bank-bench"
AMOUNT = "100.00"
KINDS = ("health", "verify", "notify", "repeat")


class HeldJobs(JobPublisher):
    """Jobs handed over go nowhere: the bench calls no bank (orders stay CREATED, which a
    notification settles as it settles a sent one)."""

    def publish(self, job, payload, *, job_id, not_before=None) -> None:
        pass

    def close(self) -> None:
        pass


class Bench:
    """The platform on ``url`` and the bank's signer."""

    def __init__(self, url: str):
        migrate.upgrade(url)
        platform_private, _ = generate_keypair()
        bank_private, bank_public = generate_keypair()
        settings = load_settings(
            {"P2P_ENV": "test"},
            {
                "database.url": url,
                "payment.gateway": "BANK",
                "bank.url": "http://127.0.0.1:9",
                "bank.merchant_id": MERCHANT,
                "bank.platform_private_key": platform_private.decode(),
                "bank.bank_public_keys": {BANK_KEY_ID: bank_public.decode()},
                "bank.notify_url": "http://127.0.0.1:9/bank/notify",
                "jobs.schedule": {"bank.query_due": 30},
                "logging.level": "WARNING",
            },
        )
        self.platform: Platform = create_platform(settings, publisher=lambda jobs: HeldJobs())
        self.http = Client(Application(self.platform))
        self.bank = Signer(BANK_KEY_ID, bank_private)
        self.client = self.platform.components["bank_client"]
        self._serial = 0

    def close(self) -> None:
        self.platform.close()

    def message(self, order_no: str, order_type: str, amount: str, **fields) -> bytes:
        self._serial += 1
        now = protocol.format_time(dt.datetime.now(dt.UTC))
        return protocol.encode(
            {
                "merchantId": MERCHANT,
                "timestamp": now,
                "notifyId": f"N{self._serial:09d}",
                "orderNo": order_no,
                "orderType": order_type,
                "status": "SUCCEEDED",
                "amount": amount,
                "fee": "0.00",
                "bankRef": "B" + order_no,
                "finishedAt": now,
                **fields,
            }
        )

    def deliver(self, body: bytes) -> bytes:
        answer = self.http.post(
            "/bank/notify", data=body, headers=protocol.signed_headers(self.bank, body)
        )
        if answer.status_code != 200:
            raise SystemExit(f"/bank/notify answered {answer.status_code}: {answer.data!r}")
        return answer.data

    def onboarded_member(self):
        """A member whose fund account the bank opened (by a notification)."""
        who = sign_up(self.platform, "13900000000", PASSWORD, "INVESTOR", 1)
        with self.platform.database.engine.connect() as conn:
            order_no = conn.execute(
                text("SELECT order_no FROM bank_order WHERE order_type = 'OPEN_ACCOUNT'")
            ).scalar_one()
        self.deliver(self.message(order_no, "OPEN_ACCOUNT", "0.00", accountNo="6200000001"))
        return who

    def pending_recharges(self, who, count: int) -> list[str]:
        payments = self.platform.service(PaymentService)
        return [
            payments.recharge(Decimal(AMOUNT), f"bench-{k}", who).order_no for k in range(count)
        ]


def timed(calls: int, call: Callable[[int], object]) -> float:
    """Calls per second of ``call(0) .. call(calls - 1)``, one after the other."""
    start = time.perf_counter()
    for k in range(calls):
        call(k)
    return calls / (time.perf_counter() - start)


def _work(bench: Bench, bodies: list[bytes]) -> dict[str, Callable[[int], object]]:
    """What each measurement does with the round's k-th notification."""
    signed = [(b, protocol.signed_headers(bench.bank, b)) for b in bodies]
    return {
        "health": lambda k: bench.http.get("/health"),
        "verify": lambda k: bench.client.verify_notification(*signed[k]),
        "notify": lambda k: bench.deliver(bodies[k]),
        "repeat": lambda k: bench.deliver(bodies[k]),
    }


def measure(bench: Bench, orders: list[str], count: int, rounds: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for r in range(rounds):
        batch = orders[r * count : (r + 1) * count]
        work = _work(bench, [bench.message(no, "RECHARGE", AMOUNT) for no in batch])
        # Alternate the baselines around the notifications; a repeat needs its first delivery.
        order = ("health", "verify", "notify", "repeat")
        if r % 2:
            order = ("notify", "repeat", "verify", "health")
        line = []
        for kind in order:
            rate = timed(len(batch), work[kind])
            rates[kind].append(rate)
            line.append(f"{kind} {rate:7.0f}/s")
        print(f"    round {r + 1}: " + ", ".join(line))
    return rates


def report(backend: str, rates: dict[str, list[float]]) -> None:
    mean = {kind: statistics.mean(values) for kind, values in rates.items()}
    for kind in KINDS:
        spread = max(rates[kind]) / min(rates[kind]) - 1
        print(f"  {backend:8} {kind:7} {mean[kind]:8.0f} per second  (spread {spread:6.1%})")
    notify = mean["notify"]
    print(
        f"  {backend:8} a notification applied costs {mean['health'] / notify:5.1f}x a /health"
        f" call, {mean['verify'] / notify:5.1f}x verifying its signature alone;"
        f" a repeat costs {notify / mean['repeat']:4.2f}x an applied one"
    )


def run(backend: str, url: str, count: int, rounds: int) -> None:
    bench = Bench(url)
    try:
        who = bench.onboarded_member()
        orders = bench.pending_recharges(who, count * rounds)
        print(f"  {backend}: {count} notifications a measurement, {rounds} rounds")
        rates = measure(bench, orders, count, rounds)
        audit = LedgerAudit(bench.platform.tx).run()
        if not audit.ok:
            raise SystemExit(f"ledger audit failed: {[c.name for c in audit.checks if not c.ok]}")
        with bench.platform.database.engine.connect() as conn:
            applied = conn.execute(
                text("SELECT COUNT(*) FROM bank_order WHERE status = 'SUCCEEDED'")
            ).scalar_one()
        expected = count * rounds + 1  # the recharges and the account
        if applied != expected:
            raise SystemExit(f"{applied} orders settled, expected {expected}")
        report(backend, rates)
        print(f"  {backend:8} {applied} orders settled once each, ledger audit OK")
    finally:
        bench.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=300, help="notifications per measurement")
    p.add_argument("--rounds", type=int, default=2, help="rounds, in alternating order")
    args = p.parse_args()
    print(
        f"POST /bank/notify in process, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{tmp}/bench.db", args.count, args.rounds)
    mariadb = os.environ.get("P2P_TEST_DATABASE_URL")
    if mariadb:
        server_url = make_url(mariadb).set(database="").render_as_string(False)
        url = mariadb_database(server_url, MARIADB_DATABASE, create=True)
        try:
            run("mariadb", url, args.count, args.rounds)
        finally:
            mariadb_database(server_url, MARIADB_DATABASE, create=False)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
