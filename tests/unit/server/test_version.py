"""One version: the package's, the OpenAPI document's, the published and the last released
contract's are all server/version.py's VERSION."""

import json
from importlib import metadata
from pathlib import Path

from server import compat
from server.app import openapi_document
from server.version import VERSION

ROOT = Path(__file__).resolve().parents[3]


def test_the_package_version_is_the_contract_version(platform) -> None:
    assert metadata.version("p2p-platform") == VERSION  # setup.cfg reads server/version.py
    assert openapi_document(platform)["info"]["version"] == VERSION
    published = json.loads((ROOT / compat.OPENAPI).read_text("utf-8"))
    assert published["info"]["version"] == VERSION


def test_the_setup_file_names_no_version_of_its_own() -> None:
    lines = (ROOT / "setup.cfg").read_text("utf-8").splitlines()
    assert [line for line in lines if line.startswith("version")] == [
        "version = attr: server.version.VERSION"
    ]
