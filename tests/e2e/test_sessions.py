"""Sessions through what the server publishes (OpenAPI and the WSDL): the login lockout,
refresh-token rotation and reuse detection, and changing the password. The last test runs
two ``p2p serve`` workers on one Redis (P2P_TEST_REDIS_URL) and shows that they agree on
lockout counts and tokens."""

from __future__ import annotations

import os
import random
import uuid

import pytest
import requests
import zeep

pytestmark = pytest.mark.slow


def new_mobile() -> str:
    return "135" + f"{random.randrange(10**8):08d}"


PASSWORD = "Secret123x"


def register(api, signup) -> tuple[str, str]:
    """A new investor, signed up with a REGISTER code from the server's SMS outbox."""
    mobile, password = new_mobile(), PASSWORD
    signup.register(api.server, "INVESTOR", mobile, password)
    return mobile, password


def fault_of(fn, **kwargs) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as e:
        fn(**kwargs)
    return e.value


def test_rest_lockout_after_five_failures_unknown_numbers_too(api, checks, signup):
    mobile, password = register(api, signup)
    for mob in (mobile, new_mobile()):  # a registered number and one nobody has
        for _ in range(4):
            r = api.call("login", json_body={"mobile": mob, "password": "Wrong1234"})
            checks.error(r, 401, "LOGIN_FAILED")
        r = api.call("login", json_body={"mobile": mob, "password": "Wrong1234"})
        checks.error(r, 423, "ACCOUNT_LOCKED")
    # the right password no longer helps
    r = api.call("login", json_body={"mobile": mobile, "password": password})
    checks.error(r, 423, "ACCOUNT_LOCKED")


def test_soap_lockout_and_ws_security(soap, api, checks, server, signup):
    mobile, password = register(api, signup)
    for _ in range(5):
        fault_of(soap.member.service.login, request={"mobile": mobile, "password": "Wrong1234"})
    locked = fault_of(soap.member.service.login, request={"mobile": mobile, "password": password})
    assert checks.zeep_code(locked) == "ACCOUNT_LOCKED"
    assert locked.code.endswith("Client")
    client = soap.loan_as(mobile, password)  # WS-Security PasswordText is locked out too
    refused = fault_of(client.service.getRepaymentsDue)
    assert checks.zeep_code(refused) == "ACCOUNT_LOCKED"


def test_rest_refresh_rotates_and_a_reused_token_ends_the_family(api, checks, signup):
    mobile, password = register(api, signup)
    r = api.call("login", json_body={"mobile": mobile, "password": password})
    first = api.check_body("login", r)
    assert first["refreshToken"] and first["refreshExpiresIn"] == 604800
    r = api.call("refreshToken", json_body={"refreshToken": first["refreshToken"]})
    assert r.status_code == 201, r.text
    second = api.check_body("refreshToken", r)
    assert second["memberId"] == first["memberId"]
    assert second["token"] != first["token"]
    checks.error(api.call("getAccount", token=first["token"]), 401, "UNAUTHENTICATED")
    assert api.call("getAccount", token=second["token"]).status_code == 200
    # the first refresh token again: refused, and the rotated pair dies with it
    r = api.call("refreshToken", json_body={"refreshToken": first["refreshToken"]})
    checks.error(r, 401, "UNAUTHENTICATED", mentions="already used")
    checks.error(api.call("getAccount", token=second["token"]), 401, "UNAUTHENTICATED")
    r = api.call("refreshToken", json_body={"refreshToken": second["refreshToken"]})
    checks.error(r, 401, "UNAUTHENTICATED")


def test_rest_change_password_revokes_every_token(api, checks, signup):
    mobile, password = register(api, signup)
    tokens = [
        api.call("login", json_body={"mobile": mobile, "password": password}).json()
        for _ in range(2)
    ]
    body = {"oldPassword": "Wrong1234", "newPassword": "Newpass123"}
    r = api.call("changePassword", token=tokens[0]["token"], json_body=body)
    checks.error(r, 401, "LOGIN_FAILED")
    body = {"oldPassword": password, "newPassword": "short"}
    r = api.call("changePassword", token=tokens[0]["token"], json_body=body)
    checks.error(r, 400, "VALIDATION_FAILED")
    body = {"oldPassword": password, "newPassword": "Newpass123"}
    r = api.call("changePassword", token=tokens[0]["token"], json_body=body)
    assert r.status_code == 204, r.text
    for t in tokens:
        checks.error(api.call("getAccount", token=t["token"]), 401, "UNAUTHENTICATED")
        r = api.call("refreshToken", json_body={"refreshToken": t["refreshToken"]})
        checks.error(r, 401, "UNAUTHENTICATED")
    checks.error(
        api.call("login", json_body={"mobile": mobile, "password": password}), 401, "LOGIN_FAILED"
    )
    r = api.call("login", json_body={"mobile": mobile, "password": "Newpass123"})
    assert r.status_code == 201


def test_soap_refresh_and_change_password(soap, api, checks, signup):
    mobile, password = register(api, signup)
    first = soap.member.service.login(request={"mobile": mobile, "password": password})
    second = soap.member.service.refreshToken(request={"refreshToken": first.refreshToken})
    assert second.memberId == first.memberId and second.token != first.token
    reused = fault_of(
        soap.member.service.refreshToken, request={"refreshToken": first.refreshToken}
    )
    assert checks.zeep_code(reused) == "UNAUTHENTICATED"
    third = soap.member.service.login(request={"mobile": mobile, "password": password})
    soap.member.service.changePassword(
        request={"oldPassword": password, "newPassword": "Newpass123"}, **soap.auth(third.token)
    )
    gone = fault_of(soap.member.service.logout, **soap.auth(third.token))
    assert checks.zeep_code(gone) == "UNAUTHENTICATED"
    assert soap.member.service.login(request={"mobile": mobile, "password": "Newpass123"}).token


# -- two workers, one Redis ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(processes, tmp_path_factory):
    """Two ``p2p serve`` processes on one database file and one Redis key prefix."""
    url = os.environ.get("P2P_TEST_REDIS_URL")
    if not url:
        pytest.skip("two workers sharing Redis need P2P_TEST_REDIS_URL=redis://host:port/db")
    import redis

    workdir = tmp_path_factory.mktemp("e2e-two-workers")
    prefix = f"p2p-e2e-workers-{uuid.uuid4().hex[:12]}:"
    settings = [
        f"database.url=sqlite:///{workdir / 'p2p.db'}",
        f"cache.url={url}",
        f"cache.key_prefix={prefix}",
    ]
    started = []
    try:
        for n in (1, 2):
            started.append(processes.start_server("embedded", workdir / f"w{n}", settings, False))
        yield [s.server for s in started]
    finally:
        for s in started:
            s.stop()
        r = redis.Redis.from_url(url)
        for key in r.scan_iter(match=f"{prefix}*"):
            r.delete(key)
        r.close()


def _post(server, path: str, body: dict, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(server.url(path), json=body, headers=headers, timeout=30)


@pytest.mark.redis
def test_two_workers_share_lockout_counts_and_tokens(two_workers, signup):
    one, two = two_workers
    assert one.port != two.port and one.proc.pid != two.proc.pid
    mobile, password = new_mobile(), "Secret123x"
    signup.register(one, "INVESTOR", mobile, password)

    # a token issued by worker 1 works on worker 2, and logging out on 2 ends it on both
    token = _post(one, "/api/v1/sessions", {"mobile": mobile, "password": password}).json()
    me = "/api/v1/accounts/me"
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert requests.get(two.url(me), headers=auth, timeout=30).status_code == 200
    refreshed = _post(two, "/api/v1/sessions/refresh", {"refreshToken": token["refreshToken"]})
    assert refreshed.status_code == 201, refreshed.text
    new_auth = {"Authorization": f"Bearer {refreshed.json()['token']}"}
    assert requests.get(one.url(me), headers=new_auth, timeout=30).status_code == 200
    r = requests.delete(one.url("/api/v1/sessions/current"), headers=new_auth, timeout=30)
    assert r.status_code == 204
    for server in (one, two):
        assert requests.get(server.url(me), headers=new_auth, timeout=30).status_code == 401

    # failures counted on worker 1 lock the number on worker 2
    for _ in range(5):
        r = _post(one, "/api/v1/sessions", {"mobile": mobile, "password": "Wrong1234"})
        assert r.status_code in (401, 423), r.text
    r = _post(two, "/api/v1/sessions", {"mobile": mobile, "password": password})
    assert (r.status_code, r.json()["code"]) == (423, "ACCOUNT_LOCKED")
