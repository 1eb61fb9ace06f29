"""The JSON codec: exact numbers, no NaN or duplicates, and errors that name the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from facade.p2p.loan import LoanRequest
from server import jsoncodec
from server.binding import describe
from service.errors import BusinessError

LOAN_REQUEST = describe(LoanRequest)
VALID = {
    "title": "周转借款",
    "description": "经营周转",
    "borrowerId": 7,
    "amount": "10000.00",
    "annualRate": "12.5",
    "termMonths": 12,
    "repaymentMethod": "EQUAL_INSTALLMENT",
    "minInvest": "100.00",
    "raiseDays": 7,
}


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        b'{"outer": {"b": 1, "b": 1}}',
    ],
)
def test_duplicate_keys_refused(body: bytes) -> None:
    e = error_of(jsoncodec.parse, body)
    assert e.code == "MALFORMED_REQUEST"
    assert "duplicate key" in e.message


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"amount": -Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
        b"{not json}",
        b"\xff\xfe",
        b'{"a": 1',
    ],
)
def test_unreadable_bodies_are_malformed(body: bytes) -> None:
    e = error_of(jsoncodec.parse, body)
    assert e.code == "MALFORMED_REQUEST"
    assert "Traceback" not in e.message


def test_numbers_are_parsed_exactly() -> None:
    parsed = jsoncodec.parse(b'{"amount": 0.1, "big": 12345678901234567890.12}')
    assert parsed["amount"] == Decimal("0.1")
    assert isinstance(parsed["amount"], Decimal)
    assert parsed["big"] == Decimal("12345678901234567890.12")


def test_reads_a_request_with_a_json_number_for_money() -> None:
    body = jsoncodec.parse(
        b'{"title": "t", "description": "", "borrowerId": 7, "amount": 10000.10,'
        b' "annualRate": 12.5, "termMonths": 12, "repaymentMethod": "BULLET",'
        b' "minInvest": "100.00", "raiseDays": 7}'
    )
    values = jsoncodec.read_complex(body, LOAN_REQUEST, "")
    assert values["amount"] == Decimal("10000.10")
    assert values["annual_rate"] == Decimal("12.5")
    assert values["max_invest_per_investor"] is None


def test_unknown_field_named() -> None:
    e = error_of(jsoncodec.read_complex, {**VALID, "interest": "1"}, LOAN_REQUEST, "request")
    assert e.code == "VALIDATION_FAILED"
    assert e.message == "request.interest: is not a known field"


def test_missing_and_null_required_fields_named() -> None:
    missing = {k: v for k, v in VALID.items() if k != "amount"}
    assert error_of(jsoncodec.read_complex, missing, LOAN_REQUEST, "").message == (
        "amount: is required"
    )
    nulled = {**VALID, "raiseDays": None}
    assert error_of(jsoncodec.read_complex, nulled, LOAN_REQUEST, "r").message == (
        "r.raiseDays: is required"
    )


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("amount", Decimal("1000.001"), "decimal places"),
        ("amount", Decimal("1E+999999"), "digits"),
        ("amount", 1000.5, "string"),
        ("termMonths", "12", "whole number"),
        ("borrowerId", 2**63, "between"),
        ("repaymentMethod", "SOMETIMES", "one of"),
        ("title", "", "at least 1"),
    ],
)
def test_invalid_values_named(field: str, value: object, problem: str) -> None:
    e = error_of(jsoncodec.read_complex, {**VALID, field: value}, LOAN_REQUEST, "")
    assert e.code == "VALIDATION_FAILED"
    assert e.message.startswith(f"{field}: ")
    assert problem in e.message


def test_body_must_be_an_object() -> None:
    assert error_of(jsoncodec.read_complex, [1], LOAN_REQUEST, "").message == (
        "body: must be a JSON object"
    )


def test_money_written_as_strings() -> None:
    money = LOAN_REQUEST.by_name["amount"].type
    rate = LOAN_REQUEST.by_name["annualRate"].type
    out = jsoncodec.dumps(
        {"amount": jsoncodec.to_json(Decimal("1E+3"), money), "rate": rate.to_json(Decimal(12))}
    )
    assert out == b'{"amount":"1000.00","rate":"12.0000"}'
