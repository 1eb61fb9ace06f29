"""SIGTERM stops ``p2p serve`` gracefully: readiness fails at once, new connections are
refused after the drain period, a request already in flight still completes, exit code 0."""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid

import pytest
import requests

pytestmark = pytest.mark.slow

DRAIN_SECONDS = 0.5


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_finishes_in_flight_request_and_exits_0(tmp_path, processes):
    # Argon2id made deliberately slow: registering takes seconds, so it is in flight when
    # SIGTERM arrives.
    started = processes.start_server(
        "embedded",
        tmp_path,
        [
            f"database.url=sqlite:///{tmp_path / 'p2p.db'}",
            "security.argon2_time_cost=60",
            "security.argon2_memory_kib=65536",
            "security.argon2_parallelism=1",
            f"server.drain_seconds={DRAIN_SECONDS}",
            "server.shutdown_timeout=60",
        ],
        operator=False,
    )
    server = started.server
    slow: dict = {}

    mobile = f"137{time.time_ns() % 10**8:08d}"
    sent = requests.post(
        server.url("/api/v1/verification-codes"),
        json={"mobile": mobile, "purpose": "REGISTER"},
        timeout=30,
    )
    assert sent.status_code == 201, sent.text

    def register() -> None:
        body = {
            "mobile": mobile,
            "password": "Passw0rd" + uuid.uuid4().hex[:6],
            "verificationCode": server.last_code(mobile, "REGISTER"),
        }
        body["role"] = "INVESTOR"
        slow["response"] = requests.post(server.url("/api/v1/members"), json=body, timeout=120)
        slow["done_at"] = time.monotonic()

    try:
        thread = threading.Thread(target=register)
        thread.start()
        time.sleep(0.5)  # the request reaches the app and starts hashing
        term_at = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)

        # Draining: still accepting, but not ready, so a balancer takes the worker out.
        health = None
        while time.monotonic() < term_at + DRAIN_SECONDS + 5:
            health = requests.get(server.url("/health"), timeout=5)
            if health.status_code == 503:
                break
            time.sleep(0.05)
        assert health is not None and health.status_code == 503, health and health.text
        assert health.json()["checks"]["server"] == "STOPPING"

        # Then the listening socket closes: a new connection is refused.
        refused_at = None
        while time.monotonic() < term_at + DRAIN_SECONDS + 10:
            if _refused(server.port):
                refused_at = time.monotonic()
                break
            time.sleep(0.05)
        assert refused_at is not None, "the listening socket was never closed"

        thread.join(timeout=120)
        assert "response" in slow, "the in-flight request never completed"
        assert slow["response"].status_code == 201, slow["response"].text
        # It really was in flight across the stop: answered after SIGTERM and after new
        # connections were already being refused.
        assert slow["done_at"] > refused_at > term_at

        assert server.proc.wait(timeout=30) == 0
        log = server.log_text()
        assert "SIGTERM received: stopping gracefully" in log
        assert "stopped" in log
        assert "cut" not in log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        started.stop()
