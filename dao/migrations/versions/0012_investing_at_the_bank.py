"""Investing through the depository bank: an investment may be PENDING (its FREEZE order at
the bank not yet final), FAILED (the bank did not freeze it) or RELEASING (its UNFREEZE
order not yet final); it carries the FREEZE's order number and, when it failed or its release
did, why. Bank orders may be FREEZE and UNFREEZE.

The downgrade refuses, changing nothing, once an investment was made through the bank (a
FREEZE or UNFREEZE bank order exists): the older schema can hold neither those orders nor
the investments' new statuses, and the older code could not settle them.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INVESTMENT = "'FROZEN','ACTIVE','RELEASED','SETTLED'"
NEW_INVESTMENT = f"'PENDING',{OLD_INVESTMENT},'RELEASING','FAILED'"
OLD_ORDER_TYPES = "'OPEN_ACCOUNT','RECHARGE','WITHDRAW'"
NEW_ORDER_TYPES = f"{OLD_ORDER_TYPES},'FREEZE','UNFREEZE'"


def upgrade() -> None:
    with op.batch_alter_table("investment") as batch:
        batch.add_column(sa.Column("order_no", sa.String(32), nullable=True))
        batch.add_column(sa.Column("failure_reason", sa.String(200), nullable=True))
        batch.create_unique_constraint(op.f("uq_investment_order_no"), ["order_no"])
    _recheck("investment", "status", NEW_INVESTMENT)
    _recheck("bank_order", "order_type", NEW_ORDER_TYPES)


def downgrade() -> None:
    through_the_bank = op.get_bind().execute(
        sa.text("SELECT 1 FROM bank_order WHERE order_type IN ('FREEZE','UNFREEZE') LIMIT 1")
    )
    if through_the_bank.first() is not None:
        raise RuntimeError(
            "cannot go back before 0012: investments were made through the bank (FREEZE and"
            " UNFREEZE orders), which the older schema cannot hold; nothing was changed"
        )
    _recheck("bank_order", "order_type", OLD_ORDER_TYPES)
    _recheck("investment", "status", OLD_INVESTMENT)
    with op.batch_alter_table("investment") as batch:
        batch.drop_constraint(op.f("uq_investment_order_no"), type_="unique")
        batch.drop_column("failure_reason")
        batch.drop_column("order_no")


def _recheck(table: str, column: str, values: str) -> None:
    """Replace the CHECK constraint ``ck_<table>_<column>`` with ``column IN (values)``."""
    name = op.f(f"ck_{table}_{column}")
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(name, type_="check")
        batch.create_check_constraint(name, f"{column} IN ({values})")
