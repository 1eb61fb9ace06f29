"""The contract documents as the platform serves them beside the WSDL: ``?doc`` and the
changelog page, GET and HEAD, the caller's base URL in their links, 404 for an unknown facade
as for its WSDL, and linked from the service list."""

from __future__ import annotations

import re

import pytest
from lxml import html as lxml_html

from server import compat
from server.app import VERSION
from server.contractdoc import REPOSITORY


def test_a_facade_document_is_served_beside_its_wsdl(client) -> None:
    response = client.get("/services/LoanFacade?doc", headers={"X-Request-Id": "d-1"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["X-Request-Id"] == "d-1"
    doc = lxml_html.document_fromstring(response.data)
    assert doc.find(".//h1").text_content() == "LoanFacade"
    assert doc.get_element_by_id("op-publishLoan") is not None
    assert f"Contract version {VERSION}" in doc.find(".//footer").text_content()
    # The caller's base URL, as the WSDL's address has it.
    hrefs = set(doc.xpath("//a/@href"))
    assert {
        "http://localhost/services",
        "http://localhost/services/changelog",
        "http://localhost/services/LoanFacade?wsdl",
        "http://localhost/openapi.json",
    } <= hrefs
    assert "curl -X GET 'http://localhost/api/v1/loans/1001'" in doc.text_content()
    assert "urn:p2p" not in response.get_data(as_text=True)


def test_the_document_is_cached_as_the_wsdl_is(client) -> None:
    wsdl = client.get("/services/LoanFacade?wsdl")
    doc = client.get("/services/LoanFacade?DOC")
    assert doc.status_code == 200
    for header in ("Cache-Control", "Expires", "ETag", "Last-Modified", "Pragma"):
        assert doc.headers.get(header) == wsdl.headers.get(header), header


def test_the_base_url_comes_from_the_host_and_is_escaped(make_client) -> None:
    client = make_client(**{"server.public_url": "https://api.example.com/p2p&x"})
    text = client.get("/services/FundFacade?doc").get_data(as_text=True)
    assert 'href="https://api.example.com/p2p&amp;x/services/FundFacade?wsdl"' in text
    assert "https://api.example.com/p2p&x/" not in text


@pytest.mark.parametrize("path", ["/services/LoanFacade?doc", "/services/changelog"])
def test_head_is_answered_like_get(client, path: str) -> None:
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"] == str(len(get.data))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_unknown_facades_document_is_a_404_fault_as_its_wsdl(client, method: str) -> None:
    answers = [
        client.open(f"/services/NoSuchFacade?{query}", method=method, headers={"X-Request-Id": "u"})
        for query in ("wsdl", "doc")
    ]
    wsdl, doc = answers
    assert doc.status_code == wsdl.status_code == 404
    assert doc.headers["Content-Type"] == wsdl.headers["Content-Type"]
    assert doc.data == wsdl.data


def test_a_post_to_doc_is_a_soap_call(client) -> None:
    response = client.post(
        "/services/LoanFacade?doc", data=b"<nothing/>", content_type="text/xml; charset=utf-8"
    )
    assert response.status_code == 500  # a fault answering a call (WS-I BP R1126)
    assert response.headers["Content-Type"].startswith("text/xml")
    assert b"MALFORMED_REQUEST" in response.data


def test_the_changelog_page_lists_the_checkout_s_releases(client) -> None:
    response = client.get("/services/changelog")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    doc = lxml_html.document_fromstring(response.data)
    headings = [h.text_content() for h in doc.iter("h2")]
    released = compat.released_versions(REPOSITORY)
    assert released, "the repository has released contracts"
    assert all(any(version in h for h in headings) for version in released), headings
    assert "No release yet." not in doc.text_content()
    assert doc.find(".//a[@href='http://localhost/services/LoanFacade?doc']") is not None


def test_the_service_list_links_every_document_and_the_changelog(client, platform) -> None:
    text = client.get("/services").get_data(as_text=True)
    links = set(re.findall(r'href="([^"]+)"', text))
    assert {f"/services/{f.name}?doc" for f in platform.facades} | {"/services/changelog"} <= links
