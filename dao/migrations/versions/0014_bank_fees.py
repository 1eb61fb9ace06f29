"""The platform's expense account for the depository bank's fees (BANK_FEES, debit-normal),
and the fees of orders the bank settled before it: each SUCCEEDED or REVERSED bank order's fee
above zero is posted once, as settling posts it from now on (BANK_FEE: debit BANK_FEES, credit
CLEARING). Going back removes those postings and the account, and gives CLEARING its fees back.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.BigInteger()  # integer fen
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

account = sa.table(
    "account",
    sa.column("id", ID),
    sa.column("code", sa.String(32)),
    sa.column("normal_side", sa.String(1)),
    sa.column("available", MONEY),
    sa.column("frozen", MONEY),
    sa.column("created_at", UTC_DATETIME),
    sa.column("updated_at", UTC_DATETIME),
)
posting = sa.Table(  # a Table, so that an insert returns its new id
    "posting",
    sa.MetaData(),
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("business_type", sa.String(32)),
    sa.Column("ref_type", sa.String(24)),
    sa.Column("ref_id", ID),
    sa.Column("request_no", sa.String(64)),
    sa.Column("created_at", UTC_DATETIME),
)
entry = sa.table(
    "posting_entry",
    sa.column("posting_id", ID),
    sa.column("account_id", ID),
    sa.column("bucket", sa.String(9)),
    sa.column("direction", sa.String(1)),
    sa.column("amount", MONEY),
)
bank_order = sa.table(
    "bank_order",
    sa.column("id", ID),
    sa.column("status", sa.String(16)),
    sa.column("fee", MONEY),
)


def _account_id(conn, code: str) -> int:
    return conn.execute(sa.select(account.c.id).where(account.c.code == code)).scalar_one()


def upgrade() -> None:
    conn = op.get_bind()
    now = sa.func.current_timestamp()
    conn.execute(
        sa.insert(account).values(
            code="BANK_FEES", normal_side="D", available=0, frozen=0, created_at=now, updated_at=now
        )
    )
    fees_id, clearing_id = _account_id(conn, "BANK_FEES"), _account_id(conn, "CLEARING")
    charged = conn.execute(
        sa.select(bank_order.c.id, bank_order.c.fee)
        .where(bank_order.c.status.in_(("SUCCEEDED", "REVERSED")), bank_order.c.fee > 0)
        .order_by(bank_order.c.id)
    ).all()
    for order_id, fee in charged:
        posting_id = conn.execute(
            sa.insert(posting).values(
                business_type="BANK_FEE", ref_type="BANK_ORDER", ref_id=order_id, created_at=now
            )
        ).inserted_primary_key[0]
        conn.execute(
            sa.insert(entry),
            [
                dict(
                    posting_id=posting_id,
                    account_id=fees_id,
                    bucket="AVAILABLE",
                    direction="D",
                    amount=fee,
                ),
                dict(
                    posting_id=posting_id,
                    account_id=clearing_id,
                    bucket="AVAILABLE",
                    direction="C",
                    amount=fee,
                ),
            ],
        )
    total = sum(fee for _, fee in charged)
    if total:
        for account_id, delta in ((fees_id, total), (clearing_id, -total)):
            conn.execute(
                sa.update(account)
                .where(account.c.id == account_id)
                .values(available=account.c.available + delta, updated_at=now)
            )


def downgrade() -> None:
    conn = op.get_bind()
    fees_id, clearing_id = _account_id(conn, "BANK_FEES"), _account_id(conn, "CLEARING")
    ids = sa.select(posting.c.id).where(posting.c.business_type == "BANK_FEE").scalar_subquery()
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(entry.c.amount), 0)).where(
            entry.c.posting_id.in_(ids), entry.c.account_id == fees_id
        )
    ).scalar_one()
    conn.execute(
        sa.update(account)
        .where(account.c.id == clearing_id)
        .values(available=account.c.available + total, updated_at=sa.func.current_timestamp())
    )
    conn.execute(sa.delete(entry).where(entry.c.posting_id.in_(ids)))
    conn.execute(sa.delete(posting).where(posting.c.business_type == "BANK_FEE"))
    conn.execute(sa.delete(account).where(account.c.id == fees_id))
