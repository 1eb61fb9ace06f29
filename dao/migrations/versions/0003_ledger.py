"""Create the ledger (account, posting, posting_entry) and request records.

Seeds the platform's own accounts and opens an account for every existing member.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
# Money columns hold integer fen.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
PLATFORM_ACCOUNTS = (("CLEARING", "D"), ("FEE_INCOME", "C"), ("MARKETING_EXPENSE", "D"))


def upgrade() -> None:
    account = op.create_table(
        "account",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=True),
        sa.Column("code", sa.String(32), nullable=True),
        sa.Column("normal_side", sa.String(1), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("frozen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], name=op.f("fk_account_member_id_member")),
        sa.UniqueConstraint("member_id", name=op.f("uq_account_member_id")),
        sa.UniqueConstraint("code", name=op.f("uq_account_code")),
        sa.CheckConstraint(
            "available >= 0 AND frozen >= 0", name=op.f("ck_account_balances_not_negative")
        ),
        sa.CheckConstraint("normal_side IN ('D','C')", name=op.f("ck_account_normal_side")),
        sa.CheckConstraint(
            "(member_id IS NOT NULL AND code IS NULL) OR (member_id IS NULL AND code IS NOT NULL)",
            name=op.f("ck_account_owner"),
        ),
        **MYSQL,
    )
    op.create_table(
        "posting",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("business_type", sa.String(32), nullable=False),
        sa.Column("ref_type", sa.String(24), nullable=False),
        sa.Column("ref_id", ID, nullable=False),
        sa.Column("request_no", sa.String(64), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posting")),
        **MYSQL,
    )
    op.create_index("ix_posting_ref", "posting", ["ref_type", "ref_id"])
    op.create_table(
        "posting_entry",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("posting_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("bucket", sa.String(9), nullable=False),
        sa.Column("direction", sa.String(1), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posting_entry")),
        sa.ForeignKeyConstraint(
            ["posting_id"], ["posting.id"], name=op.f("fk_posting_entry_posting_id_posting")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_posting_entry_account_id_account")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_posting_entry_amount_positive")),
        sa.CheckConstraint("bucket IN ('AVAILABLE','FROZEN')", name=op.f("ck_posting_entry_bucket")),
        sa.CheckConstraint("direction IN ('D','C')", name=op.f("ck_posting_entry_direction")),
        **MYSQL,
    )
    op.create_index("ix_posting_entry_account_id_id", "posting_entry", ["account_id", "id"])
    op.create_index("ix_posting_entry_posting_id", "posting_entry", ["posting_id"])
    op.create_table(
        "request_record",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("request_no", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("ref_type", sa.String(24), nullable=True),
        sa.Column("ref_id", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_record")),
        sa.UniqueConstraint("scope", "request_no", name=op.f("uq_request_record_scope_request_no")),
        **MYSQL,
    )
    now = sa.func.current_timestamp()
    for code, side in PLATFORM_ACCOUNTS:
        op.execute(
            sa.insert(account).values(
                code=code, normal_side=side, available=0, frozen=0, created_at=now, updated_at=now
            )
        )
    member = sa.table("member", sa.column("id", ID))
    op.execute(
        sa.insert(account).from_select(
            ["member_id", "normal_side", "available", "frozen", "created_at", "updated_at"],
            sa.select(
                member.c.id, sa.literal("C"), sa.literal(0), sa.literal(0), now, now
            ),
        )
    )


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("request_record")
    op.drop_table("posting_entry")
    op.drop_table("posting")
    op.drop_table("account")
