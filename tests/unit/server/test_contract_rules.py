"""The contracts state the rules the server applies, exactly: property tests that what the
OpenAPI patterns, the WSDL's facets and the services accept is one and the same set.

* Every decimal type: its OpenAPI pattern accepts exactly the text the data binding accepts
  (digit limits and bounds included), and so does the WSDL's restriction (totalDigits,
  fractionDigits, min/maxInclusive, read by libxml2's schema validator).
* Every pattern means the same in Python (the binding), XSD (the WSDL, libxml2) and
  ECMA-262 (OpenAPI; node, with and without the u flag, when node is installed).
* The rules a service checks itself equal what the contract declares: the password policy,
  request numbers, not-blank text, bank names, mobile, ID and card numbers, the page size.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from conf import ConfigError, load_settings
from conf.settings import CONTRACT_MAX_PAGE_SIZE
from facade.member.account import Mobile, NewPassword
from facade.member.cards import BindCardRequest
from facade.member.profile import IdentityRequest
from facade.p2p.loan import LoanRequest
from facade.types import MAX_PAGE_SIZE, NOT_BLANK, PageSizeParam, RequestNo
from server.binding import XS, Complex, InvalidValue, Simple
from server.declared import describe
from server.openapi import _simple_schema
from server.wsdl import Wsdl
from service import pii
from service.errors import BusinessError
from service.idempotency import MAX_REQUEST_NO, REQUEST_NO_PATTERN, check_request_no
from service.member.base import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PASSWORD_PATTERN,
    check_mobile,
    check_password,
)
from service.text import collapse, is_blank

NODE = shutil.which("node")
_XML_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
#: Characters that make a difference to some rule: digits, letters, the point, signs, the four
#: blanks, blanks the contract does not call blank, and other scripts' digits.
TRICKY = "0123456789.+-Xx aZ\t\n\r\u3000\xa0٣５é中"


def walk(t: Complex) -> Iterator[Simple]:
    seen: set[int] = set()
    stack = [t]
    while stack:
        c = stack.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        for f in c.fields:
            if isinstance(f.type, Complex):
                stack.append(f.type)
            else:
                yield f.type


@pytest.fixture(scope="module")
def simples(platform) -> list[Simple]:
    """Every simple type any operation reads or writes, one of each description."""
    found: dict[tuple, Simple] = {}
    for bound in platform.facades:
        for op in bound.operations:
            for t in (op.request, op.response):
                for s in walk(t):
                    found.setdefault(_facets(s), s)
    return list(found.values())


def _facets(t: Simple) -> tuple:
    return (t.kind, t.min_len, t.max_len, t.pattern, t.total_digits, t.fraction_digits,
            t.ge, t.le, t.values)  # fmt: skip


def one_line(text: str) -> bool:
    """What the binding asks of every string not declared multi-line, before any service
    rule: no TAB, LF or CR."""
    return not re.search(r"[\t\n\r]", text)


def accepts(t: Simple, text: str) -> bool:
    try:
        t.from_json(text)
    except InvalidValue:
        return False
    return True


def refuses(check, *args) -> bool:
    try:
        check(*args)
    except BusinessError as e:
        assert e.code == "VALIDATION_FAILED", e.code
        return True
    return False


def simple_of(model, name: str) -> Simple:
    return describe(model).by_name[name].type


# -- decimals -----------------------------------------------------------------------------


def decimal_texts() -> st.SearchStrategy[str]:
    """Random text over a number's characters, and numbers written every way xs:decimal
    allows: signs, leading zeros, zeros ending the fraction, no digit before the point."""

    @st.composite
    def written(draw) -> str:
        value = draw(st.decimals(min_value=-(10**17), max_value=10**17, places=draw(
            st.integers(0, 6)), allow_nan=False, allow_infinity=False))  # fmt: skip
        text = format(value, "f").lstrip("-")
        if "." not in text and draw(st.booleans()):
            text += "."
        text = "0" * draw(st.integers(0, 3)) + text + "0" * draw(st.integers(0, 3)) * ("." in text)
        if text.startswith("0.") and draw(st.booleans()):
            text = text[1:]
        sign = "-" if value < 0 else draw(st.sampled_from(["", "", "+", "-"]))
        return sign + text

    return st.one_of(st.text(alphabet="0123456789.+-", max_size=24), written())


def test_every_decimal_type_is_checked(simples) -> None:
    decimals = [t for t in simples if t.kind == "decimal"]
    names = {t.name for t in decimals}
    assert {"money", "positiveMoney", "rate", "signedMoney"} <= names
    assert any(t.le is not None for t in decimals)  # the listing's and the preview's rates


@settings(max_examples=800, deadline=None)
@given(text=decimal_texts())
def test_openapi_decimal_patterns_accept_exactly_what_the_binding_accepts(simples, text):
    for t in simples:
        if t.kind == "decimal":
            pattern = _simple_schema(t)["pattern"]
            assert bool(re.fullmatch(pattern, text)) == accepts(t, text), (t, text)


@functools.cache
def xsd_checker(restriction: bytes) -> etree.XMLSchema:
    schema = etree.fromstring(
        f'<xs:schema xmlns:xs="{XS}"><xs:element name="v"><xs:simpleType>'.encode()
        + restriction
        + b"</xs:simpleType></xs:element></xs:schema>"
    )
    return etree.XMLSchema(schema)


def xsd_accepts(restriction: bytes, text: str) -> bool:
    element = etree.Element("v")
    element.text = text
    return xsd_checker(restriction).validate(element)


@pytest.fixture(scope="module")
def wsdl_restrictions(platform) -> dict[tuple, bytes]:
    """Every restriction of xs:decimal in every WSDL, by its facets (as the binding's
    description spells them), serialised to be compiled on its own."""
    found = {}
    for bound in platform.facades:
        wsdl = etree.fromstring(Wsdl(bound).render("http://h", f"/services/{bound.name}"))
        for r in wsdl.iter(f"{{{XS}}}restriction"):
            if r.get("base", "").endswith(":decimal"):
                facets = {etree.QName(f).localname: f.get("value") for f in r}
                key = tuple(facets.get(name) for name in (
                    "totalDigits", "fractionDigits", "minInclusive", "maxInclusive"))  # fmt: skip
                found[key] = etree.tostring(r)
    return found


def _decimal_key(t: Simple) -> tuple:
    def text(v):
        return None if v is None else format(v, "f") if not isinstance(v, int) else str(v)

    return (text(t.total_digits), text(t.fraction_digits), text(t.ge), text(t.le))


def test_the_wsdl_states_every_decimal_type(simples, wsdl_restrictions) -> None:
    declared = {_decimal_key(t) for t in simples if t.kind == "decimal"}
    assert declared == set(wsdl_restrictions)


@settings(max_examples=500, deadline=None)
@given(text=decimal_texts())
def test_wsdl_decimal_facets_accept_exactly_what_the_binding_accepts(
    simples, wsdl_restrictions, text
):
    for t in simples:
        if t.kind == "decimal":
            restriction = wsdl_restrictions[_decimal_key(t)]
            assert xsd_accepts(restriction, text) == accepts(t, text), (t, text)


# -- one pattern, three dialects ------------------------------------------------------------


def _ecma(cases: list[tuple[str, str]]) -> list[list[bool]]:
    """Each (pattern, text) as JavaScript reads it, without and with the u flag."""
    script = (
        "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(cases.map(([p, s]) =>"
        " [new RegExp(p).test(s), new RegExp(p, 'u').test(s)])));"
    )
    done = subprocess.run(
        [NODE, "-e", script], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_every_pattern_means_the_same_to_python_xsd_and_ecma(simples, data) -> None:
    """Patterns of strings appear in the WSDL (an xs:pattern, anchored by definition) and in
    OpenAPI (wrapped in ^...$); decimal patterns in OpenAPI only."""
    cases, xsd_cases = [], []
    for t in simples:
        if t.kind == "string" and t.pattern is not None:
            matching = st.from_regex(t.pattern, fullmatch=True)
            for text in data.draw(st.lists(matching | st.text(TRICKY, max_size=30), max_size=30)):
                cases.append((f"^{t.pattern}$", text, bool(re.fullmatch(t.pattern, text))))
                if _XML_TEXT.fullmatch(text):  # what an XML document can carry
                    xsd_cases.append((t, text))
        elif t.kind == "decimal":
            pattern = _simple_schema(t)["pattern"]
            for text in data.draw(st.lists(decimal_texts(), max_size=30)):
                cases.append((pattern, text, bool(re.fullmatch(pattern, text))))
    for t, text in xsd_cases:
        restriction = f'<xs:restriction xmlns:xs="{XS}" base="xs:string"/>'
        r = etree.fromstring(restriction)
        etree.SubElement(r, f"{{{XS}}}pattern", value=t.pattern)
        assert xsd_accepts(etree.tostring(r), text) == bool(re.fullmatch(t.pattern, text)), (
            t.pattern,
            text,
        )
    if NODE is None:
        pytest.skip("node is not installed: the ECMA-262 reading is not checked")
    for (pattern, text, python), ecma in zip(
        cases, _ecma([(p, s) for p, s, _ in cases]), strict=True
    ):
        assert ecma == [python, python], (pattern, text)


# -- what the services check ------------------------------------------------------------------


def test_the_password_rule_is_declared_as_the_service_checks_it() -> None:
    t = describe(NewPassword)
    assert (t.min_len, t.max_len, t.pattern) == (
        PASSWORD_MIN_LENGTH,
        PASSWORD_MAX_LENGTH,
        PASSWORD_PATTERN,
    )


@settings(max_examples=500)
@given(st.text(TRICKY + "!#", max_size=70))
def test_a_password_the_contract_accepts_is_one_the_service_accepts(text) -> None:
    expected = one_line(text) and not refuses(check_password, text)
    assert accepts(describe(NewPassword), text) == expected


def test_request_numbers_are_declared_as_the_service_checks_them() -> None:
    t = describe(RequestNo)
    assert (t.min_len, t.max_len, t.pattern) == (1, MAX_REQUEST_NO, REQUEST_NO_PATTERN)


@settings(max_examples=500)
@given(st.text(TRICKY, max_size=70))
def test_a_request_number_the_contract_accepts_is_one_the_service_accepts(text) -> None:
    assert accepts(describe(RequestNo), text) == (not refuses(check_request_no, text))


@settings(max_examples=500)
@given(st.text(TRICKY, max_size=100))
def test_not_blank_is_what_the_service_calls_not_blank(text) -> None:
    assert bool(re.fullmatch(NOT_BLANK, text)) == (not is_blank(text))
    title = simple_of(LoanRequest, "title")
    assert accepts(title, text) == (one_line(text) and not is_blank(text))


@settings(max_examples=500)
@given(st.text(TRICKY, max_size=50))
def test_a_bank_name_the_contract_accepts_is_one_the_service_keeps(text) -> None:
    """The service collapses blanks and wants 2 to 50 characters left (cards.bind_card)."""
    expected = one_line(text) and len(collapse(text)) >= 2
    assert accepts(simple_of(BindCardRequest, "bankName"), text) == expected


@settings(max_examples=500)
@given(st.from_regex(r"1[0-9]{10}", fullmatch=True) | st.text(TRICKY, max_size=12))
def test_mobile_numbers(text) -> None:
    assert accepts(describe(Mobile), text) == (not refuses(check_mobile, text))


@st.composite
def id_numbers(draw) -> str:
    """Valid resident ID numbers, and ones broken in one place."""
    born = draw(st.dates(dt.date(1890, 1, 1), dt.date(2100, 12, 31)))
    first17 = f"{draw(st.integers(100000, 999999))}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    number = first17 + pii.id_check_character(first17)
    if draw(st.booleans()):
        number = number.lower()
    if draw(st.booleans()):
        at = draw(st.integers(0, 17))
        number = number[:at] + draw(st.sampled_from("0123456789Xx ")) + number[at + 1 :]
    return number


@settings(max_examples=500)
@given(id_numbers() | st.text("0123456789Xx", min_size=18, max_size=18))
def test_the_id_number_pattern_never_refuses_what_the_service_takes(text) -> None:
    """Check character, a real date and age are words in the contract; every number the
    service takes matches the declared pattern, every one the pattern refuses it refuses."""
    declared = simple_of(IdentityRequest, "idNumber")
    try:
        number = pii.resident_id(text)
        today = dt.date(2026, 3, 1)
        taken = number.birth_date <= today
    except BusinessError:
        taken = False
    if taken:
        assert accepts(declared, text), text
    if not accepts(declared, text):
        assert not taken, text


@settings(max_examples=500)
@given(st.text("0123456789 ", min_size=16, max_size=23))
def test_a_card_number_the_contract_accepts_has_the_digits_the_service_wants(text) -> None:
    """16 to 19 digits, spaces anywhere: the contract and the service agree on the form; the
    Luhn check is stated in words."""
    declared = simple_of(BindCardRequest, "cardNumber")
    digits = sum(c.isdigit() for c in text)
    assert accepts(declared, text) == (16 <= digits <= 19)
    if accepts(declared, text):
        try:
            pii.card_number(text)
        except BusinessError as e:
            assert "Luhn" in e.message


def test_the_page_size_maximum_is_the_contracts() -> None:
    assert MAX_PAGE_SIZE == CONTRACT_MAX_PAGE_SIZE
    page_size = describe(PageSizeParam)
    assert (page_size.ge, page_size.le) == (1, MAX_PAGE_SIZE)
    with pytest.raises(InvalidValue, match=f"at most {MAX_PAGE_SIZE}"):
        page_size.from_text(str(MAX_PAGE_SIZE + 1))
    assert load_settings({"P2P_ENV": "test"}, {"api.max_page_size": 50}).api.max_page_size == 50
    with pytest.raises(ConfigError, match=r"api\.max_page_size"):
        load_settings({"P2P_ENV": "test"}, {"api.max_page_size": MAX_PAGE_SIZE + 1})
