"""Member messages (会员消息): what the platform tells each member, read or not.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    op.create_table(
        "member_message",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("body", sa.String(1000), nullable=False),
        sa.Column("ref_type", sa.String(32), nullable=True),
        sa.Column("ref_id", ID, nullable=True),
        sa.Column("read_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_message")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_member_message_member_id_member")
        ),
        sa.CheckConstraint(
            "category IN ('INVESTMENT','DISBURSEMENT','REPAYMENT','SYSTEM')",
            name=op.f("ck_member_message_category"),
        ),
        **MYSQL,
    )
    op.create_index("ix_member_message_member_id_id", "member_message", ["member_id", "id"])
    op.create_index(
        "ix_member_message_member_id_read_at", "member_message", ["member_id", "read_at"]
    )


def downgrade() -> None:
    # Dropping the table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("member_message")
