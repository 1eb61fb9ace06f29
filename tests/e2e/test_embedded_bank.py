"""`make run`'s depository: ``p2p serve`` with bank.simulator starts the bank simulator as its
child, with development keys made at first start, and stops it with itself. A member opens a
fund account and recharges, each confirmed on the bank's own page as a member would, and the
calls complete when the bank notifies."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import requests

from tests.banksupport import free_port, wait_for
from tests.e2e.conftest import RestMember

pytestmark = pytest.mark.slow


def confirm_on_the_banks_page(url: str) -> None:
    """What the member does at ``authorizeUrl``: open the page, enter the bank password,
    confirm."""
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    form = {"token": token, "password": "bank-password", "action": "confirm"}
    done = requests.post(url.split("?")[0], data=form, timeout=10)
    assert done.status_code == 200 and "Confirmed" in done.text, done.text


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_serve_runs_the_bank_simulator_and_members_confirm_on_its_pages(
    tmp_path: Path, processes, identities
) -> None:
    bank_port, port = free_port(), processes.free_port()
    keys = tmp_path / "bank"
    settings = [
        f"database.url=sqlite:///{tmp_path / 'p2p.db'}",
        "payment.gateway=BANK",
        "bank.simulator=true",
        f"bank.simulator_dir={keys}",
        "bank.simulator_delay_seconds=0.5",
        f"bank.url=http://127.0.0.1:{bank_port}",
        f"bank.notify_url=http://127.0.0.1:{port}/bank/notify",
        "jobs.schedule=bank.query_due=5;outbox.sweep=30",
    ]
    started = processes.start_server("embedded", tmp_path, settings, False, port)
    try:
        assert listening(bank_port), "the simulator does not listen on bank.url"
        assert (keys / "platform.pem").stat().st_mode & 0o077 == 0
        server = started.server
        member = RestMember.sign_up(server, identities())

        opening = member.post("/api/v1/members/current/fund-account", {"cardId": member.card_id})
        assert opening["status"] == "PENDING"
        url = wait_for(
            lambda: member.get("/api/v1/members/current/fund-account").get("authorizeUrl")
        )
        assert url.startswith(f"http://127.0.0.1:{bank_port}/authorize/")
        confirm_on_the_banks_page(url)
        wait_for(lambda: member.get("/api/v1/members/current/fund-account")["status"] == "OPEN")

        order = member.post("/api/v1/payments/recharges", {"amount": "25.50", "requestNo": "r-1"})
        assert order["status"] == "PENDING"
        path = f"/api/v1/payments/{order['orderNo']}"
        confirm_on_the_banks_page(wait_for(lambda: member.get(path).get("authorizeUrl")))
        wait_for(lambda: member.get(path)["status"] == "SUCCESS")
        assert member.get("/api/v1/accounts/me")["available"] == "25.50"
    finally:
        started.stop()
    assert not listening(bank_port), "the simulator outlived the server"
    assert "Traceback" not in started.server.log_text()
