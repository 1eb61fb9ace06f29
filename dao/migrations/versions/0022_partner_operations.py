"""Partner operations and callbacks: partner_member (the members a partner app registered,
attributed to it, authorising it until they revoke), partner_request (the apps'
Idempotency-Keys with the first answer), partner_app.callback_events (the events an app
subscribed to, an operator's change of them audited as SET_CALLBACKS), partner_callback (one row a delivery of an event to an app) and
partner_callback_attempt (each attempt to deliver it).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0022"
down_revision: str | None = "0021"
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
STATUSES = "status IN ('PENDING','ACKED','EXPIRED')"
EVENT_TYPES = (
    "event_type IN ('MEMBER_REGISTERED','INVESTMENT_CONFIRMED','LISTING_FULL','REPAYMENT_PAID')"
)


ACTIONS = "'REGISTER','SUSPEND','RESUME','ISSUE_KEY','REVOKE_KEY'"


def _actions(values: str) -> None:
    """partner_app_event's CHECK on its action, naming ``values``."""
    name = op.f("ck_partner_app_event_action")
    with op.batch_alter_table("partner_app_event") as batch:
        batch.drop_constraint(name, type_="check")
        batch.create_check_constraint(name, f"action IN ({values})")


def upgrade() -> None:
    _actions(ACTIONS + ",'SET_CALLBACKS'")
    op.add_column(
        "partner_app",
        sa.Column("callback_events", sa.String(200), nullable=False, server_default=""),
    )
    op.create_table(
        "partner_member",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_member")),
        sa.UniqueConstraint("member_id", name=op.f("uq_partner_member_member_id")),
        sa.ForeignKeyConstraint(
            ["app_id"], ["partner_app.id"], name=op.f("fk_partner_member_app_id_partner_app")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_partner_member_member_id_member")
        ),
        **MYSQL,
    )
    op.create_index("ix_partner_member_app_id", "partner_member", ["app_id"])
    op.create_table(
        "partner_request",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_request")),
        sa.UniqueConstraint(
            "app_id", "idempotency_key", name=op.f("uq_partner_request_app_id_idempotency_key")
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["partner_app.id"], name=op.f("fk_partner_request_app_id_partner_app")
        ),
        **MYSQL,
    )
    op.create_table(
        "partner_callback",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("replay_of", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_callback")),
        sa.ForeignKeyConstraint(
            ["app_id"], ["partner_app.id"], name=op.f("fk_partner_callback_app_id_partner_app")
        ),
        sa.ForeignKeyConstraint(
            ["replay_of"],
            ["partner_callback.id"],
            name=op.f("fk_partner_callback_replay_of_partner_callback"),
        ),
        sa.CheckConstraint(STATUSES, name=op.f("ck_partner_callback_status")),
        sa.CheckConstraint(EVENT_TYPES, name=op.f("ck_partner_callback_event_type")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_partner_callback_attempts")),
        **MYSQL,
    )
    op.create_index("ix_partner_callback_event_id", "partner_callback", ["event_id"])
    op.create_index("ix_partner_callback_app_id", "partner_callback", ["app_id"])
    op.create_table(
        "partner_callback_attempt",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("callback_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_callback_attempt")),
        sa.UniqueConstraint(
            "callback_id", "number", name=op.f("uq_partner_callback_attempt_callback_id_number")
        ),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["partner_callback.id"],
            name=op.f("fk_partner_callback_attempt_callback_id_partner_callback"),
        ),
        **MYSQL,
    )


def downgrade() -> None:
    # Going back would lose who brought which member and what partners were told: it is for a
    # database where no partner registered a member and no callback was written.
    bind = op.get_bind()
    for table in ("partner_member", "partner_callback"):
        if bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one():  # noqa: S608
            raise RuntimeError(f"0022 cannot be undone: {table} has rows")
    subscribed = "SELECT COUNT(*) FROM partner_app_event WHERE action = 'SET_CALLBACKS'"
    if bind.execute(sa.text(subscribed)).scalar_one():
        raise RuntimeError("0022 cannot be undone: the trail holds SET_CALLBACKS")
    op.drop_table("partner_callback_attempt")
    op.drop_table("partner_callback")
    op.drop_table("partner_request")
    op.drop_table("partner_member")
    with op.batch_alter_table("partner_app") as batch:
        batch.drop_column("callback_events")
    _actions(ACTIONS)
