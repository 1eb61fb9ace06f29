"""The simulator is a bank of its own: of the platform it imports the protocol's signing and
reading rules, nothing else (no settings, services, tables or server)."""

from __future__ import annotations

import json
import subprocess
import sys

OURS = ("banksim", "conf", "dao", "facade", "server", "service")


def test_the_simulator_imports_only_the_shared_protocol_of_ours() -> None:
    program = (
        "import json, sys, banksim.main, banksim.web\n"
        f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {OURS!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    imported = {name for name in json.loads(result.stdout) if not name.startswith("banksim")}
    assert imported == {"service", "service.ocp", "service.ocp.protocol", "service.ocp.signing"}
