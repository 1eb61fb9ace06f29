"""The platform's own account at the depository bank in the ledger: PLATFORM_FUNDS (debit-normal,
its mirror), OWNER_FUNDING (credit-normal, what the platform's owners paid into it) and
COMPENSATION_EXPENSE (debit-normal, beside MARKETING_EXPENSE); CLEARING becomes the mirror of
the members' sub-accounts alone.

Until now the platform's share of the money at the bank sat in CLEARING: s = FEE_INCOME -
BANK_FEES - MARKETING_EXPENSE. It moves out, so that CLEARING equals the members' total:

* s > 0: one posting PLATFORM_SHARE, debit PLATFORM_FUNDS, credit CLEARING, of s;
* s < 0 (the bank's fees outran the platform's income: they were paid from money the owners put
  in before the ledger recorded any): one posting OWNER_FUNDING, debit CLEARING, credit
  OWNER_FUNDING, of -s, recognised as the owners' funding already spent.

Money the owners put into the platform's account at the bank beyond that is still unknown to
the ledger: the first reconciliation shows it as the BALANCE discrepancy of the platform's line,
for an operator to record or explain. Going back undoes those postings and drops the accounts,
and is refused once anything else has posted to them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-10
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
MONEY = sa.BigInteger()  # integer fen
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
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
        raise RuntimeError("0015 cannot be undone: the platform's own account has been used")
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
