"""FREEZE and UNFREEZE at the simulated bank: a FREEZE waits for the member, is refused above
the available balance and fails when the available no longer covers it once confirmed; each
SUCCEEDED FREEZE keeps what remains frozen under it, which UNFREEZE orders naming it draw from
when accepted (refused FREEZE_NOT_FOUND or INSUFFICIENT_FROZEN) and give back when they fail;
both appear in the daily files, and faults apply per type."""

from __future__ import annotations

from decimal import Decimal

import pytest

from banksim.books import frozen_under
from tests.integration.banksim.conftest import CARD
from tests.integration.banksim.test_bank import _funded_with_confirmation
from tests.integration.banksim.test_files import rows

D = Decimal


@pytest.fixture
def confirming(make_sim):
    """A bank whose members confirm on its page, and an account with 100.00 available."""
    sim = make_sim(auto_authorize=False)
    return sim, _funded_with_confirmation(sim, "7", "100.00")


def token(answer: dict) -> str:
    return answer["authorizeUrl"].partition("token=")[2]


def remaining(sim, freeze_order_no: str, account_no: str) -> Decimal | None:
    with sim.bank.books.transaction() as db:
        return frozen_under(db, freeze_order_no, account_no)


def frozen(sim, account_no: str, freeze_order_no: str, amount: str) -> None:
    """A SUCCEEDED FREEZE of ``amount`` (auto-authorised bank)."""
    answer = sim.answer(sim.submit(freeze_order_no, "FREEZE", accountNo=account_no, amount=amount))
    assert answer["result"] == "ACCEPTED"
    sim.settle()
    assert sim.query(freeze_order_no)["status"] == "SUCCEEDED"


def test_a_freeze_waits_for_the_member_then_moves_available_to_frozen(confirming) -> None:
    sim, account_no = confirming
    answer = sim.answer(sim.submit("F1", "FREEZE", accountNo=account_no, amount="80.00"))
    assert answer["result"] == "ACCEPTED" and "/authorize/F1?token=" in answer["authorizeUrl"]
    sim.settle(60)
    assert sim.balance(account_no) == (D("100.00"), 0)  # nothing moves before the member says
    assert sim.query("F1")["status"] == "PROCESSING"
    assert remaining(sim, "F1", account_no) is None

    assert sim.bank.authorize("F1", token(answer), confirm=True)["status"] == "PROCESSING"
    sim.settle()
    assert sim.balance(account_no) == (D("20.00"), D("80.00"))
    assert sim.movements("F1") == [("FREEZE", "-80.00", "80.00")]
    assert remaining(sim, "F1", account_no) == D("80.00")
    event = sim.platform.received[-1]
    assert (event["orderNo"], event["orderType"], event["status"], event["amount"]) == (
        "F1",
        "FREEZE",
        "SUCCEEDED",
        "80.00",
    )
    assert event["accountNo"] == account_no
    assert sim.bank.orders("F1")[0]["frozenRemaining"] == "80.00"


def test_a_freeze_above_the_available_balance_is_refused(confirming) -> None:
    sim, account_no = confirming
    answer = sim.answer(sim.submit("F1", "FREEZE", accountNo=account_no, amount="100.01"))
    assert (answer["result"], answer["reason"]) == ("REFUSED", "INSUFFICIENT_BALANCE")
    assert "authorizeUrl" not in answer
    assert (sim.query("F1")["status"], sim.query("F1")["reason"]) == (
        "FAILED",
        "INSUFFICIENT_BALANCE",
    )
    assert sim.balance(account_no) == (D("100.00"), 0)


def test_a_freeze_the_available_no_longer_covers_when_confirmed_fails(confirming) -> None:
    sim, account_no = confirming
    answer = sim.answer(sim.submit("F1", "FREEZE", accountNo=account_no, amount="80.00"))
    withdrawal = sim.answer(
        sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="50.00", cardNumber=CARD)
    )
    sim.bank.authorize("W1", token(withdrawal), confirm=True)
    sim.bank.authorize("F1", token(answer), confirm=True)
    sim.settle()
    query = sim.query("F1")
    assert (query["status"], query["reason"]) == ("FAILED", "INSUFFICIENT_BALANCE")
    assert sim.balance(account_no) == (D("50.00"), 0)
    assert sim.movements("F1") == []
    assert remaining(sim, "F1", account_no) is None
    assert ("F1", "FAILED") in sim.platform.events()


def test_a_freeze_the_member_cancels_fails_and_moves_nothing(confirming) -> None:
    sim, account_no = confirming
    answer = sim.answer(sim.submit("F1", "FREEZE", accountNo=account_no, amount="80.00"))
    assert sim.bank.authorize("F1", token(answer), confirm=False)["status"] == "FAILED"
    sim.settle()
    assert sim.platform.received[-1]["reason"] == "CANCELLED_BY_MEMBER"
    assert sim.balance(account_no) == (D("100.00"), 0)
    assert sim.movements("F1") == []


def test_an_unfreeze_is_not_member_authorised_and_releases_part_of_a_freeze(confirming) -> None:
    sim, account_no = confirming
    answer = sim.answer(sim.submit("F1", "FREEZE", accountNo=account_no, amount="80.00"))
    sim.bank.authorize("F1", token(answer), confirm=True)
    sim.settle()
    released = sim.answer(
        sim.submit("U1", "UNFREEZE", accountNo=account_no, amount="30.00", freezeOrderNo="F1")
    )
    assert released["result"] == "ACCEPTED" and "authorizeUrl" not in released
    assert remaining(sim, "F1", account_no) == D("50.00")  # drawn when accepted
    assert sim.balance(account_no) == (D("20.00"), D("80.00"))
    sim.settle()
    assert sim.query("U1")["status"] == "SUCCEEDED"
    assert sim.balance(account_no) == (D("50.00"), D("50.00"))
    assert sim.movements("U1") == [("UNFREEZE", "30.00", "-30.00")]
    assert sim.platform.received[-1]["accountNo"] == account_no


def test_unfreezes_never_release_more_than_remains_under_their_freeze(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    frozen(sim, account_no, "F1", "80.00")
    first = sim.submit("U1", "UNFREEZE", accountNo=account_no, amount="50.00", freezeOrderNo="F1")
    assert sim.answer(first)["result"] == "ACCEPTED"
    # U1 is not finished yet, but what it drew is no longer under F1.
    second = sim.submit("U2", "UNFREEZE", accountNo=account_no, amount="30.01", freezeOrderNo="F1")
    assert (sim.answer(second)["result"], sim.answer(second)["reason"]) == (
        "REFUSED",
        "INSUFFICIENT_FROZEN",
    )
    last = sim.submit("U3", "UNFREEZE", accountNo=account_no, amount="30.00", freezeOrderNo="F1")
    assert sim.answer(last)["result"] == "ACCEPTED"
    again = sim.submit("U3", "UNFREEZE", accountNo=account_no, amount="30.00", freezeOrderNo="F1")
    assert sim.answer(again)["duplicate"] is True  # a resubmission draws nothing more
    sim.settle()
    assert remaining(sim, "F1", account_no) == 0
    assert sim.balance(account_no) == (D("100.00"), 0)
    more = sim.submit("U4", "UNFREEZE", accountNo=account_no, amount="0.01", freezeOrderNo="F1")
    assert sim.answer(more)["reason"] == "INSUFFICIENT_FROZEN"


def test_an_unfreeze_must_name_a_succeeded_freeze_of_its_account(make_sim) -> None:
    sim = make_sim(auto_authorize=False)
    account_no = _funded_with_confirmation(sim, "7", "100.00")
    other_no = _funded_with_confirmation(sim, "8", "100.00")
    waiting = sim.answer(sim.submit("F1", "FREEZE", accountNo=account_no, amount="10.00"))
    cancelled = sim.answer(sim.submit("F2", "FREEZE", accountNo=account_no, amount="10.00"))
    sim.bank.authorize("F2", token(cancelled), confirm=False)
    theirs = sim.answer(sim.submit("F3", "FREEZE", accountNo=other_no, amount="10.00"))
    sim.bank.authorize("F3", token(theirs), confirm=True)
    sim.settle()
    assert waiting["result"] == "ACCEPTED" and sim.query("F3")["status"] == "SUCCEEDED"
    for i, freeze_order_no in enumerate(["F1", "F2", "F3", "R404", "FUND7"]):
        answer = sim.answer(
            sim.submit(
                f"U{i}",
                "UNFREEZE",
                accountNo=account_no,
                amount="1.00",
                freezeOrderNo=freeze_order_no,
            )
        )
        assert (answer["result"], answer["reason"]) == ("REFUSED", "FREEZE_NOT_FOUND"), i
    assert sim.balance(account_no) == (D("100.00"), 0)
    assert sim.balance(other_no) == (D("90.00"), D("10.00"))


def test_a_failed_unfreeze_gives_back_what_it_drew(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    frozen(sim, account_no, "F1", "80.00")
    sim.arm("UNFREEZE", "fail")
    sim.submit("U1", "UNFREEZE", accountNo=account_no, amount="80.00", freezeOrderNo="F1")
    assert remaining(sim, "F1", account_no) == 0
    sim.settle()
    query = sim.query("U1")
    assert (query["status"], query["reason"]) == ("FAILED", "DECLINED_BY_BANK")
    assert remaining(sim, "F1", account_no) == D("80.00")
    assert sim.balance(account_no) == (D("20.00"), D("80.00"))
    assert sim.movements("U1") == []
    sim.submit("U2", "UNFREEZE", accountNo=account_no, amount="80.00", freezeOrderNo="F1")
    sim.settle()
    assert sim.balance(account_no) == (D("100.00"), 0)


def test_faults_apply_per_type(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    sim.arm("FREEZE", "refuse")
    refused = sim.answer(sim.submit("F1", "FREEZE", accountNo=account_no, amount="10.00"))
    assert (refused["result"], refused["reason"]) == ("REFUSED", "REFUSED_BY_BANK")
    sim.arm("UNFREEZE", "refuse")
    frozen(sim, account_no, "F2", "10.00")  # the FREEZE fault was used once
    unfreeze = {"accountNo": account_no, "amount": "10.00", "freezeOrderNo": "F2"}
    assert sim.answer(sim.submit("U1", "UNFREEZE", **unfreeze))["reason"] == "REFUSED_BY_BANK"
    assert remaining(sim, "F2", account_no) == D("10.00")
    sim.arm("FREEZE", "never_notify")
    sim.submit("F3", "FREEZE", accountNo=account_no, amount="5.00")
    sim.settle()
    assert sim.query("F3")["status"] == "SUCCEEDED"
    assert [e for e in sim.platform.events() if e[0] == "F3"] == []


def test_what_remains_under_a_freeze_survives_a_restart(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    frozen(sim, account_no, "F1", "80.00")
    sim.submit("U1", "UNFREEZE", accountNo=account_no, amount="30.00", freezeOrderNo="F1")
    sim.bank.books.close()
    sim.bank = sim.open()
    assert remaining(sim, "F1", account_no) == D("50.00")
    sim.settle()
    assert sim.balance(account_no) == (D("50.00"), D("50.00"))


def test_freezes_and_unfreezes_are_in_the_daily_files(sim) -> None:
    account_no = sim.funded_account("7", "100.00")
    frozen(sim, account_no, "F1", "80.00")
    sim.submit("F2", "FREEZE", accountNo=account_no, amount="500.00")  # refused
    sim.submit("U1", "UNFREEZE", accountNo=account_no, amount="30.00", freezeOrderNo="F1")
    sim.settle()
    sim.clock.advance(24 * 3600)
    freezes = rows(sim, "2026-12-02", "FREEZE")
    assert [(r["orderNo"], r["status"], r["amount"]) for r in freezes] == [
        ("F1", "SUCCEEDED", "80.00"),
        ("F2", "FAILED", "500.00"),
    ]
    unfreezes = rows(sim, "2026-12-02", "UNFREEZE")
    assert [(r["orderNo"], r["status"], r["amount"], r["accountNo"]) for r in unfreezes] == [
        ("U1", "SUCCEEDED", "30.00", account_no)
    ]
    [balance] = [r for r in rows(sim, "2026-12-02", "BALANCE") if r["accountNo"] == account_no]
    assert (balance["available"], balance["frozen"]) == ("50.00", "50.00")


@pytest.mark.parametrize("fields", [{}, {"freezeOrderNo": "F-1"}, {"freezeOrderNo": 7}])
def test_an_unfreeze_without_a_well_formed_freeze_order_number_is_malformed(sim, fields) -> None:
    reply = sim.submit("U1", "UNFREEZE", accountNo="SA1", amount="1.00", **fields)
    assert reply.status == 400
    answer = sim.answer(reply)
    assert (answer["error"], answer["field"]) == ("MALFORMED", "freezeOrderNo")
