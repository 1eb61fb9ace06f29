"""Text and numbers through the app: refused by name on the way in, always writable on the way
out, and caller text quoted in an error only briefly and safely."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from facade.p2p.loan import NS as LOAN_NS
from facade.types import COMMON_NS
from server.soap import ENV, fault_document
from service import errors
from service.errors import BusinessError

JSON = "application/json"


def soap(client, call: str):
    body = f'<s:Envelope xmlns:s="{ENV}"><s:Body>{call}</s:Body></s:Envelope>'
    return client.post("/services/LoanFacade", data=body.encode(), content_type="text/xml")


def fault_detail(response) -> str:
    root = etree.fromstring(response.data)
    detail = root.find(f"{{{ENV}}}Body/{{{ENV}}}Fault/detail/{{{COMMON_NS}}}BusinessFault")
    assert detail.findtext(f"{{{COMMON_NS}}}code") == "VALIDATION_FAILED", response.data
    return detail.findtext(f"{{{COMMON_NS}}}detail")


def rest_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.data
    body = json.loads(response.data)
    assert body["code"] == code, body
    return body["detail"]


def test_a_fault_is_written_whatever_its_message_holds() -> None:
    error = BusinessError(errors.VALIDATION_FAILED, "x\x01\ud800\ufffe: bad")
    root = etree.fromstring(fault_document(error, "rid-1"))
    fault = root.find(f"{{{ENV}}}Body/{{{ENV}}}Fault")
    assert fault.findtext("faultstring") == errors.VALIDATION_FAILED.message
    detail = fault.findtext(f"detail/{{{COMMON_NS}}}BusinessFault/{{{COMMON_NS}}}detail")
    assert detail == "x\ufffd\ufffd\ufffd: bad"


@pytest.mark.parametrize(
    "body",
    [b'{"\\ud800": 1}', b'{"mobile": "13800000000", "password": "x", "\\udfff\\n": 1}'],
)
def test_a_lone_surrogate_in_a_key_is_named_not_a_crash(client, body: bytes) -> None:
    message = rest_error(
        client.post("/api/v1/sessions", data=body, content_type=JSON), 400, "VALIDATION_FAILED"
    )
    assert message.startswith("\ufffd")
    assert message.endswith(": is not a known field")


def test_a_lone_surrogate_in_a_value_is_named(client) -> None:
    body = b'{"mobile": "\\ud800", "purpose": "REGISTER"}'
    message = rest_error(
        client.post("/api/v1/verification-codes", data=body, content_type=JSON),
        400,
        "VALIDATION_FAILED",
    )
    assert message == "mobile: may not contain U+D800"


def test_a_huge_key_is_quoted_briefly(client) -> None:
    body = json.dumps({"k" * 500_000: 1}).encode()
    message = rest_error(
        client.post("/api/v1/sessions", data=body, content_type=JSON), 400, "VALIDATION_FAILED"
    )
    assert len(message) < 100


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/loans/%D9%A1",  # Arabic-Indic 1
        "/api/v1/loans/%EF%BC%91",  # fullwidth 1
        "/api/v1/loans/" + "0" * 5000 + "1",
    ],
)
def test_a_path_id_that_is_not_ascii_digits_names_no_resource(client, path: str) -> None:
    """The router matches a whole-number path parameter with ASCII digits only (at most 19),
    so such a path is no resource at all, not loan 1."""
    rest_error(client.get(path), 404, "UNKNOWN_OPERATION")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/loans?page=%EF%BC%91", "page"),
        ("/api/v1/loans?minRate=1." + "0" * 5000, "minRate"),
        ("/api/v1/loans?status=RAISING%0A", "status"),
    ],
)
def test_path_and_query_values_follow_the_same_rules(client, path: str, field: str) -> None:
    message = rest_error(client.get(path), 400, "VALIDATION_FAILED")
    assert message.startswith(f"{field}: ")


def test_a_long_unknown_operation_is_quoted_briefly(client) -> None:
    name = "x" * 40_000
    response = soap(client, f'<l:{name} xmlns:l="{LOAN_NS}"/>')
    assert response.status_code == 500
    root = etree.fromstring(response.data)
    fault = f"{{{ENV}}}Body/{{{ENV}}}Fault/detail/{{{COMMON_NS}}}BusinessFault"
    detail = root.findtext(f"{fault}/{{{COMMON_NS}}}detail")
    assert detail.startswith("LoanFacade has no operation xxx")
    assert len(detail) < 100


def test_a_soap_number_in_other_digits_is_named(client) -> None:
    response = soap(
        client, f'<l:getLoan xmlns:l="{LOAN_NS}"><l:loanId>&#x661;</l:loanId></l:getLoan>'
    )
    assert fault_detail(response) == "loanId: must be a whole number"
