"""The headers the contract and the services ask for, on both protocols: no caching of a
response that carries a secret or a token, Retry-After when the wait is known."""

from __future__ import annotations

import re

from lxml import etree

from facade.member.account import NS as MEMBER_NS
from facade.types import COMMON_NS
from server.binding import Complex
from server.soap import ENV

SECRET_FIELD = re.compile(r"token|secret|password", re.IGNORECASE)


def carries_a_secret(t, seen=()) -> bool:
    if not isinstance(t, Complex) or t.name in seen:
        return False
    return any(
        SECRET_FIELD.search(f.name) or carries_a_secret(f.type, (*seen, t.name)) for f in t.fields
    )


def test_exactly_the_operations_whose_response_carries_a_secret_are_sensitive(platform):
    ops = [op for f in platform.facades for op in f.operations]
    carrying = {op.name for op in ops if carries_a_secret(op.response)}
    sensitive = {op.name for op in ops if op.operation.sensitive}
    assert (
        carrying
        == sensitive
        == {
            "login",
            "refreshToken",
            "rotateApiSecret",
            "issuePartnerKey",
        }
    )


def soap(client, operation: str, **fields: str):
    inner = "".join(f"<m:{k}>{v}</m:{k}>" for k, v in fields.items())
    body = (
        f'<s:Envelope xmlns:s="{ENV}" xmlns:m="{MEMBER_NS}"><s:Body><m:{operation}><m:request>'
        f"{inner}</m:request></m:{operation}></s:Body></s:Envelope>"
    )
    return client.post("/services/MemberFacade", data=body, content_type="text/xml")


def fault_code(response) -> str:
    return etree.fromstring(response.data).findtext(f".//{{{COMMON_NS}}}code")


def test_token_answers_are_no_store_on_both_protocols(client) -> None:
    mobile, password = "13800000009", "secret123"
    client.post("/api/v1/verification-codes", json={"mobile": mobile, "purpose": "REGISTER"})
    code = client.application.platform.components["verification"].sender.last_code(
        mobile, "REGISTER"
    )
    credentials = {"mobile": mobile, "password": password}
    registered = client.post(
        "/api/v1/members", json={**credentials, "role": "INVESTOR", "verificationCode": code}
    )
    assert registered.status_code == 201
    assert "Cache-Control" not in registered.headers  # no secret in it

    rest = client.post("/api/v1/sessions", json=credentials)
    assert rest.status_code == 201
    assert (rest.headers["Cache-Control"], rest.headers["Pragma"]) == ("no-store", "no-cache")
    over_soap = soap(client, "login", **credentials)
    assert over_soap.status_code == 200, over_soap.data
    assert over_soap.headers["Cache-Control"] == "no-store"
    assert over_soap.headers["Pragma"] == "no-cache"
    refused = client.post("/api/v1/sessions", json={**credentials, "password": "wrong1234"})
    assert refused.status_code == 401 and "Cache-Control" not in refused.headers


def test_too_soon_carries_retry_after_on_both_protocols(client) -> None:
    ask = {"mobile": "13800000008", "purpose": "REGISTER"}
    assert client.post("/api/v1/verification-codes", json=ask).status_code == 201
    rest = client.post("/api/v1/verification-codes", json=ask)
    assert (rest.status_code, rest.json["code"]) == (429, "VERIFICATION_CODE_TOO_SOON")
    assert 1 <= int(rest.headers["Retry-After"]) <= 60  # verification.resend_seconds
    over_soap = soap(client, "sendVerificationCode", **ask)
    assert fault_code(over_soap) == "VERIFICATION_CODE_TOO_SOON"
    assert 1 <= int(over_soap.headers["Retry-After"]) <= 60
