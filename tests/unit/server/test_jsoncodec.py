"""The JSON codec: exact numbers, no NaN or duplicates, and errors that name the field."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest

from facade.p2p.loan import LoanRequest
from server import jsoncodec
from server.binding import LONG_NUMBER, MAX_NUMBER_LENGTH, Complex, Field, Simple
from server.declared import describe
from service.errors import BusinessError

LOAN_REQUEST = describe(LoanRequest)
TITLE = LOAN_REQUEST.by_name["title"].type
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


# -- numbers too long to parse, text that cannot be encoded --------------------------------


@pytest.mark.parametrize(
    ("field", "literal"),
    [
        ("borrowerId", "1" + "0" * 5000),  # int() refuses 4,300 digits
        ("amount", "100." + "0" * 5000),
        ("amount", "1" * 5000),
        ("termMonths", "1" * (MAX_NUMBER_LENGTH + 1)),
    ],
)
def test_json_numbers_too_long_to_parse_are_refused_by_name(field: str, literal: str) -> None:
    body = dict(VALID)
    del body[field]
    text = jsoncodec.dumps(body)[:-1] + f',"{field}":{literal}}}'.encode()
    e = error_of(jsoncodec.read_complex, jsoncodec.parse(text), LOAN_REQUEST, "request")
    assert e.code == "VALIDATION_FAILED"
    assert e.message == f"request.{field}: must have at most {MAX_NUMBER_LENGTH} characters"


def test_json_numbers_up_to_the_bound_are_parsed() -> None:
    digits = "9" * MAX_NUMBER_LENGTH
    assert jsoncodec.parse(f"[{digits}, -{digits[3:]}.5]".encode()) == [
        int(digits),
        Decimal(f"-{digits[3:]}.5"),
    ]
    assert jsoncodec.parse(f"[{digits}1]".encode()) == [LONG_NUMBER]


def test_json_number_forms_other_than_ascii_are_malformed() -> None:
    for body in ("[١٠٠]", "[１００]"):
        assert error_of(jsoncodec.parse, body.encode()).code == "MALFORMED_REQUEST"


@pytest.mark.parametrize("key", ["\ud800", "a\udfffb", "\x01", "x\ny", "k" * 100_000])
def test_unknown_keys_are_echoed_safely_and_briefly(key: str) -> None:
    e = error_of(jsoncodec.read_complex, {**VALID, key: 1}, LOAN_REQUEST, "request")
    assert e.code == "VALIDATION_FAILED"
    assert e.message.endswith(": is not a known field")
    assert len(e.message) < 100
    assert TITLE.from_text(e.message) == e.message  # one line of text the contract accepts
    jsoncodec.dumps({"message": e.message})


def test_duplicate_keys_are_echoed_without_a_repr() -> None:
    assert error_of(jsoncodec.parse, b'{"a": 1, "a": 2}').message == "duplicate key a"
    e = error_of(jsoncodec.parse, b'{"\\ud800": 1, "\\ud800": 2}')
    assert e.message == "duplicate key \ufffd"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("a\x00b\x01\x08\x0b\x0c\x1f", "a\ufffdb" + "\ufffd" * 5),
        ("\ud800 lone \udfff", "\ufffd lone \ufffd"),
        ("\ufffe\uffff", "\ufffd\ufffd"),
        ("tab\tline\ncr\r", "tab\tline\ncr\r"),  # JSON and XML carry them
        ("\x7f\x85\ufdd0\U0001fffe", "\x7f\x85\ufdd0\U0001fffe"),  # discouraged, not impossible
        ('C:\\u0041\\b\\f "q"', 'C:\\u0041\\b\\f "q"'),  # backslashes, not escapes
    ],
)
def test_dumps_writes_any_text_as_the_xml_writer_does(value: str, written: str) -> None:
    """Text stored before the text rules: a lone surrogate cannot be encoded at all."""
    out = jsoncodec.dumps({"items": [{"title": value}], "message": (value,), value: 1})
    assert json.loads(out) == {"items": [{"title": written}], "message": [written], written: 1}


def test_dumps_leaves_other_values_alone() -> None:
    assert jsoncodec.dumps({"n": 1, "b": True, "z": None, "t": "周转"}) == (
        '{"n":1,"b":true,"z":null,"t":"周转"}'.encode()
    )


def walk(value, t):
    """The field-by-field walk to_json replaced, as the reference of what it must write."""
    if isinstance(t, Simple):
        return t.to_json(value)
    out = {}
    for f in t.fields:
        v = getattr(value, f.attr)
        if v is not None:
            out[f.name] = [walk(x, f.type) for x in v] if f.repeated else walk(v, f.type)
    return out


def result_fields():
    """Every operation's result field and its namespace, by operation."""
    from conf import load_settings
    from server.app import create_platform

    platform = create_platform(load_settings({"P2P_ENV": "test"}, {"database.url": "sqlite://"}))
    try:
        return {
            f"{op.facade_name}.{op.name}": (op.result, op.namespace)
            for f in platform.facades
            for op in f.operations
            if op.result is not None
        }
    finally:
        platform.close()


def result_types():
    return {name: f.type for name, (f, _) in result_fields().items()}


def test_every_answer_type_is_written_as_the_field_walk_writes_it() -> None:
    from server.contractdoc.examples import value_of

    types = result_types()
    assert "LoanFacade.listLoans" in types
    for name, t in types.items():
        full = value_of(t, name)
        assert jsoncodec.to_json(full, t) == walk(full, t), name
        if isinstance(t, Complex):  # and with every optional field absent
            sparse = SimpleNamespace(**vars(full))
            for f in t.fields:
                if not f.required:
                    setattr(sparse, f.attr, None)
            assert jsoncodec.to_json(sparse, t) == walk(sparse, t), name


def test_a_type_that_contains_itself_is_written() -> None:
    text = LOAN_REQUEST.by_name["title"].type
    node = Complex("Node", "urn:t", "", (), {})
    fields = (
        Field("label", "label", text, True, False, ""),
        Field("children", "children", node, False, True, ""),
    )
    object.__setattr__(node, "fields", fields)
    tree = SimpleNamespace(
        label="a",
        children=[
            SimpleNamespace(label="b", children=[]),
            SimpleNamespace(label="c", children=None),
        ],
    )
    assert jsoncodec.to_json(tree, node) == {
        "label": "a",
        "children": [{"label": "b", "children": []}, {"label": "c"}],
    }
