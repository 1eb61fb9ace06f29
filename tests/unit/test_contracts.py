"""The committed contracts (wsdl/, swagger/) and the documents generated from them
(docs/contracts/) are exactly what the code generates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conf import load_settings
from server.cli import export_contracts, export_docs, main
from server.declared import discover_facades

ROOT = Path(__file__).resolve().parents[2]
HINT = "the committed contracts are out of date: run `make contracts` and commit the result"
DOCS_HINT = "the committed documents are out of date: run `make docs` and commit the result"
DOCS = Path("docs") / "contracts"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What `make contracts` (P2P_ENV=test p2p export-contracts) writes, by relative path."""
    out = tmp_path_factory.mktemp("contracts")
    settings = load_settings({"P2P_ENV": "test"})
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in export_contracts(settings, out)}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What `make docs` (P2P_ENV=test p2p export-docs) writes, by relative path."""
    out = tmp_path_factory.mktemp("documents")
    settings = load_settings({"P2P_ENV": "test"})
    written = export_docs(settings, ROOT, out)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in written}


def stale(generated: dict[str, bytes]) -> list[str]:
    """The generated files the repository lacks, or holds otherwise."""
    found = []
    for relative, content in sorted(generated.items()):
        committed = ROOT / relative
        if not committed.is_file():
            found.append(f"{relative} is missing")
        elif committed.read_bytes() != content:
            found.append(f"{relative} differs from the code")
    return found


def test_generated_contracts_cover_every_facade(generated: dict[str, bytes]) -> None:
    expected = {f"wsdl/{f.__name__}.wsdl" for f in discover_facades()} | {"swagger/openapi.json"}
    assert set(generated) == expected


def test_committed_contracts_equal_the_generated_ones(generated: dict[str, bytes]) -> None:
    found = stale(generated)
    assert not found, f"{HINT} ({'; '.join(found)})"


def test_no_committed_wsdl_for_a_facade_that_no_longer_exists(
    generated: dict[str, bytes],
) -> None:
    committed = {f"wsdl/{p.name}" for p in (ROOT / "wsdl").iterdir() if p.is_file()}
    orphans = sorted(committed - set(generated))
    assert not orphans, f"{HINT}, after deleting {', '.join(orphans)}"


def test_generated_documents_cover_every_facade_and_the_changelog(
    documents: dict[str, bytes],
) -> None:
    expected = {(DOCS / f"{f.__name__}.html").as_posix() for f in discover_facades()}
    assert set(documents) == expected | {(DOCS / "changelog.html").as_posix()}


def test_committed_documents_equal_the_generated_ones(documents: dict[str, bytes]) -> None:
    found = stale(documents)
    assert not found, f"{DOCS_HINT} ({'; '.join(found)})"


def test_no_committed_document_for_a_facade_that_no_longer_exists(
    documents: dict[str, bytes],
) -> None:
    committed = {(DOCS / p.name).as_posix() for p in (ROOT / DOCS).iterdir() if p.is_file()}
    orphans = sorted(committed - set(documents))
    assert not orphans, f"{DOCS_HINT}, after deleting {', '.join(orphans)}"


def test_the_command_writes_the_documents(tmp_path: Path, capsys) -> None:
    assert main(["export-docs", "--root", str(ROOT), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / DOCS / name) for name in sorted(os.listdir(ROOT / DOCS))]
    for name in printed:
        assert Path(name).read_bytes() == (ROOT / DOCS / Path(name).name).read_bytes()
