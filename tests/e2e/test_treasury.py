"""The platform's own account as operators run it: ``p2p bank-sim`` as a separate process that
asks for every confirmation on its page and charges a fee on transfers, ``p2p serve`` with its
embedded job worker. An operator funds the platform's account (the treasurer confirms on the
bank's page), pays a member over REST and over SOAP (zeep); the member sees the money and the
messages; a transfer whose answer is lost after the bank moved the money, and one the bank
fails, end right; then check-ledger passes and the reconciliation of the day, closed early at
the bank, finds nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests
import zeep
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service.ocp import protocol
from tests.banksupport import start_bank_sim
from tests.e2e.test_bank import (
    Customer,
    balances_agree,
    bank_settings,
    confirm,
    customer,
    eventually,
)
from tests.e2e.test_reconciliation import reconcile

pytestmark = pytest.mark.slow

D = Decimal


@pytest.fixture(scope="module")
def treasury_platform(tmp_path_factory, processes):
    """The platform with an operator on a confirming bank that charges 0.10 a transfer, holds
    a timeout fault's answer 3 s and is waited for 1 s; (server, simulator, settings)."""
    workdir = tmp_path_factory.mktemp("e2e-treasury")
    sim = start_bank_sim(workdir / "bank", "--delay", "1", "--hang", "3", "--fee", "TRANSFER=0.10")
    port = processes.free_port()
    settings = bank_settings(workdir, sim, port, "bank.read_timeout_seconds=1")
    try:
        started = processes.start_server("embedded", workdir, settings, True, port)
    except BaseException:
        sim.stop()
        raise
    yield started.server, sim, settings
    started.stop()
    sim.stop()


def answer_errors(server, order_no: str) -> set[str | None]:
    """What went wrong with each answer to the bank order's submissions, from the evidence."""
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT e.error FROM bank_evidence e JOIN bank_order b"
                        " ON b.id = e.order_id WHERE b.order_no = :no AND e.kind = 'RESPONSE'"
                    ),
                    {"no": order_no},
                ).scalars()
            )
    finally:
        engine.dispose()


def transfer_path(transfer: dict) -> str:
    return f"/api/v1/platform-account/transfers/{transfer['transferId']}"


def test_an_operator_funds_the_platform_and_pays_members_and_the_day_reconciles(
    treasury_platform, identities, signup, processes
) -> None:
    server, sim, settings = treasury_platform
    mobile, password = processes.operator_login
    login = {"mobile": mobile, "password": password}
    token = requests.post(server.url("/api/v1/sessions"), json=login, timeout=30).json()["token"]
    operator = Customer(server, token, 0, mobile)

    # The owners fund the platform's account: the treasurer confirms on the bank's page.
    fund = operator.post(
        "/api/v1/platform-account/fundings", {"amount": "100.00", "requestNo": "e2e-fund"}
    )
    assert (fund["kind"], fund["status"]) == ("FUND", "PENDING")
    confirm(operator.authorize_url(transfer_path(fund)))
    operator.settled(transfer_path(fund), "SUCCESS")
    account = operator.get("/api/v1/platform-account")
    assert (account["available"], account["ownerFunding"]) == ("100.00", "100.00")

    # A member is paid over REST, then over SOAP; no one confirms a transfer.
    me = customer(server, signup, identities())
    member_id = me.get("/api/v1/members/current")["memberId"]
    paid = operator.post(
        "/api/v1/platform-account/transfers",
        {
            "memberId": member_id,
            "amount": "8.88",
            "purpose": "MARKETING",
            "memo": "注册奖励",
            "requestNo": "e2e-pay-rest",
        },
    )
    assert (paid["status"], paid.get("authorizeUrl")) == ("PENDING", None)
    operator.settled(transfer_path(paid), "SUCCESS")
    soap = zeep.Client(server.url("/services/TreasuryFacade?wsdl"))
    headers = {"_soapheaders": {"auth": {"token": token}}}
    over_soap = soap.service.payMember(
        memberId=member_id,
        amount=D("1.12"),
        purpose="COMPENSATION",
        requestNo="e2e-pay-soap",
        **headers,
    )
    assert (over_soap.kind, over_soap.status) == ("TRANSFER", "PENDING")
    eventually(
        lambda: (
            soap.service.getPlatformTransfer(transferId=over_soap.transferId, **headers).status
            == "SUCCESS"
        ),
        "the transfer over SOAP did not complete",
    )
    mine = me.get("/api/v1/accounts/me")
    assert (mine["available"], mine["frozen"]) == ("10.00", "0.00")
    told = [m for m in me.get("/api/v1/messages")["items"] if m["refType"] == "platform_transfer"]
    assert sorted(m["refId"] for m in told) == sorted([paid["transferId"], over_soap.transferId])
    assert any("8.88" in m["body"] and "注册奖励" in m["body"] for m in told)

    # The bank moves the money but the answer is lost: the transfer still ends SUCCESS, once.
    sim.admin(
        "POST", "/admin/faults", json={"orderType": "TRANSFER", "fault": "timeout_after_moving"}
    )
    lost = operator.post(
        "/api/v1/platform-account/transfers",
        {"memberId": member_id, "amount": "2.00", "purpose": "MARKETING", "requestNo": "e2e-lost"},
    )
    operator.settled(transfer_path(lost), "SUCCESS")
    eventually(  # the notification may come before the send job gives up waiting
        lambda: "read_timeout" in answer_errors(server, lost["orderNo"]),
        "the bank's answer was not lost",
    )
    # The bank fails one: the amount is the platform's again.
    sim.admin("POST", "/admin/faults", json={"orderType": "TRANSFER", "fault": "fail"})
    failed = operator.post(
        "/api/v1/platform-account/transfers",
        {"memberId": member_id, "amount": "3.00", "purpose": "MARKETING", "requestNo": "e2e-fail"},
    )
    done = operator.settled(transfer_path(failed), "FAILED")
    assert done["failureReason"] == "DECLINED_BY_BANK"

    # 100.00 in, 12.00 paid out, three transfers' fees (a failed one's is released).
    account = operator.get("/api/v1/platform-account")
    assert (account["available"], account["frozen"], account["bankFees"]) == (
        "87.70",
        "0.00",
        "0.30",
    )
    at_bank = requests.get(sim.url + "/admin/accounts", timeout=10).json()["accounts"]
    [platform_line] = [a for a in at_bank if a["memberId"] is None]
    assert (platform_line["available"], platform_line["frozen"]) == ("87.70", "0.00")
    balances_agree((server, sim), processes, me, "12.00", "0.00")  # check-ledger too

    # The bank closes the day early; its reconciliation finds nothing.
    today = str(protocol.business_day(dt.datetime.now(dt.UTC)))
    closed = sim.admin("POST", "/admin/close-day", json={"date": today})
    assert closed.status_code == 200, closed.text
    done = reconcile(settings, "--date", today)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bank-only 0, platform-only 0, amount 0, status 0, fee 0, balance 0" in done.stdout
    assert "Traceback" not in server.log_text()
