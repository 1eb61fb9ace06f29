"""Statement parameters (mobile numbers, names, ID numbers) never reach a log line or an
exception's text: every engine is made with hide_parameters."""

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dao.db import Database

SECRET = "110105194912310021"


def test_a_failed_statement_does_not_carry_its_parameters(database: Database):
    with pytest.raises(DBAPIError) as failed, database.engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE id_number = :v"), {"v": SECRET})
    assert "no_such_table" in str(failed.value)
    assert SECRET not in str(failed.value)


def test_echo_logs_statements_without_their_parameters(tmp_path, caplog):
    db = Database(f"sqlite:///{tmp_path / 'echo.db'}", echo=True)
    try:
        with (
            caplog.at_level(logging.INFO, logger="sqlalchemy.engine"),
            db.engine.connect() as conn,
        ):
            assert conn.execute(text("SELECT :v"), {"v": SECRET}).scalar() == SECRET
        assert "SELECT ?" in caplog.text
        assert SECRET not in caplog.text
    finally:
        db.dispose()
