"""Operators' re-issues of the bank orders the bank FAILED (a batch item whose attempts are
used up, a release): bank_order_reissue, one row a FAILED order re-issued, with the new order,
who, when, why and the operator's request number.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0015"
down_revision: str | None = "0014"
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
        "bank_order_reissue",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("new_order_id", ID, nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("reissued_by", ID, nullable=False),
        sa.Column("reissued_at", UTC_DATETIME, nullable=False),
        sa.Column("request_scope", sa.String(32), nullable=False),
        sa.Column("request_no", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_order_reissue")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["bank_order.id"], name=op.f("fk_bank_order_reissue_order_id_bank_order")
        ),
        sa.ForeignKeyConstraint(
            ["new_order_id"],
            ["bank_order.id"],
            name=op.f("fk_bank_order_reissue_new_order_id_bank_order"),
        ),
        sa.ForeignKeyConstraint(
            ["reissued_by"], ["member.id"], name=op.f("fk_bank_order_reissue_reissued_by_member")
        ),
        sa.UniqueConstraint("order_id", name=op.f("uq_bank_order_reissue_order_id")),
        sa.UniqueConstraint("new_order_id", name=op.f("uq_bank_order_reissue_new_order_id")),
        sa.UniqueConstraint(
            "request_scope",
            "request_no",
            name=op.f("uq_bank_order_reissue_request_scope_request_no"),
        ),
        **MYSQL,
    )


def downgrade() -> None:
    # The older schema keeps the re-issued orders (bank_order.retry_of) but not who re-issued
    # them and why: going back is for a database where no operator re-issued anything.
    used = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM bank_order_reissue")).scalar_one()
    if used:
        raise RuntimeError("0015 cannot be undone: operators' re-issues are recorded")
    op.drop_table("bank_order_reissue")
