"""A graceful stop for waitress, which on its own dies at SIGTERM with requests half done.

On SIGTERM (supervisord's stopsignal) or SIGINT the worker:

1. reports itself not ready: /health answers 503 ``STOPPING`` from now on, so a balancer
   that is still checking it takes it out of rotation;
2. keeps accepting for ``drain_seconds`` (0: not at all), long enough for the balancer's
   checks to notice (HAProxy: ``fall`` x ``inter``);
3. closes its listening sockets: a new connection is refused, which HAProxy treats as a
   connection failure and redispatches to another worker;
4. lets the requests already received finish, closing each connection once it is idle,
   for at most ``grace_seconds``;
5. stops the worker threads and returns, so the process exits 0.

The event loop keeps running through 2-4: waitress's worker threads hand their responses to
it to send, so stopping the loop first would lose exactly the answers we wait for.

This module also keeps the rest of what /health reads of the worker itself: the client
connections it holds against its limit (:data:`CONNECTIONS`, fed by server/httpserver.py).
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

log = logging.getLogger("p2p.lifecycle")

#: Set once a stop has been asked for; /health reads it (readiness fails while stopping).
STOPPING = threading.Event()


class Connections:
    """The client connections of this worker's listeners against its connection limit (set
    by server/httpserver.py when it serves). Saturated from 90% of the limit: /health then
    answers 503 while the worker still accepts, so the balancer sends elsewhere before
    connections have to wait in the listen backlog, and ready again when they fall."""

    def __init__(self) -> None:
        self._listeners: tuple = ()
        self.limit = 0

    def watch(self, listeners, limit: int) -> None:
        self._listeners, self.limit = tuple(listeners), limit

    @property
    def high_water(self) -> int:
        return self.limit - self.limit // 10

    def open(self) -> int:
        # len() of the loop thread's dict is atomic: safe from a worker thread.
        return sum(len(listener.active_channels) for listener in self._listeners)

    def saturated(self) -> bool:
        return bool(self._listeners) and self.open() >= self.high_water


#: This process's connections; /health reads them.
CONNECTIONS = Connections()


def socket_map(server) -> dict:
    """The socket map of a waitress server (one listener) or MultiSocketServer (several)."""
    return server.map if hasattr(server, "map") else server._map


def _busy(channel: HTTPChannel) -> bool:
    """A request received or being received, or a response not yet sent."""
    return bool(channel.requests or channel.request is not None or channel.total_outbufs_len)


def serve(server, *, drain_seconds: float = 0.0, grace_seconds: float = 30.0) -> bool:
    """Run ``server`` (from ``waitress.create_server``) until SIGTERM/SIGINT, then stop
    gracefully. Returns True when every in-flight request finished within the grace period."""
    sockets = socket_map(server)
    adj = server.adj
    tick = min(adj.asyncore_loop_timeout, 0.2)

    def ask_stop(signum, _frame) -> None:
        # Only set a flag: the handler runs between two bytecodes of the event loop, which
        # may hold waitress's locks. The loop below notices within one tick.
        if not STOPPING.is_set():
            log.info("%s received: stopping gracefully", signal.Signals(signum).name)
        STOPPING.set()

    previous = {s: signal.signal(s, ask_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.print_listen("Serving on http://{}:{}")
        while not STOPPING.is_set():
            wasyncore.loop(timeout=tick, map=sockets, use_poll=adj.asyncore_use_poll, count=1)

        drain_until = time.monotonic() + drain_seconds
        if drain_seconds > 0:
            log.info("draining for %.1f s: /health answers 503, still accepting", drain_seconds)
        while time.monotonic() < drain_until:
            wasyncore.loop(timeout=tick, map=sockets, use_poll=adj.asyncore_use_poll, count=1)

        for listener in [d for d in sockets.values() if isinstance(d, BaseWSGIServer)]:
            # dispatcher.close, not listener.close: the latter also closes the trigger that
            # wakes this loop when a worker thread has a response ready.
            wasyncore.dispatcher.close(listener)
        log.info("listening sockets closed; waiting for in-flight requests")

        deadline = time.monotonic() + grace_seconds
        while True:
            channels = [c for c in sockets.values() if isinstance(c, HTTPChannel)]
            for channel in channels:
                if not _busy(channel):
                    channel.will_close = True  # idle keep-alive connection: close it
            if not channels or time.monotonic() >= deadline:
                break
            wasyncore.loop(timeout=tick, map=sockets, use_poll=adj.asyncore_use_poll, count=1)

        unfinished = sum(1 for c in sockets.values() if isinstance(c, HTTPChannel) and _busy(c))
        if unfinished:
            log.warning("grace period of %.1f s over: %d request(s) cut", grace_seconds, unfinished)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        wasyncore.close_all(sockets)
        log.info("stopped")
        return unfinished == 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
