"""POST /bank/notify over HTTP (werkzeug's test client), on SQLite and MariaDB, with real
signatures: a signed notification is applied and answered with a signed acknowledgement the
bank can verify; every refusal (missing or bad signature, unknown key id, stale timestamp,
another merchant, a malformed body, an unknown order, another amount, a reused notifyId) is
answered without acknowledgement, counted by outcome, logged without the body, and changes
nothing; the bank's keys rotate without a refusal."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from werkzeug.test import Client
from werkzeug.wrappers import Request

from server.banknotify import BankNotifyEndpoint
from server.metrics import PlatformMetrics
from service.ocp import protocol
from service.ocp.client import HttpBankClient
from service.ocp.signing import KeyRing, Signer, generate_keypair
from tests.banksupport import (
    BANK_KEY_ID,
    BANK_PRIVATE,
    BANK_PUBLIC,
    PLATFORM_KEY_ID,
    PLATFORM_PUBLIC,
    platform_settings,
)
from tests.integration.service.banking import Banking
from tests.integration.service.support import caller

BANK_SIGNER = Signer(BANK_KEY_ID, BANK_PRIVATE)
NEXT_PRIVATE, NEXT_PUBLIC = generate_keypair()


class Endpoint:
    """The endpoint on the test's platform, served to werkzeug's test client."""

    def __init__(self, banking: Banking, clock, **bank):
        settings = platform_settings("http://127.0.0.1:9", **bank)
        self.client = HttpBankClient(settings, clock=clock)
        self.metrics = PlatformMetrics()
        self.endpoint = BankNotifyEndpoint(banking.orders, self.client, self.metrics)
        self.http = Client(lambda environ, start: self.endpoint(Request(environ))(environ, start))

    def post(self, body: bytes, headers: dict | None = None, signer: Signer = BANK_SIGNER):
        sent = protocol.signed_headers(signer, body) if headers is None else headers
        return self.http.post("/bank/notify", data=body, headers=sent)

    def count(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "p2p_bank_notifications_total", {"outcome": outcome}
        )
        return value or 0.0


@pytest.fixture
def endpoint(banking: Banking, clock) -> Endpoint:
    return Endpoint(banking, clock)


@pytest.fixture
def accepted(banking: Banking, make_member):
    who = caller(make_member("INVESTOR"))
    order = banking.payments.recharge(Decimal("200.00"), "e-1", who)
    banking.run_jobs()
    return order.order_no


def stored(sql) -> tuple[int, int]:
    with sql.connect() as conn:
        notifications = conn.execute(text("SELECT count(*) FROM bank_notification")).scalar()
        evidence = conn.execute(
            text("SELECT count(*) FROM bank_evidence WHERE kind = 'NOTIFICATION'")
        ).scalar()
    return notifications, evidence


def test_a_signed_notification_is_applied_then_acknowledged_with_a_signed_answer(
    banking: Banking, endpoint: Endpoint, accepted: str
) -> None:
    message = banking.notification(accepted, "SUCCEEDED", "200.00")
    answer = endpoint.post(protocol.encode(message))
    assert answer.status_code == 200
    # What the bank checks: our signature over the exact bytes, our merchant, its notifyId.
    KeyRing({PLATFORM_KEY_ID: PLATFORM_PUBLIC}).verify(
        answer.data,
        answer.headers[protocol.KEY_ID_HEADER],
        answer.headers[protocol.SIGNATURE_HEADER],
    )
    ack = json.loads(answer.data)
    assert (ack["notifyId"], ack["result"], ack["merchantId"]) == (
        message["notifyId"],
        "OK",
        message["merchantId"],
    )
    assert banking.order(accepted).status == "SUCCEEDED"
    assert endpoint.count("applied") == 1

    again = endpoint.post(protocol.encode(message))
    assert again.status_code == 200 and json.loads(again.data)["result"] == "OK"
    assert endpoint.count("repeat") == 1
    assert banking.ledger_ok()


def tampered(banking: Banking, order_no: str) -> tuple[bytes, dict]:
    body = protocol.encode(banking.notification(order_no, "SUCCEEDED", "200.00"))
    headers = protocol.signed_headers(BANK_SIGNER, body)
    return body.replace(b"200.00", b"900.00"), headers


@pytest.mark.parametrize(
    ("case", "status", "outcome"),
    [
        ("bad_signature", 401, "bad_signature"),
        ("unknown_key", 401, "unknown_key"),
        ("unsigned", 401, "missing"),
        ("stale", 401, "stale"),
        ("other_merchant", 400, "wrong_merchant"),
        ("malformed", 400, "malformed"),
        ("unknown_order", 404, "unknown_order"),
        ("other_amount", 409, "mismatch"),
    ],
)
def test_every_refusal_is_unacknowledged_counted_logged_without_the_body_and_changes_nothing(
    banking: Banking,
    endpoint: Endpoint,
    accepted: str,
    clock,
    sql,
    caplog,
    case: str,
    status: int,
    outcome: str,
) -> None:
    message = banking.notification(accepted, "SUCCEEDED", "200.00")
    body, headers = protocol.encode(message), None
    if case == "bad_signature":
        body, headers = tampered(banking, accepted)
    elif case == "unknown_key":
        headers = protocol.signed_headers(Signer("bank-elsewhere", BANK_PRIVATE), body)
    elif case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "stale":
        stale = clock.now - timedelta(seconds=301)
        body = protocol.encode({**message, "timestamp": protocol.format_time(stale)})
    elif case == "other_merchant":
        body = protocol.encode({**message, "merchantId": "SOMEONEELSE"})
    elif case == "malformed":
        body = protocol.encode({k: v for k, v in message.items() if k != "amount"})
    elif case == "unknown_order":
        body = protocol.encode({**message, "orderNo": "R20260301NOSUCHORDER"})
    elif case == "other_amount":
        body = protocol.encode({**message, "amount": "2000.00"})

    with caplog.at_level(logging.WARNING):
        answer = endpoint.post(body, headers)
    assert answer.status_code == status
    assert json.loads(answer.data) == {"result": "REFUSED", "reason": outcome}
    assert protocol.SIGNATURE_HEADER not in answer.headers  # no acknowledgement
    assert endpoint.count(outcome) == 1
    assert sum(endpoint.count(o) for o in ("applied", "repeat", "confirmed", "conflict")) == 0
    assert banking.order(accepted).status == "ACCEPTED"
    logged = [r.getMessage() for r in caplog.records if r.name == "server.banknotify"]
    assert len(logged) == 1 and outcome in logged[0]
    assert message["bankRef"] not in logged[0] and "200.00" not in logged[0]
    # Kept only when the bank's own signed word disagrees (another amount), as evidence.
    assert stored(sql) == ((1, 1) if case == "other_amount" else (0, 0))
    assert banking.ledger_ok()


def test_a_notify_id_reused_for_other_content_is_refused(
    banking: Banking, endpoint: Endpoint, accepted: str
) -> None:
    message = banking.notification(accepted, "SUCCEEDED", "200.00")
    assert endpoint.post(protocol.encode(message)).status_code == 200
    other = {**message, "status": "FAILED", "reason": "DECLINED_BY_BANK"}
    answer = endpoint.post(protocol.encode(other))
    assert (answer.status_code, json.loads(answer.data)["reason"]) == (409, "replayed")
    assert endpoint.count("replayed") == 1
    assert banking.order(accepted).status == "SUCCEEDED"


def test_the_banks_new_key_is_accepted_beside_the_old_one_while_it_rotates(
    banking: Banking, clock, accepted: str
) -> None:
    both = Endpoint(
        banking,
        clock,
        bank_public_keys={BANK_KEY_ID: BANK_PUBLIC.decode(), "bank-next": NEXT_PUBLIC.decode()},
    )
    first = banking.notification(accepted, "SUCCEEDED", "200.00")
    answer = both.post(protocol.encode(first), signer=Signer("bank-next", NEXT_PRIVATE))
    assert answer.status_code == 200
    second = banking.notification(accepted, "SUCCEEDED", "200.00")
    assert both.post(protocol.encode(second)).status_code == 200
    assert (both.count("applied"), both.count("confirmed")) == (1, 1)


def test_only_post_is_served(endpoint: Endpoint) -> None:
    assert endpoint.http.get("/bank/notify").status_code == 405
