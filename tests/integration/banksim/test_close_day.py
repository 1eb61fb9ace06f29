"""Closing a business day early (POST /admin/close-day), like a bank's cut-off: from then the
day's files are served, holding what finished in the day up to the close; what finishes later
is on the next day's files, so a served file never changes."""

from __future__ import annotations

import json

from tests.integration.banksim.conftest import CARD
from tests.integration.banksim.test_files import DAY, NEXT_DAY, at, fetch, rows
from tests.integration.banksim.test_web import client_of


def close(sim, day: str = DAY, remote: str = "127.0.0.1"):
    return client_of(sim, remote).post("/admin/close-day", json={"date": day})


def test_a_closed_day_s_files_hold_what_finished_before_the_close(sim) -> None:
    at(sim, "2026-12-02T08:00:00+00:00")  # 16:00 in Shanghai
    account_no = sim.funded_account("7", "100.00")
    sim.submit("W1", "WITHDRAW", accountNo=account_no, amount="30.00", cardNumber=CARD)
    sim.settle()
    assert sim.answer(fetch(sim, DAY, "WITHDRAW"))["error"] == "FILE_NOT_READY"
    sim.submit("R9", "RECHARGE", accountNo=account_no, amount="1.50")  # finishes after the close
    sim.clock.advance(1)
    response = close(sim)
    assert response.status_code == 200
    assert json.loads(response.data) == {"date": DAY, "closedAt": "2026-12-02T08:00:07.000000Z"}
    sim.settle()
    assert [r["orderNo"] for r in rows(sim, DAY, "WITHDRAW")] == ["W1"]
    assert [r["orderNo"] for r in rows(sim, DAY, "RECHARGE")] == ["FUND7"]
    balance = {r["accountNo"]: r["available"] for r in rows(sim, DAY, "BALANCE")}
    assert balance[account_no] == "70.00"
    # The next business day is under way, though the calendar still says the 2nd.
    assert sim.answer(fetch(sim, NEXT_DAY, "RECHARGE"))["error"] == "FILE_NOT_READY"
    at(sim, "2026-12-03T16:00:00+00:00")
    assert [r["orderNo"] for r in rows(sim, NEXT_DAY, "RECHARGE")] == ["R9"]
    assert {r["accountNo"]: r["available"] for r in rows(sim, NEXT_DAY, "BALANCE")}[
        account_no
    ] == "71.50"


def test_the_business_day_after_a_close_is_the_next_one(sim) -> None:
    at(sim, "2026-12-02T08:00:00+00:00")
    assert close(sim).status_code == 200
    again = close(sim)  # the same close, answered again
    assert json.loads(again.data)["closedAt"] == "2026-12-02T08:00:00.000000Z"
    refused = close(sim, "2026-12-01")
    assert refused.status_code == 400
    assert "2026-12-03" in json.loads(refused.data)["error"]
    assert close(sim, "2026-12-04").status_code == 400
    sim.clock.advance(60)
    assert close(sim, NEXT_DAY).status_code == 200  # the next day may be closed early too
    assert rows(sim, NEXT_DAY, "RECHARGE") == []


def test_closing_a_day_is_for_admins_only_and_checked(sim) -> None:
    assert close(sim, remote="203.0.113.9").status_code == 404
    client = client_of(sim)
    for body in (b"[]", b'{"date": 20261202}', b'{"date": "2nd of December"}', b"{"):
        response = client.post("/admin/close-day", data=body)
        assert response.status_code == 400, body
    assert sim.answer(fetch(sim, DAY, "BALANCE"))["error"] == "FILE_NOT_READY"
