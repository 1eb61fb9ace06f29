"""Which backend tiers the suite runs, decided once as the run starts (tests/conftest.py).

SQLite and the in-process cache always run. The MariaDB tier runs on P2P_TEST_DATABASE_URL and
the Redis tier on P2P_TEST_REDIS_URL; a variable that is not set is filled in when the server
answers at its standard address (MariaDB on 127.0.0.1:3306 as root without a password, Redis
on 127.0.0.1:6379), so a plain `make test` on a machine running both runs every tier. A
variable set explicitly wins, and one set empty opts that tier out without probing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

DATABASE_VARIABLE = "P2P_TEST_DATABASE_URL"
REDIS_VARIABLE = "P2P_TEST_REDIS_URL"
STANDARD_DATABASE_URL = "mysql+mysqldb://root@127.0.0.1:3306/p2p_test"
STANDARD_REDIS_URL = "redis://127.0.0.1:6379/0"
PROBE_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class Tier:
    """One backend tier: the URL it runs on ("" when skipped) and how that was decided."""

    name: str
    variable: str
    url: str
    reason: str

    def line(self) -> str:
        if self.url:
            return f"{self.name} tier runs on {self.url} ({self.reason})"
        return f"{self.name} tier skipped: {self.reason}"


def probe_mariadb(url: str) -> str:
    """'' when the MariaDB server of `url` answers, else why not."""
    try:
        import MySQLdb
    except ImportError:
        return (
            "the MySQL driver (mysqlclient) is not installed: apt-get install libmariadb-dev "
            "pkg-config, then make test installs it"
        )
    from sqlalchemy.engine import make_url

    server = make_url(url)
    try:
        MySQLdb.connect(
            host=server.host,
            port=server.port,
            user=server.username,
            connect_timeout=PROBE_TIMEOUT_SECONDS,
        ).close()
    except MySQLdb.Error as e:
        return f"no MariaDB answers at {server.host}:{server.port} as {server.username} ({e})"
    return ""


def probe_redis(url: str) -> str:
    """'' when the Redis server of `url` answers, else why not."""
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as e:
        return f"no Redis answers at {url} ({e})"
    finally:
        client.close()
    return ""


def decide(
    name: str,
    variable: str,
    standard_url: str,
    probe: Callable[[str], str],
    environ: MutableMapping[str, str],
) -> Tier:
    """The tier named `name`; sets `variable` in `environ` when the standard server answers."""
    given = environ.get(variable)
    if given:
        return Tier(name, variable, given, f"{variable} is set")
    if given is not None:
        return Tier(name, variable, "", f"{variable} is set empty (opted out)")
    problem = probe(standard_url)
    if problem:
        return Tier(name, variable, "", f"{problem}; or set {variable}")
    environ[variable] = standard_url
    return Tier(name, variable, standard_url, f"found at its standard address; {variable} unset")


def detect(environ: MutableMapping[str, str] = os.environ) -> list[Tier]:
    """The MariaDB and Redis tiers, with `environ` completed for the tests and the servers
    they start."""
    return [
        decide("MariaDB", DATABASE_VARIABLE, STANDARD_DATABASE_URL, probe_mariadb, environ),
        decide("Redis", REDIS_VARIABLE, STANDARD_REDIS_URL, probe_redis, environ),
    ]
