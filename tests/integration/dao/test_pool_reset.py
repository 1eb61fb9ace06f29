"""MariaDB: a connection going back to the pool is rolled back only when it may hold a
transaction (dao/db.py): not after the Connection's own COMMIT, always after a driver-level
write left open, so nothing uncommitted reaches the next user of the connection."""

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from dao.db import Database

pytestmark = pytest.mark.mysql


@pytest.fixture
def one_connection(mysql_url: URL) -> Iterator[Database]:
    """A Database whose pool holds one connection, so each checkout is the same one."""
    db = Database(mysql_url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    yield db
    db.dispose()


def _rollbacks(db: Database) -> int:
    """The session's ROLLBACK count so far (this read's own transaction is rolled back as its
    Connection closes, after the count is taken)."""
    with db.engine.connect() as conn:
        return int(conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Com_rollback'").one()[1])


def test_a_committed_transaction_goes_back_without_a_rollback(one_connection: Database):
    before = _rollbacks(one_connection)
    for _ in range(3):
        with one_connection.engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
    assert _rollbacks(one_connection) - before == 1  # the first count's own, none since


def test_a_write_left_open_on_the_driver_is_rolled_back_on_return(
    one_connection: Database, mysql_url: URL
):
    plain = create_engine(mysql_url, poolclass=NullPool)
    with plain.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS pool_reset_probe (id INT PRIMARY KEY)")
        conn.exec_driver_sql("DELETE FROM pool_reset_probe")
    try:
        with one_connection.engine.begin() as conn:  # its COMMIT marks the transaction ended
            conn.exec_driver_sql("SELECT 1")
        raw = one_connection.engine.raw_connection()  # the same connection, on the driver
        cursor = raw.cursor()
        cursor.execute("INSERT INTO pool_reset_probe (id) VALUES (1)")
        cursor.close()
        raw.close()  # back to the pool, the INSERT neither committed nor rolled back by us
        with one_connection.engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
        with plain.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM pool_reset_probe")).scalar() == 0
    finally:
        with plain.begin() as conn:
            conn.exec_driver_sql("DROP TABLE pool_reset_probe")
        plain.dispose()
