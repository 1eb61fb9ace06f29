"""Disbursement and repayment through the depository bank as they run: ``p2p serve``
(payment.gateway BANK, its embedded job worker and scheduler) and ``p2p bank-sim`` as a
separate process. Investors invest (FREEZE orders), the listing is disbursed (a DISBURSE
batch: DISBURSING, then REPAYING) and its first installment repaid (a REPAY batch: PAYING,
then PAID), one item of each batch failed by an injected fault and re-issued under a new
number; every member's balances at the platform equal the bank's, and ``p2p check-ledger``
is clean."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.banksupport import (
    start_bank_sim,
)
from tests.e2e.conftest import OPERATOR_MOBILE, OPERATOR_PASSWORD, register_and_login
from tests.e2e.test_bank import bank_settings, eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bank_platform(tmp_path_factory, processes):
    """``p2p bank-sim`` and a ``p2p serve`` (with an operator) whose depository it is; the
    settings, for the command line."""
    workdir = tmp_path_factory.mktemp("e2e-bank-lending")
    sim = start_bank_sim(workdir / "bank", "--delay", "1", "--auto-authorize")
    port = processes.free_port()
    settings = bank_settings(workdir, sim, port, "bank.item_retry_seconds=1")
    try:
        started = processes.start_server("embedded", workdir, settings, True, port)
    except BaseException:
        sim.stop()
        raise
    yield started.server, sim, settings, processes
    started.stop()
    sim.stop()


class Client:
    """One member's REST calls."""

    def __init__(self, server, token: str):
        self.server, self.auth = server, {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict | None = None) -> dict:
        r = requests.post(self.server.url(path), json=body or {}, headers=self.auth, timeout=30)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def get(self, path: str) -> dict:
        r = requests.get(self.server.url(path), headers=self.auth, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


def funded(server, role: str, identities, amount: str) -> tuple[Client, str]:
    """A member onboarded at the bank and recharged with ``amount``; their account number."""
    member = register_and_login(server, role, identities())
    client = Client(server, member.token)
    account = eventually(
        lambda: (a := client.get("/api/v1/members/current/fund-account"))["status"] == "OPEN" and a,
        "the bank did not open the account",
    )
    order = client.post("/api/v1/payments/recharges", {"amount": amount, "requestNo": "fund"})
    eventually(
        lambda: client.get(f"/api/v1/payments/{order['orderNo']}")["status"] == "SUCCESS",
        "the recharge did not complete",
    )
    return client, account["accountNo"]


def test_a_listing_disbursed_and_repaid_through_the_bank_survives_failed_items(
    bank_platform, identities
) -> None:
    server, sim, settings, processes = bank_platform
    login = {"mobile": OPERATOR_MOBILE, "password": OPERATOR_PASSWORD}
    token = requests.post(server.url("/api/v1/sessions"), json=login, timeout=30).json()["token"]
    operator = Client(server, token)
    borrower, borrower_account = funded(server, "BORROWER", identities, "100.00")
    investors = [funded(server, "INVESTOR", identities, "600.00") for _ in range(2)]
    borrower_id = borrower.get("/api/v1/members/current")["memberId"]

    terms = {
        "title": "Bank repayment",
        "description": "Lent and repaid through the depository bank.",
        "borrowerId": borrower_id,
        "amount": "1000.00",
        "annualRate": "12",
        "termMonths": 3,
        "repaymentMethod": "EQUAL_INSTALLMENT",
        "minInvest": "100.00",
        "raiseDays": 10,
    }
    loan_id = operator.post("/api/v1/loans", terms)["loanId"]
    operator.post(f"/api/v1/loans/{loan_id}/audit", {"approve": True})
    for (investor, _), amount in zip(investors, ("600.00", "400.00"), strict=True):
        vo = investor.post(
            f"/api/v1/loans/{loan_id}/investments", {"amount": amount, "requestNo": "inv"}
        )
        assert vo["status"] == "PENDING"
    eventually(
        lambda: operator.get(f"/api/v1/loans/{loan_id}")["status"] == "FULL",
        "the bank did not freeze the investments",
    )

    for order_type in ("DISBURSE", "REPAY"):
        fault = {"orderType": order_type, "fault": "fail", "count": 1}
        assert requests.post(sim.url + "/admin/faults", json=fault, timeout=10).ok
    lent = operator.post(f"/api/v1/loans/{loan_id}/disbursement", {"requestNo": "disburse"})
    assert lent["status"] == "DISBURSING"
    eventually(
        lambda: operator.get(f"/api/v1/loans/{loan_id}")["status"] == "REPAYING",
        "the bank did not lend every investment",
    )
    repaid = borrower.post(f"/api/v1/loans/{loan_id}/repayments", {"requestNo": "repay-1"})
    assert repaid["status"] == "PENDING"
    eventually(
        lambda: borrower.get(f"/api/v1/loans/{loan_id}/schedule")["items"][0]["status"] == "PAID",
        "the installment was not paid",
    )

    orders = requests.get(sim.url + "/admin/orders", timeout=10).json()["orders"]
    for order_type in ("DISBURSE", "REPAY"):
        items = sorted(o["status"] for o in orders if o["orderType"] == order_type)
        assert items == ["FAILED", "SUCCEEDED", "SUCCEEDED"], order_type
    at_bank = {
        a["accountNo"]: (a["available"], a["frozen"])
        for a in requests.get(sim.url + "/admin/accounts", timeout=10).json()["accounts"]
    }
    for client, account_no in (
        (borrower, borrower_account),
        *((investor, account_no) for investor, account_no in investors),
    ):
        mine = client.get("/api/v1/accounts/me")
        assert (mine["available"], mine["frozen"]) == at_bank[account_no]
    ledger = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "check-ledger",
            *(x for s in settings for x in ("--set", s)),
        ],
        cwd=processes.root,
        env=processes.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    assert "Traceback" not in server.log_text()
