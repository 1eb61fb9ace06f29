"""A worker protects itself from slow clients (server/httpserver.py), here with a small
server.connection_limit: /health answers 503 SATURATED near the limit and UP when
connections fall; more half-sent requests than the limit are each cut once they have taken
server.request_timeout to arrive, however they trickle; then the worker serves as before.
Real sockets against a real server; every wait is bounded polling, never a timing check."""

from __future__ import annotations

import select
import socket
import time

import pytest
import requests
from requests.structures import CaseInsensitiveDict

pytestmark = pytest.mark.slow

LIMIT = 10  # server.connection_limit: /health is SATURATED from 9 connections
DEADLINE = 3  # server.request_timeout, seconds
PATIENCE = 60  # the longest any wait below polls, seconds
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
LOAN_NS = "http://p2p.hry.com/facade/p2p"


@pytest.fixture(scope="module")
def worker(tmp_path_factory, processes):
    workdir = tmp_path_factory.mktemp("slow-clients")
    settings = [
        f"database.url=sqlite:///{workdir / 'p2p.db'}",
        f"server.connection_limit={LIMIT}",
        f"server.request_timeout={DEADLINE}",
        "server.channel_timeout=600",  # idle connections stay: only the deadline cuts
    ]
    started = processes.start_server("embedded", workdir, settings, operator=False)
    yield started.server
    started.stop()


def health(server) -> requests.Response:
    return requests.get(server.url("/health"), timeout=PATIENCE)


def eventually(condition) -> None:
    stop = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < stop, "not within the polling bound"
        time.sleep(0.1)


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)


def keep_alive(server) -> socket.socket:
    """A connection with one whole request answered, left open (HTTP/1.1 keep-alive)."""
    s = connect(server)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    received = b""
    while not received.endswith(b"}"):  # the whole JSON body of /health
        chunk = s.recv(65536)
        assert chunk, received
        received += chunk
    return s


def parse(raw: bytes) -> requests.Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    response = requests.Response()
    response.status_code = int(status_line.split()[1])
    response.headers = CaseInsensitiveDict(
        {name.strip(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    )
    response._content = body
    return response


def test_health_says_saturated_near_the_limit_and_up_again_below(worker):
    assert health(worker).status_code == 200
    held = [keep_alive(worker) for _ in range(LIMIT - LIMIT // 10 - 1)]  # /health's own: 9
    try:
        r = health(worker)
        assert r.status_code == 503, r.text
        assert r.json() == {
            "status": "DOWN",
            "checks": {"database": "UP", "cache": "UP", "server": "SATURATED"},
        }
    finally:
        for s in held:
            s.close()
    eventually(lambda: health(worker).status_code == 200)


HALF_SENT = {
    # headers that never end, on each protocol's path
    "rest-headers": (b"POST /api/v1/sessions HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", "rest"),
    "soap-headers": (b"POST /services/LoanFacade HTTP/1.1\r\nHost: localhost\r\n", "soap"),
    # a body that never ends
    "rest-body": (
        b"POST /api/v1/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json"
        b"\r\nContent-Length: 1000\r\nX-Request-Id: slow-body\r\n\r\n{",
        "rest",
    ),
    "soap-body": (
        b"POST /services/LoanFacade HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml"
        b"\r\nContent-Length: 1000\r\n\r\n<",
        "soap",
    ),
}


def test_half_sent_requests_are_cut_at_the_deadline_then_the_worker_serves(worker, checks):
    # More than the worker takes: LIMIT wait in the worker, the rest in the listen backlog
    # until the first are cut. Every third one trickles a byte while it waits, so it is
    # never idle: only the deadline for a whole request can end it.
    kinds = list(HALF_SENT)
    slow = {}
    for i in range(LIMIT + 4):
        s = connect(worker)
        s.sendall(HALF_SENT[kinds[i % len(kinds)]][0])
        slow[s] = (kinds[i % len(kinds)], i % 3 == 0)
    answers: dict[socket.socket, bytes] = {}
    stop = time.monotonic() + PATIENCE
    while len(answers) < len(slow):
        assert time.monotonic() < stop, f"{len(slow) - len(answers)} slow requests still open"
        waiting = [s for s in slow if s not in answers]
        readable, _, _ = select.select(waiting, [], [], 0.5)
        for s in waiting:
            if s in readable:
                answers[s] = read_to_close(s)
            elif slow[s][1]:
                try:
                    s.send(b"a")
                except OSError:
                    answers[s] = b""  # cut while we wrote: the answer may be lost
    for s, raw in answers.items():
        s.close()
        kind, trickling = slow[s]
        if trickling and not raw:
            continue  # closed with our unread bytes in flight: a reset, cut all the same
        r = parse(raw)
        if HALF_SENT[kind][1] == "soap":
            assert r.status_code == 408 and checks.fault(r).code == "REQUEST_TIMEOUT", raw
        else:
            body = checks.error(r, 408, "REQUEST_TIMEOUT")
            if kind == "rest-body":
                assert body["requestId"] == "slow-body"
    assert any(raw for raw in answers.values())

    # and the worker is itself again, on both protocols
    eventually(lambda: health(worker).status_code == 200)
    assert requests.get(worker.url("/api/v1/loans"), timeout=PATIENCE).status_code == 200
    envelope = (
        f'<s:Envelope xmlns:s="{ENV}"><s:Body><p:listLoans xmlns:p="{LOAN_NS}"/></s:Body>'
        "</s:Envelope>"
    )
    r = requests.post(
        worker.url("/services/LoanFacade"),
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=PATIENCE,
    )
    assert r.status_code == 200, r.text
    assert "REQUEST_TIMEOUT refused by the HTTP server" in worker.log_text()


def read_to_close(s: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := s.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received
