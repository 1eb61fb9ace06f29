"""The reads pool (dao/db.py) under the transaction manager's ``read``: a read outside any
transaction is its statements alone, on a connection that refuses writes, and a connection
the server dropped costs the caller nothing."""

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from dao.db import Database
from service.transaction import TransactionManager


@pytest.fixture
def table(database: Database) -> Iterator[Database]:
    with database.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS reads_probe")
        conn.exec_driver_sql("CREATE TABLE reads_probe (id INT PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO reads_probe (id) VALUES (1)")
    yield database
    with database.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE reads_probe")


@pytest.fixture
def one_reading_connection(mysql_url: URL) -> Iterator[Database]:
    """A Database whose reads pool holds one connection, so each read draws the same one."""
    db = Database(mysql_url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    yield db
    db.dispose()


def _ids(connection) -> list[int]:
    return list(connection.execute(text("SELECT id FROM reads_probe")).scalars())


def test_a_read_sees_what_is_committed_and_refuses_to_write(table: Database):
    tx = TransactionManager(table)

    def writes(connection) -> None:
        connection.execute(text("INSERT INTO reads_probe (id) VALUES (2)"))

    assert table.reads is not None
    assert tx.read(_ids) == [1]
    with pytest.raises(OperationalError):
        tx.read(writes)
    with table.engine.begin() as conn:  # the transactions' pool still writes
        conn.exec_driver_sql("INSERT INTO reads_probe (id) VALUES (3)")
    assert sorted(tx.read(_ids)) == [1, 3]


def test_the_reads_pool_times_its_statements_for_the_observers(table: Database):
    heard: list[float] = []

    class Observer:
        def statement(self, seconds: float, slow: bool) -> None:
            heard.append(seconds)

        def checkout(self, seconds: float, timed_out: bool) -> None:
            pass

    table.observe(Observer())
    TransactionManager(table).read(_ids)
    assert len(heard) == 1


@pytest.mark.mysql
def test_a_read_sends_its_statements_and_nothing_else(one_reading_connection: Database):
    tx = TransactionManager(one_reading_connection)

    def status(connection) -> dict[str, int]:
        found = connection.exec_driver_sql(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Questions', 'Com_rollback', "
            "'Com_commit', 'Com_set_option')"
        )
        return {name: int(count) for name, count in found}

    before = tx.read(status)
    for _ in range(5):
        assert tx.read(lambda connection: connection.exec_driver_sql("SELECT 1").scalar()) == 1
    after = tx.read(status)
    # five SELECTs and the second SHOW: no SET TRANSACTION, COMMIT or ROLLBACK around them
    assert after["Questions"] - before["Questions"] == 6
    assert after["Com_rollback"] == before["Com_rollback"]
    assert after["Com_commit"] == before["Com_commit"]
    assert after["Com_set_option"] == before["Com_set_option"]


@pytest.mark.mysql
def test_a_read_on_a_connection_the_server_dropped_is_made_again(
    one_reading_connection: Database, mysql_url: URL
):
    tx = TransactionManager(one_reading_connection, max_retries=0)

    def connection_id(connection) -> int:
        return int(connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar())

    dropped = tx.read(connection_id)
    admin = create_engine(mysql_url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"KILL CONNECTION {dropped}")
    finally:
        admin.dispose()
    assert tx.read(connection_id) != dropped  # no pre-ping drew the dead one: read again
