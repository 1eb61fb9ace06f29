"""The depository protocol's vocabulary and its reading rules (docs/depository-protocol.md).

Shared by the platform's client and the bank simulator, so both read and write the same bytes:
``encode`` is canonical (UTF-8 JSON, sorted keys, no spaces); ``read`` is the one way to accept a
signed message: the signature over the raw bytes first, then the JSON, the merchant and the
timestamp window. Amounts travel as strings with exactly two decimals, times as UTC ISO 8601
with ``Z`` and whole seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from zoneinfo import ZoneInfo

from service.ocp.signing import KeyRing, SignatureInvalid, Signer

KEY_ID_HEADER = "X-Bank-Key-Id"
SIGNATURE_HEADER = "X-Bank-Signature"
CONTENT_TYPE = "application/json"

OPEN_ACCOUNT = "OPEN_ACCOUNT"
RECHARGE = "RECHARGE"
WITHDRAW = "WITHDRAW"
FREEZE = "FREEZE"
UNFREEZE = "UNFREEZE"
DISBURSE = "DISBURSE"
REPAY = "REPAY"
FUND = "FUND"
TRANSFER = "TRANSFER"
ORDER_TYPES = (
    OPEN_ACCOUNT,
    RECHARGE,
    WITHDRAW,
    FREEZE,
    UNFREEZE,
    DISBURSE,
    REPAY,
    FUND,
    TRANSFER,
)
#: Orders confirmed on the bank's page (``authorizeUrl``) with the bank password: by the member,
#: or, for FUND (the platform's recharge of its own account), by the platform's treasurer.
MEMBER_AUTHORISED = frozenset({OPEN_ACCOUNT, RECHARGE, WITHDRAW, FREEZE, FUND})
#: The fields each order type carries besides merchantId, timestamp, orderNo, orderType,
#: notifyUrl and returnUrl (batch orders: ITEM_FIELDS below). FUND names no account: it is the
#: merchant's own; TRANSFER pays from it to the member's sub-account ``accountNo``.
ORDER_FIELDS: dict[str, tuple[str, ...]] = {
    OPEN_ACCOUNT: ("memberId", "realName", "idNumber", "cardNumber", "mobile"),
    RECHARGE: ("accountNo", "amount"),
    WITHDRAW: ("accountNo", "amount", "cardNumber"),
    FREEZE: ("accountNo", "amount"),
    UNFREEZE: ("accountNo", "amount", "freezeOrderNo"),
    FUND: ("amount",),
    TRANSFER: ("accountNo", "amount"),
}
#: Batch orders: ``orderNo`` is the batch number, ``loanId`` the listing, ``items`` an array of
#: item objects with these fields (every value a string; ``freezeOrderNo`` for DISBURSE only).
BATCH_TYPES = frozenset({DISBURSE, REPAY})
ITEM_FIELDS = ("itemNo", "payerAccountNo", "payeeAccountNo", "principal", "interest", "penalty")
ITEM_AMOUNTS = ("principal", "interest", "penalty", "serviceFee")
#: The most items a batch may carry; more is REFUSED (TOO_MANY_ITEMS).
MAX_BATCH_ITEMS = 1000
#: Order fields that name another order by its order number (written as an orderNo is).
ORDER_REFERENCES = frozenset({"freezeOrderNo"})
BALANCE = "BALANCE"
FILE_TYPES = (*ORDER_TYPES, BALANCE)

# The synchronous answer to a submitted order.
ACCEPTED = "ACCEPTED"
REFUSED = "REFUSED"
# An order's state at the bank (queries) and in notifications (the final three and REVERSED).
PROCESSING = "PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
REVERSED = "REVERSED"
NOT_FOUND = "NOT_FOUND"
QUERY_STATUSES = frozenset({PROCESSING, SUCCEEDED, FAILED, REVERSED, NOT_FOUND})
NOTIFY_STATUSES = frozenset({SUCCEEDED, FAILED, REVERSED})
ACK_OK = "OK"

#: Seconds between the bank's attempts to deliver one notification until it is acknowledged:
#: after 5 s, 30 s, 2 min, 10 min, 1 h, then every 2 h for 24 h.
NOTIFY_RETRY_SECONDS = (5, 30, 120, 600, 3600, *(7200,) * 12)
DEFAULT_TIMESTAMP_WINDOW_SECONDS = 300
#: The bank's business day (the daily files' ``date``) is the calendar day in this zone.
BUSINESS_TIMEZONE = ZoneInfo("Asia/Shanghai")

_ORDER_NO = re.compile(r"[A-Za-z0-9]{1,32}")
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,14})\.[0-9]{2}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_CENT = Decimal("0.01")


class MessageInvalid(Exception):
    """A message that cannot be accepted although its signature may be fine: ``reason`` is
    "malformed" (JSON, a field missing or ill-formed: ``field`` names it) or "wrong_merchant".
    The text names fields, never values (they may be personal data)."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(f"message refused: {reason}" + (f" ({field})" if field else ""))
        self.reason = reason
        self.field = field


class StaleMessage(Exception):
    """A message whose timestamp is outside the window (a replay, or a clock far off)."""

    reason = "stale"


#: Every way a received message is refused, for ``except protocol.REFUSALS``.
REFUSALS = (SignatureInvalid, MessageInvalid, StaleMessage)


def encode(message: Mapping[str, object]) -> bytes:
    """The canonical bytes of ``message``: UTF-8 JSON, sorted keys, no spaces."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode(body: bytes) -> dict:
    """The JSON object in ``body``; ``MessageInvalid`` if it is not one."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MessageInvalid("malformed") from None
    if not isinstance(message, dict):
        raise MessageInvalid("malformed")
    return message


def signed_headers(signer: Signer, body: bytes) -> dict[str, str]:
    """The headers that go with ``body``: its content type, the key id and the signature."""
    return {
        "Content-Type": CONTENT_TYPE,
        KEY_ID_HEADER: signer.key_id,
        SIGNATURE_HEADER: signer.sign(body),
    }


def verify(keys: KeyRing, body: bytes, headers) -> None:
    """Checks the signature in ``headers`` (any mapping with ``get``; names are matched without
    regard to case) over the raw ``body``; raises ``SignatureInvalid``."""
    keys.verify(body, header(headers, KEY_ID_HEADER), header(headers, SIGNATURE_HEADER))


def read(
    keys: KeyRing,
    body: bytes,
    headers,
    *,
    merchant_id: str,
    now: dt.datetime,
    window_seconds: int,
) -> dict:
    """The message in ``body`` if it can be trusted: signed by a known key over these exact
    bytes, a JSON object, for ``merchant_id``, and signed within ``window_seconds`` of ``now``.
    Raises ``SignatureInvalid``, ``MessageInvalid`` or ``StaleMessage`` (in that order of
    checks: nothing unverified is even parsed)."""
    verify(keys, body, headers)
    return read_verified(body, merchant_id=merchant_id, now=now, window_seconds=window_seconds)


def read_verified(body: bytes, *, merchant_id: str, now: dt.datetime, window_seconds: int) -> dict:
    """``read`` after the signature: the JSON object, the merchant and the timestamp window."""
    message = decode(body)
    if message.get("merchantId") != merchant_id:
        raise MessageInvalid("wrong_merchant")
    check_timestamp(message.get("timestamp"), now, window_seconds)
    return message


def check_timestamp(timestamp: object, now: dt.datetime, window_seconds: int) -> None:
    """Raises ``StaleMessage`` unless ``timestamp`` is within ``window_seconds`` of ``now``
    either way (``MessageInvalid`` if it is not a protocol time at all)."""
    signed_at = parse_time(timestamp, "timestamp")
    if abs((now - signed_at).total_seconds()) > window_seconds:
        raise StaleMessage("message refused: timestamp outside the window")


def header(headers, name: str) -> str | None:
    """The value of header ``name`` in ``headers``, whatever the case of its name there."""
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def require(message: Mapping[str, object], fields: Iterable[str]) -> None:
    """Raises ``MessageInvalid`` naming the first of ``fields`` that is not a non-empty string."""
    for field in fields:
        value = message.get(field)
        if not isinstance(value, str) or not value:
            raise MessageInvalid("malformed", field)


def check_notification(message: Mapping[str, object]) -> None:
    """Raises ``MessageInvalid`` unless ``message`` is a well-formed notification."""
    require(message, ("notifyId", "orderType", "status", "bankRef"))
    if len(str(message["notifyId"])) > 64:
        raise MessageInvalid("malformed", "notifyId")
    check_order_no(message.get("orderNo"))
    if message["orderType"] not in ORDER_TYPES:
        raise MessageInvalid("malformed", "orderType")
    if message["status"] not in NOTIFY_STATUSES:
        raise MessageInvalid("malformed", "status")
    parse_amount(message.get("amount"), "amount")
    parse_amount(message.get("fee"), "fee")
    parse_time(message.get("finishedAt"), "finishedAt")
    for optional in ("accountNo", "reason", "batchNo"):
        if optional in message and not isinstance(message[optional], str):
            raise MessageInvalid("malformed", optional)


def platform_account_no(merchant_id: str) -> str:
    """The platform's own account at the bank: a batch item's payee for what the platform is
    paid (a penalty kept by the platform), the account its service fees go to and the bank's
    fees are taken from, which FUND orders fund and TRANSFER orders pay from."""
    return f"PF{merchant_id}"


def check_batch_items(message: Mapping[str, object]) -> list[dict]:
    """The items of batch order ``message`` (its orderNo and orderType already checked), each
    with Decimal amounts (``amount`` = principal + interest + penalty); ``MessageInvalid``
    naming the first field that is missing or ill-formed (``items`` for the array itself,
    ``items[3].principal`` for an item's)."""
    items = message.get("items")
    loan_id = message.get("loanId")
    if not isinstance(loan_id, str) or not loan_id.isascii() or not loan_id.isdigit():
        raise MessageInvalid("malformed", "loanId")
    if not isinstance(items, list) or not items:
        raise MessageInvalid("malformed", "items")
    checked = []
    for k, item in enumerate(items):
        where = f"items[{k}]"
        if not isinstance(item, dict) or any(not isinstance(v, str) for v in item.values()):
            raise MessageInvalid("malformed", where)
        fields: tuple[str, ...] = (*ITEM_FIELDS, "serviceFee")
        if message.get("orderType") == DISBURSE:
            fields = (*fields, "freezeOrderNo")
        for field in fields:
            if not item.get(field):
                raise MessageInvalid("malformed", f"{where}.{field}")
        for field in ("itemNo", *ORDER_REFERENCES):
            if field in item:
                check_order_no(item[field], f"{where}.{field}")
        parsed = dict(item)
        for field in ITEM_AMOUNTS:
            parsed[field] = parse_amount(item[field], f"{where}.{field}")
        parsed["amount"] = parsed["principal"] + parsed["interest"] + parsed["penalty"]
        if parsed["amount"] <= 0 or parsed["serviceFee"] > parsed["amount"]:
            raise MessageInvalid("malformed", f"{where}.serviceFee")
        checked.append(parsed)
    return checked


def check_order_no(order_no: object, field: str = "orderNo") -> str:
    """``order_no`` if it is 1 to 32 letters and digits; ``MessageInvalid`` naming ``field``
    otherwise."""
    if not isinstance(order_no, str) or not _ORDER_NO.fullmatch(order_no):
        raise MessageInvalid("malformed", field)
    return order_no


def check_order_fields(message: Mapping[str, object], order_type: str) -> None:
    """Raises ``MessageInvalid`` naming the first field of ``order_type`` (ORDER_FIELDS) that
    is missing or empty, or that names an order but is not an order number."""
    fields = ORDER_FIELDS[order_type]
    require(message, fields)
    for field in ORDER_REFERENCES.intersection(fields):
        check_order_no(message[field], field)


def format_amount(amount: Decimal) -> str:
    """``amount`` with exactly two decimals; more precision is a bug, not something to round."""
    if not isinstance(amount, Decimal) or amount < 0 or amount.quantize(_CENT) != amount:
        raise ValueError("an amount is a non-negative Decimal with at most two decimals")
    return f"{amount.quantize(_CENT):f}"


def parse_amount(text: object, field: str = "amount") -> Decimal:
    """The Decimal of a protocol amount ("1000.00"); ``MessageInvalid`` for anything else."""
    if not isinstance(text, str) or not _AMOUNT.fullmatch(text):
        raise MessageInvalid("malformed", field)
    return Decimal(text)


def format_time(moment: dt.datetime) -> str:
    """``moment`` (timezone-aware) as a protocol time: UTC, whole seconds, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("a protocol time must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, field: str = "timestamp") -> dt.datetime:
    """The aware UTC datetime of a protocol time; ``MessageInvalid`` for anything else."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise MessageInvalid("malformed", field)
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise MessageInvalid("malformed", field) from None


def business_day(moment: dt.datetime) -> dt.date:
    """The bank's business day (Asia/Shanghai) that ``moment`` (timezone-aware) falls in."""
    return moment.astimezone(BUSINESS_TIMEZONE).date()


# --- daily files ------------------------------------------------------------------------

ORDER_FILE_COLUMNS = (
    "orderNo",
    "orderType",
    "accountNo",
    "amount",
    "fee",
    "status",
    "bankRef",
    "finishedAt",
)
BALANCE_FILE_COLUMNS = ("accountNo", "memberId", "available", "frozen")


def file_columns(file_type: str) -> tuple[tuple[str, ...], tuple[str, str]]:
    """The columns of a daily file of ``file_type`` and the two its header sums."""
    if file_type == BALANCE:
        return BALANCE_FILE_COLUMNS, ("available", "frozen")
    if file_type in ORDER_TYPES:
        return ORDER_FILE_COLUMNS, ("amount", "fee")
    raise MessageInvalid("malformed", "fileType")


def format_file(file_type: str, rows: Iterable[Mapping[str, str]]) -> bytes:
    """The bytes of a daily file: the header ``count|total|total`` then a line per row."""
    columns, summed = file_columns(file_type)
    rows = list(rows)
    lines = ["|".join(row[column] for column in columns) for row in rows]
    totals = [sum((parse_amount(row[c], c) for row in rows), Decimal(0)) for c in summed]
    header = "|".join([str(len(lines)), *(format_amount(total) for total in totals)])
    return "".join(f"{line}\n" for line in (header, *lines)).encode()


def parse_file(file_type: str, body: bytes) -> list[dict[str, str]]:
    """The rows of a daily file, each {column: text}; ``MessageInvalid`` unless every line has
    its columns, amounts are amounts and the header's count and totals match the rows."""
    columns, summed = file_columns(file_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MessageInvalid("malformed", "file") from None
    if not text.endswith("\n"):
        raise MessageInvalid("malformed", "file")
    header, *lines = text[:-1].split("\n")
    rows = [dict(zip(columns, line.split("|"), strict=False)) for line in lines]
    if any(len(line.split("|")) != len(columns) for line in lines):
        raise MessageInvalid("malformed", "line")
    totals = [sum((parse_amount(row[c], c) for row in rows), Decimal(0)) for c in summed]
    if header != "|".join([str(len(rows)), *(format_amount(total) for total in totals)]):
        raise MessageInvalid("malformed", "header")
    return rows
