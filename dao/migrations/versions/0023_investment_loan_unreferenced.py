"""An investment's loan_id no longer carries a foreign key to loan.

InnoDB checks a foreign key on INSERT by taking a shared lock on the parent row until the
transaction ends. Investing now adds to the listing's ``raised`` by one conditional UPDATE at
the end of its transaction (service/p2p/investing.py), so with the key every investor of a hot
listing held a shared lock on its row from the investment's INSERT and then asked for the
exclusive one: two of them deadlocked on every overlap. That UPDATE matches the listing's row
(by id, RAISING) and holds it locked until the commit, in the transaction that writes the
investment, so it checks what the key checked; listings are never deleted.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("investment") as batch:
        batch.drop_constraint(op.f("fk_investment_loan_id_loan"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("investment") as batch:
        batch.create_foreign_key(op.f("fk_investment_loan_id_loan"), "loan", ["loan_id"], ["id"])
