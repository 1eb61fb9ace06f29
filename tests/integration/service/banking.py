"""What the bank order tests share: a scripted depository (a fake BankClient), an outbox that
hands its jobs over after the commit, a recorder of conflicts, and the platform's services
(payments, members, listings and repayment, reconciliation) wired to them as the composition
root wires them when payment.gateway is BANK."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlalchemy import text

from server.app import Platform
from server.registry import build_service
from service.audit import LedgerAudit
from service.member import MemberService
from service.ocp import protocol
from service.ocp.client import BankClient, Exchange
from service.ocp.orders import BankOrders
from service.ocp.signing import KeyRing, Signer
from service.p2p import LoanService
from service.payment import PaymentService
from service.reconciliation import ReconciliationService
from tests.banksupport import (
    BANK_KEY_ID,
    BANK_PRIVATE,
    BANK_PUBLIC,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
)

MERCHANT = "P2PTEST"
KEY_ID = BANK_KEY_ID
AUTHORIZE = "https://bank.test/authorize/"
WINDOW_SECONDS = 300


class ScriptedBank(BankClient):
    """A depository that answers as the test says and remembers what it was sent.

    ``result`` answers submissions: ACCEPTED, REFUSED, or None (no answer: a timeout).
    ``status`` answers queries by order number (PROCESSING when not told; None: no answer).
    ``files`` holds the daily files' rows by (date, file type); any other is not ready.
    Its answers are signed with the bank's test key and the platform's side of a notification
    is checked and acknowledged with the real keys, as the HTTP client does."""

    def __init__(self, clock):
        self.clock = clock
        self.result: str | None = protocol.ACCEPTED
        self.reason = "REFUSED_BY_BANK"
        self.status: dict[str, dict | None] = {}
        self.files: dict[tuple[dt.date, str], list[dict]] = {}
        self.submitted: list[dict] = []
        self.queried: list[str] = []
        self._bank = Signer(KEY_ID, BANK_PRIVATE)
        self._platform = Signer(PLATFORM_KEY_ID, PLATFORM_PRIVATE)
        self._bank_keys = KeyRing({KEY_ID: BANK_PUBLIC})

    def _exchange(
        self, sent: bytes, answer: dict | None, error: str | None, http_status: int = 200
    ) -> Exchange:
        now = self.clock()
        if answer is None:
            return Exchange(sent, None, None, now, None, None, error or "read_timeout", None)
        answer = {"merchantId": MERCHANT, "timestamp": protocol.format_time(now), **answer}
        body = protocol.encode(answer)
        protocol.verify(self._bank_keys, body, self.signed_headers(body))
        return Exchange(sent, body, http_status, now, now, "VALID", error, answer, KEY_ID)

    def signed_headers(self, body: bytes) -> dict[str, str]:
        """The headers of ``body`` signed by the bank."""
        return protocol.signed_headers(self._bank, body)

    def _request(self, fields: dict) -> bytes:
        return protocol.encode(
            {"merchantId": MERCHANT, "timestamp": protocol.format_time(self.clock()), **fields}
        )

    def submit(self, order) -> Exchange:
        self.submitted.append(dict(order))
        no = order["orderNo"]
        sent = self._request(dict(order))
        if self.result is None:
            return self._exchange(sent, None, None)
        answer = {"orderNo": no, "result": self.result}
        if self.result == protocol.ACCEPTED:
            answer["authorizeUrl"] = AUTHORIZE + no
        else:
            answer["reason"] = self.reason
        return self._exchange(sent, answer, None)

    def query(self, order_no: str) -> Exchange:
        self.queried.append(order_no)
        sent = self._request({"orderNo": order_no})
        answer = self.status.get(order_no, {"status": protocol.PROCESSING})
        if answer is None:
            return self._exchange(sent, None, "read_timeout")
        return self._exchange(sent, {"orderNo": order_no, **answer}, None)

    def fetch_file(self, date: dt.date, file_type: str) -> Exchange:
        query = urlencode({"merchantId": MERCHANT, "timestamp": protocol.format_time(self.clock())})
        sent = f"/v1/files/{date.isoformat()}/{file_type}?{query}".encode("ascii")
        rows = self.files.get((date, file_type))
        if rows is None:
            return self._exchange(sent, {"error": "FILE_NOT_READY"}, "http_404", 404)
        answer = {"date": date.isoformat(), "fileType": file_type, "rows": rows}
        return self._exchange(sent, answer, None)

    def verify_notification(self, body: bytes, headers) -> dict:
        message = protocol.read(
            self._bank_keys,
            body,
            headers,
            merchant_id=MERCHANT,
            now=self.clock(),
            window_seconds=WINDOW_SECONDS,
        )
        protocol.check_notification(message)
        return message

    def acknowledgement(self, notify_id: str) -> tuple[bytes, dict[str, str]]:
        body = protocol.encode(
            {
                "merchantId": MERCHANT,
                "timestamp": protocol.format_time(self.clock()),
                "notifyId": notify_id,
                "result": protocol.ACK_OK,
            }
        )
        return body, protocol.signed_headers(self._platform, body)


class AfterCommitOutbox:
    """service.jobs.Outbox's contract: add() only inside a transaction, the job handed over
    once it commits (here: queued for the test to run)."""

    def __init__(self, tx):
        self._tx = tx
        self.jobs: collections.deque[tuple[str, dict]] = collections.deque()
        self.not_before: dict[str, object] = {}  # a delayed job's payload value -> its time

    def add(self, job: str, payload: dict, not_before=None) -> int:
        assert self._tx.in_transaction(), "an outbox job is written in a transaction"
        self._tx.after_commit(lambda: self.jobs.append((job, payload)))
        if not_before is not None:
            self.not_before[next(iter(payload.values()))] = not_before
        return len(self.jobs)


class ConflictCounter:
    def __init__(self) -> None:
        self.kinds: collections.Counter[str] = collections.Counter()

    def conflict(self, kind: str) -> None:
        self.kinds[kind] += 1


@dataclass
class Banking:
    platform: Platform
    bank: ScriptedBank
    outbox: AfterCommitOutbox
    conflicts: ConflictCounter
    orders: BankOrders
    payments: PaymentService
    members: MemberService
    loans: LoanService
    reconciliation: ReconciliationService
    notify_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def run_jobs(self, limit: int | None = None) -> int:
        """Run the queued jobs (and those they queue) as the engine would, at most ``limit``;
        how many ran."""
        ran = 0
        while self.outbox.jobs and (limit is None or ran < limit):
            job, payload = self.outbox.jobs.popleft()
            assert job in ("bank.send", "bank.send_batch"), job
            (self.orders.send if job == "bank.send" else self.orders.send_batch)(**payload)
            ran += 1
        return ran

    def notification(
        self, order_no: str, status: str, amount: str, order_type: str = "RECHARGE", **fields
    ) -> dict:
        message = {
            "merchantId": MERCHANT,
            "timestamp": protocol.format_time(self.platform.components["clock"]()),
            "notifyId": f"N{next(self.notify_ids):06d}",
            "orderNo": order_no,
            "orderType": order_type,
            "status": status,
            "amount": amount,
            "fee": "0.00",
            "bankRef": "B" + order_no,
            "finishedAt": protocol.format_time(self.platform.components["clock"]()),
            **fields,
        }
        return {k: v for k, v in message.items() if v is not None}

    def notify(self, message: dict):
        return self.orders.notify(protocol.encode(message), message, KEY_ID)

    def order(self, order_no: str):
        """The bank order's row, read with plain SQL."""
        with self.platform.database.engine.connect() as conn:
            return conn.execute(
                text("SELECT * FROM bank_order WHERE order_no = :no"), {"no": order_no}
            ).one()

    def ledger_ok(self) -> bool:
        report = LedgerAudit(self.platform.tx).run()
        assert report.ok, [c for c in report.checks if not c.ok]
        return True


def wire(platform: Platform) -> Banking:
    """The platform's payment, member and loan services on a scripted bank, as with BANK."""
    clock = platform.components["clock"]
    bank, outbox, conflicts = ScriptedBank(clock), AfterCommitOutbox(platform.tx), ConflictCounter()
    orders = BankOrders(
        platform.tx,
        platform.settings,
        clock,
        bank,
        outbox,
        platform.components["pii"],
        conflicts,
    )
    components = {**platform.components, "bank": orders, "bank_client": bank}
    return Banking(
        platform,
        bank,
        outbox,
        conflicts,
        orders,
        build_service("service.payment:PaymentService", components),
        build_service("service.member:MemberService", components),
        build_service("service.p2p:LoanService", components),
        build_service("service.reconciliation:ReconciliationService", components),
    )
