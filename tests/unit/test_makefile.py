"""The Makefile as a newcomer meets it: `make help` names the port the targets will use, never
a literal $(PORT), and `make demo` walks against the port `make run` serves on."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str) -> str:
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_help_names_the_port_not_a_variable() -> None:
    default, chosen = make("help"), make("help", "PORT=9123")
    assert "$(" not in default and "$(" not in chosen
    assert "127.0.0.1:8080" in default
    assert "127.0.0.1:9123" in chosen and "8080" not in chosen
    assert "make demo" in default


def test_demo_walks_against_the_port_make_run_serves_on() -> None:
    planned = make("-n", "demo", "PORT=9123")  # printed, not run
    assert "p2p demo --base-url http://127.0.0.1:9123 --create-operator" in planned
