"""Bad and hostile input on both protocols: a clear client error every time, nothing leaked,
and the server still healthy after the whole batch (the last test of this module)."""

import time
from collections.abc import Callable
from typing import NamedTuple

import pytest
import requests

pytestmark = pytest.mark.slow

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
LOAN_NS = "http://p2p.hry.com/facade/p2p"
COMMON_NS = "http://p2p.hry.com/facade/common"
MAX_BODY = 1024 * 1024
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def envelope(call: str, *, token: str = "", doctype: str = "", env: str = ENV) -> bytes:
    header = (
        f"<soap:Header><c:AuthToken><c:token>{token}</c:token></c:AuthToken></soap:Header>"
        if token
        else ""
    )
    return (
        f'{XML_DECL}{doctype}<soap:Envelope xmlns:soap="{env}" xmlns:p="{LOAN_NS}" '
        f'xmlns:c="{COMMON_NS}">{header}<soap:Body>{call}</soap:Body></soap:Envelope>'
    ).encode()


def publish(borrower_id: int, **values: str) -> str:
    terms = {
        "title": "Hostile",
        "description": "d",
        "borrowerId": str(borrower_id),
        "amount": "1000.00",
        "annualRate": "10",
        "termMonths": "12",
        "repaymentMethod": "BULLET",
        "minInvest": "100.00",
        "raiseDays": "10",
    }
    terms.update(values)
    fields = "".join(f"<p:{k}>{v}</p:{k}>" for k, v in terms.items())
    return f"<p:publishLoan><p:request>{fields}</p:request></p:publishLoan>"


LAUGHS = ['<!ENTITY lol0 "lol">'] + [
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
]
BILLION_LAUGHS = f"<!DOCTYPE soap:Envelope [{''.join(LAUGHS)}]>"


class Case(NamedTuple):
    """A hostile request and the refusal it must get: HTTP status, code, and a word the
    message must hold. A SOAP body may be a function of (operator token, borrower id)."""

    target: str
    body: bytes | Callable[[str, int], bytes] | None
    content_type: str | None
    status: int
    code: str
    mentions: str | None = None


XML = "text/xml; charset=utf-8"
GET_LOAN = envelope("<p:getLoan><p:loanId>1</p:loanId></p:getLoan>")
ENTITY_X = '<!DOCTYPE soap:Envelope [<!ENTITY x "0">]>'
XXE = '<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
STDIN_DTD = b'<!DOCTYPE soap:Envelope SYSTEM "file:///dev/stdin">'
STDIN_PE = b'<!DOCTYPE soap:Envelope [<!ENTITY % p SYSTEM "file:///dev/stdin"> %p;]>'
NESTED = "<p:x>" * 10_000 + "</p:x>" * 10_000
MTOM = (
    b"--b\r\nContent-Type: application/xop+xml\r\n\r\n" + GET_LOAN + b"\r\n--b--\r\n",
    'multipart/related; type="application/xop+xml"; boundary="b"',
)

SOAP_CASES = {
    "malformed": Case("LoanFacade", b"<soap:Envelope xmlns:soap=", XML, 500, "MALFORMED_REQUEST"),
    "empty": Case("LoanFacade", b"", XML, 500, "MALFORMED_REQUEST"),
    "not-an-envelope": Case("LoanFacade", b"<getLoan/>", XML, 500, "MALFORMED_REQUEST"),
    "json-content-type": Case(
        "LoanFacade", GET_LOAN, "application/json", 415, "UNSUPPORTED_MEDIA_TYPE"
    ),
    "unknown-charset": Case(
        "LoanFacade", GET_LOAN, "text/xml; charset=x-klingon", 415, "UNSUPPORTED_MEDIA_TYPE"
    ),
    "internal-entity-in-a-number": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, amount="1&x;000.00"), token=t, doctype=ENTITY_X),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "internal-entity-in-an-id": Case(
        "LoanFacade",
        envelope("<p:getLoan><p:loanId>1&x;</p:loanId></p:getLoan>", doctype=ENTITY_X),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "xxe-file": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, title="&xxe;"), token=t, doctype=XXE),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "external-dtd": Case(
        "LoanFacade",
        GET_LOAN.replace(
            b"<soap:Envelope", b'<!DOCTYPE soap:Envelope SYSTEM "file:///etc/passwd"><soap:Envelope'
        ),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "external-dtd-from-stdin": Case(
        "LoanFacade",
        GET_LOAN.replace(b"<soap:Envelope", STDIN_DTD + b"<soap:Envelope"),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "parameter-entity-from-stdin": Case(
        "LoanFacade",
        GET_LOAN.replace(b"<soap:Envelope", STDIN_PE + b"<soap:Envelope"),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "billion-laughs": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, title="&lol9;"), token=t, doctype=BILLION_LAUGHS),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "deep-nesting": Case(
        "LoanFacade", envelope(f"<p:getLoan>{NESTED}</p:getLoan>"), XML, 500, "MALFORMED_REQUEST"
    ),
    "oversized": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, description="x" * (MAX_BODY + 10))),
        XML,
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    "twice-the-limit": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, description="x" * (2 * MAX_BODY))),
        XML,
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    "mtom": Case("LoanFacade", *MTOM, 415, "UNSUPPORTED_MEDIA_TYPE"),
    "soap12-content-type": Case(
        "LoanFacade",
        GET_LOAN.replace(ENV.encode(), ENV12.encode()),
        "application/soap+xml; charset=utf-8",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "1.2",
    ),
    "unknown-operation": Case(
        "LoanFacade", envelope("<p:stealMoney/>"), XML, 500, "UNKNOWN_OPERATION", "stealMoney"
    ),
    "operation-of-another-facade": Case(
        "LoanFacade",
        envelope('<m:logout xmlns:m="http://p2p.hry.com/facade/member"/>'),
        XML,
        500,
        "UNKNOWN_OPERATION",
    ),
    "unknown-service": Case("NoSuchFacade", GET_LOAN, XML, 500, "UNKNOWN_OPERATION"),
    "two-calls-in-one-body": Case(
        "LoanFacade",
        envelope("<p:getLoan><p:loanId>1</p:loanId></p:getLoan>" * 2),
        XML,
        500,
        "MALFORMED_REQUEST",
    ),
    "letters-in-termMonths": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, termMonths="twelve"), token=t),
        XML,
        500,
        "VALIDATION_FAILED",
        "termMonths",
    ),
    "three-decimals-in-amount": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, amount="1000.001"), token=t),
        XML,
        500,
        "VALIDATION_FAILED",
        "amount",
    ),
    "huge-exponent-in-amount": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, amount="1E+999999"), token=t),
        XML,
        500,
        "VALIDATION_FAILED",
        "amount",
    ),
    "unknown-field": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, loanId="7"), token=t),
        XML,
        500,
        "VALIDATION_FAILED",
        "loanId",
    ),
}


@pytest.mark.parametrize("case_id", SOAP_CASES)
def test_soap_refuses_bad_input_with_a_client_fault(soap, operator, borrower, checks, case_id):
    case = SOAP_CASES[case_id]
    body = case.body(operator.token, borrower.member_id) if callable(case.body) else case.body
    started = time.monotonic()
    r = soap.post(case.target, body, case.content_type)
    assert time.monotonic() - started < 10
    assert r.status_code == case.status, r.text[:500]
    fault = checks.fault(r)
    assert fault.faultcode == "soap:Client"
    assert fault.code == case.code, fault
    assert fault.request_id == r.headers["X-Request-Id"]
    if case.mentions:
        assert case.mentions in fault.message, fault
    assert "root:" not in r.text  # nothing of /etc/passwd


JSON = "application/json"
SESSIONS, LOANS = "/api/v1/sessions", "/api/v1/loans"


def loan_json(amount: str, term_months: str) -> bytes:
    """Loan terms with ``amount`` and ``termMonths`` written as the given JSON literals."""
    fields = {
        "title": '"t"',
        "description": '"d"',
        "borrowerId": "1",
        "amount": amount,
        "annualRate": '"10"',
        "termMonths": term_months,
        "repaymentMethod": '"BULLET"',
        "minInvest": '"100.00"',
        "raiseDays": "10",
    }
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()


REST_CASES = {
    "malformed": Case(SESSIONS, b'{"mobile": ', JSON, 400, "MALFORMED_REQUEST"),
    "empty": Case(SESSIONS, b"", JSON, 400, "MALFORMED_REQUEST"),
    "xml-as-json": Case(SESSIONS, b"<login/>", JSON, 400, "MALFORMED_REQUEST"),
    "not-utf8": Case(SESSIONS, b'{"mobile": "\xff\xfe"}', JSON, 400, "MALFORMED_REQUEST"),
    "duplicate-keys": Case(
        SESSIONS, b'{"mobile":"1","mobile":"2"}', JSON, 400, "MALFORMED_REQUEST", "mobile"
    ),
    "infinity": Case(LOANS, loan_json("Infinity", "12"), JSON, 400, "MALFORMED_REQUEST"),
    "text-plain": Case(SESSIONS, b'{"mobile":"1"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
    "unknown-charset": Case(
        SESSIONS, b"{}", "application/json; charset=klingon", 415, "UNSUPPORTED_MEDIA_TYPE"
    ),
    "deep-arrays": Case(SESSIONS, b"[" * 10_000 + b"]" * 10_000, JSON, 400, "MALFORMED_REQUEST"),
    "deep-objects": Case(
        SESSIONS, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, JSON, 400, "MALFORMED_REQUEST"
    ),
    "oversized": Case(
        SESSIONS, b'{"mobile":"' + b"1" * (MAX_BODY + 10) + b'"}', JSON, 413, "PAYLOAD_TOO_LARGE"
    ),
    "twice-the-limit": Case(SESSIONS, b" " * (2 * MAX_BODY), JSON, 413, "PAYLOAD_TOO_LARGE"),
    "array-body": Case(SESSIONS, b"[]", JSON, 400, "VALIDATION_FAILED"),
    "unknown-path": Case("/api/v1/nothing/here", None, None, 404, "UNKNOWN_OPERATION"),
    "unknown-page": Case("/no/such/page", None, None, 404, "UNKNOWN_OPERATION"),
    "letters-in-termMonths": Case(
        LOANS, loan_json('"1000.00"', '"twelve"'), JSON, 400, "VALIDATION_FAILED", "termMonths"
    ),
    "three-decimals-in-amount": Case(
        LOANS, loan_json('"1000.001"', "12"), JSON, 400, "VALIDATION_FAILED", "amount"
    ),
}


@pytest.mark.parametrize("case_id", REST_CASES)
def test_rest_refuses_bad_input_with_a_client_error(server, operator, checks, case_id):
    case = REST_CASES[case_id]
    headers = {"Authorization": f"Bearer {operator.token}"}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    method = "GET" if case.body is None else "POST"
    started = time.monotonic()
    r = requests.request(
        method, server.url(case.target), data=case.body, headers=headers, timeout=30
    )
    assert time.monotonic() - started < 10
    checks.error(r, case.status, case.code, mentions=case.mentions)


def test_bodies_beyond_the_transport_ceiling_are_cut_off_cleanly(server, checks):
    """waitress refuses, before the app, what is far beyond max_body_bytes."""
    for path, content_type in (
        ("/api/v1/sessions", "application/json"),
        ("/services/LoanFacade", "text/xml"),
    ):
        r = requests.post(
            server.url(path),
            data=b" " * (5 * MAX_BODY),
            headers={"Content-Type": content_type},
            timeout=30,
        )
        checks.clean(r)
        assert r.status_code == 413


def test_the_server_is_healthy_after_the_batch(server, checks):
    r = requests.get(server.url("/health"), timeout=10)
    checks.clean(r)
    assert r.status_code == 200
    assert r.json()["status"] == "UP"
    assert server.proc.poll() is None
    log = server.log_text()
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
