"""The platform with payment.gateway BANK as a user runs it: ``p2p serve`` with its embedded
job worker and scheduler, and ``p2p bank-sim`` as a separate process, over HTTP both ways. A
member opens a fund account, recharges over REST and withdraws over SOAP; each call answers
PENDING and completes when the bank notifies, and the platform's balance ends equal to the
bank's."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest
import requests
import zeep

from tests.banksupport import (
    BANK_KEY_ID,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
    RestMember,
    start_bank_sim,
)

pytestmark = pytest.mark.slow

D = Decimal


def eventually(check: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def bank_platform(tmp_path_factory, processes):
    """``p2p bank-sim`` and a ``p2p serve`` whose depository it is."""
    workdir = tmp_path_factory.mktemp("e2e-bank")
    sim = start_bank_sim(workdir / "bank", "--delay", "1", "--auto-authorize")
    key = workdir / "platform.pem"
    key.write_bytes(PLATFORM_PRIVATE)
    port = processes.free_port()
    settings = [
        f"database.url=sqlite:///{workdir / 'p2p.db'}",
        "payment.gateway=BANK",
        f"bank.url={sim.url}",
        f"bank.merchant_id={MERCHANT}",
        f"bank.platform_key_id={PLATFORM_KEY_ID}",
        f"bank.platform_private_key={key}",
        f"bank.bank_public_keys={BANK_KEY_ID}={workdir / 'bank' / 'bank.pub.pem'}",
        f"bank.notify_url=http://127.0.0.1:{port}/bank/notify",
        "bank.query_first_after_seconds=5",
        "jobs.schedule=bank.query_due=5;outbox.sweep=30",
        f"jobs.embedded_broker_file={workdir / 'jobs-broker.db'}",
        f"jobs.beat_schedule_file={workdir / 'beat-schedule'}",
    ]
    try:
        started = processes.start_server("embedded", workdir, settings, False, port)
    except BaseException:
        sim.stop()
        raise
    yield started.server, sim
    started.stop()
    sim.stop()


def test_a_recharge_over_rest_and_a_withdrawal_over_soap_complete_at_the_bank(
    bank_platform, identities
) -> None:
    server, sim = bank_platform
    member = RestMember.sign_up(server, identities())
    post, get = member.post, member.get
    opening = post("/api/v1/members/current/fund-account", {"cardId": member.card_id})
    assert opening["status"] == "PENDING"
    account = eventually(
        lambda: (a := get("/api/v1/members/current/fund-account"))["status"] == "OPEN" and a,
        "the bank did not open the account",
    )

    recharge = post("/api/v1/payments/recharges", {"amount": "100.00", "requestNo": "e2e-r"})
    assert recharge["status"] == "PENDING"
    eventually(
        lambda: get(f"/api/v1/payments/{recharge['orderNo']}")["status"] == "SUCCESS",
        "the recharge did not complete",
    )

    soap = zeep.Client(server.url("/services/PaymentFacade?wsdl"))
    headers = {"_soapheaders": {"auth": {"token": member.token}}}
    withdrawal = soap.service.withdraw(
        amount=D("30.00"), cardId=member.card_id, requestNo="e2e-w", **headers
    )
    assert withdrawal.status == "PENDING"
    eventually(
        lambda: soap.service.getOrder(orderNo=withdrawal.orderNo, **headers).status == "SUCCESS",
        "the withdrawal did not complete",
    )

    mine = get("/api/v1/accounts/me")
    assert (mine["available"], mine["frozen"]) == ("70.00", "0.00")
    at_bank = requests.get(sim.url + "/admin/accounts", timeout=10).json()
    sub = next(a for a in at_bank["accounts"] if a["accountNo"] == account["accountNo"])
    assert (sub["available"], sub["frozen"]) == ("70.00", "0.00")
    assert "Traceback" not in server.log_text()
