"""The platform with payment.gateway BANK as a user runs it: ``p2p serve`` with its embedded
job worker and scheduler, and ``p2p bank-sim`` as a separate process, over HTTP both ways. A
member opens a fund account, recharges over REST and withdraws over SOAP; each call answers
PENDING and completes when the bank notifies, and the platform's balance ends equal to the
bank's."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import zeep

from tests.banksupport import (
    BANK_KEY_ID,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
    BankSim,
    start_bank_sim,
)
from tests.e2e.conftest import MEMBER_PASSWORD, RestMember

pytestmark = pytest.mark.slow

D = Decimal


def eventually(check: Callable[[], object], what: str, timeout: float = 90.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.25)


def bank_settings(workdir, sim: BankSim, port: int, *extra: str) -> list[str]:
    """The settings of a ``p2p serve`` on ``port`` whose depository is ``sim``, its files in
    ``workdir`` (the platform's key written there), then ``extra``."""
    key = workdir / "platform.pem"
    key.write_bytes(PLATFORM_PRIVATE)
    return [
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
        *extra,
    ]


def serve_on_a_bank(workdir, processes, *sim_options: str, operator: bool = False):
    """``p2p bank-sim`` with ``sim_options`` and a ``p2p serve`` whose depository it is (with
    the operator when ``operator``); (the started server, the simulator)."""
    sim = start_bank_sim(workdir / "bank", "--delay", "1", *sim_options)
    port = processes.free_port()
    try:
        started = processes.start_server(
            "embedded", workdir, bank_settings(workdir, sim, port), operator, port
        )
    except BaseException:
        sim.stop()
        raise
    return started, sim


@pytest.fixture(scope="module")
def bank_platform(tmp_path_factory, processes):
    """The platform on a bank that takes every member's confirmation as given."""
    started, sim = serve_on_a_bank(
        tmp_path_factory.mktemp("e2e-bank"), processes, "--auto-authorize"
    )
    yield started.server, sim
    started.stop()
    sim.stop()


@pytest.fixture(scope="module")
def confirming_platform(tmp_path_factory, processes):
    """The platform on a bank where members confirm each order on its page."""
    started, sim = serve_on_a_bank(
        tmp_path_factory.mktemp("e2e-bank-confirm"), processes, operator=True
    )
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


# -- members confirming on the bank's page -----------------------------------------------------


def confirm(url: str, *, cancel: bool = False) -> None:
    """What the member does on the bank's page: enter the bank password and confirm (or
    cancel)."""
    token = parse_qs(urlsplit(url).query)["token"][0]
    form = {"token": token, "action": "cancel" if cancel else "confirm", "password": "123456"}
    assert requests.post(url, data=form, timeout=30).ok


@dataclass
class Customer(RestMember):
    """A member of the confirming platform, logged in, with REST helpers."""

    mobile: str = ""

    def authorize_url(self, path: str) -> str:
        """The bank page of the PENDING thing at ``path``, once the bank has accepted it."""
        return eventually(lambda: self.get(path).get("authorizeUrl"), f"no authorizeUrl on {path}")

    def settled(self, path: str, status: str) -> dict:
        return eventually(
            lambda: (body := self.get(path))["status"] == status and body,
            f"{path} did not become {status}",
        )


def customer(server, signup, who, role: str = "INVESTOR", funds: str = "") -> Customer:
    """A member who signed up, verified, bound a card and opened a fund account confirmed on
    the bank's page; recharged with ``funds`` (confirmed too) when given."""
    mobile = f"139{uuid.uuid4().int % 10**8:08d}"
    signup.register(server, role, mobile, MEMBER_PASSWORD)
    login = {"mobile": mobile, "password": MEMBER_PASSWORD}
    token = requests.post(server.url("/api/v1/sessions"), json=login, timeout=30).json()["token"]
    me = Customer(server, token, 0, mobile)
    identity = {"realName": who.real_name, "idNumber": who.id_number}
    me.post("/api/v1/members/current/identity", identity)
    card = me.post(
        "/api/v1/members/current/cards",
        {"cardNumber": who.card_number, "bankName": "中国银行", "mobile": mobile},
    )
    me.card_id = card["cardId"]
    me.post("/api/v1/members/current/fund-account", {"cardId": me.card_id})
    confirm(me.authorize_url("/api/v1/members/current/fund-account"))
    me.settled("/api/v1/members/current/fund-account", "OPEN")
    if funds:
        recharge = me.post("/api/v1/payments/recharges", {"amount": funds, "requestNo": "fund"})
        confirm(me.authorize_url(f"/api/v1/payments/{recharge['orderNo']}"))
        me.settled(f"/api/v1/payments/{recharge['orderNo']}", "SUCCESS")
    return me


def test_a_card_is_not_unbound_while_a_withdrawal_to_it_waits_for_the_bank(
    confirming_platform, identities, signup, checks
) -> None:
    server, _ = confirming_platform
    me = customer(server, signup, identities(), funds="100.00")
    withdrawal = me.post(
        "/api/v1/payments/withdrawals",
        {"amount": "30.00", "cardId": me.card_id, "requestNo": "w-in-use"},
    )
    assert withdrawal["status"] == "PENDING"  # the member has not confirmed it yet

    card_path = server.url(f"/api/v1/members/current/cards/{me.card_id}")
    refused = requests.delete(card_path, headers=me.auth, timeout=30)
    checks.error(refused, 409, "CARD_IN_USE", mentions=str(me.card_id))
    members = zeep.Client(server.url("/services/MemberFacade?wsdl"))
    headers = {"_soapheaders": {"auth": {"token": me.token}}}
    with pytest.raises(zeep.exceptions.Fault) as fault:
        members.service.unbindCard(cardId=me.card_id, **headers)
    assert checks.zeep_code(fault.value) == "CARD_IN_USE"

    order_path = f"/api/v1/payments/{withdrawal['orderNo']}"
    confirm(me.authorize_url(order_path))
    me.settled(order_path, "SUCCESS")
    assert members.service.unbindCard(cardId=me.card_id, **headers) is None
    assert me.get("/api/v1/members/current/cards")["items"] == []
    assert "Traceback" not in server.log_text()


def raising_listing(server, processes, borrower: Customer, amount: str) -> tuple[Customer, int]:
    """The operator (logged in) and a listing of ``borrower`` they published and approved."""
    mobile, password = processes.operator_login
    login = {"mobile": mobile, "password": password}
    answer = requests.post(server.url("/api/v1/sessions"), json=login, timeout=30)
    operator = Customer(server, answer.json()["token"], 0, mobile)
    terms = {
        "title": "Working capital " + uuid.uuid4().hex[:6],
        "description": "Stock for the spring season.",
        "borrowerId": borrower.get("/api/v1/members/current")["memberId"],
        "amount": amount,
        "annualRate": "9.5",
        "termMonths": 12,
        "repaymentMethod": "EQUAL_INSTALLMENT",
        "minInvest": "100.00",
        "raiseDays": 10,
    }
    loan_id = operator.post("/api/v1/loans", terms)["loanId"]
    assert operator.post(f"/api/v1/loans/{loan_id}/audit", {"approve": True})["status"] == (
        "RAISING"
    )
    return operator, loan_id


def balances_agree(platform, processes, me: Customer, available: str, frozen: str) -> None:
    """The member's balances, on the platform and at the bank, then a clean ledger check."""
    server, sim = platform
    mine = me.get("/api/v1/accounts/me")
    assert (mine["available"], mine["frozen"]) == (available, frozen)
    account_no = me.get("/api/v1/members/current/fund-account")["accountNo"]
    at_bank = requests.get(sim.url + "/admin/accounts", timeout=10).json()["accounts"]
    sub = next(a for a in at_bank if a["accountNo"] == account_no)
    assert (sub["available"], sub["frozen"]) == (available, frozen)
    database = f"database.url={server.database_url}"
    check = subprocess.run(
        [sys.executable, "-m", "server.cli", "check-ledger", "--set", database],
        cwd=processes.root,
        env=processes.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_investment_is_frozen_at_the_bank_once_the_investor_confirms(
    confirming_platform, identities, signup, processes
) -> None:
    server, _ = confirming_platform
    borrower = customer(server, signup, identities(), "BORROWER")
    me = customer(server, signup, identities(), funds="500.00")
    _, loan_id = raising_listing(server, processes, borrower, "1000.00")
    investment = me.post(
        f"/api/v1/loans/{loan_id}/investments", {"amount": "300.00", "requestNo": "e2e-i"}
    )
    assert investment["status"] == "PENDING" and investment["orderNo"]
    assert me.get(f"/api/v1/loans/{loan_id}")["raised"] == "300.00"  # reserved at once
    path = f"/api/v1/investments/{investment['investmentId']}"
    confirm(me.authorize_url(path))
    frozen = me.settled(path, "FROZEN")
    assert "authorizeUrl" not in frozen
    balances_agree(confirming_platform, processes, me, "200.00", "300.00")
    assert "Traceback" not in server.log_text()


def test_a_confirmation_after_the_listing_was_cancelled_is_refunded_by_the_bank(
    confirming_platform, identities, signup, processes
) -> None:
    server, _ = confirming_platform
    borrower = customer(server, signup, identities(), "BORROWER")
    me = customer(server, signup, identities(), funds="500.00")
    operator, loan_id = raising_listing(server, processes, borrower, "1000.00")
    investment = me.post(
        f"/api/v1/loans/{loan_id}/investments", {"amount": "200.00", "requestNo": "e2e-late"}
    )
    path = f"/api/v1/investments/{investment['investmentId']}"
    url = me.authorize_url(path)
    cancelled = operator.post(f"/api/v1/loans/{loan_id}/cancel", {"reason": "withdrawn"})
    assert cancelled["status"] == "CANCELLED"
    confirm(url)  # the member confirms on the bank's page afterwards: the bank freezes it
    me.settled(path, "RELEASED")
    balances_agree(confirming_platform, processes, me, "500.00", "0.00")
    assert "Traceback" not in server.log_text()
