"""The daily reconciliation with the depository bank: reconciliation_run (one a business day,
its latest outcome and figures) and reconciliation_discrepancy (one a day, category and
subject, with both sides' values and how it was resolved); and indexes on posting.created_at and
bank_order.finished_at for the ledger's figures and the orders of a day.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.BigInteger()  # integer fen
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}
CATEGORIES = "'BANK_ONLY','PLATFORM_ONLY','AMOUNT','STATUS','FEE','BALANCE'"


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "reconciliation_run",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("failed_file", sa.String(16), nullable=True),
        _count("attempts"),
        _count("failed_attempts"),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("succeeded_at", UTC_DATETIME, nullable=True),
        _count("bank_only"),
        _count("platform_only"),
        _count("amount_mismatches"),
        _count("status_mismatches"),
        _count("fee_mismatches"),
        _count("balance_mismatches"),
        _count("bank_lines"),
        sa.Column("bank_amount", MONEY, nullable=False),
        sa.Column("bank_fee", MONEY, nullable=False),
        _count("platform_orders"),
        sa.Column("platform_amount", MONEY, nullable=False),
        sa.Column("platform_fee", MONEY, nullable=False),
        sa.Column("bank_balance", MONEY, nullable=False),
        sa.Column("platform_balance", MONEY, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_run")),
        sa.UniqueConstraint("business_date", name=op.f("uq_reconciliation_run_business_date")),
        sa.CheckConstraint(
            "status IN ('RUNNING','SUCCEEDED','FAILED')",
            name=op.f("ck_reconciliation_run_status"),
        ),
        sa.CheckConstraint(
            "attempts >= 1 AND failed_attempts >= 0", name=op.f("ck_reconciliation_run_attempts")
        ),
        **MYSQL,
    )
    op.create_table(
        "reconciliation_discrepancy",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=True),
        sa.Column("member_id", ID, nullable=True),
        sa.Column("bank_status", sa.String(16), nullable=True),
        sa.Column("platform_status", sa.String(16), nullable=True),
        sa.Column("bank_amount", MONEY, nullable=True),
        sa.Column("platform_amount", MONEY, nullable=True),
        sa.Column("bank_fee", MONEY, nullable=True),
        sa.Column("platform_fee", MONEY, nullable=True),
        sa.Column("bank_ref", sa.String(64), nullable=True),
        sa.Column("bank_account_no", sa.String(64), nullable=True),
        sa.Column("bank_finished_at", UTC_DATETIME, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("resolved_by", ID, nullable=True),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.Column("request_scope", sa.String(32), nullable=True),
        sa.Column("request_no", sa.String(64), nullable=True),
        sa.Column("found_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_discrepancy")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_run.id"],
            name=op.f("fk_reconciliation_discrepancy_run_id_reconciliation_run"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"],
            ["member.id"],
            name=op.f("fk_reconciliation_discrepancy_resolved_by_member"),
        ),
        sa.UniqueConstraint(
            "business_date",
            "category",
            "subject",
            name=op.f("uq_reconciliation_discrepancy_business_date_category_subject"),
        ),
        sa.UniqueConstraint(
            "request_scope",
            "request_no",
            name=op.f("uq_reconciliation_discrepancy_request_scope_request_no"),
        ),
        sa.CheckConstraint(
            f"category IN ({CATEGORIES})", name=op.f("ck_reconciliation_discrepancy_category")
        ),
        sa.CheckConstraint(
            "status IN ('OPEN','RESOLVED')", name=op.f("ck_reconciliation_discrepancy_status")
        ),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN ('APPLY','EXPLAIN','CLEARED')",
            name=op.f("ck_reconciliation_discrepancy_resolution"),
        ),
        sa.CheckConstraint(
            "(status = 'OPEN') = (resolution IS NULL AND resolved_at IS NULL)",
            name=op.f("ck_reconciliation_discrepancy_resolved"),
        ),
        sa.CheckConstraint(
            "resolution <> 'EXPLAIN' OR reason IS NOT NULL",
            name=op.f("ck_reconciliation_discrepancy_explained"),
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_reconciliation_discrepancy_status_category",
        "reconciliation_discrepancy",
        ["status", "category"],
    )
    op.create_index(
        "ix_reconciliation_discrepancy_run_id_id", "reconciliation_discrepancy", ["run_id", "id"]
    )
    op.create_index("ix_posting_created_at", "posting", ["created_at"])
    op.create_index("ix_bank_order_finished_at", "bank_order", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_bank_order_finished_at", table_name="bank_order")
    op.drop_index("ix_posting_created_at", table_name="posting")
    op.drop_table("reconciliation_discrepancy")
    op.drop_table("reconciliation_run")
