"""Create the loan table.

Revision ID: 0002
Revises: 0001
Create Date: 2024-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
# Money columns hold integer fen; annual_rate holds percent * 10**4 (12.5% -> 125000).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "loan",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("borrower_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("annual_rate", sa.BigInteger(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("repayment_method", sa.String(24), nullable=False),
        sa.Column("min_invest", sa.BigInteger(), nullable=False),
        sa.Column("max_invest_per_investor", sa.BigInteger(), nullable=True),
        sa.Column("raise_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reject_reason", sa.String(500), nullable=True),
        sa.Column("raise_deadline", UTC_DATETIME, nullable=True),
        sa.Column("published_by", ID, nullable=False),
        sa.Column("audited_by", ID, nullable=True),
        sa.Column("audited_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan")),
        sa.ForeignKeyConstraint(
            ["borrower_id"], ["member.id"], name=op.f("fk_loan_borrower_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["published_by"], ["member.id"], name=op.f("fk_loan_published_by_member")
        ),
        sa.ForeignKeyConstraint(
            ["audited_by"], ["member.id"], name=op.f("fk_loan_audited_by_member")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_loan_amount_positive")),
        sa.CheckConstraint(
            "annual_rate > 0 AND annual_rate <= 360000", name=op.f("ck_loan_annual_rate_range")
        ),
        sa.CheckConstraint(
            "term_months >= 1 AND term_months <= 60", name=op.f("ck_loan_term_months_range")
        ),
        sa.CheckConstraint(
            "repayment_method IN "
            "('EQUAL_INSTALLMENT','EQUAL_PRINCIPAL','MONTHLY_INTEREST','BULLET')",
            name=op.f("ck_loan_repayment_method"),
        ),
        sa.CheckConstraint(
            "min_invest > 0 AND min_invest <= amount", name=op.f("ck_loan_min_invest_range")
        ),
        sa.CheckConstraint(
            "max_invest_per_investor IS NULL OR "
            "(max_invest_per_investor >= min_invest AND max_invest_per_investor <= amount)",
            name=op.f("ck_loan_max_invest_range"),
        ),
        sa.CheckConstraint(
            "raise_days >= 1 AND raise_days <= 365", name=op.f("ck_loan_raise_days_range")
        ),
        sa.CheckConstraint(
            "status IN ('PENDING_AUDIT','REJECTED','RAISING','FULL','REPAYING',"
            "'SETTLED','FAILED','CANCELLED')",
            name=op.f("ck_loan_status"),
        ),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index(op.f("ix_loan_status_id"), "loan", ["status", "id"])
    op.create_index(op.f("ix_loan_borrower_id"), "loan", ["borrower_id"])


def downgrade() -> None:
    op.drop_table("loan")
