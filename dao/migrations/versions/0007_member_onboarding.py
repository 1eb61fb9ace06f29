"""Member onboarding: invite codes and referrers, real-name identity, bank cards, the
depository fund account, and the card a withdrawal pays out to.

Personal data is stored so that a dump reveals no full ID or card number: a keyed hash
(HMAC-SHA256 under a key derived from security.secret_key) to find a value and keep it unique,
and the value itself sealed with AES-256-GCM (service/pii.py) to show it to its owner.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
# The invite-code alphabet of service/member/promotion.py at the time of this revision.
INVITE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def upgrade() -> None:
    with op.batch_alter_table("member") as batch:
        batch.add_column(sa.Column("invite_code", sa.String(8), nullable=True))
        batch.add_column(sa.Column("referrer_id", ID, nullable=True))
        batch.add_column(sa.Column("real_name_sealed", sa.String(255), nullable=True))
        batch.add_column(sa.Column("id_number_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("id_number_sealed", sa.String(255), nullable=True))
        batch.add_column(sa.Column("identity_verified_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("fund_account_no", sa.String(64), nullable=True))
        batch.add_column(sa.Column("fund_account_opened_at", UTC_DATETIME, nullable=True))
        batch.create_unique_constraint(op.f("uq_member_invite_code"), ["invite_code"])
        batch.create_unique_constraint(op.f("uq_member_id_number_hash"), ["id_number_hash"])
        batch.create_unique_constraint(op.f("uq_member_fund_account_no"), ["fund_account_no"])
        batch.create_index("ix_member_referrer_id", ["referrer_id"])
        batch.create_foreign_key(
            op.f("fk_member_referrer_id_member"), "member", ["referrer_id"], ["id"]
        )
    # Investors and borrowers registered before this revision get an invite code now, each
    # distinct (operators invite nobody, as in service/member/promotion.py).
    member = sa.table(
        "member",
        sa.column("id", ID),
        sa.column("role", sa.String(16)),
        sa.column("invite_code", sa.String(8)),
    )
    bind = op.get_bind()
    inviters = sa.select(member.c.id).where(member.c.role.in_(("INVESTOR", "BORROWER")))
    used: set[str] = set()
    for (member_id,) in bind.execute(inviters).all():
        code = ""
        while not code or code in used:
            code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))
        used.add(code)
        bind.execute(member.update().where(member.c.id == member_id).values(invite_code=code))

    op.create_table(
        "bank_card",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        # NULL once unbound, so the card may be bound again (by its owner or, after a
        # change of hands, by another member); UNIQUE among the bound ones.
        sa.Column("card_hash", sa.String(64), nullable=True),
        sa.Column("card_sealed", sa.String(255), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("bank_name", sa.String(50), nullable=False),
        sa.Column("mobile_sealed", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("unbound_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_card")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_bank_card_member_id_member")
        ),
        sa.UniqueConstraint("card_hash", name=op.f("uq_bank_card_card_hash")),
        sa.CheckConstraint("status IN ('BOUND','UNBOUND')", name=op.f("ck_bank_card_status")),
        sa.CheckConstraint(
            "(status = 'BOUND') = (card_hash IS NOT NULL)", name=op.f("ck_bank_card_hash_bound")
        ),
        **MYSQL,
    )
    op.create_index("ix_bank_card_member_id_status", "bank_card", ["member_id", "status"])

    with op.batch_alter_table("payment_order") as batch:
        batch.add_column(sa.Column("card_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_payment_order_card_id_bank_card"), "bank_card", ["card_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_order") as batch:
        batch.drop_constraint(op.f("fk_payment_order_card_id_bank_card"), type_="foreignkey")
        batch.drop_column("card_id")
    op.drop_table("bank_card")
    with op.batch_alter_table("member") as batch:
        batch.drop_constraint(op.f("fk_member_referrer_id_member"), type_="foreignkey")
        batch.drop_index("ix_member_referrer_id")
        batch.drop_constraint(op.f("uq_member_fund_account_no"), type_="unique")
        batch.drop_constraint(op.f("uq_member_id_number_hash"), type_="unique")
        batch.drop_constraint(op.f("uq_member_invite_code"), type_="unique")
        for column in (
            "fund_account_opened_at",
            "fund_account_no",
            "identity_verified_at",
            "id_number_sealed",
            "id_number_hash",
            "real_name_sealed",
            "referrer_id",
            "invite_code",
        ):
            batch.drop_column(column)
