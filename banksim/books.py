"""The simulator's books in its own SQLite file: accounts, orders, movements, notifications,
and the batches of DISBURSE and REPAY items.

Amounts are stored as exact decimal text, times as UTC text of fixed width (so they sort as
text). Every movement of money is a row in ``movements``: an account's balance at any moment is
the sum of its movements before it (the daily BALANCE file), and equals the running balance
kept on the account. One lock serialises every transaction (one process, a few threads).

What is frozen under a FREEZE is kept per FREEZE (``freezes``): what it froze, and what remains
under it (``frozen_under``). A later order that spends or releases part of it (an UNFREEZE)
draws from the remainder when the bank accepts it (``draw``, one row in ``freeze_draws``) and
puts it back if it fails (``return_draw``); so the remainder is always what may still be
drawn, and never goes below zero.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_no TEXT PRIMARY KEY,
    member_id TEXT UNIQUE,  -- NULL: the platform's own account
    card_tail TEXT,
    available TEXT NOT NULL,
    frozen TEXT NOT NULL,
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_no TEXT PRIMARY KEY,
    order_type TEXT NOT NULL,
    result TEXT NOT NULL,  -- the synchronous answer: ACCEPTED or REFUSED
    status TEXT NOT NULL,  -- AUTHORIZING, PROCESSING, SUCCEEDED, FAILED, REVERSED
    reason TEXT,
    member_id TEXT,
    account_no TEXT,
    card_tail TEXT,
    amount TEXT NOT NULL,
    fee TEXT NOT NULL,
    bank_ref TEXT NOT NULL UNIQUE,
    notify_url TEXT NOT NULL,
    return_url TEXT,
    authorize_token TEXT,
    fault TEXT,
    fault_seconds REAL,
    accepted_at TEXT NOT NULL,
    expires_at TEXT,  -- AUTHORIZING: the member's deadline
    due_at TEXT,  -- PROCESSING: when it finishes
    finished_at TEXT,
    reverse_at TEXT,  -- SUCCEEDED WITHDRAW: when it is returned (fault reverse_after_success)
    reversed_at TEXT
);
CREATE INDEX IF NOT EXISTS orders_finished ON orders (finished_at);
CREATE INDEX IF NOT EXISTS orders_reversed ON orders (reversed_at);
CREATE TABLE IF NOT EXISTS movements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_no TEXT NOT NULL,
    order_no TEXT,
    kind TEXT NOT NULL,
    available TEXT NOT NULL,  -- the change, signed
    frozen TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS movements_account ON movements (account_no, at);
CREATE TABLE IF NOT EXISTS freezes (
    order_no TEXT PRIMARY KEY,  -- a SUCCEEDED FREEZE
    account_no TEXT NOT NULL,
    amount TEXT NOT NULL,  -- what it froze
    remaining TEXT NOT NULL  -- still frozen under it and not drawn by a later order
);
CREATE TABLE IF NOT EXISTS freeze_draws (
    drawn_by TEXT PRIMARY KEY,  -- the order that draws (an UNFREEZE)
    freeze_order_no TEXT NOT NULL,
    amount TEXT NOT NULL,
    at TEXT NOT NULL,
    returned_at TEXT  -- the drawing order failed: the amount is under its FREEZE again
);
CREATE INDEX IF NOT EXISTS freeze_draws_freeze ON freeze_draws (freeze_order_no);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notify_id TEXT NOT NULL UNIQUE,
    order_no TEXT NOT NULL,
    url TEXT NOT NULL,
    content TEXT NOT NULL,  -- the event's JSON, without merchantId and timestamp
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT,  -- NULL: nothing more to deliver
    acknowledged_at TEXT,
    gave_up_at TEXT,
    bad_signatures INTEGER NOT NULL DEFAULT 0,  -- deliveries still to sign wrongly
    repeats INTEGER NOT NULL DEFAULT 0  -- deliveries still to make after an acknowledgement
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_at);
CREATE TABLE IF NOT EXISTS queries (
    order_no TEXT PRIMARY KEY,
    last_at TEXT NOT NULL
);
-- Business days closed early (POST /admin/close-day): the day ended at closed_at, not at
-- midnight in Shanghai; what finishes later belongs to the next business day.
CREATE TABLE IF NOT EXISTS closes (
    day TEXT PRIMARY KEY,
    closed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    day TEXT NOT NULL,
    file_type TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (day, file_type)
);
-- Batch orders (banksim/batches.py): each item is also an order in orders.
CREATE TABLE IF NOT EXISTS batches (
    batch_no TEXT PRIMARY KEY,
    order_type TEXT NOT NULL,
    loan_id TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT,
    bank_ref TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    item_no TEXT PRIMARY KEY,  -- the item's order in orders
    batch_no TEXT NOT NULL,
    payee_account_no TEXT NOT NULL,
    principal TEXT NOT NULL,
    interest TEXT NOT NULL,
    penalty TEXT NOT NULL,
    service_fee TEXT NOT NULL,
    freeze_order_no TEXT
);
CREATE INDEX IF NOT EXISTS items_batch ON items (batch_no);
"""

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(moment: dt.datetime) -> str:
    """``moment`` (aware) as stored: UTC, microseconds, fixed width."""
    return moment.astimezone(dt.UTC).strftime(_TIME_FORMAT)


def instant(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.UTC)


class Books:
    """The SQLite file and the one lock around it."""

    def __init__(self, path: str):
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --- what is frozen under each FREEZE ---------------------------------------------------------


def record_freeze(db: sqlite3.Connection, order_no: str, account_no: str, amount: Decimal) -> None:
    """The FREEZE ``order_no`` succeeded: ``amount`` is frozen under it on ``account_no``."""
    db.execute(
        "INSERT INTO freezes VALUES (?, ?, ?, ?)", (order_no, account_no, str(amount), str(amount))
    )


def frozen_under(db: sqlite3.Connection, freeze_order_no: str, account_no: str) -> Decimal | None:
    """What remains frozen under the SUCCEEDED FREEZE ``freeze_order_no`` of ``account_no``
    (not drawn by another order); None when the account has no such FREEZE."""
    row = db.execute(
        "SELECT remaining FROM freezes WHERE order_no = ? AND account_no = ?",
        (freeze_order_no, account_no),
    ).fetchone()
    return None if row is None else Decimal(row["remaining"])


def draw(
    db: sqlite3.Connection, freeze_order_no: str, drawn_by: str, amount: Decimal, at: str
) -> None:
    """The order ``drawn_by`` takes ``amount`` from what remains under ``freeze_order_no``."""
    _change_remaining(db, freeze_order_no, -amount)
    db.execute(
        "INSERT INTO freeze_draws (drawn_by, freeze_order_no, amount, at) VALUES (?, ?, ?, ?)",
        (drawn_by, freeze_order_no, str(amount), at),
    )


def drawn_by(db: sqlite3.Connection, order_no: str) -> sqlite3.Row | None:
    """The draw of order ``order_no`` (freeze_order_no, amount, ...), if it made one."""
    return db.execute("SELECT * FROM freeze_draws WHERE drawn_by = ?", (order_no,)).fetchone()


def return_draw(db: sqlite3.Connection, order_no: str, at: str) -> None:
    """Order ``order_no`` failed: what it drew is under its FREEZE again."""
    row = drawn_by(db, order_no)
    if row is None or row["returned_at"] is not None:
        return
    _change_remaining(db, row["freeze_order_no"], Decimal(row["amount"]))
    db.execute("UPDATE freeze_draws SET returned_at = ? WHERE drawn_by = ?", (at, order_no))


def _change_remaining(db: sqlite3.Connection, freeze_order_no: str, change: Decimal) -> None:
    row = db.execute(
        "SELECT remaining FROM freezes WHERE order_no = ?", (freeze_order_no,)
    ).fetchone()
    remaining = Decimal(row["remaining"]) + change
    if remaining < 0:
        raise AssertionError(f"more drawn from FREEZE {freeze_order_no} than it holds")
    db.execute(
        "UPDATE freezes SET remaining = ? WHERE order_no = ?", (str(remaining), freeze_order_no)
    )
