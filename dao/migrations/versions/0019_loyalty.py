"""Loyalty: member_level (each member's level as last evaluated, and the amount it was
evaluated on), checkin (one a member and business day), point_entry and point_redemption (the
points ledger and what points bought), experience_account, experience_grant and
experience_investment (experience gold, virtual money of its own), referral_reward (one a
referrer and investment).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0019"
down_revision: str | None = "0018"
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
        "member_level",
        sa.Column("member_id", ID, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("invested", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", UTC_DATETIME, nullable=False),
        sa.Column("changed_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_level")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_member_level_member_id_member")
        ),
        **MYSQL,
    )
    _checkins_and_points()
    _experience()
    _referral()


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _checkins_and_points() -> None:
    op.create_table(
        "checkin",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("checked_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin")),
        sa.UniqueConstraint(
            "member_id", "business_day", name=op.f("uq_checkin_member_id_business_day")
        ),
        _fk("checkin", "member_id", "member"),
        sa.CheckConstraint("streak >= 1 AND points >= 0", name=op.f("ck_checkin_positive")),
        **MYSQL,
    )
    op.create_table(
        "point_entry",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", ID, nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_entry")),
        sa.UniqueConstraint("kind", "ref_id", name=op.f("uq_point_entry_kind_ref_id")),
        _fk("point_entry", "member_id", "member"),
        sa.CheckConstraint(
            "kind IN ('CHECK_IN','INVEST','REDEEM','INVEST_REVERSAL')",
            name=op.f("ck_point_entry_kind"),
        ),
        sa.CheckConstraint(
            "(kind IN ('CHECK_IN','INVEST') AND points > 0 AND remaining >= 0"
            " AND remaining <= points AND expires_at IS NOT NULL)"
            " OR (kind IN ('REDEEM','INVEST_REVERSAL') AND points < 0 AND remaining = 0)",
            name=op.f("ck_point_entry_sign"),
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_point_entry_member_id_expires_at", "point_entry", ["member_id", "expires_at"]
    )
    op.create_table(
        "point_redemption",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("request_no", sa.String(64), nullable=False),
        sa.Column("item", sa.String(64), nullable=False),
        sa.Column("template_id", ID, nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("coupon_id", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_redemption")),
        sa.UniqueConstraint(
            "member_id", "request_no", name=op.f("uq_point_redemption_member_id_request_no")
        ),
        _fk("point_redemption", "member_id", "member"),
        sa.CheckConstraint("points > 0", name=op.f("ck_point_redemption_points")),
        **MYSQL,
    )


def _experience() -> None:
    op.create_table(
        "experience_account",
        sa.Column("member_id", ID, nullable=False),
        sa.Column("granted", sa.BigInteger(), nullable=False),
        sa.Column("invested", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_experience_account")),
        _fk("experience_account", "member_id", "member"),
        sa.CheckConstraint(
            "invested >= 0 AND invested <= granted", name=op.f("ck_experience_account_within")
        ),
        **MYSQL,
    )
    op.create_table(
        "experience_grant",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("ref_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experience_grant")),
        sa.UniqueConstraint("source", "ref_id", name=op.f("uq_experience_grant_source_ref_id")),
        _fk("experience_grant", "member_id", "member"),
        sa.CheckConstraint(
            "source IN ('REGISTRATION','COUPON')", name=op.f("ck_experience_grant_source")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_experience_grant_amount")),
        **MYSQL,
    )
    op.create_table(
        "experience_investment",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("request_no", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("annual_rate", sa.BigInteger(), nullable=False),
        sa.Column("term_days", sa.Integer(), nullable=False),
        sa.Column("interest", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("matures_at", UTC_DATETIME, nullable=False),
        sa.Column("paid_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experience_investment")),
        sa.UniqueConstraint(
            "member_id", "request_no", name=op.f("uq_experience_investment_member_id_request_no")
        ),
        _fk("experience_investment", "member_id", "member"),
        sa.CheckConstraint(
            "status IN ('RUNNING','PAID')", name=op.f("ck_experience_investment_status")
        ),
        sa.CheckConstraint(
            "amount > 0 AND interest >= 0 AND term_days >= 1",
            name=op.f("ck_experience_investment_amounts"),
        ),
        sa.CheckConstraint(
            "(status = 'PAID') = (paid_at IS NOT NULL)", name=op.f("ck_experience_investment_paid")
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_experience_investment_status_matures_at",
        "experience_investment",
        ["status", "matures_at"],
    )


def _referral() -> None:
    op.create_table(
        "referral_reward",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("investment_id", ID, nullable=False),
        sa.Column("referrer_id", ID, nullable=False),
        sa.Column("invitee_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_reward")),
        sa.UniqueConstraint(
            "investment_id",
            "referrer_id",
            name=op.f("uq_referral_reward_investment_id_referrer_id"),
        ),
        _fk("referral_reward", "investment_id", "investment"),
        _fk("referral_reward", "referrer_id", "member"),
        _fk("referral_reward", "invitee_id", "member"),
        sa.CheckConstraint(
            "status IN ('ACCRUED','PAID','REVERSED')", name=op.f("ck_referral_reward_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_referral_reward_amount")),
        **MYSQL,
    )
    op.create_index(
        "ix_referral_reward_referrer_id_invitee_id",
        "referral_reward",
        ["referrer_id", "invitee_id"],
    )


TABLES = (
    "referral_reward",
    "experience_investment",
    "experience_grant",
    "experience_account",
    "point_redemption",
    "point_entry",
    "checkin",
)


def downgrade() -> None:
    # Going back would lose members' points, experience gold and referral rewards: it is for
    # a database where none was ever recorded. Levels are evaluated again from investments.
    bind = op.get_bind()
    for table in TABLES:
        if bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one():
            raise RuntimeError(f"0019 cannot be undone: {table} has rows")
    for table in TABLES:
        op.drop_table(table)
    op.drop_table("member_level")
