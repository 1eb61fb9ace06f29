"""Member messages in English too: member_message.title_en and body_en beside title and body
(the Chinese). Messages written before have no English (NULL) and are read as written.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("member_message") as batch:
        batch.add_column(sa.Column("title_en", sa.String(100), nullable=True))
        batch.add_column(sa.Column("body_en", sa.String(1000), nullable=True))


def downgrade() -> None:
    # The English texts go; every message keeps its Chinese, so none becomes unreadable.
    with op.batch_alter_table("member_message") as batch:
        batch.drop_column("body_en")
        batch.drop_column("title_en")
