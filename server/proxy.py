"""Who is calling and under what address we are seen, believing forwarded headers only
when they come from a trusted load balancer."""

import functools
import ipaddress
import socket
from collections.abc import Sequence

PEERS_KEPT = 256


def _address(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(addr: str, networks: Sequence) -> bool:
    if not networks:
        return False
    ip = _address(addr)
    return ip is not None and any(ip in n for n in networks)


def listen_authority(host: str, port: int) -> str:
    """``host:port`` of a listening socket as a URL's authority: an IPv6 address bracketed, a
    wildcard address (0.0.0.0, ::) replaced by this machine's name."""
    ip = _address(host)
    if ip is not None and ip.is_unspecified:
        host = socket.gethostname()
    elif ip is not None and ip.version == 6:
        host = f"[{host}]"
    return f"{host}:{port}"


class Proxies:
    def __init__(self, trusted: Sequence, public_url: str = "", server: str = "localhost"):
        """``server`` is the authority this worker listens on, for a request without Host."""
        self._trusted = tuple(trusted)
        # Whether a connection's peer (the balancer, or without one the client: an address
        # from the socket, never a caller's text) is trusted, kept for the peers seen most.
        self._peer_trusted = functools.lru_cache(maxsize=PEERS_KEPT)(
            lambda peer: _trusted(peer, self._trusted)
        )
        self._public_url = public_url.rstrip("/")
        self._server = server

    @classmethod
    def from_settings(cls, server) -> "Proxies":
        """From the ``server.*`` settings."""
        return cls(
            server.trusted_proxies, server.public_url, listen_authority(server.host, server.port)
        )

    def client_addr(self, environ) -> str:
        """The real client: REMOTE_ADDR, or, behind trusted proxies, the nearest untrusted
        address in X-Forwarded-For (read right to left, so a client cannot forge it). A hop
        that is not an address ends the walk at the last one believed: it is logged, and must
        never carry a caller's text into the log."""
        peer = environ.get("REMOTE_ADDR", "-")
        if not self._peer_trusted(peer):
            return peer
        hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        believed = peer
        for hop in reversed(hops):
            ip = _address(hop)
            if ip is None:
                return believed
            if not _trusted(hop, self._trusted):
                return str(ip)
            believed = str(ip)
        return believed

    def base_url(self, environ) -> str:
        """Our external base URL: the configured one, else X-Forwarded-Proto/Host from a
        trusted proxy, else this request's own scheme and Host, else (no Host: HTTP/1.0) the
        address this worker listens on. Computed per request; scheme and host, which are
        case-insensitive, in lower case."""
        if self._public_url:
            return self._public_url
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or self._server
        if self._peer_trusted(environ.get("REMOTE_ADDR", "")):
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
            fwd_host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
            scheme = proto if proto in ("http", "https") else scheme
            host = fwd_host or host
        return f"{scheme}://{_safe_host(host.lower())}"


def _safe_host(host: str) -> str:
    """The Host value if it is fit for a URL (letters, digits, . - : [ ]), else localhost."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
    return host if host and len(host) <= 255 and set(host) <= allowed else "localhost"
