"""Who is calling and under what address we are seen, believing forwarded headers only
when they come from a trusted load balancer."""

import ipaddress
from collections.abc import Sequence


def _trusted(addr: str, networks: Sequence) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in n for n in networks)


class Proxies:
    def __init__(self, trusted: Sequence, public_url: str = ""):
        self._trusted = tuple(trusted)
        self._public_url = public_url.rstrip("/")

    def client_addr(self, environ) -> str:
        """The real client: REMOTE_ADDR, or, behind trusted proxies, the nearest untrusted
        address in X-Forwarded-For (read right to left, so a client cannot forge it)."""
        peer = environ.get("REMOTE_ADDR", "-")
        if not _trusted(peer, self._trusted):
            return peer
        hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not _trusted(hop, self._trusted):
                return hop
        return hops[0] if hops else peer

    def base_url(self, environ) -> str:
        """Our external base URL: the configured one, else X-Forwarded-Proto/Host from a
        trusted proxy, else this request's own scheme and Host. Computed per request."""
        if self._public_url:
            return self._public_url
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "localhost")
        if _trusted(environ.get("REMOTE_ADDR", ""), self._trusted):
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip()
            fwd_host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
            scheme = proto if proto in ("http", "https") else scheme
            host = fwd_host or host
        return f"{scheme}://{_safe_host(host)}"


def _safe_host(host: str) -> str:
    """The Host value if it is fit for a URL (letters, digits, . - : [ ]), else localhost."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
    return host if host and len(host) <= 255 and set(host) <= allowed else "localhost"
