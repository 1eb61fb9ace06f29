"""The committed contracts (wsdl/, swagger/) are exactly what the code generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf import load_settings
from server.cli import export_contracts
from server.registry import discover_facades

ROOT = Path(__file__).resolve().parents[2]
HINT = "the committed contracts are out of date: run `make contracts` and commit the result"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What `make contracts` (P2P_ENV=test p2p export-contracts) writes, by relative path."""
    out = tmp_path_factory.mktemp("contracts")
    settings = load_settings({"P2P_ENV": "test"})
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in export_contracts(settings, out)}


def test_generated_contracts_cover_every_facade(generated: dict[str, bytes]) -> None:
    expected = {f"wsdl/{f.__name__}.wsdl" for f in discover_facades()} | {"swagger/openapi.json"}
    assert set(generated) == expected


def test_committed_contracts_equal_the_generated_ones(generated: dict[str, bytes]) -> None:
    stale = []
    for relative, content in sorted(generated.items()):
        committed = ROOT / relative
        if not committed.is_file():
            stale.append(f"{relative} is missing")
        elif committed.read_bytes() != content:
            stale.append(f"{relative} differs from the code")
    assert not stale, f"{HINT} ({'; '.join(stale)})"


def test_no_committed_wsdl_for_a_facade_that_no_longer_exists(
    generated: dict[str, bytes],
) -> None:
    committed = {f"wsdl/{p.name}" for p in (ROOT / "wsdl").iterdir() if p.is_file()}
    orphans = sorted(committed - set(generated))
    assert not orphans, f"{HINT}, after deleting {', '.join(orphans)}"
