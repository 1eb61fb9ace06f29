"""The protocol's reading rules: canonical bytes, the signature checked before anything is
parsed, the merchant and the timestamp window; exact amounts and UTC times both ways."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from service.ocp import protocol
from service.ocp.protocol import MessageInvalid, StaleMessage
from service.ocp.signing import KeyRing, SignatureInvalid, Signer, generate_keypair

PRIVATE, PUBLIC = generate_keypair()
SIGNER = Signer("bank1", PRIVATE)
KEYS = KeyRing({"bank1": PUBLIC})
NOW = dt.datetime(2026, 12, 3, 2, 51, 30, tzinfo=dt.UTC)


def signed(message: dict) -> tuple[bytes, dict[str, str]]:
    body = protocol.encode(message)
    return body, protocol.signed_headers(SIGNER, body)


def read(body: bytes, headers) -> dict:
    return protocol.read(KEYS, body, headers, merchant_id="M1", now=NOW, window_seconds=300)


def test_encoding_is_canonical_utf8_sorted_and_compact() -> None:
    assert protocol.encode({"b": "名", "a": "1.00"}) == '{"a":"1.00","b":"名"}'.encode()


def test_a_signed_message_in_window_for_us_is_read() -> None:
    message = {"merchantId": "M1", "timestamp": "2026-12-03T02:50:00Z", "orderNo": "R1"}
    body, headers = signed(message)
    assert headers["Content-Type"] == "application/json"
    assert read(body, headers) == message
    lowered = {name.lower(): value for name, value in headers.items()}
    assert read(body, lowered) == message


def test_nothing_unsigned_is_parsed() -> None:
    body, headers = signed({"merchantId": "M1", "timestamp": "2026-12-03T02:50:00Z"})
    with pytest.raises(SignatureInvalid):
        read(b"not json", headers)
    with pytest.raises(SignatureInvalid):
        read(body, {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"merchantId": "M2", "timestamp": "2026-12-03T02:50:00Z"}, "wrong_merchant"),
        ({"timestamp": "2026-12-03T02:50:00Z"}, "wrong_merchant"),
        ({"merchantId": "M1", "timestamp": "2026-12-03 02:50:00"}, "malformed"),
        ({"merchantId": "M1"}, "malformed"),
    ],
)
def test_a_signed_message_not_for_us_or_without_a_time_is_refused(
    message: dict, expected: str
) -> None:
    with pytest.raises(MessageInvalid) as refused:
        read(*signed(message))
    assert refused.value.reason == expected


@pytest.mark.parametrize("body", [b"[1, 2]", b"\xff\xfe", b'{"a": ', b'"text"'])
def test_signed_bytes_that_are_no_json_object_are_refused(body: bytes) -> None:
    with pytest.raises(MessageInvalid) as refused:
        read(body, protocol.signed_headers(SIGNER, body))
    assert refused.value.reason == "malformed"


@pytest.mark.parametrize(
    ("timestamp", "stale"),
    [
        ("2026-12-03T02:46:30Z", False),
        ("2026-12-03T02:56:30Z", False),
        ("2026-12-03T02:46:29Z", True),
        ("2026-12-03T02:56:31Z", True),
        ("2020-01-01T00:00:00Z", True),
    ],
)
def test_the_timestamp_window_holds_both_ways(timestamp: str, stale: bool) -> None:
    body, headers = signed({"merchantId": "M1", "timestamp": timestamp})
    if stale:
        with pytest.raises(StaleMessage):
            read(body, headers)
    else:
        read(body, headers)


@pytest.mark.parametrize("text", ["1000.00", "0.01", "0.00", "123456789012345.99"])
def test_amounts_round_trip_exactly(text: str) -> None:
    assert protocol.format_amount(protocol.parse_amount(text)) == text


@pytest.mark.parametrize("text", ["1000", "1000.0", "1000.001", "-1.00", "01.00", "1e3", 1000, ""])
def test_amounts_that_are_not_two_decimal_strings_are_refused(text: object) -> None:
    with pytest.raises(MessageInvalid) as refused:
        protocol.parse_amount(text)
    assert refused.value.field == "amount"


def test_an_amount_with_more_precision_is_a_bug_not_rounded() -> None:
    assert protocol.format_amount(Decimal("5")) == "5.00"
    assert protocol.format_amount(Decimal("1E+2")) == "100.00"
    for wrong in (Decimal("0.005"), Decimal("-1"), 1.5):
        with pytest.raises(ValueError):
            protocol.format_amount(wrong)


def test_times_are_utc_whole_seconds_with_z() -> None:
    shanghai = NOW.astimezone(protocol.BUSINESS_TIMEZONE).replace(microsecond=999)
    assert protocol.format_time(shanghai) == "2026-12-03T02:51:30Z"
    assert protocol.parse_time("2026-12-03T02:51:30Z") == NOW
    with pytest.raises(ValueError):
        protocol.format_time(NOW.replace(tzinfo=None))
    for wrong in ("2026-12-03T02:51:30", "2026-12-03T02:51:30.5Z", "2026-13-03T02:51:30Z"):
        with pytest.raises(MessageInvalid):
            protocol.parse_time(wrong)


def test_the_business_day_is_shanghai_s() -> None:
    assert protocol.business_day(dt.datetime(2026, 12, 2, 15, 59, 59, tzinfo=dt.UTC)) == dt.date(
        2026, 12, 2
    )
    assert protocol.business_day(dt.datetime(2026, 12, 2, 16, 0, 0, tzinfo=dt.UTC)) == dt.date(
        2026, 12, 3
    )


@pytest.mark.parametrize("order_no", ["R1", "A" * 32, "2026abcXYZ"])
def test_order_numbers_of_letters_and_digits_up_to_32(order_no: str) -> None:
    assert protocol.check_order_no(order_no) == order_no


@pytest.mark.parametrize("order_no", ["", "A" * 33, "R-1", "R 1", "编号", None, 12])
def test_other_order_numbers_are_refused(order_no: object) -> None:
    with pytest.raises(MessageInvalid):
        protocol.check_order_no(order_no)


def test_required_fields_are_named_never_their_values() -> None:
    protocol.require({"accountNo": "A1", "amount": "1.00"}, protocol.ORDER_FIELDS["RECHARGE"])
    with pytest.raises(MessageInvalid) as refused:
        protocol.require({"accountNo": "A1", "cardNumber": 6222}, ("accountNo", "cardNumber"))
    assert refused.value.field == "cardNumber" and "6222" not in str(refused.value)


def test_the_platforms_own_orders_carry_their_fields_and_fund_is_confirmed_on_the_page() -> None:
    """FUND names no account (the merchant's own is funded) and is confirmed on the bank's page
    like a member's recharge; TRANSFER names the payee's sub-account and is not: the platform
    pays from its own account."""
    assert protocol.ORDER_FIELDS[protocol.FUND] == ("amount",)
    assert protocol.ORDER_FIELDS[protocol.TRANSFER] == ("accountNo", "amount")
    assert protocol.FUND in protocol.MEMBER_AUTHORISED
    assert protocol.TRANSFER not in protocol.MEMBER_AUTHORISED
    assert {protocol.FUND, protocol.TRANSFER} <= set(protocol.FILE_TYPES)
    protocol.check_order_fields({"amount": "500.00"}, protocol.FUND)
    protocol.check_order_fields({"accountNo": "SA01", "amount": "8.88"}, protocol.TRANSFER)
    with pytest.raises(MessageInvalid) as refused:
        protocol.check_order_fields({"amount": "8.88"}, protocol.TRANSFER)
    assert refused.value.field == "accountNo"
    with pytest.raises(MessageInvalid) as refused:
        protocol.check_order_fields({"accountNo": "PFM1"}, protocol.FUND)
    assert refused.value.field == "amount"


def test_the_notification_retry_schedule_is_the_spec_s() -> None:
    schedule = protocol.NOTIFY_RETRY_SECONDS
    assert schedule[:5] == (5, 30, 120, 600, 3600)
    assert set(schedule[5:]) == {7200} and sum(schedule[5:]) == 24 * 3600


BALANCE_ROWS = [
    {"accountNo": "PFM1", "memberId": "", "available": "5.00", "frozen": "0.00"},
    {"accountNo": "SA01", "memberId": "7", "available": "100.25", "frozen": "20.00"},
]


def test_a_daily_file_is_its_header_and_its_lines() -> None:
    body = protocol.format_file("BALANCE", BALANCE_ROWS)
    assert body == b"2|105.25|20.00\nPFM1||5.00|0.00\nSA01|7|100.25|20.00\n"
    assert protocol.parse_file("BALANCE", body) == BALANCE_ROWS
    assert protocol.format_file("RECHARGE", []) == b"0|0.00|0.00\n"
    assert protocol.parse_file("RECHARGE", b"0|0.00|0.00\n") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"2|105.25|20.00\nPFM1||5.00|0.00\nSA01|7|100.25|20.00", "file"),
        (b"3|105.25|20.00\nPFM1||5.00|0.00\nSA01|7|100.25|20.00\n", "header"),
        (b"2|105.25|20.01\nPFM1||5.00|0.00\nSA01|7|100.25|20.00\n", "header"),
        (b"2|105.25|20.00\nPFM1||5.00|0.00\nSA01|7|100.25\n", "line"),
        (b"2|105.25|20.00\nPFM1||5.00|0.00\nSA01|7|100.25|20\n", "frozen"),
        (b"\xff\n", "file"),
    ],
)
def test_a_daily_file_whose_lines_or_header_do_not_add_up_is_refused(
    body: bytes, field: str
) -> None:
    with pytest.raises(MessageInvalid) as refused:
        protocol.parse_file("BALANCE", body)
    assert refused.value.field == field


def test_files_exist_for_order_types_and_balance_only() -> None:
    with pytest.raises(MessageInvalid):
        protocol.file_columns("BALANCES")


def test_an_order_field_naming_another_order_must_be_an_order_number() -> None:
    unfreeze = {"accountNo": "SA1", "amount": "1.00", "freezeOrderNo": "F1"}
    protocol.check_order_fields(unfreeze, "UNFREEZE")
    for bad in ("F-1", "F" * 33, ""):
        with pytest.raises(MessageInvalid) as refused:
            protocol.check_order_fields({**unfreeze, "freezeOrderNo": bad}, "UNFREEZE")
        assert refused.value.field == "freezeOrderNo"
    with pytest.raises(MessageInvalid) as refused:
        protocol.check_order_fields({"accountNo": "SA1", "amount": "1.00"}, "UNFREEZE")
    assert refused.value.field == "freezeOrderNo"
    protocol.check_order_fields({"accountNo": "SA1", "amount": "1.00"}, "FREEZE")
