"""The platform's own account at the simulated bank: FUND (the platform's recharge of its own
account, confirmed on the bank's page) and TRANSFER (from it to a member's sub-account). Each
is accepted or refused by the protocol's rules, moves the books once when it finishes, is
released when it fails, and is on its daily file; the BALANCE file carries the account as the
line without a member. Every fault of a single order applies to both."""

from __future__ import annotations

from decimal import Decimal

import pytest

from banksim.faults import FAULTS
from tests.integration.banksim.test_files import DAY, at, rows

D = Decimal


def funded_platform(sim, amount: str, order_no: str = "F1") -> None:
    """The platform's account funded with ``amount`` by a FUND order (confirmations assumed)."""
    assert sim.answer(sim.submit(order_no, "FUND", amount=amount))["result"] == "ACCEPTED"
    sim.settle()


def test_a_fund_waits_for_the_treasurer_then_credits_the_platforms_account(make_sim) -> None:
    sim = make_sim(auto_authorize=False)
    platform = sim.bank.platform_account_no
    answer = sim.answer(sim.submit("F1", "FUND", amount="500.00"))
    assert answer["result"] == "ACCEPTED"
    url = answer["authorizeUrl"]
    assert url.startswith("http://bank.test/authorize/F1?token=")
    sim.settle(60)
    assert sim.balance(platform) == (0, 0)  # nothing before the confirmation
    token = url.split("token=")[1]
    assert sim.bank.authorize("F1", token, confirm=True)["status"] == "PROCESSING"
    sim.settle()
    assert sim.balance(platform) == (D("500.00"), 0)
    assert sim.movements("F1") == [("FUND", "500.00", "0.00")]
    [event] = sim.platform.received
    assert (event["orderType"], event["status"], event["accountNo"], event["amount"]) == (
        "FUND",
        "SUCCEEDED",
        platform,
        "500.00",
    )
    query = sim.query("F1")
    assert (query["status"], query["accountNo"]) == ("SUCCEEDED", platform)


def test_a_fund_the_treasurer_cancels_fails_and_moves_nothing(make_sim) -> None:
    sim = make_sim(auto_authorize=False)
    url = sim.answer(sim.submit("F1", "FUND", amount="500.00"))["authorizeUrl"]
    sim.bank.authorize("F1", url.split("token=")[1], confirm=False)
    sim.settle()
    assert sim.balance(sim.bank.platform_account_no) == (0, 0)
    assert sim.platform.events("F1") == [("F1", "FAILED")]
    assert sim.platform.received[-1]["reason"] == "CANCELLED_BY_MEMBER"


def test_a_funds_fee_comes_out_of_what_it_brings(make_sim) -> None:
    """The platform's account may be empty: a FUND's fee is not frozen when it is accepted but
    taken on success, so only a FUND below its fee is FEE_UNPAYABLE."""
    sim = make_sim(fees={"FUND": D("1.00")})
    platform = sim.bank.platform_account_no
    refused = sim.answer(sim.submit("F0", "FUND", amount="0.99"))
    assert (refused["result"], refused["reason"]) == ("REFUSED", "FEE_UNPAYABLE")
    funded_platform(sim, "100.00")
    assert sim.balance(platform) == (D("99.00"), 0)
    assert sim.movements("F1") == [("FUND", "100.00", "0.00"), ("FEE", "-1.00", "0.00")]
    assert sim.platform.received[-1]["fee"] == "1.00"


def test_a_transfer_freezes_on_the_platforms_account_then_pays_the_member(sim) -> None:
    account_no = sim.open_account("7")
    platform = sim.bank.platform_account_no
    funded_platform(sim, "100.00")
    answer = sim.answer(sim.submit("T1", "TRANSFER", accountNo=account_no, amount="30.00"))
    assert answer["result"] == "ACCEPTED" and "authorizeUrl" not in answer  # not authorised
    assert sim.balance(platform) == (D("70.00"), D("30.00"))
    assert sim.balance(account_no) == (0, 0)
    sim.settle()
    assert sim.balance(platform) == (D("70.00"), 0)
    assert sim.balance(account_no) == (D("30.00"), 0)
    assert sim.movements("T1") == [
        ("FREEZE", "-30.00", "30.00"),
        ("TRANSFER", "0.00", "-30.00"),
        ("TRANSFER", "30.00", "0.00"),
    ]
    event = sim.platform.received[-1]
    assert (event["orderType"], event["status"], event["accountNo"]) == (
        "TRANSFER",
        "SUCCEEDED",
        account_no,
    )


def test_a_transfer_the_bank_fails_is_released(make_sim) -> None:
    sim = make_sim(fees={"TRANSFER": D("0.50")})
    account_no = sim.open_account("7")
    platform = sim.bank.platform_account_no
    funded_platform(sim, "100.00")
    sim.arm("TRANSFER", "fail")
    sim.submit("T1", "TRANSFER", accountNo=account_no, amount="30.00")
    assert sim.balance(platform) == (D("69.50"), D("30.50"))
    sim.settle()
    assert sim.balance(platform) == (D("100.00"), 0)
    assert sim.balance(account_no) == (0, 0)
    assert sim.platform.events("T1") == [("T1", "FAILED")]
    assert sim.platform.received[-1]["reason"] == "DECLINED_BY_BANK"


@pytest.mark.parametrize(
    ("payee", "amount", "fee", "reason"),
    [
        ("unknown", "1.00", "0.00", "ACCOUNT_NOT_FOUND"),
        ("platform", "1.00", "0.00", "ACCOUNT_NOT_FOUND"),
        ("member", "100.01", "0.00", "INSUFFICIENT_BALANCE"),
        ("member", "99.50", "0.51", "FEE_UNPAYABLE"),
    ],
)
def test_a_transfer_is_refused_to_no_member_above_the_platforms_balance_or_its_fee(
    make_sim, payee: str, amount: str, fee: str, reason: str
) -> None:
    sim = make_sim(fees={"TRANSFER": D(fee)})
    account_no = sim.open_account("7")
    platform = sim.bank.platform_account_no
    funded_platform(sim, "100.00")
    to = {"unknown": "SA9", "platform": platform, "member": account_no}[payee]
    answer = sim.answer(sim.submit("T1", "TRANSFER", accountNo=to, amount=amount))
    assert (answer["result"], answer["reason"]) == ("REFUSED", reason)
    assert sim.balance(platform) == (D("100.00"), 0)
    assert (sim.query("T1")["status"], sim.query("T1")["reason"]) == ("FAILED", reason)
    sim.settle()
    assert sim.platform.events("T1") == []


def test_the_daily_files_list_the_platforms_orders_and_its_balance_line(sim) -> None:
    account_no = sim.open_account("7")
    platform = sim.bank.platform_account_no
    funded_platform(sim, "100.00")
    sim.submit("T1", "TRANSFER", accountNo=account_no, amount="30.00")
    sim.submit("T2", "TRANSFER", accountNo=account_no, amount="500.00")
    sim.settle()
    at(sim, "2026-12-02T16:00:00+00:00")  # midnight in Shanghai: the 2nd is over
    [fund] = rows(sim, DAY, "FUND")
    assert (fund["orderNo"], fund["accountNo"], fund["amount"], fund["status"]) == (
        "F1",
        platform,
        "100.00",
        "SUCCEEDED",
    )
    transfers = rows(sim, DAY, "TRANSFER")
    assert sorted((r["orderNo"], r["accountNo"], r["status"]) for r in transfers) == [
        ("T1", account_no, "SUCCEEDED"),
        ("T2", account_no, "FAILED"),
    ]
    balances = {r["accountNo"]: r for r in rows(sim, DAY, "BALANCE")}
    assert balances[platform] == {
        "accountNo": platform,
        "memberId": "",
        "available": "70.00",
        "frozen": "0.00",
    }
    assert (balances[account_no]["memberId"], balances[account_no]["available"]) == ("7", "30.00")


def test_the_platforms_account_starts_empty(sim) -> None:
    assert sim.balance(sim.bank.platform_account_no) == (0, 0)


#: Faults that apply to a single order of any type (reverse_after_success is WITHDRAW's own).
SINGLE_ORDER_FAULTS = sorted(set(FAULTS) - {"reverse_after_success"})
#: Faults whose order the bank never records, and the status each other fault ends an order in
#: (SUCCEEDED unless named).
NOTHING_RECORDED = frozenset({"timeout_without_moving", "http_5xx"})
ENDS = {"refuse": "FAILED", "fail": "FAILED", **dict.fromkeys(NOTHING_RECORDED, "NOT_FOUND")}


@pytest.mark.parametrize("order_type", ["FUND", "TRANSFER"])
@pytest.mark.parametrize("fault", SINGLE_ORDER_FAULTS)
def test_every_fault_of_a_single_order_applies_to_the_platforms_orders(
    sim, order_type: str, fault: str
) -> None:
    """Whatever the fault did to the answer or the notifications, the books end as the
    order's final status says, and the query tells that status."""
    account_no = sim.open_account("7")
    platform = sim.bank.platform_account_no
    funded_platform(sim, "100.00", "F0")
    sim.arm(order_type, fault, seconds=1.0)
    fields = {"amount": "40.00"}
    if order_type == "TRANSFER":
        fields["accountNo"] = account_no
    sim.submit("X1", order_type, **fields)
    recorded = [order["fault"] for order in sim.bank.orders("X1")]
    assert recorded == ([] if fault in NOTHING_RECORDED else [fault])
    for _ in range(5):
        sim.settle(5)
    status = sim.query("X1")["status"]
    assert status == ENDS.get(fault, "SUCCEEDED")
    moved = D("40.00") if status == "SUCCEEDED" else 0
    if order_type == "FUND":
        assert sim.balance(platform) == (D("100.00") + moved, 0)
    else:
        assert sim.balance(platform) == (D("100.00") - moved, 0)
        assert sim.balance(account_no) == (moved, 0)
