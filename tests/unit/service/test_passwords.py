"""Passwords: Argon2id hashes, at most `at_once` of them running in a worker at a time."""

from __future__ import annotations

import threading
import time

import pytest
from argon2 import PasswordHasher

from service.security import Passwords

# Fast parameters: what is tested here is the bound and the bookkeeping, not the strength.
FAST = (1, 8, 1)


class Gate:
    """Stands in for the hasher: each hash waits at the gate, counting who is inside."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.hashes = 0

    def hash(self, password: str) -> str:
        with self.lock:
            self.inside += 1
            self.hashes += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.open.wait(30)
        with self.lock:
            self.inside -= 1
        return "$argon2id$fake$" + password

    def verify(self, password_hash: str, password: str) -> bool:
        return self.hash(password) == password_hash


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the threads never got that far"
        time.sleep(0.005)


@pytest.mark.parametrize("at_once", [1, 2])
def test_no_more_than_at_once_hashes_run_however_many_threads_ask(at_once) -> None:
    passwords = Passwords(*FAST, at_once=at_once)
    gate = Gate()
    passwords._argon2 = gate
    threads = [threading.Thread(target=passwords.hash, args=(f"pw{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    wait_until(lambda: gate.inside == at_once)
    time.sleep(0.1)  # room for a thread the bound failed to hold back to get in
    assert gate.inside == at_once
    gate.open.set()
    for t in threads:
        t.join(30)
    assert gate.hashes == 6
    assert gate.most_inside == at_once


def test_verify_takes_a_turn_too() -> None:
    passwords = Passwords(*FAST, at_once=1)
    stored = passwords.hash("Passw0rd")
    gate = Gate()
    passwords._decoy = "$argon2id$fake$decoy"  # made already: only the checks are counted
    passwords._argon2 = gate
    checks = [
        threading.Thread(target=passwords.verify, args=(stored, "Passw0rd")) for _ in range(3)
    ]
    for t in checks:
        t.start()
    wait_until(lambda: gate.inside == 1)
    time.sleep(0.1)
    assert gate.inside == 1
    gate.open.set()
    for t in checks:
        t.join(30)
    assert gate.most_inside == 1


def test_nothing_is_hashed_at_start_and_the_decoy_is_made_once(monkeypatch) -> None:
    made = []
    real = PasswordHasher.hash
    monkeypatch.setattr(PasswordHasher, "hash", lambda self, pw: made.append(pw) or real(self, pw))
    passwords = Passwords(*FAST)
    assert made == []

    assert passwords.verify(None, "whatever1") is False
    assert len(made) == 1  # the decoy, by the first check
    stored = passwords.hash("Passw0rd")
    assert passwords.verify(stored, "Passw0rd") is True
    assert passwords.verify(None, "whatever2") is False
    assert passwords.verify(stored, "wrong-one1") is False
    assert len(made) == 2  # the decoy was kept; the second is the member's own


def test_a_hash_made_with_other_parameters_needs_a_rehash() -> None:
    today = Passwords(2, 16, 1)
    assert today.needs_rehash(today.hash("Passw0rd")) is False
    for other in ((1, 16, 1), (2, 32, 1), (2, 16, 2)):
        stored = Passwords(*other).hash("Passw0rd")
        assert today.needs_rehash(stored) is True
        assert today.verify(stored, "Passw0rd") is True  # it still proves the password
    assert today.needs_rehash("not-a-hash") is False


def test_checks_at_once_make_one_decoy_between_them(monkeypatch) -> None:
    made = []
    real = PasswordHasher.hash
    monkeypatch.setattr(PasswordHasher, "hash", lambda self, pw: made.append(pw) or real(self, pw))
    passwords = Passwords(*FAST, at_once=2)
    barrier = threading.Barrier(6)
    answers = []

    def check(n: int) -> None:
        barrier.wait()
        answers.append(passwords.verify(None, f"unknown{n}"))

    threads = [threading.Thread(target=check, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == [False] * 6
    assert len(made) == 1
