"""A partner's callback endpoint for tests: a real HTTP server on a free local port that
answers each POST as scripted (fail, time out, answer slowly, acknowledge) and keeps every
request it received (headers and raw body)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: What the receiver does with a request: answer 500, wait past the platform's read
#: timeout before answering, answer 200 a little later (within it), or answer 200.
FAIL, STALL, SLOW, ACK = "fail", "stall", "slow", "ack"


class Receiver:
    def __init__(self, stall_seconds: float, slow_seconds: float) -> None:
        self.script: list[str] = []
        self.received: list[tuple[dict[str, str], bytes, str]] = []
        self._stall, self._slow = stall_seconds, slow_seconds
        self._lock = threading.Lock()
        self.url = ""

    def next_action(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else ACK

    def acknowledged(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b, action in self.received if action in (SLOW, ACK)]


@contextmanager
def receiving(stall_seconds: float = 4.0, slow_seconds: float = 0.5) -> Iterator[Receiver]:
    receiver = Receiver(stall_seconds, slow_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            action = receiver.next_action()
            with receiver._lock:
                receiver.received.append((dict(self.headers.items()), body, action))
            if action == STALL:
                time.sleep(receiver._stall)
            elif action == SLOW:
                time.sleep(receiver._slow)
            status = 500 if action == FAIL else 200
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the platform gave up waiting: its connection is gone

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/p2p/callbacks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
