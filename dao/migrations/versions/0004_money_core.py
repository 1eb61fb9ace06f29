"""The money core's tables: investments, repayment plans, payment orders; a listing's
raised amount, fee and disbursement and settlement times.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
# Money columns hold integer fen.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.BigInteger()
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
AMOUNTS = "principal >= 0 AND interest >= 0 AND penalty >= 0"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("loan") as batch:
        batch.add_column(sa.Column("raised", MONEY, server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("fee", MONEY, nullable=True))
        batch.add_column(sa.Column("disbursed_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("settled_at", UTC_DATETIME, nullable=True))
        batch.create_check_constraint("raised_range", "raised >= 0 AND raised <= amount")
        batch.create_check_constraint("fee_range", "fee IS NULL OR (fee >= 0 AND fee <= amount)")

    op.create_table(
        "investment",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("loan_id", ID, nullable=False),
        sa.Column("investor_id", ID, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_no", sa.String(64), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_investment")),
        _fk("investment", "loan_id", "loan"),
        _fk("investment", "investor_id", "member"),
        sa.CheckConstraint("amount > 0", name=op.f("ck_investment_amount_positive")),
        sa.CheckConstraint(
            "status IN ('FROZEN','ACTIVE','RELEASED','SETTLED')", name=op.f("ck_investment_status")
        ),
        **MYSQL,
    )
    op.create_index("ix_investment_loan_id_id", "investment", ["loan_id", "id"])
    op.create_index("ix_investment_investor_id_id", "investment", ["investor_id", "id"])

    op.create_table(
        "installment",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("loan_id", ID, nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("principal", MONEY, nullable=False),
        sa.Column("interest", MONEY, nullable=False),
        sa.Column("penalty", MONEY, nullable=False),
        sa.Column("remaining", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paid_at", UTC_DATETIME, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installment")),
        _fk("installment", "loan_id", "loan"),
        sa.UniqueConstraint("loan_id", "period", name=op.f("uq_installment_loan_id_period")),
        sa.CheckConstraint("period >= 1", name=op.f("ck_installment_period_positive")),
        sa.CheckConstraint(AMOUNTS, name=op.f("ck_installment_amounts_not_negative")),
        sa.CheckConstraint(
            "status IN ('PENDING','OVERDUE','PAID','SETTLED_EARLY')",
            name=op.f("ck_installment_status"),
        ),
        **MYSQL,
    )
    op.create_index("ix_installment_status_due_date", "installment", ["status", "due_date"])

    op.create_table(
        "receipt",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("installment_id", ID, nullable=False),
        sa.Column("investment_id", ID, nullable=False),
        sa.Column("loan_id", ID, nullable=False),
        sa.Column("investor_id", ID, nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("principal", MONEY, nullable=False),
        sa.Column("interest", MONEY, nullable=False),
        sa.Column("penalty", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt")),
        _fk("receipt", "installment_id", "installment"),
        _fk("receipt", "investment_id", "investment"),
        _fk("receipt", "loan_id", "loan"),
        _fk("receipt", "investor_id", "member"),
        sa.UniqueConstraint(
            "installment_id", "investment_id", name=op.f("uq_receipt_installment_id_investment_id")
        ),
        sa.CheckConstraint(AMOUNTS, name=op.f("ck_receipt_amounts_not_negative")),
        sa.CheckConstraint("status IN ('PENDING','RECEIVED')", name=op.f("ck_receipt_status")),
        **MYSQL,
    )
    op.create_index("ix_receipt_investor_id_id", "receipt", ["investor_id", "id"])
    op.create_index("ix_receipt_investment_id_period", "receipt", ["investment_id", "period"])

    op.create_table(
        "payment_order",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_no", sa.String(64), nullable=False),
        sa.Column("gateway_ref", sa.String(64), nullable=True),
        sa.Column("failure_reason", sa.String(200), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_order")),
        _fk("payment_order", "member_id", "member"),
        sa.UniqueConstraint("order_no", name=op.f("uq_payment_order_order_no")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_order_amount_positive")),
        sa.CheckConstraint("type IN ('RECHARGE','WITHDRAW')", name=op.f("ck_payment_order_type")),
        sa.CheckConstraint(
            "status IN ('PENDING','SUCCESS','FAILED')", name=op.f("ck_payment_order_status")
        ),
        **MYSQL,
    )
    op.create_index("ix_payment_order_member_id_id", "payment_order", ["member_id", "id"])


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("payment_order")
    op.drop_table("receipt")
    op.drop_table("installment")
    op.drop_table("investment")
    with op.batch_alter_table("loan") as batch:
        batch.drop_constraint("fee_range", type_="check")
        batch.drop_constraint("raised_range", type_="check")
        batch.drop_column("settled_at")
        batch.drop_column("disbursed_at")
        batch.drop_column("fee")
        batch.drop_column("raised")
