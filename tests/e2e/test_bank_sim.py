"""``p2p bank-sim`` as a separate process, driven by the platform's HttpBankClient over HTTP:
an account opened, a RECHARGE and a WITHDRAW finished asynchronously with signed notifications
received and acknowledged, a timeout after the money moved resolved by resubmitting the same
order number, and notifications still delivered after the simulator restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.ocp.client import HttpBankClient
from tests.banksupport import (
    BankSim,
    Receiver,
    platform_settings,
    serving,
    start_bank_sim,
    wait_for,
)

pytestmark = pytest.mark.slow

CARD = "6222020200112233445"
SIM_OPTIONS = ("--auto-authorize", "--delay", "0.2", "--query-min-interval", "0", "--hang", "3")


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver(client=None)
    with serving(r) as url:
        yield r, url + "/bank/notify"


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[BankSim]:
    sim = start_bank_sim(tmp_path / "bank", *SIM_OPTIONS)
    yield sim
    sim.stop()


def connect(sim: BankSim, receiver) -> HttpBankClient:
    client = HttpBankClient(
        platform_settings(sim.url, receiver[1], read_timeout_seconds=1.0, max_connections=4)
    )
    receiver[0].client = client
    return client


def open_account(client: HttpBankClient, receiver: Receiver) -> str:
    exchange = client.submit(
        {
            "orderNo": "OPEN7",
            "orderType": "OPEN_ACCOUNT",
            "memberId": "7",
            "realName": "张测试",
            "idNumber": "11010519491231002X",
            "cardNumber": CARD,
            "mobile": "13812345678",
        }
    )
    assert exchange.answer["result"] == "ACCEPTED"
    wait_for(lambda: receiver.statuses("OPEN7"))
    return receiver.received[0]["accountNo"]


def test_recharge_and_withdraw_through_the_simulator_process(bank, receiver) -> None:
    client = connect(bank, receiver)
    account_no = open_account(client, receiver[0])

    recharge = client.submit(
        {"orderNo": "R1", "orderType": "RECHARGE", "accountNo": account_no, "amount": "100.00"}
    )
    assert (recharge.signature, recharge.answer["result"]) == ("VALID", "ACCEPTED")
    assert wait_for(lambda: receiver[0].statuses("R1")) == ["SUCCEEDED"]

    withdraw = {
        "orderNo": "W1",
        "orderType": "WITHDRAW",
        "accountNo": account_no,
        "amount": "40.00",
        "cardNumber": CARD,
    }
    assert client.submit(withdraw).answer["result"] == "ACCEPTED"
    assert wait_for(lambda: receiver[0].statuses("W1")) == ["SUCCEEDED"]
    event = next(m for m in receiver[0].received if m["orderNo"] == "W1")
    assert (event["amount"], event["accountNo"]) == ("40.00", account_no)
    assert client.query("W1").answer["status"] == "SUCCEEDED"
    accounts = bank.admin("GET", "/admin/accounts").json()["accounts"]
    assert {a["accountNo"]: a["available"] for a in accounts}[account_no] == "60.00"
    assert receiver[0].refused == []


def test_a_timeout_after_the_money_moved_is_resolved_by_the_same_order_number(
    bank, receiver
) -> None:
    client = connect(bank, receiver)
    account_no = open_account(client, receiver[0])
    client.submit(
        {"orderNo": "R1", "orderType": "RECHARGE", "accountNo": account_no, "amount": "100.00"}
    )
    wait_for(lambda: receiver[0].statuses("R1"))
    armed = bank.admin(
        "POST", "/admin/faults", json={"orderType": "WITHDRAW", "fault": "timeout_after_moving"}
    )
    assert armed.status_code == 200
    withdraw = {
        "orderNo": "W1",
        "orderType": "WITHDRAW",
        "accountNo": account_no,
        "amount": "40.00",
        "cardNumber": CARD,
    }
    timed_out = client.submit(withdraw)
    assert (timed_out.error, timed_out.answer) == ("read_timeout", None)
    again = client.submit(withdraw)
    assert again.answer["duplicate"] is True and again.answer["result"] == "ACCEPTED"
    assert wait_for(lambda: receiver[0].statuses("W1")) == ["SUCCEEDED"]
    orders = bank.admin("GET", "/admin/orders", params={"orderNo": "W1"}).json()["orders"]
    assert orders[0]["status"] == "SUCCEEDED"
    accounts = bank.admin("GET", "/admin/accounts").json()["accounts"]
    assert {a["accountNo"]: a["available"] for a in accounts}[account_no] == "60.00"


def test_a_restarted_simulator_delivers_what_it_had_queued(tmp_path: Path, receiver) -> None:
    sim = start_bank_sim(tmp_path / "bank", *SIM_OPTIONS)
    try:
        client = connect(sim, receiver)
        account_no = open_account(client, receiver[0])
        receiver[0].refuse = 1
        client.submit(
            {"orderNo": "R1", "orderType": "RECHARGE", "accountNo": account_no, "amount": "5.00"}
        )
        wait_for(lambda: receiver[0].refuse == 0)  # the first delivery was turned away
    finally:
        sim.stop()
    sim = start_bank_sim(tmp_path / "bank", *SIM_OPTIONS)
    try:
        connect(sim, receiver)
        assert wait_for(lambda: receiver[0].statuses("R1")) == ["SUCCEEDED"]  # the 5 s retry
    finally:
        sim.stop()
