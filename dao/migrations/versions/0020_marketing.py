"""Marketing: campaign (budgets in money and count, spent only within them), campaign_charge
(every move of a campaign's spend), coupon_template (a coupon's terms), coupon (one issued to a
member, locked to an investment, used at disbursement) and marketing_reward (money owed to a
member, paid by a platform transfer); platform_transfer.business_type, the posting's business
type a paying service names (MKT_...).

Going back is refused once a campaign exists (its coupons and rewards would be lost).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported from dao, so this revision never changes.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.BigInteger()  # integer fen
RATE = sa.BigInteger()  # a yearly percentage times 10**4
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _ck(table: str, name: str, text: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(text, name=op.f(f"ck_{table}_{name}"))


def _times() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("starts_at", UTC_DATETIME, nullable=False),
        sa.Column("ends_at", UTC_DATETIME, nullable=True),
        sa.Column("budget_amount", MONEY, nullable=False),
        sa.Column("spent_amount", MONEY, nullable=False),
        sa.Column("budget_count", sa.Integer(), nullable=True),
        sa.Column("spent_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("changed_by", ID, nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
        sa.UniqueConstraint("name", name=op.f("uq_campaign_name")),
        _fk("campaign", "created_by", "member"),
        _fk("campaign", "changed_by", "member"),
        _ck("campaign", "status", "status IN ('ACTIVE','INACTIVE')"),
        _ck("campaign", "budget", "spent_amount >= 0 AND spent_amount <= budget_amount"),
        _ck(
            "campaign",
            "budget_count",
            "spent_count >= 0 AND (budget_count IS NULL OR spent_count <= budget_count)",
        ),
        _ck("campaign", "window", "ends_at IS NULL OR ends_at > starts_at"),
        **MYSQL,
    )
    op.create_table(
        "campaign_charge",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("ref_type", sa.String(24), nullable=False),
        sa.Column("ref_id", ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_charge")),
        sa.UniqueConstraint(
            "campaign_id",
            "reason",
            "ref_type",
            "ref_id",
            name=op.f("uq_campaign_charge_campaign_id_reason_ref_type_ref_id"),
        ),
        _fk("campaign_charge", "campaign_id", "campaign"),
        **MYSQL,
    )
    _templates()
    _coupons()
    _rewards()
    with op.batch_alter_table("platform_transfer") as batch:
        batch.add_column(sa.Column("business_type", sa.String(32), nullable=True))


def _templates() -> None:
    t = "coupon_template"
    op.create_table(
        t,
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("face_value", MONEY, nullable=True),
        sa.Column("extra_rate", RATE, nullable=True),
        sa.Column("boost_periods", sa.Integer(), nullable=True),
        sa.Column("min_invest", MONEY, nullable=False),
        sa.Column("max_invest", MONEY, nullable=True),
        sa.Column("terms", sa.String(200), nullable=True),
        sa.Column("methods", sa.String(200), nullable=True),
        sa.Column("valid_from", UTC_DATETIME, nullable=True),
        sa.Column("valid_until", UTC_DATETIME, nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=True),
        sa.Column("issued_count", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("audience_level", sa.String(16), nullable=True),
        sa.Column("issue_rule", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("changed_by", ID, nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        _fk(t, "campaign_id", "campaign"),
        _fk(t, "created_by", "member"),
        _fk(t, "changed_by", "member"),
        _ck(t, "kind", "kind IN ('CASH','RATE_BOOST','EXPERIENCE')"),
        _ck(t, "audience", "audience IN ('ALL','NEW_MEMBERS','INVITED','LEVEL','LIST')"),
        _ck(t, "status", "status IN ('ACTIVE','INACTIVE')"),
        _ck(t, "rule", "issue_rule IS NULL OR issue_rule IN ('REGISTRATION')"),
        _ck(t, "rate", "(kind = 'RATE_BOOST') = (extra_rate IS NOT NULL)"),
        _ck(t, "face", "(kind <> 'RATE_BOOST') = (face_value IS NOT NULL)"),
        _ck(t, "face_positive", "face_value IS NULL OR face_value > 0"),
        _ck(t, "rate_positive", "extra_rate IS NULL OR extra_rate > 0"),
        _ck(t, "tier", "min_invest >= 0 AND (max_invest IS NULL OR max_invest > min_invest)"),
        _ck(t, "validity", "(valid_days IS NULL) <> (valid_until IS NULL)"),
        _ck(
            t,
            "issued",
            "issued_count >= 0 AND (total_count IS NULL OR issued_count <= total_count)",
        ),
        _ck(t, "level", "(audience = 'LEVEL') = (audience_level IS NOT NULL)"),
        **MYSQL,
    )
    op.create_index("ix_coupon_template_campaign_id", t, ["campaign_id"])


def _coupons() -> None:
    t = "coupon"
    op.create_table(
        t,
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("template_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("valid_from", UTC_DATETIME, nullable=False),
        sa.Column("valid_until", UTC_DATETIME, nullable=False),
        sa.Column("member_seq", sa.Integer(), nullable=False),
        sa.Column("issue_key", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("issued_by", ID, nullable=True),
        sa.Column("investment_id", ID, nullable=True),
        sa.Column("locked_at", UTC_DATETIME, nullable=True),
        sa.Column("used_at", UTC_DATETIME, nullable=True),
        *_times(),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint(
            "template_id",
            "member_id",
            "member_seq",
            name=op.f("uq_coupon_template_id_member_id_member_seq"),
        ),
        sa.UniqueConstraint(
            "template_id",
            "member_id",
            "issue_key",
            name=op.f("uq_coupon_template_id_member_id_issue_key"),
        ),
        _fk(t, "template_id", "coupon_template"),
        _fk(t, "campaign_id", "campaign"),
        _fk(t, "member_id", "member"),
        _fk(t, "issued_by", "member"),
        _fk(t, "investment_id", "investment"),
        _ck(t, "status", "status IN ('AVAILABLE','LOCKED','USED')"),
        _ck(t, "investment", "(status = 'AVAILABLE') = (investment_id IS NULL)"),
        _ck(t, "validity", "valid_until > valid_from"),
        **MYSQL,
    )
    op.create_index("ix_coupon_member_id_id", t, ["member_id", "id"])
    op.create_index("ix_coupon_investment_id", t, ["investment_id"])


def _rewards() -> None:
    t = "marketing_reward"
    op.create_table(
        t,
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("source_type", sa.String(24), nullable=False),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("coupon_id", ID, nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("memo", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("transfer_id", ID, nullable=True),
        sa.Column("waiting_reason", sa.String(200), nullable=True),
        *_times(),
        sa.Column("paid_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint(
            "kind",
            "source_type",
            "source_id",
            "member_id",
            name=op.f("uq_marketing_reward_kind_source_type_source_id_member_id"),
        ),
        _fk(t, "member_id", "member"),
        _fk(t, "campaign_id", "campaign"),
        _fk(t, "coupon_id", "coupon"),
        _fk(t, "transfer_id", "platform_transfer"),
        _ck(t, "amount_positive", "amount > 0"),
        _ck(t, "status", "status IN ('PENDING','PAYING','PAID','CANCELLED')"),
        _ck(t, "attempt", "attempt >= 0"),
        **MYSQL,
    )
    op.create_index("ix_marketing_reward_status_id", t, ["status", "id"])
    op.create_index("ix_marketing_reward_coupon_id", t, ["coupon_id"])


def downgrade() -> None:
    used = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM campaign")).scalar_one()
    if used:
        raise RuntimeError("0020 cannot be undone: marketing campaigns exist")
    with op.batch_alter_table("platform_transfer") as batch:
        batch.drop_column("business_type")
    for table in ("marketing_reward", "coupon", "coupon_template", "campaign_charge", "campaign"):
        op.drop_table(table)  # their indexes with them
