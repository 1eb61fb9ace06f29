"""Batch orders at the depository bank (DISBURSE, REPAY): bank_batch (one submission of items,
its number the submission's idempotency key), and on bank_order the item's batch, payee,
amounts' breakdown, the FREEZE it draws from and the failed item it re-issues; an installment
may be PAYING (its repayment at the bank) and a listing DISBURSING.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0013"
down_revision: str | None = "0012"
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
ORDER_TYPES = "'OPEN_ACCOUNT','RECHARGE','WITHDRAW','FREEZE','UNFREEZE'"
INSTALLMENT_STATUSES = "'PENDING','OVERDUE','PAID','SETTLED_EARLY'"
LOAN_STATUSES = (
    "'PENDING_AUDIT','REJECTED','RAISING','FULL','REPAYING','SETTLED','FAILED','CANCELLED'"
)
_ITEM_COLUMNS = (
    "batch_no",
    "payee_account_no",
    "principal",
    "interest",
    "penalty",
    "service_fee",
    "freeze_order_no",
    "retry_of",
)


def upgrade() -> None:
    op.create_table(
        "bank_batch",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("batch_no", sa.String(32), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("loan_id", ID, nullable=False),
        sa.Column("ref_type", sa.String(24), nullable=False),
        sa.Column("ref_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("send_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_batch")),
        sa.ForeignKeyConstraint(["loan_id"], ["loan.id"], name=op.f("fk_bank_batch_loan_id_loan")),
        sa.UniqueConstraint("batch_no", name=op.f("uq_bank_batch_batch_no")),
        sa.CheckConstraint(
            "order_type IN ('DISBURSE','REPAY')", name=op.f("ck_bank_batch_order_type")
        ),
        sa.CheckConstraint(
            "status IN ('CREATED','SENT','ACCEPTED','REFUSED','UNKNOWN')",
            name=op.f("ck_bank_batch_status"),
        ),
        sa.CheckConstraint("send_count >= 0", name=op.f("ck_bank_batch_send_count")),
        **MYSQL,
    )
    op.create_index("ix_bank_batch_loan_id", "bank_batch", ["loan_id"])
    with op.batch_alter_table("bank_order") as batch:
        batch.add_column(sa.Column("batch_no", sa.String(32), nullable=True))
        batch.add_column(sa.Column("payee_account_no", sa.String(64), nullable=True))
        batch.add_column(sa.Column("principal", MONEY, nullable=True))
        batch.add_column(sa.Column("interest", MONEY, nullable=True))
        batch.add_column(sa.Column("penalty", MONEY, nullable=True))
        batch.add_column(sa.Column("service_fee", MONEY, nullable=True))
        batch.add_column(sa.Column("freeze_order_no", sa.String(32), nullable=True))
        batch.add_column(sa.Column("retry_of", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_bank_order_retry_of_bank_order"), "bank_order", ["retry_of"], ["id"]
        )
        batch.create_index("ix_bank_order_batch_no", ["batch_no"])
        batch.create_index("ix_bank_order_retry_of", ["retry_of"])
        batch.create_check_constraint(
            op.f("ck_bank_order_item_amounts"),
            "(batch_no IS NULL) OR (principal >= 0 AND interest >= 0 AND penalty >= 0"
            " AND service_fee >= 0 AND service_fee <= amount"
            " AND principal + interest + penalty = amount)",
        )
    _recheck("bank_order", "order_type", f"{ORDER_TYPES},'DISBURSE','REPAY'")
    _recheck("installment", "status", f"{INSTALLMENT_STATUSES},'PAYING'")
    _recheck("loan", "status", f"{LOAN_STATUSES},'DISBURSING'")


def downgrade() -> None:
    # The older schema has no batch orders: money in flight at the bank (a PAYING installment,
    # a DISBURSING listing) or items it has moved cannot be written back into it. Going back
    # is for a database that never used them; anything else is refused, nothing changed.
    bind = op.get_bind()
    used = bind.execute(
        sa.text(
            "SELECT (SELECT COUNT(*) FROM bank_batch)"
            " + (SELECT COUNT(*) FROM installment WHERE status = 'PAYING')"
            " + (SELECT COUNT(*) FROM loan WHERE status = 'DISBURSING')"
        )
    ).scalar_one()
    if used:
        raise RuntimeError("0013 cannot be undone: batch orders have been used")
    _recheck("loan", "status", LOAN_STATUSES)
    _recheck("installment", "status", INSTALLMENT_STATUSES)
    _recheck("bank_order", "order_type", ORDER_TYPES)
    with op.batch_alter_table("bank_order") as batch:
        batch.drop_constraint(op.f("ck_bank_order_item_amounts"), type_="check")
        batch.drop_constraint(op.f("fk_bank_order_retry_of_bank_order"), type_="foreignkey")
        batch.drop_index("ix_bank_order_retry_of")
        batch.drop_index("ix_bank_order_batch_no")
        for column in reversed(_ITEM_COLUMNS):
            batch.drop_column(column)
    op.drop_table("bank_batch")  # its index with it (MariaDB keeps it for the foreign key)


def _recheck(table: str, column: str, values: str) -> None:
    """Replace the CHECK constraint ``ck_<table>_<column>`` with ``column IN (values)``."""
    name = op.f(f"ck_{table}_{column}")
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(name, type_="check")
        batch.create_check_constraint(name, f"{column} IN ({values})")
