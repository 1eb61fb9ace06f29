"""The depository bank's orders: bank_order (one a business leg, its number immutable),
bank_evidence (every request, answer, notification, query and acknowledgement, first write
wins) and bank_notification (a notifyId is accepted once); a withdrawal may be REVERSED (退单)
and members get PAYMENT messages.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010"
down_revision: str | None = "0009"
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
OPEN = "'CREATED','SENT','ACCEPTED','UNKNOWN'"
FINAL = "'SUCCEEDED','FAILED','REVERSED'"


def upgrade() -> None:
    op.create_table(
        "bank_order",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("ref_type", sa.String(24), nullable=False),
        sa.Column("ref_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("account_no", sa.String(64), nullable=True),
        sa.Column("card_id", ID, nullable=True),
        sa.Column("amount", MONEY, nullable=True),
        sa.Column("fee", MONEY, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bank_ref", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("authorize_url", sa.String(500), nullable=True),
        sa.Column("send_count", sa.Integer(), nullable=False),
        sa.Column("query_count", sa.Integer(), nullable=False),
        sa.Column("next_query_at", UTC_DATETIME, nullable=True),
        sa.Column("last_queried_at", UTC_DATETIME, nullable=True),
        sa.Column("in_doubt_since", UTC_DATETIME, nullable=True),
        sa.Column("handed_to_reconciliation_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_order")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_bank_order_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["bank_card.id"], name=op.f("fk_bank_order_card_id_bank_card")
        ),
        sa.UniqueConstraint("order_no", name=op.f("uq_bank_order_order_no")),
        sa.CheckConstraint(
            "order_type IN ('OPEN_ACCOUNT','RECHARGE','WITHDRAW')",
            name=op.f("ck_bank_order_order_type"),
        ),
        sa.CheckConstraint(f"status IN ({OPEN},{FINAL})", name=op.f("ck_bank_order_status")),
        sa.CheckConstraint(
            "amount IS NULL OR amount > 0", name=op.f("ck_bank_order_amount_positive")
        ),
        sa.CheckConstraint("fee IS NULL OR fee >= 0", name=op.f("ck_bank_order_fee_not_negative")),
        sa.CheckConstraint(
            f"(status IN ({FINAL})) = (finished_at IS NOT NULL)",
            name=op.f("ck_bank_order_finished"),
        ),
        sa.CheckConstraint(
            "query_count >= 0 AND send_count >= 0", name=op.f("ck_bank_order_counts")
        ),
        **MYSQL,
    )
    op.create_index("ix_bank_order_ref", "bank_order", ["ref_type", "ref_id"])
    op.create_index("ix_bank_order_member_id_id", "bank_order", ["member_id", "id"])
    op.create_index(
        "ix_bank_order_status_next_query_at", "bank_order", ["status", "next_query_at"]
    )
    op.create_index(
        "ix_bank_order_handed_to_reconciliation_at",
        "bank_order",
        ["handed_to_reconciliation_at"],
    )

    op.create_table(
        "bank_evidence",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("attempt_key", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("body_sealed", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("signature", sa.String(16), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_evidence")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["bank_order.id"], name=op.f("fk_bank_evidence_order_id_bank_order")
        ),
        sa.UniqueConstraint(
            "order_id",
            "kind",
            "attempt_key",
            name=op.f("uq_bank_evidence_order_id_kind_attempt_key"),
        ),
        sa.CheckConstraint(
            "kind IN ('REQUEST','RESPONSE','NOTIFICATION','QUERY','QUERY_RESULT','ACK')",
            name=op.f("ck_bank_evidence_kind"),
        ),
        sa.CheckConstraint(
            "signature IS NULL OR signature IN ('VALID','INVALID','MISSING','UNKNOWN_KEY')",
            name=op.f("ck_bank_evidence_signature"),
        ),
        **MYSQL,
    )

    op.create_table(
        "bank_notification",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("notify_id", sa.String(64), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_notification")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["bank_order.id"],
            name=op.f("fk_bank_notification_order_id_bank_order"),
        ),
        sa.UniqueConstraint("notify_id", name=op.f("uq_bank_notification_notify_id")),
        sa.CheckConstraint(
            "outcome IN ('APPLIED','CONFIRMED','CONFLICT','REFUSED')",
            name=op.f("ck_bank_notification_outcome"),
        ),
        **MYSQL,
    )

    _recheck("payment_order", "status", "'PENDING','SUCCESS','FAILED','REVERSED'")
    _recheck(
        "member_message",
        "category",
        "'INVESTMENT','DISBURSEMENT','REPAYMENT','SYSTEM','PAYMENT'",
    )


def downgrade() -> None:
    # Rows the older schema cannot hold go first. A reversed withdrawal's money came back
    # (WITHDRAW then WITHDRAW_REVERSAL), so to that schema's ledger check it is one that
    # failed; payment messages become system ones.
    op.execute("UPDATE payment_order SET status = 'FAILED' WHERE status = 'REVERSED'")
    op.execute("UPDATE member_message SET category = 'SYSTEM' WHERE category = 'PAYMENT'")
    _recheck("member_message", "category", "'INVESTMENT','DISBURSEMENT','REPAYMENT','SYSTEM'")
    _recheck("payment_order", "status", "'PENDING','SUCCESS','FAILED'")
    op.drop_table("bank_notification")
    op.drop_table("bank_evidence")
    op.drop_table("bank_order")


def _recheck(table: str, column: str, values: str) -> None:
    """Replace the CHECK constraint ``ck_<table>_<column>`` with ``column IN (values)``."""
    name = op.f(f"ck_{table}_{column}")
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(name, type_="check")
        batch.create_check_constraint(name, f"{column} IN ({values})")
