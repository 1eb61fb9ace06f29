"""Every fault the simulator injects does what it says, to the orders of its type only, as
many times as armed; the books still move exactly once per order."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from banksim.faults import FAULTS, Faults, make_fault, parse_option
from tests.integration.banksim.conftest import CARD


def recharge(sim, account_no: str, order_no: str = "R1", amount: str = "5.00"):
    return sim.submit(order_no, "RECHARGE", accountNo=account_no, amount=amount)


def withdraw(sim, account_no: str, order_no: str = "W1", amount: str = "30.00"):
    return sim.submit(order_no, "WITHDRAW", accountNo=account_no, amount=amount, cardNumber=CARD)


def test_refuse_answers_refused_and_moves_nothing(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("WITHDRAW", "refuse")
    answer = sim.answer(withdraw(sim, account_no))
    assert (answer["result"], answer["reason"]) == ("REFUSED", "REFUSED_BY_BANK")
    assert sim.balance(account_no) == (Decimal("100.00"), 0)
    assert sim.query("W1")["status"] == "FAILED"
    assert sim.answer(withdraw(sim, account_no, "W2"))["result"] == "ACCEPTED"  # count 1


def test_fail_accepts_then_fails_and_releases(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("WITHDRAW", "fail")
    assert sim.answer(withdraw(sim, account_no))["result"] == "ACCEPTED"
    assert sim.balance(account_no) == (Decimal("70.00"), Decimal("30.00"))
    sim.settle()
    assert sim.balance(account_no) == (Decimal("100.00"), 0)
    event = sim.platform.received[-1]
    assert (event["status"], event["reason"]) == ("FAILED", "DECLINED_BY_BANK")


def test_delay_holds_the_notification_back(sim) -> None:
    account_no = sim.open_account("7")
    sim.arm("RECHARGE", "delay", seconds=60)
    recharge(sim, account_no)
    sim.settle()
    assert sim.query("R1")["status"] == "SUCCEEDED" and sim.platform.events("R1") == []
    sim.settle(59)
    assert sim.platform.events("R1") == []
    sim.settle(1)
    assert sim.platform.events("R1") == [("R1", "SUCCEEDED")]


def test_never_notify_leaves_only_the_query(sim) -> None:
    account_no = sim.open_account("7")
    sim.arm("RECHARGE", "never_notify")
    recharge(sim, account_no)
    sim.settle()
    sim.settle(86_400)
    assert sim.platform.events("R1") == []
    assert sim.query("R1")["status"] == "SUCCEEDED"
    assert sim.balance(account_no) == (Decimal("5.00"), 0)


def test_notify_twice_delivers_the_same_event_again(sim) -> None:
    account_no = sim.open_account("7")
    sim.arm("RECHARGE", "notify_twice")
    recharge(sim, account_no)
    sim.settle()
    sim.settle(1)
    first, second = sim.platform.received[-2:]
    assert first["notifyId"] == second["notifyId"] and first["status"] == second["status"]
    sim.settle(3600)
    assert len(sim.platform.events("R1")) == 2
    assert sim.balance(account_no) == (Decimal("5.00"), 0)


def test_notify_out_of_order_delivers_a_withdrawal_s_return_before_its_success(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("WITHDRAW", "notify_out_of_order", seconds=10)
    withdraw(sim, account_no)
    sim.settle()
    assert sim.platform.events("W1") == [("W1", "REVERSED")]
    sim.settle(10)
    assert sim.platform.events("W1") == [("W1", "REVERSED"), ("W1", "SUCCEEDED")]
    reversed_, succeeded = sim.platform.received[-2:]
    assert reversed_["notifyId"] != succeeded["notifyId"]
    assert sim.query("W1")["status"] == "REVERSED"
    assert sim.balance(account_no) == (Decimal("100.00"), 0)  # paid out, then returned


def test_notify_out_of_order_follows_a_success_with_a_stale_failure(sim) -> None:
    account_no = sim.open_account("7")
    sim.arm("RECHARGE", "notify_out_of_order")
    recharge(sim, account_no)
    sim.settle()
    assert sim.platform.events("R1") == [("R1", "SUCCEEDED")]
    sim.settle(2)
    succeeded, stale = sim.platform.received[-2:]
    assert (stale["status"], stale["reason"]) == ("FAILED", "SYSTEM_ERROR")
    assert stale["finishedAt"] < succeeded["finishedAt"] and stale["amount"] == "5.00"
    assert sim.query("R1")["status"] == "SUCCEEDED"
    assert sim.balance(account_no) == (Decimal("5.00"), 0)


def test_bad_signature_spoils_the_first_delivery_only(sim) -> None:
    account_no = sim.open_account("7")
    sim.arm("RECHARGE", "bad_signature")
    recharge(sim, account_no)
    sim.settle()
    assert sim.platform.refused == ["bad_signature"] and sim.platform.events("R1") == []
    sim.settle(5)
    assert sim.platform.events("R1") == [("R1", "SUCCEEDED")]


def test_timeout_after_moving_moves_the_money_then_holds_the_answer(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("WITHDRAW", "timeout_after_moving")
    reply = withdraw(sim, account_no)
    assert reply.hang_seconds == sim.config.hang_seconds
    assert sim.query("W1")["status"] == "SUCCEEDED"
    assert sim.balance(account_no) == (Decimal("70.00"), 0)
    again = withdraw(sim, account_no)  # the platform's retry, same order number
    assert again.hang_seconds == 0
    assert sim.answer(again)["duplicate"] is True
    sim.settle()
    assert sim.platform.events("W1") == [("W1", "SUCCEEDED")]
    assert sim.balance(account_no) == (Decimal("70.00"), 0)


def test_timeout_without_moving_records_nothing(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("WITHDRAW", "timeout_without_moving")
    reply = withdraw(sim, account_no)
    assert (reply.status, reply.hang_seconds) == (503, sim.config.hang_seconds)
    assert sim.query("W1")["status"] == "NOT_FOUND"
    assert sim.balance(account_no) == (Decimal("100.00"), 0)
    assert sim.answer(withdraw(sim, account_no))["result"] == "ACCEPTED"  # the retry is new


def test_reverse_after_success_returns_the_withdrawal_later(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("WITHDRAW", "reverse_after_success", seconds=3600)
    withdraw(sim, account_no)
    sim.settle()
    assert sim.balance(account_no) == (Decimal("70.00"), 0)
    sim.settle(3599)
    assert sim.platform.events("W1") == [("W1", "SUCCEEDED")]
    sim.settle(1)
    assert sim.platform.events("W1") == [("W1", "SUCCEEDED"), ("W1", "REVERSED")]
    returned = sim.platform.received[-1]
    assert (returned["amount"], returned["accountNo"]) == ("30.00", account_no)
    assert sim.balance(account_no) == (Decimal("100.00"), 0)
    query = sim.query("W1")
    assert (query["status"], query["finishedAt"]) == ("REVERSED", returned["finishedAt"])


def test_http_5xx_answers_unsigned_and_records_nothing(sim) -> None:
    account_no = sim.open_account("7")
    sim.arm("RECHARGE", "http_5xx", count=2)
    assert recharge(sim, account_no).status == 503
    reply = recharge(sim, account_no)
    assert reply.status == 503 and "X-Bank-Signature" not in reply.headers
    assert sim.query("R1")["status"] == "NOT_FOUND"
    assert sim.answer(recharge(sim, account_no))["result"] == "ACCEPTED"


def test_a_fault_hits_its_order_type_only_and_star_hits_any(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("WITHDRAW", "refuse")
    assert sim.answer(recharge(sim, account_no))["result"] == "ACCEPTED"
    assert sim.answer(withdraw(sim, account_no))["result"] == "REFUSED"
    sim.arm("*", "refuse", count=None)
    assert sim.answer(recharge(sim, account_no, "R2"))["result"] == "REFUSED"
    assert sim.answer(withdraw(sim, account_no, "W2"))["result"] == "REFUSED"


def test_faults_are_checked_when_armed() -> None:
    with pytest.raises(ValueError, match="WITHDRAW only"):
        make_fault("RECHARGE", "reverse_after_success", 1, None)
    with pytest.raises(ValueError, match="fault must be one of"):
        make_fault("RECHARGE", "explode", 1, None)
    with pytest.raises(ValueError, match="orderType"):
        make_fault("LOAN", "refuse", 1, None)
    with pytest.raises(ValueError, match="count"):
        make_fault("RECHARGE", "refuse", 0, None)
    assert parse_option("WITHDRAW:delay:2:60") == make_fault("WITHDRAW", "delay", 2, 60.0)
    assert parse_option("*:http_5xx").count is None
    with pytest.raises(ValueError, match="TYPE:FAULT"):
        parse_option("refuse")


def test_a_star_reversal_skips_orders_it_cannot_apply_to() -> None:
    faults = Faults((make_fault("*", "reverse_after_success", 1, None),))
    assert faults.take("RECHARGE") is None
    assert faults.take("WITHDRAW").name == "reverse_after_success"
    assert faults.take("WITHDRAW") is None


def test_every_fault_is_tested_here() -> None:
    source = Path(__file__).read_text()
    assert {name for name in FAULTS if f"def test_{name}_" in source} == set(FAULTS)
