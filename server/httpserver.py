"""The waitress server around the application: its limits from the ``server`` settings, a
deadline for receiving a request, and our answers where waitress would answer itself.

- At most ``connection_limit`` client connections; more wait in the listen backlog. /health
  reports SATURATED from 90% of them (server/lifecycle.py's ``CONNECTIONS``).
- waitress closes a connection idle for ``channel_timeout`` seconds. A client that sends a
  byte every few seconds is never idle, though: a hundred of them would hold every connection
  for as long as they like (slowloris). So a request, request line, headers and body, must
  arrive whole within ``request_timeout`` seconds of its first byte; past that the worker
  answers 408 REQUEST_TIMEOUT and closes the connection.
- What waitress refuses before the application sees a request (a malformed request line or
  header, 400; headers over its limit, 431; a body over its ceiling, 413; a Transfer-Encoding
  other than chunked, 501) it would answer in plain text of its own. Those answers are ours
  here: a SOAP Fault on a SOAP path, a JSON error elsewhere (``error_answer``), with
  X-Request-Id, a message that quotes nothing of the request, and an access-log line.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import waitress
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error

from server.app import error_answer, protocol_of
from server.dispatcher import request_id
from server.lifecycle import CONNECTIONS, socket_map
from server.logformat import CALL_FIELDS
from service import errors
from service.errors import BusinessError

access = logging.getLogger("server.access")

#: waitress buffers a whole body before the application sees it, and refuses one over its
#: ``max_request_body_size`` from the Content-Length alone. Above server.max_body_bytes up to
#: this many times it, the application answers (PAYLOAD_TOO_LARGE after the operation is
#: known, counted and logged like every call); beyond, waitress does, with the same error.
BODY_CEILING = 4

# What each of waitress's refusals is in the catalogue; waitress's own texts quote the request.
_REFUSALS = {
    400: BusinessError(errors.MALFORMED_REQUEST, "the request is not well-formed HTTP"),
    408: BusinessError(errors.REQUEST_TIMEOUT),
    413: BusinessError(errors.PAYLOAD_TOO_LARGE),
    431: BusinessError(errors.HEADERS_TOO_LARGE),
    501: BusinessError(errors.NOT_IMPLEMENTED, "only the chunked Transfer-Encoding is supported"),
}
_TARGET = re.compile(rb"\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+ +([^ \r\n]+)")
_START = 1024  # bytes kept of a request's start: enough to read the path of its target


class RequestTimeout(Error):
    """waitress's kind of error for a request that did not arrive whole in time."""

    code = 408
    reason = "Request Timeout"


class Parser(HTTPRequestParser):
    """waitress's request parser, keeping the start of the request as it came: a refusal is
    answered by the protocol of its path, which waitress records only once it has parsed
    the request line and every header."""

    start = b""

    def received(self, data: bytes) -> int:
        if len(self.start) < _START:
            self.start += data[: _START - len(self.start)]
        return super().received(data)

    def target_path(self) -> str:
        """The path the request was sent to, or "" when its request line is unreadable."""
        match = _TARGET.match(self.start)
        try:
            return unquote(urlsplit(match[1].decode("latin-1")).path) if match else ""
        except ValueError:
            return ""


class Refusal(ErrorTask):
    """waitress's answer to a request it refuses, made ours (see the module docstring)."""

    def execute(self) -> None:
        refusal = _REFUSALS.get(self.request.error.code, BusinessError(errors.INTERNAL_ERROR))
        rid = request_id(self.request.headers.get("X_REQUEST_ID"))
        path = self.request.target_path()
        content_type = self.request.headers.get("CONTENT_TYPE", "")
        answer = error_answer(path, refusal, rid, content_type)
        body = answer.get_data()
        self.status = answer.status
        self.response_headers.extend(
            (name, value) for name, value in answer.headers if name != "Content-Length"
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        protocol = protocol_of(path, content_type)
        client = self.channel.addr[0]
        access.info(
            "%s %s - %s refused by the HTTP server client=%s",
            rid,
            protocol,
            refusal.code,
            client,
            extra={
                CALL_FIELDS: {
                    "requestId": rid,
                    "protocol": protocol,
                    "outcome": refusal.code,
                    "client": client,
                }
            },
        )


class Channel(HTTPChannel):
    """waitress's connection, with a deadline for each request to arrive whole."""

    parser_class = Parser
    error_task_class = Refusal
    request: Any  # waitress's parser of the request arriving, None between requests

    def __init__(self, server, sock, addr, adj, map=None, *, request_timeout: float):
        self.request_timeout = request_timeout
        self.receiving_since: float | None = None  # the first byte of the request coming in
        super().__init__(server, sock, addr, adj, map)

    def received(self, data: bytes) -> bool:
        before = self.request
        result = super().received(data)
        if self.request is None:
            self.receiving_since = None  # every request in `data` arrived whole
        elif self.request is not before:
            self.receiving_since = time.monotonic()  # a new request began in `data`
        return result

    def readable(self) -> bool:
        # The event loop asks every channel before each wait (at most asyncore_loop_timeout).
        since = self.receiving_since
        if (
            since is not None
            and not self.requests
            and time.monotonic() - since > self.request_timeout
        ):
            self._time_out()
        return super().readable()

    def _time_out(self) -> None:
        """Answer the request still arriving with 408 (then the connection closes), as
        waitress answers one it refuses."""
        with self.requests_lock:
            request = self.request
            self.request, self.receiving_since = None, None
            if request is None or self.will_close or self.close_when_flushed:
                return
            request.error = RequestTimeout(f"not received within {self.request_timeout} s")
            request.completed = True
            self.requests.append(request)
        self.server.add_task(self)


def create_server(app, settings):
    """A waitress server for `app` on the ``server`` settings (``ServerSettings``), with
    :class:`Channel` connections; /health watches them. Run it with lifecycle.serve."""
    # X-Forwarded-* must reach the app: server/proxy.py believes them from trusted_proxies
    # only (waitress would otherwise strip them all, so trusted_proxies could never work).
    server = waitress.create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        ident="p2p",
        max_request_body_size=settings.max_body_bytes * BODY_CEILING,
        clear_untrusted_proxy_headers=False,
        channel_timeout=settings.channel_timeout,
        # how often idle connections are looked for: often enough for channel_timeout
        cleanup_interval=max(1, min(30, settings.channel_timeout // 2)),
    )
    sockets = socket_map(server)
    listeners = [s for s in sockets.values() if isinstance(s, BaseWSGIServer)]
    for listener in listeners:
        listener.channel_class = functools.partial(
            Channel, request_timeout=settings.request_timeout
        )
    # waitress counts every socket of its map against connection_limit, its listening
    # sockets and wake-up pipes too: the setting counts client connections.
    server.adj.connection_limit = settings.connection_limit + len(sockets)
    CONNECTIONS.watch(listeners, settings.connection_limit)
    return server
