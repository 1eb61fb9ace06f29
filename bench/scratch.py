"""A scratch MariaDB database of a bench script's own, made empty and dropped afterwards."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool


def mariadb_database(server_url: str, name: str, create: bool) -> str:
    """Drop the database ``name`` on the server at ``server_url`` and, when ``create``, make
    it again empty; its URL. The tables' own collations come from the migrations."""
    server = create_engine(server_url, poolclass=NullPool)
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            if create:
                conn.exec_driver_sql(
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
                )
    finally:
        server.dispose()
    return f"{server_url.rstrip('/')}/{name}"
