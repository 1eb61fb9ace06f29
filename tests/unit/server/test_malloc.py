"""server/malloc.py: a password check's memory goes back to the system when it ends."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Four serving threads alive at once, each checking a password in turn (Passwords lets one
# hash run at a time), with the default memory for a hash (7 MiB); prints how many KiB the
# process's resident memory grew by.
HASH_KIB = 7168

SCRIPT = f"""
import sys, threading
from server import malloc
from service.security import Passwords

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 1024

if sys.argv[1] == "fixed":
    assert malloc.map_large_blocks()
passwords = Passwords(1, {HASH_KIB}, 1)
passwords.hash("warm-up-1")  # the first large block: mapped either way
start = rss_kib()
threads = [threading.Thread(target=passwords.hash, args=("Passw0rd",)) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(rss_kib() - start)
"""


def grown_kib(how: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, how],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_password_checks_in_several_threads_leave_no_memory_behind() -> None:
    # The premise: left to itself, glibc keeps at least two of the hashes' memory.
    assert grown_kib("default") > 2 * HASH_KIB
    # Fixed: less than half of one hash's memory remains.
    assert grown_kib("fixed") < HASH_KIB // 2


def test_elsewhere_it_says_it_changed_nothing(monkeypatch) -> None:
    import ctypes

    from server import malloc

    def no_c_library(name):
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_c_library)
    assert malloc.map_large_blocks() is False
