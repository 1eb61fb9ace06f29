"""Client address and external base URL, believing forwarded headers from trusted peers only."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from conf import load_settings
from server.proxy import Proxies, listen_authority

LB = "10.0.0.5"
TRUSTED = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("::1/128"))


def environ(peer: str, **headers: str) -> dict:
    env = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http", "SERVER_NAME": "worker1"}
    env.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return env


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # An untrusted peer's X-Forwarded-For is ignored entirely.
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),
        # Behind the balancer: the nearest untrusted hop, read right to left.
        (LB, "198.51.100.1", "198.51.100.1"),
        (LB, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client forged the first entry
        (LB, "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),  # two trusted proxies
        (LB, " 198.51.100.1 ,, ", "198.51.100.1"),
        (LB, "10.0.0.7, 10.0.0.8", "10.0.0.7"),  # every hop trusted: the first
        (LB, "", LB),
        ("::1", "2001:db8::1", "2001:db8::1"),
        (LB, "garbage, 198.51.100.1", "198.51.100.1"),
        # Not an address: the walk ends at the last hop believed, and no caller's text
        # reaches the access log (" member=1" would forge a field).
        (LB, "198.51.100.1, garbage", LB),
        (LB, "198.51.100.1, 10.0.0.9, 1.2.3.4 member=1", LB),
        (LB, "198.51.100.1, bad, 10.0.0.9", "10.0.0.9"),
        (LB, "2001:DB8::1", "2001:db8::1"),  # written in its normal form
    ],
)
def test_client_addr(peer: str, xff: str, expected: str) -> None:
    proxies = Proxies(TRUSTED)
    assert proxies.client_addr(environ(peer, x_forwarded_for=xff)) == expected


def test_client_addr_without_any_trusted_proxy() -> None:
    env = environ(LB, x_forwarded_for="198.51.100.1")
    assert Proxies(()).client_addr(env) == LB


def test_base_url_prefers_the_configured_public_url() -> None:
    proxies = Proxies(TRUSTED, "https://api.example.com/")
    env = environ(LB, host="worker1:8080", x_forwarded_host="lb.example", x_forwarded_proto="http")
    assert proxies.base_url(env) == "https://api.example.com"


def test_base_url_from_a_trusted_proxys_forwarded_headers() -> None:
    env = environ(
        LB,
        host="worker1:8080",
        x_forwarded_host="api.example.com, inner.example",
        x_forwarded_proto="https",
    )
    assert Proxies(TRUSTED).base_url(env) == "https://api.example.com"


def test_base_url_never_from_an_untrusted_callers_forwarded_headers() -> None:
    env = environ(
        "203.0.113.7",
        host="worker1:8080",
        x_forwarded_host="evil.example",
        x_forwarded_proto="https",
    )
    assert Proxies(TRUSTED).base_url(env) == "http://worker1:8080"


@pytest.mark.parametrize(("proto", "scheme"), [("HTTPS", "https"), ("Http", "http")])
def test_base_url_reads_the_forwarded_scheme_in_any_case(proto: str, scheme: str) -> None:
    env = environ(LB, host="worker1", x_forwarded_host="API.Example.com", x_forwarded_proto=proto)
    assert Proxies(TRUSTED).base_url(env) == f"{scheme}://api.example.com"


def test_base_url_without_a_host_is_the_servers_own_address() -> None:
    """An HTTP/1.0 request names no Host: waitress's SERVER_NAME (waitress.invalid) is no
    address, the one the worker listens on is."""
    env = environ("203.0.113.7")
    env["SERVER_NAME"] = "waitress.invalid"
    assert Proxies(TRUSTED, server="10.0.0.2:8080").base_url(env) == "http://10.0.0.2:8080"


@pytest.mark.parametrize(
    ("host", "authority"),
    [
        ("127.0.0.1", "127.0.0.1:8080"),
        ("app1.internal", "app1.internal:8080"),
        ("::1", "[::1]:8080"),
        ("0.0.0.0", f"{socket.gethostname()}:8080"),  # noqa: S104 - a wildcard, as configured
        ("::", f"{socket.gethostname()}:8080"),
    ],
)
def test_listen_authority(host: str, authority: str) -> None:
    assert listen_authority(host, 8080) == authority


def test_from_settings_falls_back_to_the_listening_address() -> None:
    settings = load_settings({"P2P_ENV": "test"}, {"server.host": "::1", "server.port": "9001"})
    env = environ("203.0.113.7")
    assert Proxies.from_settings(settings.server).base_url(env) == "http://[::1]:9001"


def test_base_url_ignores_a_strange_forwarded_scheme() -> None:
    env = environ(LB, host="worker1", x_forwarded_proto="javascript")
    assert Proxies(TRUSTED).base_url(env) == "http://worker1"


@pytest.mark.parametrize(
    "host",
    [
        'evil.example/"><script>',
        "evil.example/path",
        "a b",
        "user@evil.example",
        "x" * 256,
        "",
    ],
)
def test_a_garbage_host_becomes_localhost(host: str) -> None:
    env = environ("203.0.113.7", host=host)
    env.pop("SERVER_NAME")
    assert Proxies(TRUSTED).base_url(env) == "http://localhost"


def test_a_garbage_forwarded_host_becomes_localhost() -> None:
    env = environ(LB, host="worker1", x_forwarded_host="evil.example/<x>")
    assert Proxies(TRUSTED).base_url(env) == "http://localhost"


def test_ipv6_host_kept() -> None:
    assert Proxies(()).base_url(environ("::1", host="[::1]:8080")) == "http://[::1]:8080"
