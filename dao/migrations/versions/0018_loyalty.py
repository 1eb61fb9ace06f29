"""Loyalty: member_level (each member's level as last evaluated, and the amount it was
evaluated on).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}


def upgrade() -> None:
    op.create_table(
        "member_level",
        sa.Column("member_id", ID, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("invested", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", UTC_DATETIME, nullable=False),
        sa.Column("changed_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_level")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_member_level_member_id_member")
        ),
        **MYSQL,
    )


def downgrade() -> None:
    # Levels are evaluated again from investments: nothing is lost that cannot be recomputed.
    op.drop_table("member_level")
