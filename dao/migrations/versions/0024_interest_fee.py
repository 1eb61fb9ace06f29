"""The interest service fee (利息管理费): receipt.fee, what the platform kept of the receipt's
interest (repayment.interest_fee_rate less the investor's level's fee_discount), so
principal + interest + penalty - fee is what the investor received. 0.00 for every receipt
before it (no fee was charged); never below 0 nor above the receipt's interest.

Going back would lose what the platform kept of whom: it is refused once a receipt has a fee.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
MONEY = sa.BigInteger()  # integer fen


def upgrade() -> None:
    with op.batch_alter_table("receipt") as batch:
        batch.add_column(sa.Column("fee", MONEY, nullable=False, server_default="0"))
        batch.create_check_constraint(
            op.f("ck_receipt_fee_within_interest"), "fee >= 0 AND fee <= interest"
        )


def downgrade() -> None:
    charged = "SELECT COUNT(*) FROM receipt WHERE fee <> 0"
    if op.get_bind().execute(sa.text(charged)).scalar_one():
        raise RuntimeError("0024 cannot be undone: receipts hold interest service fees")
    with op.batch_alter_table("receipt") as batch:
        batch.drop_constraint(op.f("ck_receipt_fee_within_interest"), type_="check")
        batch.drop_column("fee")
