"""The contract compiled by a child process (server/contract.py), as ``p2p serve`` has it: the
same documents as compiled in process (tests/unit/server/test_startup.py: a worker built on it
never imports spyne)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf import load_settings
from server import contract
from server.app import create_platform, openapi_document
from server.contract import ContractError, compile_in_child
from server.contractdoc import Links, facade_document
from server.version import VERSION
from server.wsdl import Wsdl

ROOT = Path(__file__).resolve().parents[3]
BASE = "http://platform.test"


@pytest.fixture(scope="module")
def from_child(tmp_path_factory: pytest.TempPathFactory):
    database = tmp_path_factory.mktemp("child") / "p2p.db"
    settings = load_settings({"P2P_ENV": "test"}, {"database.url": f"sqlite:///{database}"})
    built = create_platform(settings, contract=compile_in_child())
    yield built
    built.close()


def test_a_child_s_contract_serves_the_documents_compiled_in_process(platform, from_child) -> None:
    assert [f.name for f in from_child.facades] == [f.name for f in platform.facades]
    names = [f.name for f in platform.facades]
    links = Links(BASE)
    for here, there in zip(platform.facades, from_child.facades, strict=True):
        path = f"/services/{here.name}"
        assert Wsdl(there).render(BASE, path) == Wsdl(here).render(BASE, path), here.name
        page = facade_document(there, VERSION, links, names)
        assert page == facade_document(here, VERSION, links, names), here.name
        for a, b in zip(here.operations, there.operations, strict=True):
            served = (b.operation, b.fault_codes, b.method.__qualname__, b.commands)
            assert served == (a.operation, a.fault_codes, a.method.__qualname__, a.commands)
    assert openapi_document(from_child) == openapi_document(platform)


def test_a_child_that_cannot_compile_says_why(monkeypatch) -> None:
    monkeypatch.setattr(contract, "CHILD_MODULE", "server.no_such_module")
    with pytest.raises(ContractError, match=r"No module named server\.no_such_module"):
        compile_in_child()


def test_a_child_that_writes_something_else_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(contract, "CHILD_MODULE", "this")  # prints the Zen of Python
    with pytest.raises(ContractError, match="the child wrote no contract"):
        compile_in_child()
