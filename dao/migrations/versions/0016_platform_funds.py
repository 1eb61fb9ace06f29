"""The platform's own account at the depository bank in the ledger: PLATFORM_FUNDS (debit-normal,
its mirror), OWNER_FUNDING (credit-normal, what the platform's owners paid into it) and
COMPENSATION_EXPENSE (debit-normal, beside MARKETING_EXPENSE); CLEARING becomes the mirror of
the members' sub-accounts alone. The orders that move money into and out of that account:
platform_transfer (one row a FUND or TRANSFER), FUND and TRANSFER bank orders, and a bank
order that serves no member (bank_order.member_id nullable: a FUND's).

Until now the platform's share of the money at the bank sat in CLEARING: s = FEE_INCOME -
BANK_FEES - MARKETING_EXPENSE. It moves out, so that CLEARING equals the members' total:

* s > 0: one posting PLATFORM_SHARE, debit PLATFORM_FUNDS, credit CLEARING, of s;
* s < 0 (the bank's fees outran the platform's income: they were paid from money the owners put
  in before the ledger recorded any): one posting OWNER_FUNDING, debit CLEARING, credit
  OWNER_FUNDING, of -s, recognised as the owners' funding already spent.

Money the owners put into the platform's account at the bank beyond that is still unknown to
the ledger: the first reconciliation shows it as the BALANCE discrepancy of the platform's line,
for an operator to explain. Going back undoes those postings, drops the accounts and
the table, and is refused once anything else has posted to the accounts or a FUND or TRANSFER
was made.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0016"
down_revision: str | None = "0015"
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
ORDER_TYPES = "'OPEN_ACCOUNT','RECHARGE','WITHDRAW','FREEZE','UNFREEZE','DISBURSE','REPAY'"
NEW_ACCOUNTS = (("PLATFORM_FUNDS", "D"), ("OWNER_FUNDING", "C"), ("COMPENSATION_EXPENSE", "D"))
#: The postings that move the platform's share out of CLEARING, one of them at most.
SHARE_POSTINGS = ("PLATFORM_SHARE", "OWNER_FUNDING")

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


def _account_id(conn, code: str) -> int:
    return conn.execute(sa.select(account.c.id).where(account.c.code == code)).scalar_one()


def _available(conn, code: str) -> int:
    return conn.execute(sa.select(account.c.available).where(account.c.code == code)).scalar_one()


def _move(conn, business_type: str, debited: int, credited: int, amount: int, now) -> None:
    """One posting of ``amount`` fen from AVAILABLE to AVAILABLE, and the two balances; its
    reference is the platform account that gains by it."""
    gains = debited if business_type == "PLATFORM_SHARE" else credited
    posting_id = conn.execute(
        sa.insert(posting).values(
            business_type=business_type, ref_type="account", ref_id=gains, created_at=now
        )
    ).inserted_primary_key[0]
    conn.execute(
        sa.insert(entry),
        [
            dict(posting_id=posting_id, account_id=account_id, bucket="AVAILABLE", **side)
            for account_id, side in (
                (debited, {"direction": "D", "amount": amount}),
                (credited, {"direction": "C", "amount": amount}),
            )
        ],
    )
    # PLATFORM_SHARE: debit-normal PLATFORM_FUNDS up, debit-normal CLEARING down; OWNER_FUNDING:
    # debit-normal CLEARING up, credit-normal OWNER_FUNDING up.
    deltas = {debited: amount, credited: -amount if business_type == "PLATFORM_SHARE" else amount}
    for account_id, delta in deltas.items():
        conn.execute(
            sa.update(account)
            .where(account.c.id == account_id)
            .values(available=account.c.available + delta, updated_at=now)
        )


def upgrade() -> None:
    _platform_transfer()
    with op.batch_alter_table("bank_order") as batch:
        batch.alter_column("member_id", existing_type=ID, nullable=True)
    _recheck("bank_order", "order_type", f"{ORDER_TYPES},'FUND','TRANSFER'")
    _move_the_share()


def _platform_transfer() -> None:
    op.create_table(
        "platform_transfer",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("member_id", ID, nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=True),
        sa.Column("memo", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.String(200), nullable=True),
        sa.Column("gateway_ref", sa.String(64), nullable=True),
        sa.Column("request_scope", sa.String(32), nullable=False),
        sa.Column("request_no", sa.String(64), nullable=False),
        sa.Column("requested_by", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_transfer")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_platform_transfer_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["member.id"], name=op.f("fk_platform_transfer_requested_by_member")
        ),
        sa.UniqueConstraint("order_no", name=op.f("uq_platform_transfer_order_no")),
        sa.UniqueConstraint(
            "request_scope", "request_no", name=op.f("uq_platform_transfer_request_scope_request_no")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_platform_transfer_amount_positive")),
        sa.CheckConstraint("kind IN ('FUND','TRANSFER')", name=op.f("ck_platform_transfer_kind")),
        sa.CheckConstraint(
            "status IN ('PENDING','SUCCESS','FAILED')", name=op.f("ck_platform_transfer_status")
        ),
        sa.CheckConstraint(
            "purpose IS NULL OR purpose IN ('MARKETING','COMPENSATION')",
            name=op.f("ck_platform_transfer_purpose"),
        ),
        sa.CheckConstraint(
            "(kind = 'TRANSFER') = (member_id IS NOT NULL AND purpose IS NOT NULL)",
            name=op.f("ck_platform_transfer_payee"),
        ),
        sa.CheckConstraint(
            "(status = 'PENDING') = (finished_at IS NULL)",
            name=op.f("ck_platform_transfer_finished"),
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_platform_transfer_member_id_id", "platform_transfer", ["member_id", "id"]
    )


def _move_the_share() -> None:
    conn = op.get_bind()
    now = sa.func.current_timestamp()
    for code, side in NEW_ACCOUNTS:
        conn.execute(
            sa.insert(account).values(
                code=code, normal_side=side, available=0, frozen=0, created_at=now, updated_at=now
            )
        )
    share = (
        _available(conn, "FEE_INCOME")
        - _available(conn, "BANK_FEES")
        - _available(conn, "MARKETING_EXPENSE")
    )
    clearing = _account_id(conn, "CLEARING")
    if share > 0:
        _move(conn, "PLATFORM_SHARE", _account_id(conn, "PLATFORM_FUNDS"), clearing, share, now)
    elif share < 0:
        _move(conn, "OWNER_FUNDING", clearing, _account_id(conn, "OWNER_FUNDING"), -share, now)


def downgrade() -> None:
    conn = op.get_bind()
    used = conn.execute(
        sa.text(
            "SELECT (SELECT COUNT(*) FROM platform_transfer)"
            " + (SELECT COUNT(*) FROM bank_order WHERE member_id IS NULL"
            " OR order_type IN ('FUND', 'TRANSFER'))"
        )
    ).scalar_one()
    if used:
        raise RuntimeError("0016 cannot be undone: the platform's own account has been used")
    _undo_the_share()
    _recheck("bank_order", "order_type", ORDER_TYPES)
    with op.batch_alter_table("bank_order") as batch:
        batch.alter_column("member_id", existing_type=ID, nullable=False)
    op.drop_table("platform_transfer")  # its index with it


def _undo_the_share() -> None:
    conn = op.get_bind()
    new = [_account_id(conn, code) for code, _ in NEW_ACCOUNTS]
    share_ids = (
        sa.select(posting.c.id)
        .where(posting.c.business_type.in_(SHARE_POSTINGS))
        .scalar_subquery()
    )
    used = conn.execute(
        sa.select(sa.func.count())
        .select_from(entry)
        .where(entry.c.account_id.in_(new), entry.c.posting_id.not_in(share_ids))
    ).scalar_one()
    if used:
        raise RuntimeError("0016 cannot be undone: the platform's own account has been used")
    clearing = _account_id(conn, "CLEARING")
    # CLEARING takes back what the share postings moved: credited by PLATFORM_SHARE, debited by
    # OWNER_FUNDING.
    signed = sa.case((entry.c.direction == "C", entry.c.amount), else_=-entry.c.amount)
    back = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(signed), 0)).where(
            entry.c.posting_id.in_(share_ids), entry.c.account_id == clearing
        )
    ).scalar_one()
    conn.execute(
        sa.update(account)
        .where(account.c.id == clearing)
        .values(available=account.c.available + back, updated_at=sa.func.current_timestamp())
    )
    conn.execute(sa.delete(entry).where(entry.c.posting_id.in_(share_ids)))
    conn.execute(sa.delete(posting).where(posting.c.business_type.in_(SHARE_POSTINGS)))
    conn.execute(sa.delete(account).where(account.c.id.in_(new)))


def _recheck(table: str, column: str, values: str) -> None:
    """Replace the CHECK constraint ``ck_<table>_<column>`` with ``column IN (values)``."""
    name = op.f(f"ck_{table}_{column}")
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(name, type_="check")
        batch.create_check_constraint(name, f"{column} IN ({values})")
