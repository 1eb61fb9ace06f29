"""Which string columns are identifiers (compared byte for byte): every one but the human text
listed here, so a new string column is classified on purpose, not by accident."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.schema import CreateTable

from dao import migrate
from dao.base import MYSQL_TABLE_ARGS
from dao.types import BYTE_EXACT_COLLATION, Identifier

#: Text people write and read, which nothing looks up, keys or compares with a code list: a
#: plain String (on MariaDB the table's byte-exact default all the same, dao/base.py). Any
#: other string column is an Identifier; adding one here is a decision to review.
HUMAN_TEXT = {
    "loan.title",
    "loan.description",
    "loan.reject_reason",
    "payment_order.failure_reason",
    "investment.failure_reason",
    "member_message.title",
    "member_message.body",
    "member_message.title_en",
    "member_message.body_en",
    "bank_card.bank_name",
    # A job's JSON arguments and the last hand-over error: read whole, never looked up.
    "job_outbox.payload",
    "job_outbox.last_error",
    # A bank exchange's masked and sealed bodies, what went wrong with it, the bank's reason.
    "bank_evidence.body",
    "bank_evidence.body_sealed",
    "bank_evidence.error",
    "bank_order.reason",
    # An operator's explanation of a reconciliation discrepancy, and of a bank order's re-issue.
    "reconciliation_discrepancy.reason",
    "bank_order_reissue.reason",
    "bank_batch.reason",
    # Why the platform paid a member (told to them), and why the bank refused a transfer.
    "platform_transfer.memo",
    "platform_transfer.failure_reason",
    # A partner app's contact and callback URL, an RSA key's PEM, an operator's reason and
    # what a change set: read and shown, never compared.
    "partner_app.contact",
    "partner_app.callback_url",
    "partner_key.public_key",
    "partner_app_event.reason",
    "partner_app_event.detail",
    # A callback's JSON body as sent, and the first answer kept with an Idempotency-Key:
    # read whole, never looked up.
    "partner_callback.body",
    "partner_request.answer",
    # A coupon template's name, why a coupon was issued, what a reward's member is told and
    # why it waits: shown to members and operators, never looked up.
    "coupon_template.name",
    "coupon.reason",
    "marketing_reward.memo",
    "marketing_reward.waiting_reason",
}


def _string_columns() -> dict[str, Column]:
    return {
        f"{table.name}.{column.name}": column
        for table in migrate.entity_metadata().sorted_tables
        for column in table.columns
        if isinstance(column.type, (String, Identifier))
    }


def _keyed() -> set[str]:
    """Columns of a primary key, a unique constraint or an index."""
    names = set()
    for table in migrate.entity_metadata().sorted_tables:
        groups = [c.columns for c in table.constraints if hasattr(c, "columns")]
        groups += [index.columns for index in table.indexes]
        names |= {f"{table.name}.{column.name}" for group in groups for column in group}
    return names


def test_every_string_column_is_an_identifier_or_listed_human_text() -> None:
    plain = {name for name, c in _string_columns().items() if not isinstance(c.type, Identifier)}
    assert plain == HUMAN_TEXT


def test_no_human_text_is_a_key_or_indexed() -> None:
    assert not HUMAN_TEXT & _keyed()
    assert {"request_record.request_no", "payment_order.order_no", "member.mobile"} <= (
        _keyed() & set(_string_columns())
    )


def test_an_identifier_is_byte_exact_on_mariadb_and_plain_on_sqlite() -> None:
    table = Table("t", MetaData(), Column("no", Identifier(64)), **MYSQL_TABLE_ARGS)
    on_mariadb = str(CreateTable(table).compile(dialect=mysql.dialect()))
    assert f"no VARCHAR(64) COLLATE {BYTE_EXACT_COLLATION}" in on_mariadb
    assert on_mariadb.rstrip().endswith(f"COLLATE {BYTE_EXACT_COLLATION}")  # table default
    assert "COLLATE" not in str(CreateTable(table).compile(dialect=sqlite.dialect()))
    assert repr(Identifier(64)) == "Identifier(64)"
