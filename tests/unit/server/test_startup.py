"""A worker imports only what its configuration uses (bench/startup.py measures what it saves)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

#: Loaded by a worker only when its configuration or a request needs them.
ON_DEMAND = (
    "alembic",  # p2p migrate
    "banksim.main",  # p2p bank-sim (its options alone are listed by `p2p --help`)
    "celery",  # the first job handed over
    "cryptography.hazmat",  # a PEM key set, the first RSA signature checked or secret sealed
    "sentry_sdk",  # sentry.dsn set
    "server.compat",  # p2p check-contracts, a facade's ?doc
    "server.contractdoc",  # a facade's ?doc, the changelog page
    "server.worker",  # the embedded job worker, p2p worker and beat
    "swagger_ui_bundle",  # the first /docs asset
    "urllib3",  # payment.gateway BANK, the first partner callback delivered
)

#: Never loaded by a worker: its contract is compiled by a child (server/contract.py).
NEVER = ("spyne", "facade.types", "server.declared")

_SCRIPT = """
import gc, json, sys
from server import cli
collecting = gc.isenabled()
from conf import load_settings
from server.app import create_app
from server.contract import compile_in_child
from werkzeug.test import Client
settings = load_settings({"P2P_ENV": "test"}, {"database.url": sys.argv[1]})
client = Client(create_app(settings, compile_in_child()))
loaded = {name: name in sys.modules for name in sys.argv[3:]}
client.get("/docs/swagger-ui.css")
client.get("/services/LoanFacade?doc")
client.get("/services/LoanFacade?wsdl")
client.get("/openapi.json")
after = {name: name in sys.modules for name in ("swagger_ui_bundle", "server.contractdoc")}
never = sorted(m for m in sys.modules if m.startswith(tuple(json.loads(sys.argv[2]))))
print(json.dumps({"at_start": loaded, "after_requests": after, "collecting": collecting,
                  "never": never}))
"""


@pytest.mark.parametrize("database", ["sqlite", "mysql"])
def test_a_worker_without_a_dsn_or_jobs_loads_none_of_what_it_does_not_use(
    tmp_path, database
) -> None:
    on_demand = ON_DEMAND
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'p2p.db'}"
    else:
        # Nothing connects at start: no server needs to answer at this address.
        url = "mysql+mysqldb://nobody@127.0.0.1:9/p2p"
        on_demand += ("sqlite3", "_sqlite3")  # the embedded job broker's, and SQLite's
    env = dict(os.environ, P2P_ENV="test", PYTHONPATH=str(ROOT))
    env.pop("SENTRY_DSN", None)
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, url, json.dumps(NEVER), *on_demand],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    assert [name for name, loaded in answer["at_start"].items() if loaded] == []
    # the garbage collector, paused while server/cli.py's imports load, runs again after them
    assert answer["collecting"] is True
    # and what a request needs is loaded when asked for
    assert answer["after_requests"] == {"swagger_ui_bundle": True, "server.contractdoc": True}
    # spyne, the facades' declarations and their reader: not at start, nor for any document
    assert answer["never"] == []
