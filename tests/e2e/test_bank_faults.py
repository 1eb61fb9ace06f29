"""Every fault of the simulator on every order type it applies to, end to end: ``p2p serve``
(payment.gateway BANK, its embedded job worker; MariaDB + Redis when P2P_TEST_DATABASE_URL and
P2P_TEST_REDIS_URL are set, else SQLite) and ``p2p bank-sim`` as a separate process, over HTTP
both ways, with short delays (the simulator's timeout faults hold an answer 2 s, past the
platform's 1 s read timeout; the platform queries an open order after 1 s).

Each fault is armed for exactly one order (count 1) and the business call that makes the order
is made; the next fault is armed once the bank has taken this one (its list of armed faults is
empty again), so the fault reaches the order meant. Then every order is waited for at once:
the platform must end with the bank's final word on each of its orders. After them: each
investment was lent once and each receipt paid once (one posting each), ``p2p check-ledger``
is clean, every member's balances equal the bank's, and, the simulator's day closed early
(POST /admin/close-day), ``p2p reconcile`` of today finds nothing in any of its six categories.

Combinations left out, and why:

* reverse_after_success: WITHDRAW only (the simulator refuses it elsewhere).
* Item faults in a batch that meets timeout_after_moving: the simulator finishes every item of
  that batch SUCCEEDED at once, whatever fault the item drew (its fail would not fail); the
  item faults meet a batch of their own.

How the batches meet theirs:

* UNFREEZE, DISBURSE and REPAY are made by one business call for many orders at once (a
  listing cancelled, disbursed, an installment repaid): their item faults are armed together,
  one count each, and taken by the orders in the order the bank receives them; which order got
  which fault is what /admin/orders says.
* DISBURSE and REPAY batch-level faults (refuse, http_5xx, timeout_after_moving,
  timeout_without_moving) are taken by the batch, each by a batch of its own. DISBURSE: the
  item faults on a listing of an investment for each, each batch fault on a listing of one
  investment. REPAY: http_5xx on the first installment of the listing of the item faults
  (its items meet them when the batch is sent again), refuse on its second (the refused
  items, FAILED, are re-issued under new numbers and repay it), timeout_without_moving on its
  third, and timeout_after_moving on the first installment of the listing whose DISBURSE met
  it too.
  The next batch fault is armed only once the listing is lent or the installment paid: a
  re-issued item goes in a batch of its own, which would take a fault armed meanwhile.

Last, a discrepancy reconciliation must find, in a world of its own (its own bank, platform
and database): the platform with its queries held off (bank.query_first_after_seconds 3600),
a FREEZE the bank finishes and never notifies is open at the platform when the day closes:
exactly one STATUS discrepancy, which an operator APPLYs over REST; reconciling again finds
nothing, and the ledger is clean. Not in the matrix's world: the bank's files of a day never
change once served and the platform counts its orders by calendar day (reconciling no day
before it begins), so once the matrix's day is closed and reconciled, nothing more done on the
real clock falls in a day that world's platform can reconcile.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from banksim.faults import FAULTS
from dao.ocp.order import FINAL_STATUSES
from service.ocp import protocol
from tests.banksupport import (
    BANK_KEY_ID,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
    start_bank_sim,
)
from tests.e2e.conftest import (
    DB_VARIABLE,
    OPERATOR_MOBILE,
    OPERATOR_PASSWORD,
    REDIS_VARIABLE,
    register_and_login,
)

pytestmark = pytest.mark.slow

SINGLE = ("OPEN_ACCOUNT", "RECHARGE", "WITHDRAW", "FREEZE")
BATCH_LEVEL = ("refuse", "http_5xx", "timeout_after_moving", "timeout_without_moving")
ITEM_FAULTS = tuple(f for f in FAULTS if f not in BATCH_LEVEL and f != "reverse_after_success")
#: What ``p2p reconcile`` prints of a day with nothing to find.
NOTHING_FOUND = "bank-only 0, platform-only 0, amount 0, status 0, fee 0, balance 0"
#: Faults with a time of their own, given a short one.
SECONDS = {"delay": 2, "notify_out_of_order": 1, "reverse_after_success": 2}


def single_faults(order_type: str) -> list[str]:
    return [f for f in FAULTS if f != "reverse_after_success" or order_type == "WITHDRAW"]


UNFREEZE_FAULTS = [f for f in FAULTS if f != "reverse_after_success"]
#: Faults after which an UNFREEZE waits for an operator to re-issue it.
LEFT_TO_OPERATORS = ("refuse", "fail")


def eventually(check: Callable[[], object], what: str, timeout: float = 120.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.25)


def today() -> dt.date:
    return protocol.business_day(dt.datetime.now(dt.UTC))


@pytest.fixture
def database(tmp_path_factory) -> Iterator[list[str]]:
    """The platform's database (and cache) settings: a database of its own on MariaDB (a
    Redis key prefix of its own) when the variables are set, else a SQLite file; one a test."""
    raw, cache = os.environ.get(DB_VARIABLE), os.environ.get(REDIS_VARIABLE)
    if not raw or not cache:
        yield [f"database.url=sqlite:///{tmp_path_factory.mktemp('faults-db') / 'p2p.db'}"]
        return
    url = make_url(raw)
    if url.get_backend_name() != "mysql" or not (url.database or "").startswith("p2p_test"):
        pytest.fail(f"{DB_VARIABLE} must be a mysql URL of a database named p2p_test*")
    name = f"{url.database}_faults"
    admin = create_engine(url.set(database=""), poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    prefix = f"p2p-faults-{uuid.uuid4().hex[:12]}:"
    try:
        yield [
            f"database.url={url.set(database=name).render_as_string(hide_password=False)}",
            f"cache.url={cache}",
            f"cache.key_prefix={prefix}",
        ]
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
        keys = redis.Redis.from_url(cache)
        for key in keys.scan_iter(match=f"{prefix}*"):
            keys.delete(key)
        keys.close()


class World:
    """The simulator, the platform (restartable with other settings) and the command line."""

    def __init__(self, workdir, processes, database: list[str]):
        self.workdir, self.processes = workdir, processes
        self.sim = start_bank_sim(
            workdir / "bank",
            *("--delay", "1", "--auto-authorize", "--query-min-interval", "0"),
            *("--hang", "2", "--reverse-after", "2"),
        )
        key = workdir / "platform.pem"
        key.write_bytes(PLATFORM_PRIVATE)
        self.port = processes.free_port()
        self.settings = [
            *database,
            "payment.gateway=BANK",
            f"bank.url={self.sim.url}",
            f"bank.merchant_id={MERCHANT}",
            f"bank.platform_key_id={PLATFORM_KEY_ID}",
            f"bank.platform_private_key={key}",
            f"bank.bank_public_keys={BANK_KEY_ID}={workdir / 'bank' / 'bank.pub.pem'}",
            f"bank.notify_url=http://127.0.0.1:{self.port}/bank/notify",
            "bank.read_timeout_seconds=1",
            "bank.query_first_after_seconds=1",
            "bank.query_min_interval_seconds=1",
            "bank.query_max_interval_seconds=2",
            "bank.item_retry_seconds=1",
            "jobs.schedule=bank.query_due=1;outbox.sweep=5",
        ]
        self.started = None
        self.database_engine = create_engine(database[0].split("=", 1)[1], poolclass=NullPool)

    def serve(self, *extra: str) -> None:
        """The platform with its operator, ``extra`` settings over the world's."""
        self.started = self.processes.start_server(
            "embedded", self.workdir, [*self.settings, *extra], True, self.port
        )
        self.server = self.started.server

    def stop(self) -> None:
        if self.started is not None:
            self.started.stop()
            self.started = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *args]
            + [x for s in self.settings for x in ("--set", s)],
            cwd=self.processes.root,
            env=self.processes.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def admin(self, method: str, path: str, **kwargs) -> dict:
        answer = requests.request(method, self.sim.url + path, timeout=30, **kwargs)
        assert answer.ok, answer.text
        return answer.json()

    def close_day(self) -> str:
        """Today, closed early at the bank (its files served from now on)."""
        day = str(today())
        assert self.admin("POST", "/admin/close-day", json={"date": day})["date"] == day
        return day

    def arm(self, order_type: str, fault: str) -> None:
        spec = {"orderType": order_type, "fault": fault, "count": 1}
        if fault in SECONDS:
            spec["seconds"] = SECONDS[fault]
        self.admin("POST", "/admin/faults", json=spec)

    def taken(self) -> None:
        """Once the bank has taken every armed fault."""
        eventually(
            lambda: not self.admin("GET", "/admin/faults")["faults"],
            "the bank did not take the armed fault",
            timeout=60,
        )

    def bank_orders(self) -> dict[str, dict]:
        return {o["orderNo"]: o for o in self.admin("GET", "/admin/orders")["orders"]}

    def platform_orders(self) -> dict[str, tuple[str, str]]:
        with self.database_engine.connect() as conn:
            rows = conn.execute(text("SELECT order_no, order_type, status FROM bank_order"))
            return {no: (order_type, status) for no, order_type, status in rows}

    def disagreements(self) -> list[str]:
        """The platform's orders without the bank's final word (empty: none)."""
        bank = self.bank_orders()
        wrong = []
        for order_no, (order_type, status) in sorted(self.platform_orders().items()):
            at_bank = bank.get(order_no, {}).get("status")
            if at_bank not in FINAL_STATUSES or status != at_bank:
                wrong.append(f"{order_type} {order_no}: platform {status}, bank {at_bank}")
        return wrong

    def lent(self, loan_id: int) -> list[int]:
        """How often each investment in listing ``loan_id`` was lent: its DISBURSE postings."""
        return self._counts(
            "SELECT COUNT(p.id) FROM investment i LEFT JOIN posting p ON p.ref_type ="
            " 'investment' AND p.ref_id = i.id AND p.business_type = 'DISBURSE'"
            " WHERE i.loan_id = :loan GROUP BY i.id",
            loan=loan_id,
        )

    def paid(self, loan_id: int, period: int) -> list[int]:
        """How often each receipt of installment ``period`` of listing ``loan_id`` was paid:
        its REPAY postings."""
        return self._counts(
            "SELECT COUNT(p.id) FROM receipt r LEFT JOIN posting p ON p.ref_type = 'receipt'"
            " AND p.ref_id = r.id AND p.business_type = 'REPAY'"
            " WHERE r.loan_id = :loan AND r.period = :period GROUP BY r.id",
            loan=loan_id,
            period=period,
        )

    def _counts(self, query: str, **params: int) -> list[int]:
        with self.database_engine.connect() as conn:
            return [count for (count,) in conn.execute(text(query), params)]

    def settled(self) -> None:
        last: list[list[str]] = [[]]

        def agree() -> bool:
            last[0] = self.disagreements()
            return not last[0]

        deadline = time.monotonic() + 180
        while not agree():
            if time.monotonic() > deadline:
                pytest.fail("the platform lacks the bank's final word on:\n" + "\n".join(last[0]))
            time.sleep(0.5)


@pytest.fixture
def world(tmp_path_factory, processes, database) -> Iterator[World]:
    """A world of the test's own: its day at the bank holds only what the test does."""
    world = World(tmp_path_factory.mktemp("e2e-bank-faults"), processes, database)
    try:
        yield world
    finally:
        world.stop()
        world.sim.stop()
        world.database_engine.dispose()


class Client:
    """One member's REST calls."""

    def __init__(self, server, token: str):
        self.server, self.auth = server, {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict | None = None) -> dict:
        r = requests.post(self.server.url(path), json=body or {}, headers=self.auth, timeout=30)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def get(self, path: str) -> dict:
        r = requests.get(self.server.url(path), headers=self.auth, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


def members(world: World, identities, count: int, role: str = "INVESTOR") -> list[Client]:
    """``count`` new members, once the bank opened the fund account of each (all asked for
    before any is waited for)."""
    clients = [
        Client(world.server, register_and_login(world.server, role, identities()).token)
        for _ in range(count)
    ]
    account = "/api/v1/members/current/fund-account"
    for client in clients:
        eventually(
            lambda c=client: c.get(account)["status"] == "OPEN",
            "the bank did not open the account",
        )
    return clients


def recharged(amounts: dict[Client, str]) -> None:
    """Each client recharged its amount, once the bank finished every recharge (all asked for
    before any is waited for)."""
    paths = {
        client: "/api/v1/payments/"
        + client.post("/api/v1/payments/recharges", {"amount": a, "requestNo": "fund"})["orderNo"]
        for client, a in amounts.items()
    }
    for client, path in paths.items():
        eventually(
            lambda c=client, p=path: c.get(p)["status"] == "SUCCESS",
            "the recharge did not complete",
        )


def operator(world: World) -> Client:
    login = {"mobile": OPERATOR_MOBILE, "password": OPERATOR_PASSWORD}
    answer = requests.post(world.server.url("/api/v1/sessions"), json=login, timeout=30)
    return Client(world.server, answer.json()["token"])


def listing(world: World, borrower: Client, amount: str) -> int:
    """A RAISING listing of ``borrower``."""
    terms = {
        "title": "Faults " + uuid.uuid4().hex[:6],
        "description": "Lent through a bank that misbehaves.",
        "borrowerId": borrower.get("/api/v1/members/current")["memberId"],
        "amount": amount,
        "annualRate": "12",
        "termMonths": 3,
        "repaymentMethod": "EQUAL_INSTALLMENT",
        "minInvest": "100.00",
        "raiseDays": 10,
    }
    ops = operator(world)
    loan_id = ops.post("/api/v1/loans", terms)["loanId"]
    ops.post(f"/api/v1/loans/{loan_id}/audit", {"approve": True})
    return loan_id


def invested(world: World, investors: dict[int, list[Client]]) -> None:
    """100.00 from each of its investors in each listing, once the bank froze them all."""
    for loan_id, theirs in investors.items():
        for n, investor in enumerate(theirs):
            investor.post(
                f"/api/v1/loans/{loan_id}/investments",
                {"amount": "100.00", "requestNo": f"i{loan_id}-{n}"},
            )
    world.settled()


def installment(borrower: Client, loan_id: int, n: int) -> str:
    return borrower.get(f"/api/v1/loans/{loan_id}/schedule")["items"][n]["status"]


def test_every_fault_on_every_order_type_ends_with_the_bank_s_word(world, identities) -> None:
    world.serve()
    # Who the scenarios need, made without faults.
    payer, investor, *crowd = members(world, identities, 2 + len(UNFREEZE_FAULTS))
    (borrower,) = members(world, identities, 1, "BORROWER")
    recharged(
        {payer: "5000.00", investor: "5000.00", borrower: "1000.00"}
        | dict.fromkeys(crowd, "300.00")
    )
    big = listing(world, borrower, "5000.00")
    to_cancel = listing(world, borrower, f"{100 * len(crowd)}.00")
    to_lend = listing(world, borrower, f"{100 * len(ITEM_FAULTS)}.00")
    # A listing of one investment for each batch fault of a DISBURSE, each from one of the
    # last of the crowd (to_cancel and to_lend take 200.00 of their 300.00 at most).
    unlent = {fault: listing(world, borrower, "100.00") for fault in BATCH_LEVEL}
    investors = {to_cancel: crowd, to_lend: crowd[: len(ITEM_FAULTS)]}
    for loan_id, one in zip(unlent.values(), crowd[-len(unlent) :], strict=True):
        investors[loan_id] = [one]
    invested(world, investors)
    ops = operator(world)

    # One order a fault, the fault taken before the next is armed.
    for fault in single_faults("OPEN_ACCOUNT"):
        world.arm("OPEN_ACCOUNT", fault)
        register_and_login(world.server, "INVESTOR", identities())
        world.taken()
    for n, fault in enumerate(single_faults("RECHARGE")):
        world.arm("RECHARGE", fault)
        payer.post("/api/v1/payments/recharges", {"amount": "10.00", "requestNo": f"r{n}"})
        world.taken()
    card_id = payer.get("/api/v1/members/current/cards")["items"][0]["cardId"]
    for n, fault in enumerate(single_faults("WITHDRAW")):
        world.arm("WITHDRAW", fault)
        payer.post(
            "/api/v1/payments/withdrawals",
            {"amount": "10.00", "cardId": card_id, "requestNo": f"w{n}"},
        )
        world.taken()
    for n, fault in enumerate(single_faults("FREEZE")):
        world.arm("FREEZE", fault)
        investor.post(
            f"/api/v1/loans/{big}/investments", {"amount": "100.00", "requestNo": f"f{n}"}
        )
        world.taken()
    # Many orders of one call: the faults armed together.
    for fault in UNFREEZE_FAULTS:
        world.arm("UNFREEZE", fault)
    ops.post(f"/api/v1/loans/{to_cancel}/cancel", {"reason": "the borrower withdrew it"})
    world.taken()
    for fault in ITEM_FAULTS:
        world.arm("DISBURSE", fault)
    ops.post(f"/api/v1/loans/{to_lend}/disbursement", {"requestNo": "lend"})
    world.taken()
    eventually(
        lambda: ops.get(f"/api/v1/loans/{to_lend}")["status"] == "REPAYING",
        "the bank did not lend every investment",
        timeout=180,
    )
    world.arm("REPAY", "http_5xx")
    for fault in ITEM_FAULTS:
        world.arm("REPAY", fault)
    borrower.post(f"/api/v1/loans/{to_lend}/repayments", {"requestNo": "repay-1"})
    world.taken()

    eventually(
        lambda: installment(borrower, to_lend, 0) == "PAID",
        "the installment was not paid",
        timeout=180,
    )
    # The batch faults left: a DISBURSE each on a listing of its own; REPAYs of the second
    # and third installments, and of the first of a listing lent through a timeout too.
    # Each batch is done with before the next fault is armed (module docstring).
    for fault, loan_id in unlent.items():
        world.arm("DISBURSE", fault)
        ops.post(f"/api/v1/loans/{loan_id}/disbursement", {"requestNo": f"lend-{fault}"})
        world.taken()
        eventually(
            lambda loan_id=loan_id: ops.get(f"/api/v1/loans/{loan_id}")["status"] == "REPAYING",
            f"the bank did not lend the listing that met {fault}",
            timeout=180,
        )
    repaid_alone = unlent["timeout_after_moving"]
    for fault, loan_id, n in (
        ("refuse", to_lend, 1),
        ("timeout_without_moving", to_lend, 2),
        ("timeout_after_moving", repaid_alone, 0),
    ):
        world.arm("REPAY", fault)
        borrower.post(f"/api/v1/loans/{loan_id}/repayments", {"requestNo": f"repay-{fault}"})
        world.taken()
        eventually(
            lambda loan_id=loan_id, n=n: installment(borrower, loan_id, n) == "PAID",
            f"the installment that met {fault} was not paid",
            timeout=180,
        )

    # Every fault reached an order meant for it, and the platform has the bank's final word.
    world.settled()
    # The releases the bank refused or failed wait for an operator, who re-issues each.
    waiting = ops.get("/api/v1/reconciliation/orders-waiting")["items"]
    failed_releases = {
        o["orderNo"]
        for o in world.bank_orders().values()
        if o["orderType"] == "UNFREEZE" and o["fault"] in LEFT_TO_OPERATORS
    }
    assert {o["orderNo"] for o in waiting} == failed_releases
    for n, order in enumerate(waiting):
        ops.post(
            f"/api/v1/reconciliation/orders/{order['orderNo']}/reissue",
            {"reason": "the bank refused the release; asked again", "requestNo": f"again-{n}"},
        )
    world.settled()
    assert ops.get("/api/v1/reconciliation/orders-waiting")["items"] == []
    orders = world.bank_orders().values()
    recorded = {(o["orderType"], o["fault"]) for o in orders if o["fault"]}
    unrecorded = {"http_5xx", "timeout_without_moving"}  # the bank records nothing of those
    for order_type in SINGLE:
        expected = {f for f in single_faults(order_type) if f not in unrecorded}
        assert {f for t, f in recorded if t == order_type} == expected, order_type
    assert {f for t, f in recorded if t == "UNFREEZE"} == set(UNFREEZE_FAULTS) - unrecorded
    for order_type in ("DISBURSE", "REPAY"):
        assert {f for t, f in recorded if t == order_type} >= set(ITEM_FAULTS), order_type
    assert {o["status"] for o in orders if o["fault"] == "fail"} == {"FAILED"}
    # Each investment lent once, each receipt paid once, whatever the batches met.
    assert world.lent(to_lend) == [1] * len(ITEM_FAULTS)
    for loan_id in unlent.values():
        assert world.lent(loan_id) == [1], loan_id
    for period in (1, 2, 3):
        assert world.paid(to_lend, period) == [1] * len(ITEM_FAULTS), period
    assert ops.get(f"/api/v1/loans/{to_lend}")["status"] == "SETTLED"
    assert world.paid(repaid_alone, 1) == [1]

    ledger = world.cli("check-ledger")
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    at_bank = {
        a["accountNo"]: (a["available"], a["frozen"])
        for a in world.admin("GET", "/admin/accounts")["accounts"]
    }
    for client in (payer, investor, borrower, *crowd):
        mine = client.get("/api/v1/accounts/me")
        account_no = client.get("/api/v1/members/current/fund-account")["accountNo"]
        assert (mine["available"], mine["frozen"]) == at_bank[account_no]
    # The day of all that, closed early at the bank, reconciles with nothing to find.
    clean = world.cli("reconcile", "--date", world.close_day())
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert NOTHING_FOUND in clean.stdout
    assert "Traceback" not in world.server.log_text()


def test_reconciliation_finds_only_what_the_platform_has_not_settled(world, identities) -> None:
    """In a day of its own: a FREEZE the bank finished and the platform has not is the one
    STATUS discrepancy, APPLYed by an operator; then nothing is left to find."""
    world.serve("bank.query_first_after_seconds=3600", "bank.doubt_age_seconds=3600")
    (investor,) = members(world, identities, 1)
    recharged({investor: "300.00"})
    (borrower,) = members(world, identities, 1, "BORROWER")
    loan_id = listing(world, borrower, "1000.00")
    world.settled()

    world.arm("FREEZE", "never_notify")
    held = investor.post(
        f"/api/v1/loans/{loan_id}/investments", {"amount": "200.00", "requestNo": "held"}
    )
    world.taken()
    eventually(
        lambda: world.bank_orders().get(held["orderNo"], {}).get("status") == "SUCCEEDED",
        "the bank did not finish the FREEZE",
    )
    assert world.platform_orders()[held["orderNo"]][1] in ("SENT", "ACCEPTED")

    day = world.close_day()
    found = world.cli("reconcile", "--date", day)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "bank-only 0, platform-only 0, amount 0, status 1, fee 0, balance 0" in found.stdout

    ops = operator(world)
    page = ops.get(f"/api/v1/reconciliation/discrepancies?date={day}&status=OPEN")
    assert [(d["category"], d["subject"]) for d in page["items"]] == [("STATUS", held["orderNo"])]
    ops.post(
        f"/api/v1/reconciliation/discrepancies/{page['items'][0]['discrepancyId']}/resolution",
        {"action": "APPLY", "reason": "the bank froze it", "requestNo": "apply-held"},
    )
    assert world.platform_orders()[held["orderNo"]][1] == "SUCCEEDED"
    clean = world.cli("reconcile", "--date", day)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert NOTHING_FOUND in clean.stdout
    ledger = world.cli("check-ledger")
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    assert "Traceback" not in world.server.log_text()
