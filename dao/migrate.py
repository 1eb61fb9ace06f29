"""Apply, revert and inspect schema migrations for a database URL (alembic, in code)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, pool
from sqlalchemy.engine import Connection

from dao.base import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _run(url: str, action: Callable[[Config], None]) -> None:
    # NullPool: a migration is a one-off; nothing should linger in a pool afterwards.
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            action(_config(connection))
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest)."""
    _run(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops everything)."""
    _run(url, lambda config: command.downgrade(config, revision))


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None before the first migration."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    """The newest revision in dao/migrations/versions."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def entity_metadata() -> MetaData:
    """The metadata of every entity in dao/ (each module imported), for schema comparison."""
    import dao

    for info in pkgutil.iter_modules(dao.__path__, "dao."):
        if info.name != "dao.migrations":
            importlib.import_module(info.name)
    return Base.metadata
