"""Partner apps of the open API: partner_app (one row an app: its public id, name, contact,
callback URL, scopes, rate limit and status), partner_key (the keys each app signs with, RSA
public keys or sealed HMAC secrets, several active at once) and partner_app_event (the audit
trail of every change an operator made to them).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-13
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}


def upgrade() -> None:
    op.create_table(
        "partner_app",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("contact", sa.String(200), nullable=False),
        sa.Column("callback_url", sa.String(500), nullable=True),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("burst", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_app")),
        sa.UniqueConstraint("app_id", name=op.f("uq_partner_app_app_id")),
        sa.UniqueConstraint("name", name=op.f("uq_partner_app_name")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["member.id"], name=op.f("fk_partner_app_created_by_member")
        ),
        sa.CheckConstraint("status IN ('ACTIVE','SUSPENDED')", name=op.f("ck_partner_app_status")),
        sa.CheckConstraint("rate_per_minute >= 1 AND burst >= 1", name=op.f("ck_partner_app_rate")),
        **MYSQL,
    )
    op.create_table(
        "partner_key",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("secret_sealed", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_by", ID, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_key")),
        sa.UniqueConstraint("app_id", "key_id", name=op.f("uq_partner_key_app_id_key_id")),
        sa.ForeignKeyConstraint(
            ["app_id"], ["partner_app.id"], name=op.f("fk_partner_key_app_id_partner_app")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["member.id"], name=op.f("fk_partner_key_created_by_member")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["member.id"], name=op.f("fk_partner_key_revoked_by_member")
        ),
        sa.CheckConstraint(
            "algorithm IN ('RSA_SHA256','HMAC_SHA256')", name=op.f("ck_partner_key_algorithm")
        ),
        sa.CheckConstraint("status IN ('ACTIVE','REVOKED')", name=op.f("ck_partner_key_status")),
        sa.CheckConstraint(
            "(algorithm = 'RSA_SHA256' AND public_key IS NOT NULL AND secret_sealed IS NULL)"
            " OR (algorithm = 'HMAC_SHA256' AND public_key IS NULL AND secret_sealed IS NOT NULL)",
            name=op.f("ck_partner_key_material"),
        ),
        sa.CheckConstraint(
            "(status = 'REVOKED') = (revoked_at IS NOT NULL AND revoked_by IS NOT NULL)",
            name=op.f("ck_partner_key_revoked"),
        ),
        **MYSQL,
    )
    op.create_table(
        "partner_app_event",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("operator_id", ID, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_app_event")),
        sa.ForeignKeyConstraint(
            ["app_id"], ["partner_app.id"], name=op.f("fk_partner_app_event_app_id_partner_app")
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["member.id"], name=op.f("fk_partner_app_event_operator_id_member")
        ),
        sa.CheckConstraint(
            "action IN ('REGISTER','SUSPEND','RESUME','ISSUE_KEY','REVOKE_KEY')",
            name=op.f("ck_partner_app_event_action"),
        ),
        **MYSQL,
    )
    op.create_index("ix_partner_app_event_app_id", "partner_app_event", ["app_id"])


def downgrade() -> None:
    # Going back would lose the partners' apps, their keys and who changed them: it is for a
    # database where no partner app was ever registered.
    used = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM partner_app")).scalar_one()
    if used:
        raise RuntimeError("0017 cannot be undone: partner apps are registered")
    op.drop_table("partner_app_event")
    op.drop_table("partner_key")
    op.drop_table("partner_app")
