"""The simulated depository bank: orders, books, notifications and daily files.

``Bank`` answers the protocol's requests (raw bytes and headers in, a signed ``Reply`` out) and
does the asynchronous half when ``run_due`` and ``deliver_due`` are called (by the worker
thread, or by a test with its own clock): it finishes orders whose time has come, fails those
the member did not confirm in time, returns withdrawals, and delivers due notifications until
the platform acknowledges them. Every order moves the books exactly once; a resubmitted order
number answers the order as it is. The platform's own account is an account without a member:
FUND orders fund it (confirmed on the bank's page like a member's recharge), TRANSFER orders
pay from it to a member's sub-account, the bank's fees are taken from it and the service fees
of batch items paid into it.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from banksim import batches
from banksim.books import Books, draw, frozen_under, instant, record_freeze, return_draw, stamp
from banksim.faults import Fault, Faults
from service.ocp import protocol
from service.ocp.protocol import MessageInvalid, StaleMessage
from service.ocp.signing import KeyRing, SignatureInvalid, Signer

log = logging.getLogger("banksim")

ZERO = Decimal("0.00")
AUTHORIZING = "AUTHORIZING"
# Refusal reasons of the synchronous answer (docs/depository-protocol.md).
ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
ACCOUNT_EXISTS = "ACCOUNT_EXISTS"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
FREEZE_NOT_FOUND = "FREEZE_NOT_FOUND"
INSUFFICIENT_FROZEN = "INSUFFICIENT_FROZEN"
FEE_UNPAYABLE = "FEE_UNPAYABLE"
REFUSED_BY_BANK = "REFUSED_BY_BANK"
_ACK_LIMIT = 64 << 10
#: Orders refused (INSUFFICIENT_BALANCE) above the paying account's available balance (the
#: member's; for a TRANSFER the platform's).
_FROM_AVAILABLE = frozenset({protocol.WITHDRAW, protocol.FREEZE, protocol.TRANSFER})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class BankConfig:
    """How the simulated bank behaves (the ``p2p bank-sim`` options)."""

    merchant_id: str
    public_url: str  # the base of authorizeUrl
    delay_seconds: float = 2.0  # from acceptance (or the member's confirmation) to the end
    auto_authorize: bool = False
    authorize_timeout_seconds: float = 1800.0
    timestamp_window_seconds: int = protocol.DEFAULT_TIMESTAMP_WINDOW_SECONDS
    query_min_interval_seconds: float = 30.0
    hang_seconds: float = 30.0  # how long a timeout fault holds the answer
    reverse_after_seconds: float = 10.0  # reverse_after_success without its own seconds
    fault_delay_seconds: float = 30.0  # delay without its own seconds
    notify_timeout_seconds: float = 5.0
    fees: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer; ``hang_seconds`` is how long to hold it first (timeout faults)."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    hang_seconds: float = 0.0


class Bank:
    """The bank of one merchant: its books, keys, faults and clock."""

    def __init__(
        self,
        config: BankConfig,
        books: Books,
        signer: Signer,
        platform_keys: KeyRing,
        faults: Faults | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        post: Callable[[str, bytes, Mapping[str, str], float], tuple[int, bytes, Mapping]]
        | None = None,
    ):
        self.config = config
        self.books = books
        self.faults = faults or Faults()
        self._signer = signer
        self._keys = platform_keys
        self._clock = clock
        self._post = post or _http_post
        self.platform_account_no = protocol.platform_account_no(config.merchant_id)
        with books.transaction() as db:
            if _account(db, self.platform_account_no) is None:  # empty: FUND orders fund it
                db.execute(
                    "INSERT INTO accounts VALUES (?, NULL, NULL, '0.00', '0.00', ?)",
                    (self.platform_account_no, stamp(clock())),
                )

    # --- POST /v1/orders ----------------------------------------------------------------

    def submit(self, body: bytes, headers) -> Reply:
        now = self._clock()
        try:
            message = self._read(body, headers, now)
            if message.get("orderType") in protocol.BATCH_TYPES:
                return batches.submit(self, message, now)
            order = _checked_order(message)
        except protocol.REFUSALS as refused:
            return self._refusal(refused)
        with self.books.transaction() as db:
            existing = _order(db, order["orderNo"])
            if existing is not None:
                return self._signed(200, self._sync_answer(existing, duplicate=True))
            fault = self.faults.take(order["orderType"])
            name = fault.name if fault else None
            if name == "http_5xx":
                return _unavailable()
            if name == "timeout_without_moving":
                return _unavailable(self.config.hang_seconds)
            self._accept(db, order, fault, now)
            row = _order(db, order["orderNo"])
            hang = 0.0
            if name == "timeout_after_moving":
                if row["result"] == protocol.ACCEPTED:
                    self._finish(db, row, protocol.SUCCEEDED, None, now)
                    row = _order(db, order["orderNo"])
                hang = self.config.hang_seconds
            answer = self._sync_answer(row)
        log.info("order %s %s: %s", order["orderNo"], order["orderType"], answer["result"])
        return self._signed(200, answer, hang)

    def _accept(self, db: sqlite3.Connection, order: dict, fault: Fault | None, now) -> None:
        order_type, amount = order["orderType"], order["amount"]
        platform = _account(db, self.platform_account_no)
        account = None
        if order_type == protocol.FUND:
            account = platform  # the merchant funds its own account
        elif order_type != protocol.OPEN_ACCOUNT:
            account = _account(db, order["accountNo"])
            if account is not None and account["member_id"] is None:
                account = None  # the platform's own account is not the member's
        fee = self.config.fees.get(order_type, ZERO)
        # A transfer pays from the platform's account: its amount is frozen there before the fee.
        payer = platform if order_type == protocol.TRANSFER else account
        spare = Decimal(platform["available"])
        if order_type == protocol.TRANSFER:
            spare -= amount
        if fault is not None and fault.name == "refuse":
            reason = REFUSED_BY_BANK
        elif order_type == protocol.OPEN_ACCOUNT and _member_account(db, order["memberId"]):
            reason = ACCOUNT_EXISTS
        elif order_type != protocol.OPEN_ACCOUNT and account is None:
            reason = ACCOUNT_NOT_FOUND
        elif order_type in _FROM_AVAILABLE and amount > Decimal(payer["available"]):
            reason = INSUFFICIENT_BALANCE
        elif order_type == protocol.UNFREEZE:
            reason = _unfreeze_refusal(db, order, account["account_no"])
        elif fee > (amount if order_type == protocol.FUND else spare):
            reason = FEE_UNPAYABLE  # a FUND pays its fee out of what it brings
        else:
            reason = None
        authorizing = not self.config.auto_authorize and order_type in protocol.MEMBER_AUTHORISED
        if reason is not None:
            status, fee = protocol.FAILED, ZERO
        else:
            status = AUTHORIZING if authorizing else protocol.PROCESSING
        at = stamp(now)
        db.execute(
            "INSERT INTO orders (order_no, order_type, result, status, reason, member_id,"
            " account_no, card_tail, amount, fee, bank_ref, notify_url, return_url,"
            " authorize_token, fault, fault_seconds, accepted_at, expires_at, due_at,"
            " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order["orderNo"],
                order_type,
                protocol.REFUSED if reason else protocol.ACCEPTED,
                status,
                reason,
                order.get("memberId") or (account["member_id"] if account else None),
                account["account_no"] if account else None,
                order["cardNumber"][-4:] if "cardNumber" in order else None,
                str(amount),
                str(fee),
                _bank_ref(db, now),
                order["notifyUrl"],
                order.get("returnUrl"),
                secrets.token_urlsafe(16) if status == AUTHORIZING else None,
                fault.name if fault else None,
                fault.seconds if fault else None,
                at,
                stamp(now + _seconds(self.config.authorize_timeout_seconds))
                if status == AUTHORIZING
                else None,
                stamp(now + _seconds(self.config.delay_seconds))
                if status == protocol.PROCESSING
                else None,
                at if reason else None,
            ),
        )
        if reason is not None:
            return
        if order_type == protocol.WITHDRAW:
            _move(db, account["account_no"], order["orderNo"], "FREEZE", -amount, amount, at)
        elif order_type == protocol.TRANSFER:
            _move(db, self.platform_account_no, order["orderNo"], "FREEZE", -amount, amount, at)
        elif order_type == protocol.UNFREEZE:
            draw(db, order["freezeOrderNo"], order["orderNo"], amount, at)
        if fee and order_type != protocol.FUND:
            _move(db, self.platform_account_no, order["orderNo"], "FEE_FREEZE", -fee, fee, at)

    def _sync_answer(self, row: sqlite3.Row, *, duplicate: bool = False) -> dict:
        answer = {"orderNo": row["order_no"], "result": row["result"], "bankRef": row["bank_ref"]}
        if row["result"] == protocol.REFUSED:
            answer["reason"] = row["reason"]
        if row["status"] == AUTHORIZING:
            answer["authorizeUrl"] = self.authorize_url(row)
        if duplicate:
            answer["duplicate"] = True
        return answer

    def authorize_url(self, row: sqlite3.Row) -> str:
        return (
            f"{self.config.public_url}/authorize/{row['order_no']}?token={row['authorize_token']}"
        )

    # --- the member's confirmation ------------------------------------------------------

    def authorizing(self, order_no: str, token: str) -> sqlite3.Row | None:
        """The order ``order_no`` if it waits for the member and ``token`` is its token."""
        with self.books.transaction() as db:
            row = _order(db, order_no)
        if row is None or row["status"] != AUTHORIZING:
            return None
        return row if secrets.compare_digest(row["authorize_token"] or "", token) else None

    def authorize(self, order_no: str, token: str, *, confirm: bool) -> sqlite3.Row | None:
        """The member confirms (the order proceeds) or cancels (it fails); None if the order
        does not wait for them (any more) or the token is wrong."""
        now = self._clock()
        with self.books.transaction() as db:
            row = _order(db, order_no)
            if row is None or row["status"] != AUTHORIZING:
                return None
            if not secrets.compare_digest(row["authorize_token"] or "", token):
                return None
            if confirm:
                db.execute(
                    "UPDATE orders SET status = ?, expires_at = NULL, due_at = ?"
                    " WHERE order_no = ?",
                    (
                        protocol.PROCESSING,
                        stamp(now + _seconds(self.config.delay_seconds)),
                        order_no,
                    ),
                )
            else:
                self._finish(db, row, protocol.FAILED, "CANCELLED_BY_MEMBER", now)
            return _order(db, order_no)

    # --- the asynchronous half ----------------------------------------------------------

    def run_due(self) -> int:
        """Fail expired authorisations, finish due orders, return due withdrawals; how many."""
        done = 0
        with self.books.transaction() as db:
            # Read inside the books' lock: no order finishes before a close it commits after.
            now = self._clock()
            at = stamp(now)
            for row in db.execute(
                "SELECT * FROM orders WHERE status = ? AND expires_at <= ? ORDER BY expires_at",
                (AUTHORIZING, at),
            ).fetchall():
                self._finish(db, row, protocol.FAILED, "AUTHORIZATION_EXPIRED", now)
                done += 1
            for row in db.execute(
                "SELECT * FROM orders WHERE status = ? AND due_at <= ? ORDER BY due_at",
                (protocol.PROCESSING, at),
            ).fetchall():
                if row["fault"] == "fail":
                    self._finish(db, row, protocol.FAILED, "DECLINED_BY_BANK", now)
                else:
                    self._finish(db, row, protocol.SUCCEEDED, None, now)
                done += 1
            for row in db.execute(
                "SELECT * FROM orders WHERE status = ? AND reverse_at <= ? ORDER BY reverse_at",
                (protocol.SUCCEEDED, at),
            ).fetchall():
                self._reverse(db, row, now)
                done += 1
        return done

    def _finish(
        self, db: sqlite3.Connection, row: sqlite3.Row, status: str, reason: str | None, now
    ) -> None:
        """End ``row`` as ``status``, move the books, and queue its notification(s)."""
        order_no, order_type = row["order_no"], row["order_type"]
        amount, fee, at = Decimal(row["amount"]), Decimal(row["fee"]), stamp(now)
        account_no = row["account_no"]
        if status == protocol.SUCCEEDED and order_type in protocol.BATCH_TYPES:
            status, reason = batches.execute(db, row, self.platform_account_no, at)
        if status == protocol.SUCCEEDED and order_type == protocol.OPEN_ACCOUNT:
            if _member_account(db, row["member_id"]):
                status, reason = protocol.FAILED, ACCOUNT_EXISTS
            else:
                account_no = _open_account(db, row["member_id"], row["card_tail"], at)
        # A FREEZE's cover is checked again when it happens: the member may have spent it.
        if (
            status == protocol.SUCCEEDED
            and order_type == protocol.FREEZE
            and amount > Decimal(_account(db, account_no)["available"])
        ):
            status, reason = protocol.FAILED, INSUFFICIENT_BALANCE
        if status == protocol.SUCCEEDED:
            if order_type == protocol.RECHARGE:
                _move(db, account_no, order_no, "RECHARGE", amount, ZERO, at)
            elif order_type == protocol.WITHDRAW:
                _move(db, account_no, order_no, "WITHDRAW", ZERO, -amount, at)
            elif order_type == protocol.FREEZE:
                _move(db, account_no, order_no, "FREEZE", -amount, amount, at)
                record_freeze(db, order_no, account_no, amount)
            elif order_type == protocol.UNFREEZE:
                _move(db, account_no, order_no, "UNFREEZE", amount, -amount, at)
            elif order_type == protocol.FUND:
                _move(db, account_no, order_no, "FUND", amount, ZERO, at)
            elif order_type == protocol.TRANSFER:
                _move(db, self.platform_account_no, order_no, "TRANSFER", ZERO, -amount, at)
                _move(db, account_no, order_no, "TRANSFER", amount, ZERO, at)
            if fee and order_type == protocol.FUND:  # out of what it brought, never frozen
                _move(db, self.platform_account_no, order_no, "FEE", -fee, ZERO, at)
            elif fee:
                _move(db, self.platform_account_no, order_no, "FEE", ZERO, -fee, at)
        else:
            if order_type == protocol.WITHDRAW:
                _move(db, account_no, order_no, "RELEASE", amount, -amount, at)
            elif order_type == protocol.TRANSFER:
                _move(db, self.platform_account_no, order_no, "RELEASE", amount, -amount, at)
            elif order_type in (protocol.UNFREEZE, protocol.DISBURSE):
                return_draw(db, order_no, at)
            if fee and order_type != protocol.FUND:
                _move(db, self.platform_account_no, order_no, "FEE_RELEASE", fee, -fee, at)
        db.execute(
            "UPDATE orders SET status = ?, reason = ?, account_no = ?, finished_at = ?,"
            " expires_at = NULL, due_at = NULL WHERE order_no = ?",
            (status, reason, account_no, at, order_no),
        )
        row = _order(db, order_no)
        log.info("order %s %s: %s", order_no, order_type, status)
        self._notify_finished(db, row, now)

    def _notify_finished(self, db: sqlite3.Connection, row: sqlite3.Row, now) -> None:
        fault, seconds = row["fault"], row["fault_seconds"]
        event = _event(row, row["status"], row["finished_at"])
        succeeded = row["status"] == protocol.SUCCEEDED
        if fault == "never_notify":
            return
        if fault == "notify_out_of_order" and succeeded:
            later = now + _seconds(2.0 if seconds is None else seconds)
            if row["order_type"] == protocol.WITHDRAW:
                self._reverse(db, row, now)  # REVERSED is queued now, SUCCEEDED after it
                self._queue(db, row, event, later)
            else:
                self._queue(db, row, event, now)
                stale = {**event, "status": protocol.FAILED, "reason": "SYSTEM_ERROR"}
                stale["finishedAt"] = protocol.format_time(instant(row["accepted_at"]))
                self._queue(db, row, stale, later)
            return
        first = now
        if fault == "delay":
            first = now + _seconds(self.config.fault_delay_seconds if seconds is None else seconds)
        self._queue(
            db,
            row,
            event,
            first,
            bad_signatures=1 if fault == "bad_signature" else 0,
            repeats=1 if fault == "notify_twice" else 0,
        )
        if fault == "reverse_after_success" and succeeded:
            delay = self.config.reverse_after_seconds if seconds is None else seconds
            db.execute(
                "UPDATE orders SET reverse_at = ? WHERE order_no = ?",
                (stamp(now + _seconds(delay)), row["order_no"]),
            )

    def _reverse(self, db: sqlite3.Connection, row: sqlite3.Row, now) -> None:
        """The receiving bank returned a withdrawal: the amount is back in available."""
        at = stamp(now)
        amount = Decimal(row["amount"])
        _move(db, row["account_no"], row["order_no"], "REVERSAL", amount, ZERO, at)
        db.execute(
            "UPDATE orders SET status = ?, reverse_at = NULL, reversed_at = ? WHERE order_no = ?",
            (protocol.REVERSED, at, row["order_no"]),
        )
        log.info("order %s WITHDRAW: REVERSED", row["order_no"])
        self._queue(db, row, _event(row, protocol.REVERSED, at), now)

    def _queue(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        event: dict,
        at: dt.datetime,
        *,
        bad_signatures: int = 0,
        repeats: int = 0,
    ) -> None:
        event = {**batches.with_batch_no(db, event), "notifyId": "N" + uuid.uuid4().hex}
        db.execute(
            "INSERT INTO notifications (notify_id, order_no, url, content, next_at,"
            " bad_signatures, repeats) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event["notifyId"],
                row["order_no"],
                row["notify_url"],
                json.dumps(event, sort_keys=True),
                stamp(at),
                bad_signatures,
                repeats,
            ),
        )

    def deliver_due(self, limit: int = 100) -> int:
        """Deliver the due notifications (HTTP outside any transaction); how many tried."""
        with self.books.transaction() as db:
            due = db.execute(
                "SELECT * FROM notifications WHERE next_at <= ? ORDER BY next_at, id LIMIT ?",
                (stamp(self._clock()), limit),
            ).fetchall()
        for row in due:
            self._deliver(row)
        return len(due)

    def _deliver(self, row: sqlite3.Row) -> None:
        content = json.loads(row["content"])
        body = self._message(content)
        headers = protocol.signed_headers(self._signer, body)
        bad = row["bad_signatures"] > 0
        if bad:  # a well-formed signature, of other bytes
            headers[protocol.SIGNATURE_HEADER] = self._signer.sign(body + b" ")
        acknowledged = self._acknowledged(row["url"], body, headers, row["notify_id"])
        now = self._clock()
        attempts = row["attempts"] + 1
        with self.books.transaction() as db:
            if acknowledged and row["repeats"] > 0:  # notify_twice: once more, soon
                next_at, repeats = stamp(now + _seconds(1.0)), row["repeats"] - 1
            elif acknowledged:
                next_at, repeats = None, 0
            elif attempts <= len(protocol.NOTIFY_RETRY_SECONDS):
                wait = protocol.NOTIFY_RETRY_SECONDS[attempts - 1]
                next_at, repeats = stamp(now + _seconds(wait)), row["repeats"]
            else:
                next_at, repeats = None, row["repeats"]
            db.execute(
                "UPDATE notifications SET attempts = ?, next_at = ?, repeats = ?,"
                " bad_signatures = ?,"
                " acknowledged_at = COALESCE(acknowledged_at, CASE WHEN ? THEN ? END),"
                " gave_up_at = CASE WHEN ? THEN ? END WHERE id = ?",
                (
                    attempts,
                    next_at,
                    repeats,
                    max(row["bad_signatures"] - 1, 0),
                    acknowledged,
                    stamp(now),
                    not acknowledged and next_at is None,
                    stamp(now),
                    row["id"],
                ),
            )
        log.info(
            "notification %s of order %s (%s), attempt %d: %s",
            row["notify_id"],
            row["order_no"],
            content["status"],
            attempts,
            "acknowledged" if acknowledged else "not acknowledged",
        )

    def _acknowledged(self, url: str, body: bytes, headers, notify_id: str) -> bool:
        """Whether the platform answered with its signed acknowledgement of ``notify_id``."""
        try:
            status, answer, answer_headers = self._post(
                url, body, headers, self.config.notify_timeout_seconds
            )
        except (OSError, http.client.HTTPException, ValueError):
            return False
        if status != 200:
            return False
        try:
            ack = self._read(answer, answer_headers, self._clock())
        except protocol.REFUSALS as refused:
            log.warning("acknowledgement of %s refused: %s", notify_id, refused)
            return False
        return ack.get("notifyId") == notify_id and ack.get("result") == protocol.ACK_OK

    # --- POST /v1/orders/query ----------------------------------------------------------

    def query(self, body: bytes, headers) -> Reply:
        now = self._clock()
        try:
            order_no = protocol.check_order_no(self._read(body, headers, now).get("orderNo"))
        except protocol.REFUSALS as refused:
            return self._refusal(refused)
        with self.books.transaction() as db:
            last = db.execute(
                "SELECT last_at FROM queries WHERE order_no = ?", (order_no,)
            ).fetchone()
            limit = _seconds(self.config.query_min_interval_seconds)
            if last is not None and now - instant(last["last_at"]) < limit:
                return self._signed(429, {"error": "TOO_MANY_QUERIES"})
            db.execute(
                "INSERT INTO queries VALUES (?, ?) ON CONFLICT (order_no) DO UPDATE"
                " SET last_at = excluded.last_at",
                (order_no, stamp(now)),
            )
            row = _order(db, order_no)
        if row is None:
            return self._signed(200, {"orderNo": order_no, "status": protocol.NOT_FOUND})
        status = row["status"]
        answer = {
            "orderNo": order_no,
            "orderType": row["order_type"],
            "status": protocol.PROCESSING if status == AUTHORIZING else status,
            "amount": row["amount"],
            "fee": row["fee"],
            "bankRef": row["bank_ref"],
        }
        for key, column in (("accountNo", "account_no"), ("reason", "reason")):
            if row[column] is not None:
                answer[key] = row[column]
        finished = row["reversed_at"] if status == protocol.REVERSED else row["finished_at"]
        if finished is not None:
            answer["finishedAt"] = protocol.format_time(instant(finished))
        return self._signed(200, answer)

    # --- GET /v1/files/{date}/{fileType} ------------------------------------------------

    def daily_file(self, target: bytes, headers, day_text: str, file_type: str) -> Reply:
        """The file, if the request's signed target is ours and in the window."""
        now = self._clock()
        try:
            protocol.verify(self._keys, target, headers)
            query = parse_qs(urlsplit(target.decode("ascii")).query)
            if query.get("merchantId") != [self.config.merchant_id]:
                raise MessageInvalid("wrong_merchant")
            timestamp = query.get("timestamp", [None])
            protocol.check_timestamp(timestamp[0], now, self.config.timestamp_window_seconds)
            protocol.file_columns(file_type)
            day = dt.date.fromisoformat(day_text)
        except protocol.REFUSALS as refused:
            return self._refusal(refused, 404 if getattr(refused, "field", "") == "fileType" else 0)
        except ValueError:
            return self._signed(400, {"error": "MALFORMED", "field": "date"})
        with self.books.transaction() as db:
            if day >= business_day(db, now):
                return self._signed(404, {"error": "FILE_NOT_READY"})
            stored = db.execute(
                "SELECT body FROM files WHERE day = ? AND file_type = ?", (day_text, file_type)
            ).fetchone()
            if stored is not None:
                body = bytes(stored["body"])
            else:
                body = self.file_body(db, day, file_type)
                db.execute("INSERT INTO files VALUES (?, ?, ?)", (day_text, file_type, body))
        headers = protocol.signed_headers(self._signer, body)
        headers["Content-Type"] = "text/plain; charset=utf-8"
        return Reply(200, body, headers)

    def file_body(self, db: sqlite3.Connection, day: dt.date, file_type: str) -> bytes:
        """The daily file of ``day`` as the books say now (written once, then served as is):
        what finished from the end of the day before to the end of ``day`` (``day_ends``)."""
        start_at, end_at = day_ends(db, day - dt.timedelta(days=1)), day_ends(db, day)
        if file_type == protocol.BALANCE:
            rows = []
            for account in db.execute(
                "SELECT account_no, member_id FROM accounts WHERE opened_at < ?"
                " ORDER BY account_no",
                (end_at,),
            ).fetchall():
                available, frozen = _balance(db, account["account_no"], end_at)
                rows.append(
                    {
                        "accountNo": account["account_no"],
                        "memberId": account["member_id"] or "",
                        "available": protocol.format_amount(available),
                        "frozen": protocol.format_amount(frozen),
                    }
                )
            return protocol.format_file(file_type, rows)
        lines = []
        for row in db.execute(
            "SELECT * FROM orders WHERE order_type = ? AND finished_at >= ? AND finished_at < ?",
            (file_type, start_at, end_at),
        ).fetchall():
            status = protocol.FAILED if row["status"] == protocol.FAILED else protocol.SUCCEEDED
            lines.append(
                (row["finished_at"], _file_line(row, status, row["fee"], row["finished_at"]))
            )
        for row in db.execute(
            "SELECT * FROM orders WHERE order_type = ? AND reversed_at >= ? AND reversed_at < ?",
            (file_type, start_at, end_at),
        ).fetchall():
            lines.append(
                (row["reversed_at"], _file_line(row, protocol.REVERSED, "0.00", row["reversed_at"]))
            )
        lines.sort(key=lambda pair: (pair[0], pair[1]["orderNo"], pair[1]["status"]))
        return protocol.format_file(file_type, [line for _, line in lines])

    # --- POST /admin/close-day ----------------------------------------------------------

    def close_day(self, day: dt.date) -> str:
        """End business day ``day`` now, before midnight in Shanghai (a bank's cut-off): its
        files are served from now on, and what finishes later belongs to the next day. Only
        the day under way can be closed (ValueError otherwise); closing it again answers the
        first close. The time it closed."""
        with self.books.transaction() as db:
            closed = db.execute("SELECT closed_at FROM closes WHERE day = ?", (str(day),))
            row = closed.fetchone()
            if row is not None:
                return row["closed_at"]
            now = self._clock()
            current = business_day(db, now)
            if day != current:
                raise ValueError(f"only the business day under way ({current}) can be closed")
            at = stamp(now)
            db.execute("INSERT INTO closes VALUES (?, ?)", (str(day), at))
        log.info("business day %s closed early at %s", day, at)
        return at

    # --- the books, for /admin ----------------------------------------------------------

    def accounts(self) -> list[dict]:
        with self.books.transaction() as db:
            rows = db.execute("SELECT * FROM accounts ORDER BY account_no").fetchall()
        return [
            {
                "accountNo": row["account_no"],
                "memberId": row["member_id"],
                "available": row["available"],
                "frozen": row["frozen"],
                "openedAt": protocol.format_time(instant(row["opened_at"])),
            }
            for row in rows
        ]

    def orders(self, order_no: str | None = None) -> list[dict]:
        with self.books.transaction() as db:
            if order_no is None:
                rows = db.execute("SELECT * FROM orders ORDER BY accepted_at, order_no").fetchall()
            else:
                rows = db.execute("SELECT * FROM orders WHERE order_no = ?", (order_no,)).fetchall()
            notifications = db.execute("SELECT * FROM notifications ORDER BY id").fetchall()
            remaining = {f["order_no"]: f["remaining"] for f in db.execute("SELECT * FROM freezes")}
        events: dict[str, list[dict]] = {}
        for n in notifications:
            events.setdefault(n["order_no"], []).append(
                {
                    "notifyId": n["notify_id"],
                    "status": json.loads(n["content"])["status"],
                    "attempts": n["attempts"],
                    "nextAt": _shown(n["next_at"]),
                    "acknowledgedAt": _shown(n["acknowledged_at"]),
                    "gaveUpAt": _shown(n["gave_up_at"]),
                }
            )
        return [
            {
                "orderNo": row["order_no"],
                "orderType": row["order_type"],
                "result": row["result"],
                "status": row["status"],
                "reason": row["reason"],
                "memberId": row["member_id"],
                "accountNo": row["account_no"],
                "amount": row["amount"],
                "fee": row["fee"],
                "bankRef": row["bank_ref"],
                "fault": row["fault"],
                "acceptedAt": _shown(row["accepted_at"]),
                "finishedAt": _shown(row["finished_at"]),
                "reversedAt": _shown(row["reversed_at"]),
                "authorizeUrl": self.authorize_url(row) if row["status"] == AUTHORIZING else None,
                # A SUCCEEDED FREEZE: what is still frozen under it (not drawn by another order).
                "frozenRemaining": remaining.get(row["order_no"]),
                "notifications": events.get(row["order_no"], []),
            }
            for row in rows
        ]

    # --- messages -----------------------------------------------------------------------

    def _read(self, body: bytes, headers, now: dt.datetime) -> dict:
        return protocol.read(
            self._keys,
            body,
            headers,
            merchant_id=self.config.merchant_id,
            now=now,
            window_seconds=self.config.timestamp_window_seconds,
        )

    def _message(self, fields: Mapping[str, object]) -> bytes:
        return protocol.encode(
            {
                **fields,
                "merchantId": self.config.merchant_id,
                "timestamp": protocol.format_time(self._clock()),
            }
        )

    def _signed(self, status: int, fields: Mapping[str, object], hang: float = 0.0) -> Reply:
        body = self._message(fields)
        return Reply(status, body, protocol.signed_headers(self._signer, body), hang)

    def _refusal(
        self, refused: SignatureInvalid | StaleMessage | MessageInvalid, status: int = 0
    ) -> Reply:
        """The signed error answering a request the bank cannot accept."""
        if isinstance(refused, SignatureInvalid):
            return self._signed(status or 401, {"error": "SIGNATURE_INVALID"})
        if isinstance(refused, StaleMessage):
            return self._signed(status or 401, {"error": "STALE"})
        if refused.reason == "wrong_merchant":
            return self._signed(status or 401, {"error": "UNKNOWN_MERCHANT"})
        error = {"error": "MALFORMED"}
        if refused.field:
            error["field"] = refused.field
        return self._signed(status or 400, error)


# --- helpers ----------------------------------------------------------------------------


def _checked_order(message: dict) -> dict:
    """The order in ``message`` with its amount as a Decimal; MessageInvalid naming a field."""
    protocol.check_order_no(message.get("orderNo"))
    order_type = message.get("orderType")
    if order_type not in protocol.ORDER_FIELDS:
        raise MessageInvalid("malformed", "orderType")
    protocol.require(message, ("notifyUrl",))
    protocol.check_order_fields(message, order_type)
    for key in ("notifyUrl", "returnUrl"):
        url = message.get(key)
        if key in message and (
            not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")
        ):
            raise MessageInvalid("malformed", key)
    order = dict(message)
    if order_type == protocol.OPEN_ACCOUNT:
        order["amount"] = ZERO
    else:
        order["amount"] = protocol.parse_amount(message["amount"])
        if order["amount"] <= 0:
            raise MessageInvalid("malformed", "amount")
    return order


def _unfreeze_refusal(db: sqlite3.Connection, order: dict, account_no: str) -> str | None:
    """Why an UNFREEZE cannot be accepted: no SUCCEEDED FREEZE of that number on the account,
    or more than remains frozen under it; None when it can."""
    remaining = frozen_under(db, order["freezeOrderNo"], account_no)
    if remaining is None:
        return FREEZE_NOT_FOUND
    return INSUFFICIENT_FROZEN if order["amount"] > remaining else None


def business_day(db: sqlite3.Connection, now: dt.datetime) -> dt.date:
    """The business day under way at ``now``: Shanghai's calendar day, or the day after the
    last one closed early (POST /admin/close-day)."""
    calendar = protocol.business_day(now)
    (last,) = db.execute(
        "SELECT MAX(day) FROM closes WHERE closed_at <= ?", (stamp(now),)
    ).fetchone()
    if last is None:
        return calendar
    return max(calendar, dt.date.fromisoformat(last) + dt.timedelta(days=1))


def day_ends(db: sqlite3.Connection, day: dt.date) -> str:
    """When business day ``day`` ends (stored time text): when it was closed early, or
    midnight after it in Shanghai."""
    row = db.execute("SELECT closed_at FROM closes WHERE day = ?", (str(day),)).fetchone()
    if row is not None:
        return row["closed_at"]
    return stamp(
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), protocol.BUSINESS_TIMEZONE)
    )


def _order(db: sqlite3.Connection, order_no: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM orders WHERE order_no = ?", (order_no,)).fetchone()


def _account(db: sqlite3.Connection, account_no: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM accounts WHERE account_no = ?", (account_no,)).fetchone()


def _member_account(db: sqlite3.Connection, member_id: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM accounts WHERE member_id = ?", (member_id,)).fetchone()


def _open_account(db: sqlite3.Connection, member_id: str, card_tail: str | None, at: str) -> str:
    (count,) = db.execute("SELECT COUNT(*) FROM accounts WHERE member_id IS NOT NULL").fetchone()
    account_no = f"SA{count + 1:010d}"
    db.execute(
        "INSERT INTO accounts VALUES (?, ?, ?, '0.00', '0.00', ?)",
        (account_no, member_id, card_tail, at),
    )
    return account_no


def _bank_ref(db: sqlite3.Connection, now: dt.datetime) -> str:
    (count,) = db.execute("SELECT COUNT(*) FROM orders").fetchone()
    return f"BR{protocol.business_day(now):%Y%m%d}{count + 1:08d}"


def _move(
    db: sqlite3.Connection,
    account_no: str,
    order_no: str | None,
    kind: str,
    available: Decimal,
    frozen: Decimal,
    at: str,
) -> None:
    """Change an account's balances and journal the change; a balance never goes below 0."""
    account = _account(db, account_no)
    new_available = Decimal(account["available"]) + available
    new_frozen = Decimal(account["frozen"]) + frozen
    if new_available < 0 or new_frozen < 0:
        raise AssertionError(f"{kind} of order {order_no} overdraws account {account_no}")
    db.execute(
        "UPDATE accounts SET available = ?, frozen = ? WHERE account_no = ?",
        (str(new_available), str(new_frozen), account_no),
    )
    db.execute(
        "INSERT INTO movements (account_no, order_no, kind, available, frozen, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (account_no, order_no, kind, str(available), str(frozen), at),
    )


def _balance(db: sqlite3.Connection, account_no: str, before: str) -> tuple[Decimal, Decimal]:
    available = frozen = ZERO
    for row in db.execute(
        "SELECT available, frozen FROM movements WHERE account_no = ? AND at < ?",
        (account_no, before),
    ):
        available += Decimal(row["available"])
        frozen += Decimal(row["frozen"])
    return available, frozen


def _event(row: sqlite3.Row, status: str, at: str) -> dict:
    """A notification's content for order ``row`` ending (or reversed) as ``status``."""
    event = {
        "orderNo": row["order_no"],
        "orderType": row["order_type"],
        "status": status,
        "amount": row["amount"],
        "fee": row["fee"],
        "bankRef": row["bank_ref"],
        "finishedAt": protocol.format_time(instant(at)),
    }
    if row["account_no"] is not None:
        event["accountNo"] = row["account_no"]
    if row["reason"] is not None and status != protocol.REVERSED:
        event["reason"] = row["reason"]
    return event


def _file_line(row: sqlite3.Row, status: str, fee: str, at: str) -> dict:
    return {
        "orderNo": row["order_no"],
        "orderType": row["order_type"],
        "accountNo": row["account_no"] or "",
        "amount": row["amount"],
        "fee": fee,
        "status": status,
        "bankRef": row["bank_ref"],
        "finishedAt": protocol.format_time(instant(at)),
    }


def _shown(text: str | None) -> str | None:
    return None if text is None else protocol.format_time(instant(text))


def _seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=value)


def _unavailable(hang: float = 0.0) -> Reply:
    return Reply(503, b"Service Unavailable\n", {"Content-Type": "text/plain"}, hang)


def _http_post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int, bytes, Mapping]:
    """POST ``body`` to ``url``; (status, answer body, answer headers). No redirect is
    followed: an acknowledgement comes from the notify URL itself."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        return response.status, response.read(_ACK_LIMIT), dict(response.headers)
    finally:
        connection.close()
