"""Bad and hostile input on both protocols: a clear client error every time, nothing leaked,
and the server still healthy after the whole batch (the last test of this module).

Two parts: attacks on the envelope, the body and the transport, listed by hand; and bad
values in every field of every operation, generated from the contract (see below)."""

import functools
import json
import re
import re._parser as sre
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import pytest
import requests
from lxml import etree
from p2p_partner import HmacKey, PartnerClient
from p2p_partner.soap import sign_envelope

from server.binding import Complex, Field, InvalidValue, Simple
from server.declared import discover_facades, field

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
    "xml-content-type": Case(
        "LoanFacade", GET_LOAN, "application/xml", 415, "UNSUPPORTED_MEDIA_TYPE", "soap+xml"
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
    "trailing-zeros-in-amount": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, amount="100." + "0" * 5000), token=t),
        XML,
        500,
        "VALIDATION_FAILED",
        "request.amount",
    ),
    "arabic-indic-digits-in-an-id": Case(
        "LoanFacade",
        envelope("<p:getLoan><p:loanId>\u0661</p:loanId></p:getLoan>"),
        XML,
        500,
        "VALIDATION_FAILED",
        "loanId",
    ),
    "c1-control-in-a-title": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, title="a&#x85;b"), token=t),
        XML,
        500,
        "VALIDATION_FAILED",
        "request.title",
    ),
    "a-long-unknown-element": Case(
        "LoanFacade",
        lambda t, b: envelope(publish(b, **{"x" * 40_000: "1"}), token=t),
        XML,
        500,
        "VALIDATION_FAILED",
        "request.xxx",
    ),
}


def in_soap_12(body: bytes, content_type: str, status: int) -> tuple[bytes, str, int]:
    """The same attack sent as SOAP 1.2: its envelope, its media type (with the same
    parameters), and HTTP 400 where SOAP 1.1 answers 500 (a Sender fault, SOAP 1.2 part 2
    §7.5.2). Other media types stay what they are."""
    return (
        body.replace(ENV.encode(), ENV12.encode()),
        content_type.replace("text/xml", "application/soap+xml"),
        400 if status == 500 else status,
    )


@pytest.mark.parametrize("soap", ["1.1", "1.2"], indirect=True)
@pytest.mark.parametrize("case_id", SOAP_CASES)
def test_soap_refuses_bad_input_with_a_client_fault(soap, operator, borrower, checks, case_id):
    case = SOAP_CASES[case_id]
    body = case.body(operator.token, borrower.member_id) if callable(case.body) else case.body
    content_type, status = case.content_type, case.status
    if soap.version.name == "1.2":
        body, content_type, status = in_soap_12(body, content_type, status)
    started = time.monotonic()
    r = soap.post(case.target, body, content_type)
    assert time.monotonic() - started < 10
    assert r.status_code == status, r.text[:500]
    fault = checks.fault(r)
    # A fault is written in the version of the media type sent: SOAP 1.1 for any other.
    soap12 = content_type.startswith("application/soap+xml")
    assert fault.faultcode == ("env:Sender" if soap12 else "soap:Client")
    assert fault.code == case.code, fault
    assert fault.request_id == r.headers["X-Request-Id"]
    if case.mentions:
        assert case.mentions in fault.detail, fault
    assert "root:" not in r.text  # nothing of /etc/passwd


JSON = "application/json"
SESSIONS, LOANS = "/api/v1/sessions", "/api/v1/loans"


def loan_json(amount: str, term_months: str, title: str = '"t"') -> bytes:
    """Loan terms with ``amount``, ``termMonths`` and ``title`` written as the given JSON
    literals."""
    fields = {
        "title": title,
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
    "trailing-zeros-in-amount": Case(
        LOANS, loan_json("100." + "0" * 5000, "12"), JSON, 400, "VALIDATION_FAILED", "amount"
    ),
    "an-integer-of-5000-digits": Case(
        LOANS, loan_json('"1000.00"', "1" * 5000), JSON, 400, "VALIDATION_FAILED", "termMonths"
    ),
    "lone-surrogate-in-a-value": Case(
        LOANS,
        loan_json('"1000.00"', "12", title='"\\ud800"'),
        JSON,
        400,
        "VALIDATION_FAILED",
        "title: may not contain U+D800",
    ),
    "lone-surrogate-in-a-key": Case(
        SESSIONS, b'{"\\ud800": 1}', JSON, 400, "VALIDATION_FAILED", "\ufffd"
    ),
    # The router matches a whole-number path parameter with ASCII digits only.
    "arabic-indic-digits-in-an-id": Case(
        "/api/v1/loans/%D9%A1", None, None, 404, "UNKNOWN_OPERATION"
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


# -- generated from the contract: every field of every operation, each class of bad value ------
#
# Every bound operation's parameters are walked down to their simple fields (server.registry,
# server.binding); each string field gets a C0 control, a C1 control, a noncharacter, a line
# break when it is a single line, and (JSON only) a lone surrogate; each number very long text
# (thousands of zeros, thousands of digits) and non-ASCII digits. One request a (operation,
# field, class, protocol), every other parameter valid, as a caller whose role the operation
# allows (arguments are read only after authorisation). Each must be VALIDATION_FAILED naming
# the field, except what XML itself cannot carry (a C0 control: MALFORMED_REQUEST over SOAP).


@dataclass(frozen=True)
class Leaf:
    """A simple field of an operation's request: its path from the parameter down."""

    path: tuple[str, ...]
    type: Simple


@dataclass(frozen=True)
class Hostile:
    cls: str  # the class of bad value
    text: str  # as XML text, a path or a query value
    json: str  # as a JSON literal in a body
    soap_code: str = "VALIDATION_FAILED"
    json_only: bool = False  # a lone surrogate: only a JSON string escape can carry it


def leaves(f: Field, path: tuple[str, ...] = ()) -> list[Leaf]:
    here = (*path, f.name)
    if isinstance(f.type, Complex):
        return [leaf for sub in f.type.fields for leaf in leaves(sub, here)]
    return [Leaf(here, f.type)]


@functools.cache
def declared() -> dict[str, tuple[type, object, tuple[Field, ...]]]:
    """Every operation as "Facade.operation" -> (facade, operation, its parameters)."""
    return {
        f"{facade.__name__}.{op.name}": (
            facade,
            op,
            tuple(field(p.name, p.type) for p in op.params),
        )
        for facade in discover_facades()
        for op in facade.operations
    }


def _member(items) -> str:
    """A character of a parsed character class (its first; "x" for a negated one)."""
    op, arg = items[0]
    if op is sre.LITERAL:
        return chr(arg)
    return chr(arg[0]) if op is sre.RANGE else "x"


def _sample(nodes, stretch: int) -> str:
    """A string the parsed regex ``nodes`` matches, each open repeat taken ``stretch`` times;
    :func:`valid_text` checks it with the binding."""
    out = []
    for op, arg in nodes:
        if op is sre.LITERAL:
            out.append(chr(arg))
        elif op is sre.IN:
            out.append(_member(arg))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, sub = arg
            out.append(_sample(sub, stretch) * max(low, min(high, stretch)))
        elif op is sre.SUBPATTERN:
            out.append(_sample(arg[-1], stretch))
        elif op is sre.BRANCH:
            out.append(_sample(arg[1][0], stretch))
        else:
            out.append("x")
    return "".join(out)


@functools.cache
def valid_text(t: Simple) -> str:
    """A value the binding accepts for ``t``: every parameter but the one under attack."""
    if t.kind == "decimal":
        candidates = ["1"]
    elif t.kind in ("long", "int"):
        low = 1 if t.ge is None else max(1, int(t.ge))
        candidates = [str(low if t.le is None else min(low, int(t.le)))]
    elif t.kind == "boolean":
        candidates = ["true"]
    elif t.kind == "enum":
        candidates = [t.values[0]]
    elif t.kind == "dateTime":
        candidates = ["2026-01-31T08:00:00Z"]
    elif t.kind == "date":
        candidates = ["2026-01-31"]
    else:
        nodes = sre.parse(t.pattern or "x+")
        candidates = [_sample(nodes, n) for n in range(1, (t.max_len or 64) + 1)]
        candidates += ["4" * n for n in range(1, 20)]  # digit strings (e.g. a card number)
    for text in candidates:
        try:
            t.from_text(text)
            return text
        except InvalidValue:
            continue
    raise AssertionError(f"no valid sample for {t}: teach valid_text its pattern")


def valid_json(t: Simple):
    text = valid_text(t)
    if t.kind in ("long", "int"):
        return int(text)
    return text == "true" if t.kind == "boolean" else text


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
MANY = 5000


def hostile_values(t: Simple) -> list[Hostile]:
    if t.kind in ("string", "enum"):
        values = [
            Hostile("c0-control", "x\x01y", json.dumps("x\x01y"), soap_code="MALFORMED_REQUEST"),
            Hostile("c1-control", "x\x85y", json.dumps("x\x85y")),
            Hostile("noncharacter", "x\ufdd0y", json.dumps("x\ufdd0y")),
            Hostile("lone-surrogate", "x\ud800y", '"x\\ud800y"', json_only=True),
        ]
        if not t.multiline:
            values.append(Hostile("line-break", "x\ny", json.dumps("x\ny")))
        return values
    if t.kind not in ("decimal", "long", "int"):
        return []
    valid = valid_text(t)
    zeros = valid + "." + "0" * MANY if t.kind == "decimal" else "0" * MANY + valid
    arabic, fullwidth = valid.translate(ARABIC_INDIC), valid.translate(FULLWIDTH)
    return [
        # JSON can only write the trailing zeros of a fraction: 1.000... as a JSON number.
        Hostile("long-zeros", zeros, valid + "." + "0" * MANY),
        Hostile("many-digits", "1" * MANY, "1" * MANY),
        Hostile("arabic-indic", arabic, json.dumps(arabic)),  # JSON has no other digits
        Hostile("fullwidth", fullwidth, json.dumps(fullwidth)),
    ]


# -- sending a case ----------------------------------------------------------------------------

PLACEHOLDER = "@@hostile@@"


def _json_value(f: Field, target: Leaf | None, depth: int = 0):
    """The JSON value of parameter ``f``, valid except the placeholder at ``target``."""
    if isinstance(f.type, Complex):
        return {
            sub.name: _json_value(sub, target, depth + 1)
            for sub in f.type.fields
            if sub.required or (target and target.path[depth + 1 : depth + 2] == (sub.name,))
        }
    if target is not None and target.path[depth:] == (f.name,):
        return PLACEHOLDER
    return valid_json(f.type)


def _xml_text(text: str) -> str:
    """XML character data for ``text``, control characters as character references."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(f"&#{ord(c)};" if ord(c) < 0x20 else c for c in escaped)


def _xml_element(f: Field, ns: str, target: Leaf, value: str, depth: int = 0) -> str:
    on_path = target.path[depth : depth + 1] == (f.name,)
    if isinstance(f.type, Complex):
        inner = "".join(
            _xml_element(sub, f.type.namespace, target, value, depth + 1)
            for sub in f.type.fields
            if sub.required or (on_path and target.path[depth + 1 : depth + 2] == (sub.name,))
        )
    elif on_path and len(target.path) == depth + 1:
        inner = _xml_text(value)
    else:
        inner = _xml_text(valid_text(f.type))
    return f'<{f.name} xmlns="{ns}">{inner}</{f.name}>'


def soap_call(facade, op, params, target: Leaf, value: str, token: str | None) -> bytes:
    call = "".join(
        _xml_element(f, facade.namespace, target, value)
        for f in params
        if f.required or f.name == target.path[0]
    )
    header = (
        f'<soap:Header><c:AuthToken xmlns:c="{COMMON_NS}"><c:token>{token}</c:token>'
        "</c:AuthToken></soap:Header>"
        if token
        else ""
    )
    return (
        f'{XML_DECL}<soap:Envelope xmlns:soap="{ENV}">{header}<soap:Body>'
        f'<{op.name} xmlns="{facade.namespace}">{call}</{op.name}></soap:Body></soap:Envelope>'
    ).encode()


def rest_request(api, op, params, target: Leaf | None, hostile: Hostile | None, extra_key=None):
    """(method, url, query, body) of a REST call with the hostile value at ``target`` (or,
    with ``extra_key``, every value valid and that unknown key added to the JSON body)."""
    method, path, document = api.operations[op.name]
    where = {p["name"]: p["in"] for p in document.get("parameters", ())}
    query, body = [], {}
    for f in params:
        attacked = hostile is not None and f.name == target.path[0]
        if attacked and hostile.json_only and f.name in where:
            return None  # a URL cannot carry it
        if where.get(f.name) == "path":
            text = hostile.text if attacked else valid_text(f.type)
            path = path.replace("{" + f.name + "}", urllib.parse.quote(text, safe=""))
        elif where.get(f.name) == "query":
            if attacked:
                query.append((f.name, hostile.text))
            elif f.required:
                query.append((f.name, valid_text(f.type)))
        elif f.required or attacked:
            body[f.name] = _json_value(f, target if attacked else None)
    if op.rest.body is not None:
        body = body[op.rest.body]
    if extra_key is not None:
        body = {**body, PLACEHOLDER: 1}
    data = None
    if "requestBody" in document:
        data = json.dumps(body)
        if extra_key is not None:
            data = data.replace(json.dumps(PLACEHOLDER), extra_key, 1)
        elif hostile is not None:
            data = data.replace(json.dumps(PLACEHOLDER), hostile.json, 1)
    return method, api.server.url(path), query, data


ROLES = ("OPERATOR", "INVESTOR", "BORROWER")  # the first the operation allows calls it


@pytest.fixture(scope="module")
def partner(server, operator) -> PartnerClient:
    """A partner app with every scope, a limit no batch reaches, and an HMAC key: it signs
    the calls of partner operations, so that their arguments are read at all."""
    auth = {"Authorization": f"Bearer {operator.token}"}
    app = requests.post(
        server.url("/api/v1/partner-apps"),
        json={
            "name": f"hostile {time.time_ns()}",
            "contact": "ops@partner.example",
            "scopes": [
                "LISTING_READ",
                "MEMBER_REGISTER",
                "MEMBER_INVESTMENT_READ",
                "REPORT_READ",
                "CALLBACK_MANAGE",
            ],
            "ratePerMinute": 100000,
            "burst": 10000,
        },
        headers=auth,
        timeout=30,
    ).json()["appId"]
    key = requests.post(
        server.url(f"/api/v1/partner-apps/{app}/keys"),
        json={"keyId": "k1", "algorithm": "HMAC_SHA256"},
        headers=auth,
        timeout=30,
    ).json()
    return PartnerClient(server.base, app, HmacKey("k1", key["secret"]))


def signed_soap(partner: PartnerClient, url: str, envelope: bytes) -> bytes:
    """``envelope`` with a signed PartnerSignature header; as it is when it is not XML (the
    endpoint refuses it before any signature is looked at)."""
    try:
        root = etree.fromstring(envelope, etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return envelope
    sign_envelope(partner, root, url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def caller(op, operator, investor, borrower) -> str | None:
    if op.roles is None:
        return None
    tokens = {"OPERATOR": operator.token, "INVESTOR": investor.token, "BORROWER": borrower.token}
    return next(tokens[role] for role in ROLES if role in op.roles)


def cases(params) -> list[tuple[Leaf, Hostile]]:
    return [(leaf, h) for f in params for leaf in leaves(f) for h in hostile_values(leaf.type)]


GENERATED = sorted(key for key, (_, _, params) in declared().items() if cases(params))


@pytest.mark.parametrize("key", GENERATED)
def test_soap_refuses_every_bad_value_in_every_field(
    soap, checks, operator, investor, borrower, partner, key
):
    facade, op, params = declared()[key]
    token = caller(op, operator, investor, borrower)
    problems = []
    for leaf, h in cases(params):
        if h.json_only:
            continue
        call = soap_call(facade, op, params, leaf, h.text, token)
        if op.partner:
            call = signed_soap(partner, soap.server.url(f"/services/{facade.__name__}"), call)
        r = soap.post(facade.__name__, call)
        fault = checks.fault(r)
        name = ".".join(leaf.path)
        named = h.soap_code != "VALIDATION_FAILED" or fault.detail.startswith(f"{name}: ")
        if fault.faultcode != "soap:Client" or fault.code != h.soap_code or not named:
            problems.append(f"{name} {h.cls}: HTTP {r.status_code} {fault}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key", GENERATED)
def test_rest_refuses_every_bad_value_in_every_field(
    api, checks, operator, investor, borrower, partner, key
):
    _, op, params = declared()[key]
    token = caller(op, operator, investor, borrower)
    problems = []

    in_path = set(re.findall(r"\{(\w+)\}", op.rest.path))

    def send(request, expect: str, what: str, routed: bool = True) -> None:
        method, url, query, data = request
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        query = urllib.parse.urlencode(query)
        if op.partner:
            path = urllib.parse.urlsplit(url).path
            body = b"" if data is None else data.encode()
            headers.update(partner.signature_headers(method, path, query, body))
        if data is not None:
            headers["Content-Type"] = "application/json"
        r = requests.request(method, url, params=query, data=data, headers=headers, timeout=30)
        checks.clean(r)
        body = r.json() if r.headers.get("Content-Type", "").startswith(JSON) else {}
        refused = (
            r.status_code == 400
            and body.get("code") == "VALIDATION_FAILED"
            and body.get("detail", "").startswith(expect)
        )
        # A path segment the router does not match (a whole number in other digits or over
        # 19 digits) names no resource at all: refused as UNKNOWN_OPERATION, never served.
        unrouted = not routed and r.status_code == 404 and body.get("code") == "UNKNOWN_OPERATION"
        if not (refused or unrouted):
            problems.append(f"{what}: HTTP {r.status_code} {r.text[:300]}")

    for leaf, h in cases(params):
        request = rest_request(api, op, params, leaf, h)
        if request is not None:
            what = f"{'.'.join(leaf.path)} {h.cls}"
            # The JSON names a field from the body down: a named body's own name is no part.
            named = leaf.path[1:] if leaf.path[0] == op.rest.body else leaf.path
            send(request, ".".join(named) + ": ", what, leaf.path[0] not in in_path)
    if "requestBody" in api.operations[op.name][2]:
        # A lone surrogate in a key: the error that names the key must not break.
        request = rest_request(api, op, params, None, None, extra_key='"\\ud800"')
        send(request, "\ufffd", "key")
    assert not problems, "\n".join(problems)


def test_the_server_is_healthy_after_the_batch(server, checks):
    r = requests.get(server.url("/health"), timeout=10)
    checks.clean(r)
    assert r.status_code == 200
    assert r.json()["status"] == "UP"
    assert server.proc.poll() is None
    log = server.log_text()
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
