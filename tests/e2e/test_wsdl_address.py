"""The WSDL's soap:address and soap12:address (one address, both versions): per request, never
poisoned by a caller's Host, and forwarded headers believed only from a trusted proxy."""

import pytest
import requests
from lxml import etree

pytestmark = pytest.mark.slow

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"


def fetch(server, facade="LoanFacade", headers=None) -> bytes:
    r = requests.get(server.url(f"/services/{facade}?wsdl"), headers=headers or {}, timeout=10)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("text/xml")
    return r.content


def address(document: bytes) -> str:
    """The address of the SOAP 1.1 port, which the SOAP 1.2 port's must equal."""
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False))
    locations = []
    for extension in (SOAP_NS, SOAP12_NS):
        found = root.findall(f"{{{WSDL_NS}}}service/{{{WSDL_NS}}}port/{{{extension}}}address")
        assert len(found) == 1
        locations.append(found[0].get("location"))
    assert locations[0] == locations[1]
    return locations[0]


def test_the_wsdl_is_byte_identical_when_served_twice(server):
    first, second = fetch(server), fetch(server)
    assert first == second
    assert address(first) == f"{server.base}/services/LoanFacade"
    assert address(fetch(server, "MemberFacade")) == f"{server.base}/services/MemberFacade"


def test_a_callers_host_does_not_poison_later_callers(server):
    evil = fetch(server, headers={"Host": "evil.example"})
    assert address(evil) == "http://evil.example/services/LoanFacade"

    plain = fetch(server)
    assert b"evil.example" not in plain
    assert address(plain) == f"{server.base}/services/LoanFacade"


def test_a_host_unfit_for_a_url_cannot_inject_markup(server):
    document = fetch(server, headers={"Host": 'x"/><evil/>'})
    assert b"<evil" not in document
    assert address(document).endswith("/services/LoanFacade")


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(server):
    document = fetch(
        server,
        headers={"X-Forwarded-Host": "attacker.example", "X-Forwarded-Proto": "https"},
    )
    assert b"attacker.example" not in document
    assert address(document) == f"{server.base}/services/LoanFacade"


def test_forwarded_headers_from_a_trusted_proxy_are_honoured(proxied_server):
    forwarded = fetch(
        proxied_server,
        headers={"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "https"},
    )
    assert address(forwarded) == "https://api.example.com/services/LoanFacade"

    direct = fetch(proxied_server)
    assert address(direct) == f"{proxied_server.base}/services/LoanFacade"
    assert b"api.example.com" not in direct

    bad_proto = fetch(
        proxied_server,
        headers={"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "gopher"},
    )
    assert address(bad_proto) == "http://api.example.com/services/LoanFacade"
