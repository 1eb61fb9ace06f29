"""Fixtures for the framework's unit tests: the bound facades, and an app on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from conf import load_settings
from dao import migrate
from server.app import Platform, create_app, create_platform


def _settings(directory: Path, **overrides: object):
    values = {"database.url": f"sqlite:///{directory / 'p2p.db'}", **overrides}
    return load_settings({"P2P_ENV": "test"}, values)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Every facade bound to its service (the database is never touched)."""
    built = create_platform(_settings(tmp_path_factory.mktemp("platform")))
    yield built
    built.close()


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator:
    """Factory: a werkzeug test client on create_app over a migrated SQLite file."""
    apps = []

    def factory(**overrides: object) -> Client:
        settings = _settings(tmp_path, **overrides)
        migrate.upgrade(settings.database.url)
        app = create_app(settings)
        apps.append(app)
        return Client(app)

    yield factory
    for app in apps:
        app.platform.close()


@pytest.fixture
def client(make_client) -> Client:
    return make_client()
