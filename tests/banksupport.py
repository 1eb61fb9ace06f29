"""What the depository bank's tests share: fixed test keys of both sides, the platform's
settings for a bank at a URL, a WSGI app served from a thread, a notification receiver, and
``p2p bank-sim`` as a separate process."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from conf import Settings, load_settings
from service.ocp import protocol
from service.ocp.signing import generate_keypair

MERCHANT = "P2PTEST"
PLATFORM_KEY_ID = "platform-test"
BANK_KEY_ID = "bank-test"
PLATFORM_PRIVATE, PLATFORM_PUBLIC = generate_keypair()
BANK_PRIVATE, BANK_PUBLIC = generate_keypair()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def platform_settings(bank_url: str, notify_url: str = "", **bank: object) -> Settings:
    """The platform's settings for the bank at ``bank_url`` with the test keys; ``bank``
    overrides other [bank] keys by name."""
    overrides = {
        "payment.gateway": "BANK",
        "bank.url": bank_url,
        "bank.merchant_id": MERCHANT,
        "bank.platform_key_id": PLATFORM_KEY_ID,
        "bank.platform_private_key": PLATFORM_PRIVATE.decode(),
        "bank.bank_public_keys": {BANK_KEY_ID: BANK_PUBLIC.decode()},
        "bank.notify_url": notify_url or "http://127.0.0.1:9/bank/notify",
        **{f"bank.{key}": value for key, value in bank.items()},
    }
    return load_settings({"P2P_ENV": "test"}, overrides)


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve the WSGI ``app`` from a thread on a free port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Receiver:
    """The platform's notify endpoint in miniature: verifies each notification with the
    client, keeps it, and acknowledges it unless ``refuse`` says how many to refuse first."""

    client: object
    received: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    refuse: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        try:
            message = self.client.verify_notification(body, request.headers)
        except protocol.REFUSALS as refused:
            with self.lock:
                self.refused.append(type(refused).__name__)
            return Response("refused", status=400)(environ, start_response)
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                return Response("not now", status=503)(environ, start_response)
            self.received.append(message)
        ack, headers = self.client.acknowledgement(message["notifyId"])
        return Response(ack, headers=headers)(environ, start_response)

    def statuses(self, order_no: str) -> list[str]:
        with self.lock:
            return [m["status"] for m in self.received if m["orderNo"] == order_no]


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> object:
    """Poll ``condition`` until it is truthy (its value), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.05)


@dataclass
class BankSim:
    """A running ``p2p bank-sim`` process."""

    url: str
    proc: subprocess.Popen
    log_path: Path

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, timeout=10, **kwargs)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_bank_sim(workdir: Path, *options: str) -> BankSim:
    """Start ``p2p bank-sim`` with the test keys (written into ``workdir``) and ``options``;
    returns once it answers /health."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "bank.pem").write_bytes(BANK_PRIVATE)
    (workdir / "bank.pub.pem").write_bytes(BANK_PUBLIC)
    (workdir / "platform.pub.pem").write_bytes(PLATFORM_PUBLIC)
    port = free_port()
    log_path = workdir / "bank-sim.log"
    command = [
        *(str(Path(sys.executable).parent / "p2p"), "bank-sim"),
        *("--port", str(port), "--data", str(workdir / "bank.db")),
        *("--keys-dir", str(workdir), "--key-id", BANK_KEY_ID, "--merchant-id", MERCHANT),
        *("--platform-key", f"{PLATFORM_KEY_ID}={workdir / 'platform.pub.pem'}"),
        *options,
    ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    sim = BankSim(f"http://127.0.0.1:{port}", proc, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"bank-sim exited: {log_path.read_text()}")
        try:
            return requests.get(sim.url + "/health", timeout=1).ok
        except requests.ConnectionError:
            return False

    wait_for(up)
    return sim
