"""The HTTP client of the bank against a tiny bank served from a thread: every transport
problem and every untrustworthy answer comes back as an Exchange without an answer (never an
exception), an answer is read only when signed, fresh, ours and about what was asked, the pool
keeps to its connection limit, and no body reaches a log or a repr."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from werkzeug.wrappers import Request, Response

from service.ocp import protocol
from service.ocp.client import Exchange, HttpBankClient
from service.ocp.protocol import MessageInvalid, StaleMessage
from service.ocp.signing import KeyRing, SignatureInvalid, Signer, generate_keypair
from tests.banksupport import (
    BANK_KEY_ID,
    BANK_PRIVATE,
    BANK_PUBLIC,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PUBLIC,
    free_port,
    platform_settings,
    serving,
    wait_for,
)

BANK = Signer(BANK_KEY_ID, BANK_PRIVATE)
PLATFORM_KEYS = KeyRing({PLATFORM_KEY_ID: PLATFORM_PUBLIC})
ID_NUMBER = "11010519491231002X"
CARD = "6222020200112233445"
OPEN = {
    "orderNo": "A1",
    "orderType": "OPEN_ACCOUNT",
    "memberId": "7",
    "realName": "张测试",
    "idNumber": ID_NUMBER,
    "cardNumber": CARD,
    "mobile": "13812345678",
}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def bank_message(fields: dict, *, merchant: str = MERCHANT, at: dt.datetime | None = None):
    return protocol.encode(
        {**fields, "merchantId": merchant, "timestamp": protocol.format_time(at or now())}
    )


@dataclass
class FakeBank:
    """A WSGI bank whose answer each test sets; it keeps what it received."""

    answer: Callable[[Request, bytes], Response] | None = None
    received: list[tuple[Request, bytes]] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            self.received.append((request, body))
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        try:
            response = self.answer(request, body)
        finally:
            with self.lock:
                self.open_now -= 1
        return response(environ, start_response)


def signed(fields: dict, status: int = 200, signer: Signer = BANK, **options) -> Response:
    body = bank_message(fields, **options)
    return Response(body, status=status, headers=protocol.signed_headers(signer, body))


def accepted(request: Request, body: bytes) -> Response:
    order_no = protocol.decode(body)["orderNo"]
    return signed({"orderNo": order_no, "result": "ACCEPTED", "bankRef": "BR1"})


@pytest.fixture
def bank() -> Iterator[tuple[FakeBank, str]]:
    fake = FakeBank(answer=accepted)
    with serving(fake) as url:
        yield fake, url


@pytest.fixture
def client(bank) -> Iterator[HttpBankClient]:
    c = HttpBankClient(platform_settings(bank[1], read_timeout_seconds=0.5))
    yield c
    c.close()


def test_a_submitted_order_is_signed_over_the_exact_bytes_and_its_answer_read(bank, client) -> None:
    exchange = client.submit(OPEN)
    request, body = bank[0].received[0]
    assert request.path == "/v1/orders" and request.headers["Content-Type"] == "application/json"
    assert body == exchange.request
    protocol.verify(PLATFORM_KEYS, body, request.headers)
    message = protocol.decode(body)
    assert message["merchantId"] == MERCHANT and message["notifyUrl"].endswith("/bank/notify")
    protocol.check_timestamp(message["timestamp"], now(), 5)
    assert (exchange.http_status, exchange.signature, exchange.error) == (200, "VALID", None)
    assert exchange.answer["result"] == "ACCEPTED" and exchange.answer["orderNo"] == "A1"
    assert exchange.sent_at <= exchange.received_at
    assert exchange.key_id == BANK_KEY_ID  # the bank key that verified the answer


def test_the_return_url_goes_with_member_authorised_orders(bank) -> None:
    client = HttpBankClient(platform_settings(bank[1], return_url="https://p2p.example/back"))
    client.submit({"orderNo": "R1", "orderType": "RECHARGE", "accountNo": "S1", "amount": "1.00"})
    assert protocol.decode(bank[0].received[0][1])["returnUrl"] == "https://p2p.example/back"


def test_a_query_is_read(bank, client) -> None:
    bank[0].answer = lambda request, body: signed({"orderNo": "Q1", "status": "NOT_FOUND"})
    exchange = client.query("Q1")
    assert bank[0].received[0][0].path == "/v1/orders/query"
    assert protocol.decode(exchange.request)["orderNo"] == "Q1"
    assert exchange.answer["status"] == "NOT_FOUND" and exchange.error is None


def test_a_timeout_is_an_exchange_without_answer(bank, client) -> None:
    def slow(request: Request, body: bytes) -> Response:
        time.sleep(1.5)
        return accepted(request, body)

    bank[0].answer = slow
    exchange = client.submit(OPEN)
    assert exchange.error == "read_timeout" and exchange.answer is None
    assert exchange.response is None and exchange.signature is None
    assert protocol.decode(exchange.request)["orderNo"] == "A1"


def test_a_refused_connection_is_an_exchange_without_answer() -> None:
    client = HttpBankClient(platform_settings(f"http://127.0.0.1:{free_port()}"))
    exchange = client.query("Q1")
    assert exchange.error == "connect_failed" and exchange.http_status is None
    assert exchange.answer is None and exchange.received_at is None


def test_a_5xx_is_an_exchange_without_answer(bank, client) -> None:
    bank[0].answer = lambda request, body: Response("busy", status=503)
    exchange = client.submit(OPEN)
    assert (exchange.http_status, exchange.error, exchange.signature) == (
        503,
        "http_503",
        "MISSING",
    )
    assert exchange.response == b"busy" and exchange.answer is None


def test_a_signed_error_is_kept_as_the_answer_with_its_status(bank, client) -> None:
    bank[0].answer = lambda request, body: signed({"error": "TOO_MANY_QUERIES"}, 429)
    exchange = client.query("Q1")
    assert exchange.error == "http_429" and exchange.answer["error"] == "TOO_MANY_QUERIES"


OTHER_PRIVATE = generate_keypair()[0]


@pytest.mark.parametrize(
    ("answer", "signature", "error"),
    [
        (
            lambda: signed(
                {"orderNo": "A1", "result": "ACCEPTED"}, signer=Signer(BANK_KEY_ID, OTHER_PRIVATE)
            ),
            "INVALID",
            "signature",
        ),
        (
            lambda: signed(
                {"orderNo": "A1", "result": "ACCEPTED"}, signer=Signer("bank-x", BANK_PRIVATE)
            ),
            "UNKNOWN_KEY",
            "signature",
        ),
        (
            lambda: Response(bank_message({"orderNo": "A1", "result": "ACCEPTED"})),
            "MISSING",
            "signature",
        ),
        (
            lambda: signed(
                {"orderNo": "A1", "result": "ACCEPTED"}, at=now() - dt.timedelta(minutes=6)
            ),
            "VALID",
            "stale",
        ),
        (
            lambda: signed({"orderNo": "A1", "result": "ACCEPTED"}, merchant="SOMEONE"),
            "VALID",
            "wrong_merchant",
        ),
        (lambda: signed({"orderNo": "A2", "result": "ACCEPTED"}), "VALID", "mismatch"),
        (lambda: signed({"orderNo": "A1", "result": "MAYBE"}), "VALID", "mismatch"),
    ],
    ids=[
        "other key",
        "unknown key id",
        "unsigned",
        "stale",
        "wrong merchant",
        "other order",
        "no result",
    ],
)
def test_an_answer_that_cannot_be_trusted_is_no_answer(
    bank, client, answer, signature: str, error: str
) -> None:
    bank[0].answer = lambda request, body: answer()
    exchange = client.submit(OPEN)
    assert (exchange.http_status, exchange.signature, exchange.error) == (200, signature, error)
    assert exchange.answer is None and exchange.response is not None
    # The key the answer names, when it is a bank key the platform knows; an unknown id, or
    # none, is not kept.
    assert exchange.key_id == (None if signature in ("UNKNOWN_KEY", "MISSING") else BANK_KEY_ID)


def test_the_key_id_of_an_answer_is_the_rotated_key_that_signed_it(bank) -> None:
    """While keys rotate the bank signs with either of two known keys: the exchange names
    the one that verified it."""
    new_private, new_public = generate_keypair()
    settings = platform_settings(
        bank[1],
        bank_public_keys={
            BANK_KEY_ID: BANK_PUBLIC.decode(),
            "bank-2027": new_public.decode(),
        },
    )
    rotated = Signer("bank-2027", new_private)
    bank[0].answer = lambda request, body: signed(
        {"orderNo": "A1", "result": "ACCEPTED"}, signer=rotated
    )
    client = HttpBankClient(settings)
    try:
        exchange = client.submit(OPEN)
    finally:
        client.close()
    assert (exchange.signature, exchange.error, exchange.key_id) == ("VALID", None, "bank-2027")


def test_a_changed_byte_after_signing_is_a_bad_signature(bank, client) -> None:
    def tampered(request: Request, body: bytes) -> Response:
        good = bank_message({"orderNo": "A1", "result": "REFUSED", "reason": "X"})
        headers = protocol.signed_headers(BANK, good)
        return Response(good.replace(b"REFUSED", b"ACCEPTED"), headers=headers)

    bank[0].answer = tampered
    exchange = client.submit(OPEN)
    assert (exchange.signature, exchange.answer) == ("INVALID", None)


def test_signed_garbage_is_unreadable(bank, client) -> None:
    def garbage(request: Request, body: bytes) -> Response:
        return Response(b"<html>", headers=protocol.signed_headers(BANK, b"<html>"))

    bank[0].answer = garbage
    exchange = client.submit(OPEN)
    assert (exchange.signature, exchange.error, exchange.answer) == ("VALID", "unreadable", None)


def test_the_pool_keeps_to_max_connections(bank) -> None:
    client = HttpBankClient(platform_settings(bank[1], max_connections=2))
    release = threading.Event()

    def held(request: Request, body: bytes) -> Response:
        release.wait(timeout=10)
        return accepted(request, body)

    bank[0].answer = held
    results: list[Exchange] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(client.submit({**OPEN, "orderNo": f"P{i}"}))
        )
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    wait_for(lambda: bank[0].open_now == 2)
    time.sleep(0.3)  # room for a third connection, were there no limit
    release.set()
    for thread in threads:
        thread.join()
    assert [r.error for r in results] == [None] * 6
    assert bank[0].most_open == 2


def test_a_daily_file_request_signs_its_target_and_checks_the_file(bank, client) -> None:
    rows = [
        {
            "orderNo": "R1",
            "orderType": "RECHARGE",
            "accountNo": "S1",
            "amount": "10.00",
            "fee": "0.50",
            "status": "SUCCEEDED",
            "bankRef": "BR1",
            "finishedAt": "2026-12-02T03:00:00Z",
        }
    ]
    content = protocol.format_file("RECHARGE", rows)

    def file(request: Request, body: bytes) -> Response:
        target = request.environ["PATH_INFO"] + "?" + request.environ["QUERY_STRING"]
        protocol.verify(PLATFORM_KEYS, target.encode(), request.headers)
        assert request.args["merchantId"] == MERCHANT
        return Response(content, headers=protocol.signed_headers(BANK, content))

    bank[0].answer = file
    exchange = client.fetch_file(dt.date(2026, 12, 2), "RECHARGE")
    assert bank[0].received[0][0].path == "/v1/files/2026-12-02/RECHARGE"
    assert exchange.error is None
    assert exchange.answer == {"date": "2026-12-02", "fileType": "RECHARGE", "rows": rows}

    wrong = content.replace(b"1|10.00|0.50\n", b"1|10.00|0.00\n")
    bank[0].answer = lambda request, body: Response(
        wrong, headers=protocol.signed_headers(BANK, wrong)
    )
    exchange = client.fetch_file(dt.date(2026, 12, 2), "RECHARGE")
    assert (exchange.signature, exchange.error, exchange.answer) == ("VALID", "unreadable", None)

    bank[0].answer = lambda request, body: signed({"error": "FILE_NOT_READY"}, 404)
    exchange = client.fetch_file(dt.date(2026, 12, 2), "BALANCE")
    assert exchange.error == "http_404" and exchange.answer["error"] == "FILE_NOT_READY"


# --- notifications --------------------------------------------------------------------


NOTIFICATION = {
    "notifyId": "N1",
    "orderNo": "R1",
    "orderType": "RECHARGE",
    "status": "SUCCEEDED",
    "amount": "10.00",
    "fee": "0.00",
    "bankRef": "BR1",
    "accountNo": "S1",
    "finishedAt": "2026-12-02T03:00:00Z",
}


def test_a_signed_notification_is_verified_and_acknowledged(client) -> None:
    body = bank_message(NOTIFICATION)
    message = client.verify_notification(body, protocol.signed_headers(BANK, body))
    assert message["status"] == "SUCCEEDED" and message["notifyId"] == "N1"
    ack, headers = client.acknowledgement("N1")
    read = protocol.read(
        PLATFORM_KEYS, ack, headers, merchant_id=MERCHANT, now=now(), window_seconds=5
    )
    assert read["notifyId"] == "N1" and read["result"] == "OK"


@pytest.mark.parametrize(
    ("make", "refusal"),
    [
        (lambda b: {}, SignatureInvalid),
        (lambda b: protocol.signed_headers(Signer("bank-x", BANK_PRIVATE), b), SignatureInvalid),
        (lambda b: protocol.signed_headers(BANK, b + b" "), SignatureInvalid),
    ],
    ids=["unsigned", "unknown key id", "bad signature"],
)
def test_a_notification_without_a_good_signature_is_refused(client, make, refusal) -> None:
    body = bank_message(NOTIFICATION)
    with pytest.raises(refusal):
        client.verify_notification(body, make(body))


@pytest.mark.parametrize(
    ("fields", "options", "refusal"),
    [
        (NOTIFICATION, {"at": now() - dt.timedelta(seconds=301)}, StaleMessage),
        (NOTIFICATION, {"merchant": "OTHER"}, MessageInvalid),
        ({**NOTIFICATION, "status": "PROCESSING"}, {}, MessageInvalid),
        ({**NOTIFICATION, "amount": 10}, {}, MessageInvalid),
        ({k: v for k, v in NOTIFICATION.items() if k != "notifyId"}, {}, MessageInvalid),
        ({**NOTIFICATION, "orderNo": "R-1"}, {}, MessageInvalid),
    ],
    ids=["stale", "wrong merchant", "not a final status", "number amount", "no id", "bad order"],
)
def test_a_signed_but_stale_foreign_or_malformed_notification_is_refused(
    client, fields, options, refusal
) -> None:
    body = bank_message(fields, **options)
    with pytest.raises(refusal):
        client.verify_notification(body, protocol.signed_headers(BANK, body))


# --- personal data ------------------------------------------------------------------------


def test_no_body_reaches_a_log_or_a_repr(bank, client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bank[0].answer = lambda request, body: Response(b"echo " + body, status=500)
    exchange = client.submit(OPEN)
    assert exchange.error == "http_500"
    assert ID_NUMBER.encode() in exchange.request
    for shown in (caplog.text, repr(exchange)):
        assert ID_NUMBER not in shown and CARD not in shown and "张测试" not in shown
    assert "A1" in caplog.text  # the order number is what a log line names


def test_settings_without_keys_make_no_client() -> None:
    from conf import load_settings

    with pytest.raises(ValueError, match="must be set"):
        HttpBankClient(load_settings({"P2P_ENV": "test"}))
