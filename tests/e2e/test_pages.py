"""The pages around the contract: the service list and Swagger UI, served from the package."""

import re

import pytest
import requests

pytestmark = pytest.mark.slow


def get(server, path: str) -> requests.Response:
    r = requests.get(server.url(path), timeout=10)
    assert r.status_code == 200, (path, r.status_code)
    return r


def test_the_service_list_links_every_contract(server):
    r = get(server, "/services")
    assert r.headers["Content-Type"].startswith("text/html")
    links = set(re.findall(r'href="([^"]+)"', r.text))
    assert {
        "/services/LoanFacade?wsdl",
        "/services/MemberFacade?wsdl",
        "/openapi.json",
        "/docs",
    } <= links
    for link in links:
        assert requests.get(server.url(link), timeout=10).status_code == 200, link
    assert "publishLoan" in r.text and "register" in r.text


def test_the_root_redirects_to_the_service_list(server):
    r = requests.get(server.url("/"), allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/services")


def test_swagger_ui_is_served_from_the_package(server):
    r = get(server, "/docs")
    assert r.headers["Content-Type"].startswith("text/html")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", r.text.replace("<!DOCTYPE html>", ""))
    scripts = re.findall(r'<script src="([^"]+)"', r.text)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', r.text)
    assert "/docs/swagger-ui-bundle.js" in scripts
    for asset in scripts + styles:
        assert asset.startswith("/docs/"), asset
        got = get(server, asset)
        assert len(got.content) > 0
    bundle = get(server, "/docs/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["Content-Type"]
    assert "SwaggerUIBundle" in bundle.text
    init = get(server, "/docs/init.js").text
    assert '"/openapi.json"' in init


def test_unknown_docs_assets_are_404(server):
    for path in ("/docs/../conf/default.toml", "/docs/nothing.js", "/docs/%2e%2e/setup.cfg"):
        r = requests.get(server.url(path), timeout=10)
        assert r.status_code == 404, path
        assert "[server]" not in r.text and "[metadata]" not in r.text
