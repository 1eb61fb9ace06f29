"""What the HTTP layer answers, on both protocols: no caching of a response that carries a
secret, Retry-After when the wait is known, Allow that names the resource's own methods, and
a structured error with the request id for everything we answer, waitress's own refusals of
a malformed request included (raw sockets: no client library would send those)."""

from __future__ import annotations

import re
import socket
import uuid

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from waitress.adjustments import Adjustments

pytestmark = pytest.mark.slow

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
MEMBER_NS = "http://p2p.hry.com/facade/member"
MAX_BODY = 1024 * 1024  # server.max_body_bytes (default)
CEILING = 4 * MAX_BODY  # where waitress refuses a body itself (server/httpserver.py)


def member_call(soap, operation: str, fields: dict[str, str]) -> requests.Response:
    inner = "".join(f"<m:{k}>{v}</m:{k}>" for k, v in fields.items())
    body = (
        f'<soap:Envelope xmlns:soap="{ENV}" xmlns:m="{MEMBER_NS}"><soap:Body><m:{operation}>'
        f"<m:request>{inner}</m:request></m:{operation}></soap:Body></soap:Envelope>"
    )
    return soap.post("MemberFacade", body.encode())


def exchange(server, data: bytes) -> requests.Response:
    """Send raw bytes, read until the server closes, and parse what came back."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(data)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    response = requests.Response()
    response.status_code = int(status_line.split()[1])
    response.headers = CaseInsensitiveDict(
        {name.strip(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    )
    response._content = body
    assert response.headers["Connection"] == "close"
    return response


# -- caching and retrying -------------------------------------------------------------------


def assert_not_stored(response: requests.Response) -> None:
    assert response.headers["Cache-Control"] == "no-store", response.headers
    assert response.headers["Pragma"] == "no-cache"


def test_responses_carrying_a_token_or_secret_are_never_cached(api, soap, investor):
    credentials = {"mobile": investor.mobile, "password": investor.password}
    login = api.call("login", json_body=credentials)
    assert login.status_code == 201
    assert_not_stored(login)
    refreshed = api.call("refreshToken", json_body={"refreshToken": login.json()["refreshToken"]})
    assert refreshed.status_code == 201
    assert_not_stored(refreshed)
    token = refreshed.json()["token"]
    secret = api.call("rotateApiSecret", token=token, json_body={"password": investor.password})
    assert secret.status_code == 201, secret.text
    assert_not_stored(secret)
    profile = api.call("getProfile", token=token)
    assert profile.status_code == 200 and "Cache-Control" not in profile.headers

    r = member_call(soap, "login", credentials)
    assert r.status_code == 200, r.text
    assert_not_stored(r)


def test_too_soon_tells_when_to_ask_again_on_both_protocols(api, soap, checks):
    ask = {"mobile": "135" + f"{uuid.uuid4().int % 10**8:08d}", "purpose": "REGISTER"}
    assert api.call("sendVerificationCode", json_body=ask).status_code == 201
    r = api.call("sendVerificationCode", json_body=ask)
    checks.error(r, 429, "VERIFICATION_CODE_TOO_SOON")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    fault = member_call(soap, "sendVerificationCode", ask)
    assert checks.fault(fault).code == "VERIFICATION_CODE_TOO_SOON"
    assert 1 <= int(fault.headers["Retry-After"]) <= 60
    # an error whose wait nobody knows says nothing of one
    assert "Retry-After" not in api.call("sendVerificationCode", json_body={}).headers


# -- Allow ----------------------------------------------------------------------------------


def allowed(response: requests.Response) -> set[str]:
    return {m.strip() for m in response.headers["Allow"].split(",")}


def test_allow_lists_exactly_the_methods_of_the_resource(server, investor, checks):
    auth = {"Authorization": f"Bearer {investor.token}"}
    # POST-only paths that a /{id} route used to shadow
    r = requests.get(server.url("/api/v1/messages/read"), headers=auth, timeout=10)
    checks.error(r, 405, "METHOD_NOT_ALLOWED")
    assert allowed(r) == {"POST"}
    r = requests.get(server.url("/api/v1/payments/recharges"), headers=auth, timeout=10)
    checks.error(r, 405, "METHOD_NOT_ALLOWED")
    assert allowed(r) == {"POST"}
    r = requests.delete(server.url("/api/v1/loans/1"), timeout=10)
    checks.error(r, 405, "METHOD_NOT_ALLOWED")
    assert allowed(r) == {"GET", "HEAD", "PUT"}
    # the id routes still answer
    r = requests.get(server.url("/api/v1/messages/987654321"), headers=auth, timeout=10)
    checks.error(r, 404, "MESSAGE_NOT_FOUND")


# -- every answer of ours is structured, with the request id -----------------------------------


def test_unknown_pages_and_assets_are_json_errors(server, checks):
    for path in ("/docs/nothing.js", "/docs/../conf/default.toml", "/nowhere", "/servicesX"):
        r = requests.get(server.url(path), headers={"X-Request-Id": "page-1"}, timeout=10)
        body = checks.error(r, 404, "UNKNOWN_OPERATION")
        assert body["requestId"] == "page-1", path


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/services", "/docs", "/metrics"])
def test_every_page_carries_a_request_id(server, path):
    r = requests.get(server.url(path), headers={"X-Request-Id": "any-1"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == "any-1"


def every_route(server) -> list[tuple[str, str]]:
    """(method, path) of everything the server answers, read from what it publishes: the
    pages, Swagger UI and the assets its page loads, each facade's WSDL, document and SOAP
    endpoint, the changelog, every REST route of /openapi.json with each of its methods (path
    parameters 1), and paths it does not have."""
    docs = requests.get(server.url("/docs"), timeout=10).text
    assets = {
        f"/docs/{a}"
        for a in re.findall(r'(?:src|href)="(?:/docs/|\./)?([\w.-]+\.(?:js|css))"', docs)
    }
    assert assets, "the Swagger UI page loads no asset of ours"
    routes = [("GET", p) for p in ("/", "/health", "/metrics", "/services", "/openapi.json")]
    routes += [("GET", "/docs"), ("HEAD", "/health"), *(("GET", a) for a in sorted(assets))]
    routes += [("GET", "/services/changelog"), ("HEAD", "/services/changelog")]
    listing = requests.get(server.url("/services"), timeout=10).text
    for facade in sorted(set(re.findall(r"/services/(\w+)\?wsdl", listing))):
        base = f"/services/{facade}"
        routes += [("GET", base + "?wsdl"), ("HEAD", base + "?wsdl"), ("GET", base + "?doc")]
        routes += [("POST", base), ("GET", base)]
    document = requests.get(server.url("/openapi.json"), timeout=10).json()
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        routes += [(method.upper(), concrete) for method in item if method != "parameters"]
    routes += [("GET", "/nowhere"), ("GET", "/api/v1/nowhere"), ("GET", "/services/Nowhere?wsdl")]
    routes += [("DELETE", "/api/v1/loans/1"), ("POST", "/bank/notify")]
    return routes


def test_every_route_answers_with_the_request_id(server):
    """Every answer carries X-Request-Id: the caller's when it sent one, else one made up,
    whatever the route and whatever the outcome (answers, refusals, errors, 404s)."""
    routes = every_route(server)
    assert len(routes) > 100  # the REST routes are there
    for method, path in routes:
        sent = f"walk-{uuid.uuid4().hex[:8]}"
        r = requests.request(method, server.url(path), headers={"X-Request-Id": sent}, timeout=10)
        assert r.headers.get("X-Request-Id") == sent, (method, path, r.status_code)
        r = requests.request(method, server.url(path), timeout=10)
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers.get("X-Request-Id", "")), (method, path)


REST_PATH, SOAP_PATH = "/api/v1/sessions", "/services/MemberFacade"


def request_head(path: str, *headers: str) -> bytes:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: localhost", *headers, "", ""]).encode()


def refused(server, checks, data: bytes, path: str, status: int, code: str) -> str:
    """The refusal of `data` sent to `path`: the error in the path's protocol; its id."""
    r = exchange(server, data)
    if path.startswith("/services/"):
        assert r.status_code == status, r.content
        fault = checks.fault(r)
        assert fault.code == code
        assert fault.faultcode == ("soap:Client" if status < 500 else "soap:Server")
        rid = fault.request_id
    else:
        rid = checks.error(r, status, code)["requestId"]
    assert r.headers["X-Request-Id"] == rid
    return rid


@pytest.mark.parametrize("path", [REST_PATH, SOAP_PATH])
def test_waitress_refusals_are_ours(server, checks, path):
    # a malformed header line (the request id comes before it, so it is known)
    bad = request_head(path, "X-Request-Id: refused-1", "Not a header")
    assert refused(server, checks, bad, path, 400, "MALFORMED_REQUEST") == "refused-1"
    # a body over waitress's ceiling, refused from its Content-Length
    big = request_head(path, "X-Request-Id: refused-2", f"Content-Length: {CEILING}")
    assert refused(server, checks, big, path, 413, "PAYLOAD_TOO_LARGE") == "refused-2"
    # a transfer coding waitress does not implement
    gzip = request_head(path, "Content-Type: text/xml", "Transfer-Encoding: gzip")
    refused(server, checks, gzip, path, 501, "NOT_IMPLEMENTED")
    # headers that never end: exactly waitress's limit, so the server reads all we send
    start = request_head(path, "X-Pad: ")[:-4]
    limit = Adjustments.max_request_header_size
    refused(server, checks, start + b"a" * (limit - len(start)), path, 431, "HEADERS_TOO_LARGE")


def test_waitress_refusals_of_a_soap_1_2_request_are_soap_1_2_faults(server, checks):
    """In the version of the request's Content-Type, and logged as such."""
    soap12 = "Content-Type: application/soap+xml; charset=utf-8"
    big = request_head(SOAP_PATH, "X-Request-Id: refused-12", soap12, f"Content-Length: {CEILING}")
    r = exchange(server, big)
    assert r.status_code == 413
    assert r.headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    fault = checks.fault(r)
    assert (fault.faultcode, fault.code, fault.request_id) == (
        "env:Sender",
        "PAYLOAD_TOO_LARGE",
        "refused-12",
    )
    gzip = request_head(SOAP_PATH, soap12, "Transfer-Encoding: gzip")
    r = exchange(server, gzip)
    assert r.status_code == 501
    fault = checks.fault(r)
    assert (fault.faultcode, fault.code) == ("env:Receiver", "NOT_IMPLEMENTED")
    assert " refused-12 soap12 - PAYLOAD_TOO_LARGE refused by the HTTP server " in server.log_text()


def test_a_request_line_that_is_not_http_is_a_json_error(server, checks):
    r = exchange(server, b"NOT HTTP AT ALL\r\n\r\n")
    body = checks.error(r, 400, "MALFORMED_REQUEST")
    assert body["detail"] == "the request is not well-formed HTTP"


def test_a_body_over_the_limit_below_the_ceiling_is_refused_by_the_endpoint(api, soap, checks):
    body = b"x" * (MAX_BODY + 1)
    r = api.call("login", data=body, headers={"Content-Type": "application/json"})
    checks.error(r, 413, "PAYLOAD_TOO_LARGE")
    assert checks.fault(soap.post("MemberFacade", body)).code == "PAYLOAD_TOO_LARGE"
