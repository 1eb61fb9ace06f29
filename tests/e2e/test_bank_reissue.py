"""Operators re-issue what the bank failed, end to end: ``p2p bank-sim`` as a separate process
with faults armed, ``p2p serve`` (payment.gateway BANK, its embedded job worker, a batch
item's attempts used up by its first failure: bank.item_attempts 1), and ReconciliationFacade
over REST and SOAP (zeep). A DISBURSE item and a REPAY item the bank failed are re-issued
over REST, a release (UNFREEZE) over SOAP; each time the business moves on as if the first
order had succeeded, and at the end nothing waits, every member's balances equal the bank's
and ``p2p check-ledger`` is clean. Every refusal and the request numbers are proved in
tests/integration/service/test_bank_reissue.py, time moved by the clock."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import zeep

from tests.banksupport import start_bank_sim
from tests.e2e.conftest import OPERATOR_MOBILE, OPERATOR_PASSWORD, zeep_fault_code
from tests.e2e.test_bank import bank_settings, eventually
from tests.e2e.test_bank_lending import Client, funded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bank_platform(tmp_path_factory, processes):
    """``p2p bank-sim`` and a ``p2p serve`` (with an operator) whose depository it is, a batch
    item's attempts used up by its first failure; the settings, for the command line."""
    workdir = tmp_path_factory.mktemp("e2e-bank-reissue")
    sim = start_bank_sim(workdir / "bank", "--delay", "1", "--auto-authorize")
    port = processes.free_port()
    settings = bank_settings(workdir, sim, port, "bank.item_attempts=1")
    try:
        started = processes.start_server("embedded", workdir, settings, True, port)
    except BaseException:
        sim.stop()
        raise
    yield started.server, sim, settings, processes
    started.stop()
    sim.stop()


def arm(sim, order_type: str) -> None:
    fault = {"orderType": order_type, "fault": "fail", "count": 1}
    assert requests.post(sim.url + "/admin/faults", json=fault, timeout=10).ok


def waiting_one(operator: Client, order_type: str) -> dict:
    """The one order waiting for a person, once the bank has failed it."""
    page = eventually(
        lambda: (p := operator.get("/api/v1/reconciliation/orders-waiting"))["total"] and p,
        f"no {order_type} order waits for a person",
    )
    [order] = page["items"]
    assert (order["orderType"], order["reason"], order["attempts"]) == (
        order_type,
        "DECLINED_BY_BANK",
        1,
    )
    return order


def test_operators_reissue_a_disburse_a_repay_and_an_unfreeze_the_bank_failed(
    bank_platform, identities
) -> None:
    server, sim, settings, processes = bank_platform
    login = {"mobile": OPERATOR_MOBILE, "password": OPERATOR_PASSWORD}
    token = requests.post(server.url("/api/v1/sessions"), json=login, timeout=30).json()["token"]
    operator = Client(server, token)
    borrower, borrower_account = funded(server, "BORROWER", identities, "100.00")
    investors = [funded(server, "INVESTOR", identities, "700.00") for _ in range(2)]
    terms = {
        "title": "Bank re-issue",
        "description": "Lent, repaid and released through a bank that fails once each.",
        "borrowerId": borrower.get("/api/v1/members/current")["memberId"],
        "amount": "1000.00",
        "annualRate": "12",
        "termMonths": 3,
        "repaymentMethod": "EQUAL_INSTALLMENT",
        "minInvest": "100.00",
        "raiseDays": 10,
    }

    def raised(amounts: tuple[str, ...], loan_terms: dict) -> tuple[int, list[dict]]:
        loan_id = operator.post("/api/v1/loans", loan_terms)["loanId"]
        operator.post(f"/api/v1/loans/{loan_id}/audit", {"approve": True})
        made = [
            investor.post(
                f"/api/v1/loans/{loan_id}/investments",
                {"amount": amount, "requestNo": f"inv-{loan_id}"},
            )
            for (investor, _), amount in zip(investors, amounts, strict=False)
        ]
        eventually(
            lambda: all(
                investor.get(f"/api/v1/investments/{m['investmentId']}")["status"] == "FROZEN"
                for (investor, _), m in zip(investors, made, strict=False)
            ),
            "the bank did not freeze the investments",
        )
        return loan_id, made

    # A DISBURSE item the bank fails: the listing waits, DISBURSING, until the re-issue lends.
    loan_id, _ = raised(("600.00", "400.00"), terms)
    arm(sim, "DISBURSE")
    operator.post(f"/api/v1/loans/{loan_id}/disbursement", {"requestNo": "disburse"})
    failed = waiting_one(operator, "DISBURSE")
    assert operator.get(f"/api/v1/loans/{loan_id}")["status"] == "DISBURSING"
    done = operator.post(
        f"/api/v1/reconciliation/orders/{failed['orderNo']}/reissue",
        {"reason": "the bank asked for it again", "requestNo": "reissue-disburse"},
    )
    assert (done["orderNo"], done["amount"]) == (failed["orderNo"], failed["amount"])
    assert done["newOrderNo"] != failed["orderNo"]
    eventually(
        lambda: operator.get(f"/api/v1/loans/{loan_id}")["status"] == "REPAYING",
        "the re-issued item did not lend the investment",
    )

    # A REPAY item the bank fails: the installment stays PAYING until the re-issue pays it.
    arm(sim, "REPAY")
    borrower.post(f"/api/v1/loans/{loan_id}/repayments", {"requestNo": "repay-1"})
    failed = waiting_one(operator, "REPAY")
    schedule = f"/api/v1/loans/{loan_id}/schedule"
    assert borrower.get(schedule)["items"][0]["status"] == "PAYING"
    operator.post(
        f"/api/v1/reconciliation/orders/{failed['orderNo']}/reissue",
        {"reason": "the borrower's money is frozen for it", "requestNo": "reissue-repay"},
    )
    eventually(
        lambda: borrower.get(schedule)["items"][0]["status"] == "PAID",
        "the re-issued item did not pay the installment",
    )

    # A release the bank fails: the investment stays RELEASING until the re-issue releases it.
    other, made = raised(("100.00",), {**terms, "title": "Bank re-issue, cancelled"})
    arm(sim, "UNFREEZE")
    operator.post(f"/api/v1/loans/{other}/cancel", {"reason": "the borrower withdrew it"})
    failed = waiting_one(operator, "UNFREEZE")
    investor, investment = investors[0][0], f"/api/v1/investments/{made[0]['investmentId']}"
    stuck = investor.get(investment)
    assert stuck["status"] == "RELEASING" and failed["orderNo"] in stuck["failureReason"]
    soap = zeep.Client(server.url("/services/ReconciliationFacade?wsdl"))
    headers = {"_soapheaders": {"auth": {"token": token}}}
    page = soap.service.listOrdersWaiting(**headers)
    assert [(o.orderNo, o.orderType) for o in page["items"]] == [(failed["orderNo"], "UNFREEZE")]
    call = {"orderNo": failed["orderNo"], "reason": "released again", "requestNo": "reissue-u"}
    done = soap.service.reissueBankOrder(**call, **headers)
    assert soap.service.reissueBankOrder(**call, **headers).newOrderNo == done.newOrderNo
    with pytest.raises(zeep.exceptions.Fault) as fault:
        soap.service.reissueBankOrder(**{**call, "requestNo": "reissue-u2"}, **headers)
    assert zeep_fault_code(fault.value) == "ORDER_NOT_REISSUABLE"
    eventually(
        lambda: investor.get(investment)["status"] == "RELEASED",
        "the re-issued release did not release the investment",
    )

    assert operator.get("/api/v1/reconciliation/orders-waiting")["total"] == 0
    at_bank = {
        a["accountNo"]: (a["available"], a["frozen"])
        for a in requests.get(sim.url + "/admin/accounts", timeout=10).json()["accounts"]
    }
    for client, account_no in ((borrower, borrower_account), *investors):
        mine = client.get("/api/v1/accounts/me")
        assert (mine["available"], mine["frozen"]) == at_bank[account_no]
    ledger = subprocess.run(
        [sys.executable, "-m", "server.cli", "check-ledger"]
        + [x for s in settings for x in ("--set", s)],
        cwd=processes.root,
        env=processes.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    assert "Traceback" not in server.log_text()
