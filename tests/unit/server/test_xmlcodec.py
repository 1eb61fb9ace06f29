"""The XML codec: strict reading that names the field's path, and writing with the binding."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from lxml import etree

from facade.p2p.loan import NS, AuditRequest, LoanPageDto, LoanRequest
from server.binding import Complex, Simple, carriable
from server.declared import describe
from server.xmlcodec import read_complex, write_complex, write_value
from service.errors import BusinessError

XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOAN_REQUEST = describe(LoanRequest)

FIELDS = {
    "title": "周转借款",
    "description": "经营周转",
    "borrowerId": "7",
    "amount": "10000.00",
    "annualRate": "12.5",
    "termMonths": "12",
    "repaymentMethod": "EQUAL_INSTALLMENT",
    "minInvest": "100.00",
    "raiseDays": "7",
}


def loan_xml(fields: dict[str, str] | None = None, extra: str = "") -> etree._Element:
    fields = FIELDS if fields is None else fields
    children = "".join(f"<p:{k}>{v}</p:{k}>" for k, v in fields.items())
    return etree.fromstring(
        f'<p:request xmlns:p="{NS}" xmlns:xsi="{XSI}">{children}{extra}</p:request>'
    )


def refused(element, t=LOAN_REQUEST, path: str = "request") -> str:
    with pytest.raises(BusinessError) as e:
        read_complex(element, t, path)
    assert e.value.code == "VALIDATION_FAILED"
    return e.value.message


def test_reads_a_valid_request_into_python_names() -> None:
    values = read_complex(loan_xml(), LOAN_REQUEST, "request")
    assert values["borrower_id"] == 7
    assert values["amount"] == Decimal("10000.00")
    assert values["annual_rate"] == Decimal("12.5")
    assert values["min_invest"] == Decimal("100.00")
    assert values["max_invest_per_investor"] is None  # optional and absent
    assert values["title"] == "周转借款"


def test_unknown_element_named_with_its_path() -> None:
    message = refused(loan_xml(extra="<p:interest>1</p:interest>"))
    assert message.startswith("request.interest:")
    assert "not a known element" in message


def test_known_name_in_another_namespace_is_unknown() -> None:
    message = refused(loan_xml(extra='<amount xmlns="urn:other">1.00</amount>'))
    assert message.startswith("request.amount:")


def test_duplicate_element_named() -> None:
    message = refused(loan_xml(extra="<p:amount>1.00</p:amount>"))
    assert message == "request.amount: appears more than once"


def test_missing_required_element_named() -> None:
    fields = {k: v for k, v in FIELDS.items() if k != "minInvest"}
    assert refused(loan_xml(fields)) == "request.minInvest: is required"


def test_invalid_value_named() -> None:
    message = refused(loan_xml({**FIELDS, "amount": "1.001"}))
    assert message.startswith("request.amount:")
    assert "decimal places" in message


def test_nil_on_a_required_element_refused() -> None:
    fields = {k: v for k, v in FIELDS.items() if k != "title"}
    element = loan_xml(fields, extra='<p:title xsi:nil="true"/>')
    assert refused(element) == "request.title: may not be nil"


def test_nil_on_an_optional_element_is_absent() -> None:
    element = loan_xml(extra='<p:maxInvestPerInvestor xsi:nil="true"/>')
    assert read_complex(element, LOAN_REQUEST, "request")["max_invest_per_investor"] is None


def test_nested_path_and_stray_text() -> None:
    audit = describe(AuditRequest)
    element = etree.fromstring(f'<a xmlns="{NS}"><approve>maybe</approve></a>')
    assert refused(element, audit, "auditLoan.request").startswith(
        "auditLoan.request.approve: must be true or false"
    )
    element = etree.fromstring(f'<a xmlns="{NS}">text<approve>true</approve></a>')
    assert "must not contain text" in refused(element, audit, "req")
    element = etree.fromstring(f'<a xmlns="{NS}"><approve><x/></approve></a>')
    assert refused(element, audit, "req") == "req.approve: must be a simple value"


def test_write_then_read_round_trip_with_repeated_items() -> None:
    page = describe(LoanPageDto)
    item = SimpleNamespace(
        loan_id=1,
        title="t",
        description="d",
        borrower_id=2,
        amount=Decimal("1E+3"),
        annual_rate=Decimal("12.5"),
        term_months=12,
        repayment_method="BULLET",
        min_invest=Decimal("100"),
        max_invest_per_investor=None,
        raise_days=7,
        status="RAISING",
        raised=Decimal("0"),
        reject_reason=None,
        raise_deadline=None,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        updated_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )
    value = SimpleNamespace(items=[item, item], total=2, page=1, page_size=20)
    root = etree.Element(f"{{{NS}}}page")
    write_complex(root, page, value)
    assert root.findtext(f"{{{NS}}}items/{{{NS}}}amount") == "1000.00"
    assert root.findtext(f"{{{NS}}}items/{{{NS}}}annualRate") == "12.5000"
    assert root.find(f"{{{NS}}}items/{{{NS}}}maxInvestPerInvestor") is None
    back = read_complex(etree.fromstring(etree.tostring(root)), page, "")
    assert len(back["items"]) == 2
    assert back["items"][0]["amount"] == Decimal("1000.00")
    assert back["page_size"] == 20


# -- text: what is read, what is written ------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "problem"),
    [
        ("title", "a&#x85;b", "may not contain U+0085"),
        ("title", "a&#x9F;b", "may not contain U+009F"),
        ("title", "&#xFDD0;", "may not contain U+FDD0"),
        ("description", "&#x10FFFF;", "may not contain U+10FFFF"),
        ("description", "a&#x7F;", "may not contain U+007F"),
        ("title", "one&#10;two", "single line"),
        ("title", "one\ttwo", "single line"),
        ("amount", "100." + "0" * 5000, "at most 100 characters"),
        ("amount", "&#x661;&#x660;&#x660;", "decimal number"),  # Arabic-Indic 100
        ("borrowerId", "&#xFF11;", "whole number"),  # fullwidth 1
        ("termMonths", "0" * 5000 + "12", "at most 100 characters"),
    ],
)
def test_values_breaking_the_text_and_number_rules_are_named(
    field: str, text: str, problem: str
) -> None:
    message = refused(loan_xml({**FIELDS, field: text}))
    assert message.startswith(f"request.{field}: ")
    assert problem in message


def test_multi_line_text_keeps_its_line_breaks() -> None:
    values = read_complex(
        loan_xml({**FIELDS, "description": "one&#10;two\tthree"}), LOAN_REQUEST, ""
    )
    assert values["description"] == "one\ntwo\tthree"


def test_unknown_element_names_are_echoed_briefly() -> None:
    message = refused(loan_xml(extra=f"<p:{'x' * 40_000}>1</p:{'x' * 40_000}>"))
    assert message.startswith("request." + "x" * 39 + "\u2026: ")
    assert len(message) < 100


def test_writes_any_stored_text() -> None:
    """Text stored before the text rules: what XML cannot carry is replaced, the rest kept."""
    audit = SimpleNamespace(approve=True, reason="a\x01b\x0b\ufffe\uffff\ud800\tc\nd\x85\ufdd0")
    root = etree.Element(f"{{{NS}}}request")
    write_complex(root, describe(AuditRequest), audit)
    parsed = etree.fromstring(etree.tostring(root, encoding="UTF-8"))
    assert parsed.findtext(f"{{{NS}}}reason") == "a\ufffdb" + "\ufffd" * 4 + "\tc\nd\x85\ufdd0"


def walk(parent, f, ns, value) -> None:
    """The field-by-field walk the writers replaced, as the reference of what they must write."""
    child = etree.SubElement(parent, f"{{{ns}}}{f.name}")
    if isinstance(f.type, Simple):
        child.text = carriable(f.type.to_text(value))
        return
    for g in f.type.fields:
        v = getattr(value, g.attr)
        if v is not None:
            for item in v if g.repeated else (v,):
                walk(child, g, f.type.namespace, item)


def test_every_answer_is_written_as_the_field_walk_writes_it() -> None:
    from server.contractdoc.examples import value_of
    from tests.unit.server.test_jsoncodec import result_fields

    fields = result_fields()
    assert "LoanFacade.listLoans" in fields
    for name, (f, ns) in fields.items():
        value = value_of(f.type, name)
        ours, reference = etree.Element("r"), etree.Element("r")
        write_value(ours, f, ns, value)
        walk(reference, f, ns, value)
        assert etree.tostring(ours) == etree.tostring(reference), name
        if isinstance(f.type, Complex):  # and with every optional field absent
            sparse = SimpleNamespace(**vars(value))
            for g in f.type.fields:
                if not g.required:
                    setattr(sparse, g.attr, None)
            ours, reference = etree.Element("r"), etree.Element("r")
            write_value(ours, f, ns, sparse)
            walk(reference, f, ns, sparse)
            assert etree.tostring(ours) == etree.tostring(reference), name
