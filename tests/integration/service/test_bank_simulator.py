"""The platform with payment.gateway BANK as the composition root builds it (the HTTP client,
the outbox with jobs run in process, /bank/notify in the WSGI application), against the bank
simulator (banksim) served over HTTP from a thread, on SQLite and MariaDB, time moved by the
clock component: a member opens an account, recharges and withdraws, confirming on the
bank's page; every fault the simulator injects ends with the platform's books agreeing with
the bank's and the ledger check passing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from werkzeug.test import Client

from conf import ConfigError, load_settings
from server.app import Application, create_platform
from service.jobs import InProcessPublisher
from service.member import BindCardRequest, IdentityRequest
from service.message import MessageService
from tests.banksupport import BANK_KEY_ID, BANK_PUBLIC, PLATFORM_PRIVATE
from tests.integration.service.bankworld import World, bank_world, confirm, onboarded
from tests.integration.service.support import caller

D = Decimal


@pytest.fixture
def world(tmp_path: Path, clock, service_url) -> Iterator[World]:
    yield from bank_world(tmp_path, clock, service_url, auto_authorize=True)


#: The fees the charging bank takes from the platform's account, and what that account holds.
FEES = {"RECHARGE": D("1.50"), "WITHDRAW": D("2.00")}
PLATFORM_FUNDS = "100.00"


@pytest.fixture
def charging_world(tmp_path: Path, clock, service_url) -> Iterator[World]:
    yield from bank_world(
        tmp_path, clock, service_url, auto_authorize=True, fees=FEES, funds=PLATFORM_FUNDS
    )


@pytest.fixture
def confirming_world(tmp_path: Path, clock, service_url) -> Iterator[World]:
    yield from bank_world(tmp_path, clock, service_url, auto_authorize=False)


def test_a_member_opens_an_account_recharges_and_withdraws_at_the_bank(
    world: World, make_member, identities
) -> None:
    who, card_id, account_no = onboarded(world, make_member, identities)
    recharge = world.payments.recharge(D("1000.00"), "sim-r1", who)
    assert recharge.status == "PENDING"
    world.settle()
    assert world.payments.get_order(recharge.order_no, who).status == "SUCCESS"
    assert world.books_agree(who, account_no) == D("1000.00")

    withdrawal = world.payments.withdraw(D("300.00"), card_id, "sim-w1", who)
    world.settle()
    assert world.payments.get_order(withdrawal.order_no, who).status == "SUCCESS"
    assert world.books_agree(who, account_no) == D("700.00")


def test_the_member_confirms_on_the_banks_page(
    confirming_world: World, make_member, identities
) -> None:
    world = confirming_world
    who = caller(make_member("INVESTOR", onboarded=False))
    person = identities()
    world.members.verify_identity(IdentityRequest(person.real_name, person.id_number), who)
    card = world.members.bind_card(
        BindCardRequest(person.card_number, "中国银行", "13987654321"), who
    )
    world.members.open_fund_account(card.card_id, who)
    page = world.members.get_fund_account(who).authorize_url
    assert page.startswith("http://bank.test/authorize/")
    confirm(world, page)
    world.settle()
    account = world.members.get_fund_account(who)
    assert account.status == "OPEN"

    order = world.payments.recharge(D("50.00"), "sim-c1", who)
    shown = world.payments.get_order(order.order_no, who)
    assert (shown.status, shown.authorize_url is not None) == ("PENDING", True)
    world.settle()  # nothing happens until the member confirms
    assert world.payments.get_order(order.order_no, who).status == "PENDING"
    confirm(world, shown.authorize_url)
    world.settle()
    assert world.payments.get_order(order.order_no, who).status == "SUCCESS"
    assert world.books_agree(who, account.account_no) == D("50.00")


def test_the_banks_fees_leave_the_books_as_they_leave_the_platforms_account(
    charging_world: World, make_member, identities
) -> None:
    """With fees per order type, each succeeded order's fee is posted once (a notification
    delivered twice included): CLEARING stays the mirror of the members' money at the bank,
    PLATFORM_FUNDS of the platform's own account, and BANK_FEES is what that account paid."""
    world = charging_world
    who, card_id, account_no = onboarded(world, make_member, identities)
    world.arm("RECHARGE", "notify_twice")
    recharge = world.payments.recharge(D("1000.00"), "fee-r1", who)
    world.settle(rounds=2)
    assert world.payments.get_order(recharge.order_no, who).status == "SUCCESS"
    world.arm("WITHDRAW", "notify_twice")
    withdrawal = world.payments.withdraw(D("300.00"), card_id, "fee-w1", who)
    world.settle(rounds=2)
    assert world.payments.get_order(withdrawal.order_no, who).status == "SUCCESS"
    world.settle(seconds=60, rounds=3)  # late repeats change nothing
    assert world.books_agree(who, account_no) == D("700.00")
    metrics = world.platform.metrics.registry
    assert metrics.get_sample_value("p2p_bank_notifications_total", {"outcome": "repeat"}) == 2

    at_bank = {a["accountNo"]: a for a in world.bank.accounts()}
    platform_account = at_bank[world.bank.platform_account_no]
    assert D(platform_account["available"]) == D(PLATFORM_FUNDS) - D("3.50")
    members = sum(
        D(a["available"]) + D(a["frozen"]) for a in at_bank.values() if a["memberId"] is not None
    )
    with world.platform.database.engine.connect() as conn:
        mine = dict(
            conn.execute(
                text(
                    "SELECT code, available FROM account"
                    " WHERE code IN ('CLEARING', 'BANK_FEES', 'PLATFORM_FUNDS')"
                )
            ).all()
        )
    assert D(mine["BANK_FEES"]) / 100 == D("3.50")
    assert D(mine["CLEARING"]) / 100 == members == D("700.00")
    assert D(mine["PLATFORM_FUNDS"]) / 100 == D(platform_account["available"]) == D("96.50")


@pytest.mark.parametrize(
    ("fault", "status", "rounds", "proof"),
    [
        ("refuse", "FAILED", 1, {"reason": "REFUSED_BY_BANK", "sent": 1}),
        ("fail", "FAILED", 1, {"reason": "DECLINED_BY_BANK", "applied": 1}),
        ("delay", "SUCCESS", 12, {"applied": 1}),
        ("never_notify", "SUCCESS", 25, {"applied": 0, "queried": True}),
        ("notify_twice", "SUCCESS", 2, {"applied": 1, "repeat": 1}),
        ("bad_signature", "SUCCESS", 3, {"bad_signature": 1, "applied": 1}),
        ("timeout_after_moving", "SUCCESS", 2, {"error": "read_timeout", "sent": 1}),
        ("timeout_without_moving", "SUCCESS", 25, {"error": "read_timeout", "sent": 2}),
        ("http_5xx", "SUCCESS", 25, {"error": "http_503", "sent": 2}),
        ("notify_out_of_order", "SUCCESS", 2, {"applied": 1, "conflict": 1}),
    ],
)
def test_every_fault_ends_with_the_books_agreeing(
    world: World, make_member, identities, fault: str, status: str, rounds: int, proof: dict
) -> None:
    who, _, account_no = onboarded(world, make_member, identities)
    metrics = world.platform.metrics.registry

    def counted(name: str, **labels: str) -> float:
        return metrics.get_sample_value(name, labels) or 0.0

    applied_before = counted("p2p_bank_notifications_total", outcome="applied")  # the account
    world.arm("RECHARGE", fault, seconds=30.0 if fault == "delay" else None)
    order = world.payments.recharge(D("100.00"), f"sim-{fault}", who)
    world.settle(rounds=rounds)
    assert world.payments.get_order(order.order_no, who).status == status
    world.settle(seconds=60, rounds=3)  # late retries and repeats change nothing
    shown = world.payments.get_order(order.order_no, who)
    assert shown.status == status
    expected = D("100.00") if status == "SUCCESS" else D("0.00")
    assert world.books_agree(who, account_no) == expected
    # The fault happened, and the platform saw it as it should.
    with world.platform.database.engine.connect() as conn:
        row = conn.execute(
            text("SELECT id, send_count, query_count FROM bank_order WHERE order_no = :no"),
            {"no": order.order_no},
        ).one()
        errors = set(
            conn.execute(
                text("SELECT error FROM bank_evidence WHERE order_id = :id AND kind = 'RESPONSE'"),
                {"id": row.id},
            ).scalars()
        )
    for key, value in proof.items():
        if key == "reason":
            assert shown.failure_reason == value
        elif key == "sent":
            assert row.send_count == value
        elif key == "error":
            assert value in errors
        elif key == "queried":
            assert row.query_count >= 1
        elif key == "conflict":
            assert counted("p2p_bank_conflicts_total", kind="status") == value
        elif key == "applied":
            assert counted("p2p_bank_notifications_total", outcome=key) - applied_before == value
        else:
            assert counted("p2p_bank_notifications_total", outcome=key) == value, key


@pytest.mark.parametrize("fault", ["reverse_after_success", "notify_out_of_order"])
def test_a_returned_withdrawal_ends_back_in_the_available_balance(
    world: World, make_member, identities, fault: str
) -> None:
    who, card_id, account_no = onboarded(world, make_member, identities)
    world.payments.recharge(D("500.00"), "sim-fund", who)
    world.settle()
    world.arm("WITHDRAW", fault, seconds=5.0)
    order = world.payments.withdraw(D("200.00"), card_id, f"sim-{fault}", who)
    world.settle(rounds=5)
    assert world.payments.get_order(order.order_no, who).status == "REVERSED"
    assert world.books_agree(who, account_no) == D("500.00")
    inbox = world.platform.service(MessageService)
    assert "Withdrawal returned" in [m.title for m in inbox.list_messages(who).items]
    assert "提现被退回" in [m.title for m in inbox.list_messages(who, language="zh").items]


def test_a_bank_platform_needs_the_query_job_on_the_schedule(service_url) -> None:
    settings = load_settings(
        {"P2P_ENV": "test"},
        {
            "database.url": service_url,
            "payment.gateway": "BANK",
            "bank.platform_private_key": PLATFORM_PRIVATE.decode(),
            "bank.bank_public_keys": {BANK_KEY_ID: BANK_PUBLIC.decode()},
            "jobs.schedule": {"outbox.sweep": 30},
        },
    )
    with pytest.raises(ConfigError) as refused:
        create_platform(settings, publisher=InProcessPublisher)
    assert "bank.query_due" in str(refused.value)


def test_a_sandbox_platform_serves_no_notify_endpoint(platform) -> None:
    answer = Client(Application(platform)).post("/bank/notify", data=b"{}")
    assert answer.status_code == 404
    assert answer.json["code"] == "UNKNOWN_OPERATION"
