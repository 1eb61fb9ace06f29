"""The simulated bank's orders and books: each order moves money exactly once, a resubmitted
order number answers the order as it is, a member confirms or cancels on the bank's page, a
request the bank cannot trust is refused with a signed error and recorded nowhere, and a
notification is delivered on the spec's schedule until the platform acknowledges it, across
a restart of the bank."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from service.ocp import protocol
from service.ocp.signing import Signer, generate_keypair
from tests.banksupport import PLATFORM_KEY_ID, PLATFORM_PRIVATE
from tests.integration.banksim.conftest import CARD, NOTIFY_URL, acknowledgement


def test_open_recharge_withdraw_move_the_books_once_each(sim) -> None:
    account_no = sim.open_account("7")
    assert sim.platform.events() == [("OPEN7", "SUCCEEDED")]
    assert sim.platform.received[0]["accountNo"] == account_no

    sim.submit("R1", "RECHARGE", accountNo=account_no, amount="100.00")
    assert sim.balance(account_no) == (0, 0)  # not before it finishes
    sim.settle()
    assert sim.balance(account_no) == (Decimal("100.00"), 0)

    reply = sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="30.00", cardNumber=CARD)
    assert sim.answer(reply)["result"] == "ACCEPTED"
    assert sim.balance(account_no) == (Decimal("70.00"), Decimal("30.00"))  # frozen
    sim.settle()
    assert sim.balance(account_no) == (Decimal("70.00"), 0)
    assert sim.platform.events() == [
        ("OPEN7", "SUCCEEDED"),
        ("R1", "SUCCEEDED"),
        ("W1", "SUCCEEDED"),
    ]
    assert sim.movements("W1") == [("FREEZE", "-30.00", "30.00"), ("WITHDRAW", "0.00", "-30.00")]
    query = sim.query("W1")
    assert (query["status"], query["amount"], query["accountNo"]) == (
        "SUCCEEDED",
        "30.00",
        account_no,
    )


def test_a_resubmitted_order_number_answers_the_order_and_moves_nothing(sim) -> None:
    account_no = sim.open_account("7")
    first = sim.answer(sim.submit("R1", "RECHARGE", accountNo=account_no, amount="100.00"))
    again = sim.answer(sim.submit("R1", "RECHARGE", accountNo=account_no, amount="999.00"))
    assert again["duplicate"] is True and again["bankRef"] == first["bankRef"]
    assert again["result"] == "ACCEPTED"
    sim.settle()
    after = sim.answer(sim.submit("R1", "RECHARGE", accountNo=account_no, amount="100.00"))
    assert after["duplicate"] is True and after["result"] == "ACCEPTED"
    sim.settle()
    assert sim.balance(account_no) == (Decimal("100.00"), 0)
    assert sim.movements("R1") == [("RECHARGE", "100.00", "0.00")]
    assert sim.platform.events("R1") == [("R1", "SUCCEEDED")]


def test_a_withdrawal_above_the_available_balance_is_refused(sim) -> None:
    account_no = sim.funded_account("7", "50.00")
    reply = sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="50.01", cardNumber=CARD)
    answer = sim.answer(reply)
    assert (answer["result"], answer["reason"]) == ("REFUSED", "INSUFFICIENT_BALANCE")
    assert sim.balance(account_no) == (Decimal("50.00"), 0)
    query = sim.query("W1")
    assert (query["status"], query["reason"]) == ("FAILED", "INSUFFICIENT_BALANCE")
    sim.settle()
    assert sim.platform.events("W1") == []  # a refusal is final and notifies nothing


def test_frozen_money_cannot_be_withdrawn_twice(sim) -> None:
    account_no = sim.funded_account("7", "50.00")
    sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="40.00", cardNumber=CARD)
    reply = sim.submit("W2", "WITHDRAW", accountNo=account_no, amount="40.00", cardNumber=CARD)
    assert sim.answer(reply)["reason"] == "INSUFFICIENT_BALANCE"


def test_orders_on_accounts_the_bank_does_not_have_are_refused(sim) -> None:
    account_no = sim.open_account("7")
    unknown = sim.answer(sim.submit("R1", "RECHARGE", accountNo="SA9", amount="1.00"))
    platform = sim.answer(
        sim.submit("R2", "RECHARGE", accountNo=sim.bank.platform_account_no, amount="1.00")
    )
    assert unknown["reason"] == platform["reason"] == "ACCOUNT_NOT_FOUND"
    twice = sim.submit(
        "OPEN7B",
        "OPEN_ACCOUNT",
        memberId="7",
        realName="张测试",
        idNumber="11010519491231002X",
        cardNumber=CARD,
        mobile="13812345678",
    )
    assert sim.answer(twice)["reason"] == "ACCOUNT_EXISTS"
    assert [a["accountNo"] for a in sim.bank.accounts()] == [
        sim.bank.platform_account_no,
        account_no,
    ]


def test_fees_are_frozen_on_the_platform_account_and_taken_on_success(make_sim) -> None:
    sim = make_sim(fees={"WITHDRAW": Decimal("2.00")})
    account_no = sim.funded_account("7", "100.00")
    platform = sim.bank.platform_account_no
    sim.submit("F1", "FUND", amount="3.00")  # the platform's account starts empty
    sim.settle()
    sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="10.00", cardNumber=CARD)
    assert sim.balance(platform) == (Decimal("1.00"), Decimal("2.00"))
    refused = sim.submit("W2", "WITHDRAW", accountNo=account_no, amount="10.00", cardNumber=CARD)
    assert sim.answer(refused)["reason"] == "FEE_UNPAYABLE"
    sim.settle()
    assert sim.balance(platform) == (Decimal("1.00"), 0)
    assert sim.platform.received[-1]["fee"] == "2.00"


# --- the member's confirmation --------------------------------------------------------


def test_a_member_authorised_order_waits_for_the_member(make_sim) -> None:
    sim = make_sim(auto_authorize=False)
    reply = sim.submit(
        "OPEN7",
        "OPEN_ACCOUNT",
        memberId="7",
        realName="张测试",
        idNumber="11010519491231002X",
        cardNumber=CARD,
        mobile="13812345678",
    )
    answer = sim.answer(reply)
    url = answer["authorizeUrl"]
    assert url.startswith("http://bank.test/authorize/OPEN7?token=")
    assert (
        sim.answer(
            sim.submit(
                "OPEN7",
                "OPEN_ACCOUNT",
                memberId="7",
                realName="x",
                idNumber="x",
                cardNumber="x",
                mobile="x",
            )
        )["authorizeUrl"]
        == url
    )
    sim.settle(60)
    assert sim.query("OPEN7")["status"] == "PROCESSING" and sim.platform.events() == []
    token = url.partition("token=")[2]
    assert sim.bank.authorize("OPEN7", "wrong", confirm=True) is None
    assert sim.bank.authorize("OPEN7", token, confirm=True)["status"] == "PROCESSING"
    assert sim.bank.authorize("OPEN7", token, confirm=True) is None  # once
    sim.settle()
    assert sim.platform.events() == [("OPEN7", "SUCCEEDED")]


def test_a_cancelled_withdrawal_fails_and_releases_the_money(make_sim) -> None:
    sim = make_sim(auto_authorize=False)
    account_no = _funded_with_confirmation(sim, "7", "80.00")
    answer = sim.answer(
        sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="80.00", cardNumber=CARD)
    )
    assert sim.balance(account_no) == (0, Decimal("80.00"))
    token = answer["authorizeUrl"].partition("token=")[2]
    assert sim.bank.authorize("W1", token, confirm=False)["status"] == "FAILED"
    assert sim.balance(account_no) == (Decimal("80.00"), 0)
    sim.settle()
    assert sim.platform.received[-1]["status"] == "FAILED"
    assert sim.platform.received[-1]["reason"] == "CANCELLED_BY_MEMBER"


def test_an_order_the_member_never_confirms_expires(make_sim) -> None:
    sim = make_sim(auto_authorize=False, authorize_timeout_seconds=600)
    account_no = _funded_with_confirmation(sim, "7", "80.00")
    sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="80.00", cardNumber=CARD)
    sim.settle(599)
    assert sim.query("W1")["status"] == "PROCESSING"
    sim.settle(1)
    assert (sim.query("W1")["status"], sim.query("W1")["reason"]) == (
        "FAILED",
        "AUTHORIZATION_EXPIRED",
    )
    assert sim.balance(account_no) == (Decimal("80.00"), 0)


def _funded_with_confirmation(sim, member_id: str, amount: str) -> str:
    for order_no, order_type, fields in (
        (
            "OPEN" + member_id,
            "OPEN_ACCOUNT",
            {
                "memberId": member_id,
                "realName": "张测试",
                "idNumber": "11010519491231002X",
                "cardNumber": CARD,
                "mobile": "13812345678",
            },
        ),
        ("FUND" + member_id, "RECHARGE", None),
    ):
        if fields is None:
            fields = {"accountNo": sim.query("OPEN" + member_id)["accountNo"], "amount": amount}
        url = sim.answer(sim.submit(order_no, order_type, **fields))["authorizeUrl"]
        sim.bank.authorize(order_no, url.partition("token=")[2], confirm=True)
        sim.settle()
    return sim.query("OPEN" + member_id)["accountNo"]


# --- requests the bank refuses --------------------------------------------------------


OTHER = Signer(PLATFORM_KEY_ID, generate_keypair()[0])


@pytest.mark.parametrize(
    ("make", "status", "error"),
    [
        (
            lambda sim, body, h: (body, {**h, "X-Bank-Signature": OTHER.sign(body)}),
            401,
            "SIGNATURE_INVALID",
        ),
        (
            lambda sim, body, h: (body, {"Content-Type": "application/json"}),
            401,
            "SIGNATURE_INVALID",
        ),
        (lambda sim, body, h: (body, {**h, "X-Bank-Key-Id": "nobody"}), 401, "SIGNATURE_INVALID"),
        (
            lambda sim, body, h: sim.signed({**protocol.decode(body), "merchantId": "OTHER"}),
            401,
            "UNKNOWN_MERCHANT",
        ),
        (
            lambda sim, body, h: sim.signed(
                protocol.decode(body), at=sim.clock() - dt.timedelta(seconds=301)
            ),
            401,
            "STALE",
        ),
    ],
    ids=["other key", "unsigned", "unknown key id", "wrong merchant", "stale"],
)
def test_an_untrusted_request_is_refused_signed_and_recorded_nowhere(sim, make, status, error):
    account_no = sim.open_account("7")
    order = {
        "orderNo": "R1",
        "orderType": "RECHARGE",
        "notifyUrl": NOTIFY_URL,
        "accountNo": account_no,
        "amount": "5.00",
    }
    body, headers = make(sim, *sim.signed(order))
    reply = sim.bank.submit(body, headers)
    assert reply.status == status and sim.answer(reply) == {
        "error": error,
        "merchantId": sim.config.merchant_id,
        "timestamp": protocol.format_time(sim.clock()),
    }
    assert sim.query("R1")["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"orderNo": "R-1"}, "orderNo"),
        ({"orderType": "LOAN"}, "orderType"),
        ({"amount": "5"}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": None}, "amount"),
        ({"notifyUrl": "ftp://x"}, "notifyUrl"),
        ({"returnUrl": 5}, "returnUrl"),
    ],
)
def test_a_malformed_order_is_refused_naming_the_field(sim, fields, field) -> None:
    order = {
        "orderNo": "R1",
        "orderType": "RECHARGE",
        "notifyUrl": NOTIFY_URL,
        "accountNo": "SA1",
        "amount": "5.00",
        **fields,
    }
    reply = sim.bank.submit(*sim.signed({k: v for k, v in order.items() if v is not None}))
    assert reply.status == 400
    assert (sim.answer(reply)["error"], sim.answer(reply)["field"]) == ("MALFORMED", field)


def test_queries_are_limited_per_order(make_sim) -> None:
    sim = make_sim(query_min_interval_seconds=30)
    assert sim.query("Q1")["status"] == "NOT_FOUND"
    reply = sim.bank.query(*sim.signed({"orderNo": "Q1"}))
    assert reply.status == 429 and sim.answer(reply)["error"] == "TOO_MANY_QUERIES"
    assert sim.query("Q2")["status"] == "NOT_FOUND"  # per order
    sim.clock.advance(30)
    assert sim.query("Q1")["status"] == "NOT_FOUND"


# --- notifications --------------------------------------------------------------------


def test_a_notification_is_retried_on_the_schedule_until_acknowledged(sim) -> None:
    account_no = sim.open_account("7")
    sim.platform.refuse = 3
    sim.submit("R1", "RECHARGE", accountNo=account_no, amount="5.00")
    sim.settle()  # finished, the first delivery refused

    def attempts() -> int:
        return sim.bank.orders("R1")[0]["notifications"][0]["attempts"]

    for n, wait in enumerate((5, 30, 120), start=1):
        sim.settle(wait - 1)
        assert attempts() == n
        sim.settle(1)
        assert attempts() == n + 1
    assert sim.platform.refuse == 0
    assert sim.platform.events("R1") == [("R1", "SUCCEEDED")]
    assert sim.bank.orders("R1")[0]["notifications"][0]["acknowledgedAt"] is not None
    sim.settle(7200)
    assert attempts() == 4


def test_each_retry_waits_its_turn(sim) -> None:
    account_no = sim.open_account("7")
    sim.platform.down = True
    sim.submit("R1", "RECHARGE", accountNo=account_no, amount="5.00")
    sim.settle()
    attempts = []
    for wait in protocol.NOTIFY_RETRY_SECONDS:
        sim.settle(wait - 1)
        attempts.append(sim.bank.orders("R1")[0]["notifications"][0]["attempts"])
        sim.settle(1)
    assert attempts == list(range(1, len(protocol.NOTIFY_RETRY_SECONDS) + 1))
    notification = sim.bank.orders("R1")[0]["notifications"][0]
    assert notification["attempts"] == 18 and notification["gaveUpAt"] is not None
    sim.platform.down = False
    sim.settle(7200)
    assert sim.platform.received[-1]["orderNo"] == "OPEN7"  # the bank gave up


def _with_body(ack: tuple, body: bytes) -> tuple:
    return ack[0], body, ack[2]


@pytest.mark.parametrize(
    "ack",
    [
        lambda m, now: acknowledgement("N-other", now),
        lambda m, now: acknowledgement(m["notifyId"], now, Signer("platform-x", PLATFORM_PRIVATE)),
        lambda m, now: (200, b'{"result":"OK"}', {}),
        lambda m, now: _with_body(acknowledgement(m["notifyId"], now), b"{}"),
    ],
    ids=["another notifyId", "unknown key id", "unsigned", "body not what was signed"],
)
def test_only_a_signed_acknowledgement_of_this_notification_stops_the_retries(sim, ack) -> None:
    account_no = sim.open_account("7")
    sim.platform.ack = lambda message: ack(message, sim.clock())
    sim.submit("R1", "RECHARGE", accountNo=account_no, amount="5.00")
    sim.settle()
    sim.platform.ack = None
    sim.settle(5)
    notification = sim.bank.orders("R1")[0]["notifications"][0]
    assert notification["attempts"] == 2 and notification["acknowledgedAt"] is not None
    assert sim.platform.events("R1") == [("R1", "SUCCEEDED"), ("R1", "SUCCEEDED")]


def test_a_retry_is_the_same_event_re_signed(sim) -> None:
    account_no = sim.open_account("7")
    sim.platform.ack = lambda message: (503, b"", {})
    sim.submit("R1", "RECHARGE", accountNo=account_no, amount="5.00")
    sim.settle()
    sim.settle(5)
    first, second = sim.platform.received[-2:]
    assert first["timestamp"] != second["timestamp"]
    assert {**first, "timestamp": None} == {**second, "timestamp": None}


def test_a_restarted_bank_finishes_and_notifies_what_it_had_queued(sim) -> None:
    account_no = sim.open_account("7")
    sim.submit("R1", "RECHARGE", accountNo=account_no, amount="5.00")
    sim.platform.down = True
    sim.settle()  # finished; the first delivery failed
    sim.submit("R2", "RECHARGE", accountNo=account_no, amount="6.00")
    sim.bank.books.close()
    sim.platform.down = False
    sim.bank = sim.open()
    sim.settle(5)
    assert sorted(sim.platform.events()[1:]) == [("R1", "SUCCEEDED"), ("R2", "SUCCEEDED")]
    assert sim.balance(account_no) == (Decimal("11.00"), 0)
