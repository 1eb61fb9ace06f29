"""JSON REST, following /openapi.json only: every operation found by its operationId."""

import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import pytest
import requests

from server.declared import discover_facades

pytestmark = pytest.mark.slow

#: Every operation the facades declare: the served document must name each, and no other.
OPERATIONS = {op.name for facade in discover_facades() for op in facade.operations}


def with_number(body: dict, field: str, literal: str) -> bytes:
    """The JSON text of ``body`` with ``field`` written as the bare number ``literal``."""
    marker = "__" + uuid.uuid4().hex + "__"
    return json.dumps({**body, field: marker}).replace(f'"{marker}"', literal).encode()


def test_the_document_names_every_facade_operation(api):
    assert set(api.operations) == OPERATIONS
    assert api.document["openapi"].startswith("3.")


def test_register_login_logout(api, checks):
    mobile, password = "136" + str(uuid.uuid4().int)[:8], "Secret123x"
    r = api.call("sendVerificationCode", json_body={"mobile": mobile, "purpose": "REGISTER"})
    assert r.status_code == 201
    api.check_body("sendVerificationCode", r)
    code = api.server.last_code(mobile, "REGISTER")
    body = {"mobile": mobile, "password": password, "verificationCode": code}
    r = api.call("register", json_body={**body, "role": "BORROWER"})
    assert r.status_code == 201
    member = api.check_body("register", r)
    assert member["mobile"] == mobile[:3] + "****" + mobile[-4:]
    assert member["role"] == "BORROWER"
    assert password not in r.text

    checks.error(api.call("register", json_body={**body, "role": "INVESTOR"}), 409, "MOBILE_TAKEN")
    checks.error(
        api.call("register", json_body={**body, "mobile": "12345", "role": "INVESTOR"}),
        400,
        "VALIDATION_FAILED",
        mentions="mobile",
    )
    checks.error(
        api.call("register", json_body={**body, "role": "OPERATOR"}),
        400,
        "VALIDATION_FAILED",
        mentions="role",
    )

    r = api.call("login", json_body={"mobile": mobile, "password": password})
    assert r.status_code == 201
    token = api.check_body("login", r)
    assert token["memberId"] == member["memberId"]
    assert token["role"] == "BORROWER"
    checks.error(
        api.call("login", json_body={"mobile": mobile, "password": "Wrong12345"}),
        401,
        "LOGIN_FAILED",
    )

    r = api.call("logout", token=token["token"])
    assert r.status_code == 204
    assert r.content == b""
    checks.error(api.call("logout", token=token["token"]), 401, "UNAUTHENTICATED")
    checks.error(api.call("logout"), 401, "UNAUTHENTICATED")


def test_request_id_is_echoed_or_generated(api, checks):
    r = api.call("listLoans", headers={"X-Request-Id": "e2e-rest.42:a"})
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == "e2e-rest.42:a"

    r = api.call("getLoan", loanId=987654321, headers={"X-Request-Id": "e2e-missing-1"})
    body = checks.error(r, 404, "LOAN_NOT_FOUND")
    assert body["requestId"] == "e2e-missing-1"

    first = api.call("listLoans").headers["X-Request-Id"]
    second = api.call("getLoan", loanId=987654321).headers["X-Request-Id"]
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,64}", first)
    assert first != second

    forged = api.call("listLoans", headers={"X-Request-Id": "not a<sane>id"})
    assert forged.headers["X-Request-Id"] != "not a<sane>id"
    assert forged.headers["X-Request-Id"]


def test_the_whole_life_of_a_listing(api, operator, loan_terms, checks):
    op = operator.token
    r = api.call("publishLoan", token=op, json_body=loan_terms())
    assert r.status_code == 201
    loan = api.check_body("publishLoan", r)
    loan_id = loan["loanId"]
    assert (loan["amount"], loan["minInvest"], loan["maxInvestPerInvestor"]) == (
        "10000.01",
        "100.00",
        "5000.00",
    )
    assert loan["annualRate"] == "9.5000"
    assert loan["status"] == "PENDING_AUDIT"
    assert "raiseDeadline" not in loan

    r = api.call("getLoan", token=op, loanId=loan_id)
    assert r.status_code == 200
    assert api.check_body("getLoan", r) == loan
    # Not yet audited: to the public it does not exist, in the words of a missing listing.
    hidden = checks.error(api.call("getLoan", loanId=loan_id), 404, "LOAN_NOT_FOUND")
    assert hidden["detail"] == f"listing {loan_id} does not exist"

    r = api.call(
        "updateLoan", token=op, loanId=loan_id, json_body=loan_terms(amount="20000.5", termMonths=9)
    )
    assert r.status_code == 200
    changed = api.check_body("updateLoan", r)
    assert (changed["amount"], changed["termMonths"]) == ("20000.50", 9)

    checks.error(
        api.call("auditLoan", token=op, loanId=loan_id, json_body={"approve": False}),
        400,
        "VALIDATION_FAILED",
        mentions="reason",
    )
    r = api.call(
        "auditLoan", token=op, loanId=loan_id, json_body={"approve": False, "reason": "No deeds"}
    )
    assert r.status_code == 200
    rejected = api.check_body("auditLoan", r)
    assert (rejected["status"], rejected["rejectReason"]) == ("REJECTED", "No deeds")

    checks.error(
        api.call("auditLoan", token=op, loanId=loan_id, json_body={"approve": True}),
        409,
        "LOAN_STATE_INVALID",
        mentions="REJECTED",
    )

    r = api.call("updateLoan", token=op, loanId=loan_id, json_body=loan_terms(raiseDays=3))
    assert r.status_code == 200
    again = api.check_body("updateLoan", r)
    assert again["status"] == "PENDING_AUDIT"
    assert "rejectReason" not in again

    before = dt.datetime.now(dt.UTC)
    r = api.call("auditLoan", token=op, loanId=loan_id, json_body={"approve": True})
    assert r.status_code == 200
    approved = api.check_body("auditLoan", r)
    assert approved["status"] == "RAISING"
    deadline = dt.datetime.fromisoformat(approved["raiseDeadline"].replace("Z", "+00:00"))
    assert abs(deadline - (before + dt.timedelta(days=3))) < dt.timedelta(minutes=5)

    checks.error(
        api.call("updateLoan", token=op, loanId=loan_id, json_body=loan_terms()),
        409,
        "LOAN_STATE_INVALID",
        mentions="RAISING",
    )
    public = api.call("getLoan", loanId=loan_id).json()
    assert public["status"] == "RAISING"
    assert "borrowerId" not in public and "rejectReason" not in public
    assert api.call("getLoan", token=op, loanId=loan_id).json()["borrowerId"] == loan["borrowerId"]


def test_authentication_and_roles(api, investor, loan_terms, checks):
    checks.error(api.call("publishLoan", json_body=loan_terms()), 401, "UNAUTHENTICATED")
    checks.error(
        api.call("publishLoan", token=investor.token, json_body=loan_terms()), 403, "FORBIDDEN"
    )
    checks.error(
        api.call("publishLoan", token="no-such-token", json_body=loan_terms()),
        401,
        "UNAUTHENTICATED",
    )
    checks.error(
        api.call(
            "publishLoan",
            headers={"Authorization": "Basic b3A6cGFzcw=="},
            json_body=loan_terms(),
        ),
        401,
        "UNAUTHENTICATED",
    )


def test_not_found_and_bad_path_values(api, operator, loan_terms, checks):
    checks.error(api.call("getLoan", loanId=987654321), 404, "LOAN_NOT_FOUND", mentions="987654321")
    checks.error(
        api.call("updateLoan", token=operator.token, loanId=987654321, json_body=loan_terms()),
        404,
        "LOAN_NOT_FOUND",
    )
    # A whole-number parameter takes ASCII digits only: anything else names no resource.
    for not_an_id in ("abc", "١", "１", "-1", "1.0"):
        checks.error(api.call("getLoan", loanId=not_an_id), 404, "UNKNOWN_OPERATION")
    checks.error(api.call("getLoan", loanId=0), 400, "VALIDATION_FAILED", mentions="loanId")
    too_long = api.call("getLoan", loanId=9223372036854775808)
    checks.error(too_long, 400, "VALIDATION_FAILED", mentions="loanId")


def test_a_wrong_verb_is_405_with_allow(api, server, checks):
    path = api.path("getLoan", loanId=1)
    r = requests.delete(server.url(path), timeout=10)
    checks.error(r, 405, "METHOD_NOT_ALLOWED")
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {api.method("getLoan"), api.method("updateLoan")} <= allowed
    assert "DELETE" not in allowed

    r = requests.patch(server.url(api.path("listLoans")), json={}, timeout=10)
    checks.error(r, 405, "METHOD_NOT_ALLOWED")
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["Allow"].split(",")}


def test_a_body_that_is_not_json_is_415(api, operator, loan_terms, checks):
    r = api.call(
        "publishLoan",
        token=operator.token,
        data=json.dumps(loan_terms()).encode(),
        headers={"Content-Type": "text/plain"},
    )
    checks.error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("termMonths", 0, "termMonths"),
        ("termMonths", "12", "termMonths"),
        ("title", None, "title"),
        ("amount", "99.99", "amount"),
        ("amount", "100.001", "amount"),
        ("amount", "-1", "amount"),
        ("amount", "NaN", "amount"),
        ("amount", "1E+999999", "amount"),
        ("annualRate", "36.0001", "annualRate"),
        ("minInvest", "20000.00", "minInvest"),
        ("repaymentMethod", "WHENEVER", "repaymentMethod"),
        ("nickname", "x", "nickname"),
    ],
)
def test_invalid_terms_name_the_field(api, operator, loan_terms, checks, field, value, problem):
    body = loan_terms()
    if value is None:
        del body[field]
    else:
        body[field] = value
    r = api.call("publishLoan", token=operator.token, json_body=body)
    checks.error(r, 400, "VALIDATION_FAILED", mentions=problem)


@pytest.mark.parametrize(
    ("literal", "exact"),
    [("1000.5", "1000.50"), ("1000.1", "1000.10"), ("12345678901.23", "12345678901.23")],
)
def test_a_json_number_for_money_is_exact_or_refused(
    api, operator, loan_terms, checks, literal, exact
):
    r = api.call(
        "publishLoan",
        token=operator.token,
        data=with_number(loan_terms(), "amount", literal),
        headers={"Content-Type": "application/json"},
    )
    if r.status_code == 201:
        assert api.check_body("publishLoan", r)["amount"] == exact
    else:
        checks.error(r, 400, "VALIDATION_FAILED", mentions="amount")


@pytest.mark.parametrize("literal", ["1E+999999", "1E-999999", "100.001", "-5", "1e400"])
def test_a_json_number_that_cannot_be_money_is_400(api, operator, loan_terms, checks, literal):
    r = api.call(
        "publishLoan",
        token=operator.token,
        data=with_number(loan_terms(), "amount", literal),
        headers={"Content-Type": "application/json"},
    )
    checks.error(r, 400, "VALIDATION_FAILED", mentions="amount")


def test_list_loans_filters_and_pages(api, operator, loan_terms, checks):
    base = Decimal(33) + Decimal(uuid.uuid4().int % 8000 + 1000) / 10000
    rates = [base, base + Decimal("0.0001"), base + Decimal("0.0002")]
    specs = [(rates[0], 47, "BULLET"), (rates[1], 48, "EQUAL_PRINCIPAL"), (rates[2], 49, "BULLET")]
    ids = []
    for rate, term, method in specs:
        r = api.call(
            "publishLoan",
            token=operator.token,
            json_body=loan_terms(annualRate=str(rate), termMonths=term, repaymentMethod=method),
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["loanId"])
    r = api.call("auditLoan", token=operator.token, loanId=ids[2], json_body={"approve": True})
    assert r.status_code == 200
    band = {"minRate": str(rates[0]), "maxRate": str(rates[2])}

    def listed(token=operator.token, **query):
        r = api.call("listLoans", token=token, params={**band, **query})
        assert r.status_code == 200, r.text
        page = api.check_body("listLoans", r)
        return page, [item["loanId"] for item in page.get("items", [])]

    # The public sees the one approved listing only, and counts only it.
    page, found = listed(token=None)
    assert (page["total"], found) == (1, [ids[2]])
    assert "borrowerId" not in page["items"][0]
    assert listed(token=None, status="PENDING_AUDIT")[0]["total"] == 0

    page, found = listed()
    assert (page["total"], found) == (3, ids[::-1])
    assert listed(status="RAISING")[1] == [ids[2]]
    assert listed(status="PENDING_AUDIT")[1] == [ids[1], ids[0]]
    assert listed(repaymentMethod="BULLET")[1] == [ids[2], ids[0]]
    assert listed(minRate=str(rates[1]))[1] == [ids[2], ids[1]]
    assert listed(maxRate=str(rates[0]))[1] == [ids[0]]
    assert listed(minTermMonths=48, maxTermMonths=48)[1] == [ids[1]]
    assert listed(minTermMonths=48)[1] == [ids[2], ids[1]]
    assert listed(maxTermMonths=47)[1] == [ids[0]]

    page, found = listed(page=1, pageSize=2)
    assert (page["total"], page["page"], page["pageSize"], found) == (3, 1, 2, ids[:0:-1])
    page, found = listed(page=2, pageSize=2)
    assert (page["total"], page["page"], found) == (3, 2, [ids[0]])
    page, found = listed(page=3, pageSize=2)
    assert (page["total"], found) == (3, [])
    assert listed(pageSize=100)[0]["pageSize"] == 100

    for query, name in [
        ({"pageSize": 101}, "pageSize"),
        ({"pageSize": 0}, "pageSize"),
        ({"page": 0}, "page"),
        ({"status": "NOPE"}, "status"),
        ({"minTermMonths": "abc"}, "minTermMonths"),
        ({"minRate": "1E+999999"}, "minRate"),
        ({"minRate": "5", "maxRate": "4"}, "minRate"),
    ]:
        r = api.call("listLoans", params={**band, **query})
        checks.error(r, 400, "VALIDATION_FAILED", mentions=name)
