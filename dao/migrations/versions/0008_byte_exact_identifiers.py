"""Identifiers compare byte for byte on MariaDB, as they always did on SQLite.

Until now every table used utf8mb4_unicode_ci, so request numbers 'order-abc', 'ORDER-ABC',
'ordér-abc' and 'order-abc ' were one value to every comparison and unique key on MariaDB
(case, accents and trailing spaces ignored) and four on SQLite (BINARY). Every character
column of every table, and each table's default for columns added later, now takes
utf8mb4_nopad_bin: code point by code point, no padding (utf8mb4_bin would still find 'abc'
equal to 'abc '). Human text is converted too: nothing compares or sorts it in SQL.

CONVERT TO keeps every column's type, length, nullability and default, and every index and
constraint; MariaDB rebuilds each table to do it, blocking its writes meanwhile. SQLite
compares with BINARY already: nothing to do there. A table created by a later revision
names utf8mb4_nopad_bin as its collation.

The downgrade restores utf8mb4_unicode_ci, and first refuses, changing nothing, when a unique
key holds values that collation takes for one (such as two members' request numbers that
differ only in case): the old schema cannot hold them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here, not read from dao, so this revision never changes.
BYTE_EXACT = "utf8mb4_nopad_bin"
LINGUISTIC = "utf8mb4_unicode_ci"
TABLES = (
    "member",
    "loan",
    "account",
    "posting",
    "posting_entry",
    "request_record",
    "investment",
    "installment",
    "receipt",
    "payment_order",
    "member_message",
    "bank_card",
)
# Every unique key with a character column, as of revision 0007: (table, its columns).
UNIQUE_KEYS = (
    ("member", ("mobile",)),
    ("member", ("invite_code",)),
    ("member", ("id_number_hash",)),
    ("member", ("fund_account_no",)),
    ("account", ("code",)),
    ("request_record", ("scope", "request_no")),
    ("payment_order", ("order_no",)),
    ("bank_card", ("card_hash",)),
)


def _on_mariadb() -> bool:
    return op.get_context().dialect.name in ("mysql", "mariadb")


def _convert(collation: str) -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}")


def upgrade() -> None:
    if _on_mariadb():
        _convert(BYTE_EXACT)


def downgrade() -> None:
    if not _on_mariadb():
        return
    bind = op.get_bind()
    for table, columns in UNIQUE_KEYS:
        grouped = ", ".join(f"`{c}` COLLATE {LINGUISTIC}" for c in columns)
        present = " AND ".join(f"`{c}` IS NOT NULL" for c in columns)
        clash = bind.execute(
            sa.text(
                f"SELECT 1 FROM `{table}` WHERE {present}"
                f" GROUP BY {grouped} HAVING COUNT(*) > 1 LIMIT 1"
            )
        ).first()
        if clash is not None:
            raise RuntimeError(
                f"cannot go back to {LINGUISTIC}: {table}.{'/'.join(columns)} holds values "
                "that differ only in case, accents or trailing spaces; nothing was changed"
            )
    _convert(LINGUISTIC)
