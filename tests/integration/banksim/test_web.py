"""The simulator over WSGI: the protocol's endpoints verify the bytes as received, the member's
page confirms or cancels, and the admin endpoints arm faults and show the books (without
personal data) to loopback clients or token holders only."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from werkzeug.test import Client

from banksim.web import BankApp
from service.ocp import protocol
from tests.banksupport import MERCHANT
from tests.integration.banksim.conftest import BANK_KEYS, CARD, NOTIFY_URL, PLATFORM

ID_NUMBER = "11010519491231002X"
OPEN = {
    "orderNo": "OPEN7",
    "orderType": "OPEN_ACCOUNT",
    "notifyUrl": NOTIFY_URL,
    "returnUrl": "https://p2p.example/back?to=fund",
    "memberId": "7",
    "realName": "张<b>测试",
    "idNumber": ID_NUMBER,
    "cardNumber": CARD,
    "mobile": "13812345678",
}


@pytest.fixture
def manual(make_sim):
    """A bank whose members confirm on its page."""
    return make_sim(auto_authorize=False)


class Browser(Client):
    """A test client whose requests come from ``remote`` (waitress always says who)."""

    def __init__(self, app, remote: str = "127.0.0.1"):
        super().__init__(app)
        self.remote = remote

    def open(self, *args, **kwargs):
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": self.remote})
        return super().open(*args, **kwargs)


def client_of(sim, remote: str = "127.0.0.1", **options) -> Browser:
    return Browser(BankApp(sim.bank, **options), remote)


def post_signed(client: Client, sim, path: str, fields: dict):
    body, headers = sim.signed(fields)
    return client.post(path, data=body, headers=headers)


def read(response) -> dict:
    protocol.verify(BANK_KEYS, response.data, response.headers)
    return json.loads(response.data)


def test_orders_and_queries_over_http(manual) -> None:
    client = client_of(manual)
    response = post_signed(client, manual, "/v1/orders", OPEN)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert read(response)["result"] == "ACCEPTED"
    response = post_signed(client, manual, "/v1/orders/query", {"orderNo": "OPEN7"})
    assert read(response)["status"] == "PROCESSING"
    body, headers = manual.signed({**OPEN, "orderNo": "OPEN8"})
    response = client.post("/v1/orders", data=body + b" ", headers=headers)
    assert response.status_code == 401 and read(response)["error"] == "SIGNATURE_INVALID"
    assert client.get("/v1/orders").status_code == 405


def test_a_file_over_http_is_checked_against_its_signed_target(sim) -> None:
    client = client_of(sim)
    sim.clock.advance(86_400)
    query = urlencode({"merchantId": MERCHANT, "timestamp": protocol.format_time(sim.clock())})
    target = f"/v1/files/2026-12-02/BALANCE?{query}"
    headers = protocol.signed_headers(PLATFORM, target.encode())
    response = client.get(target, headers=headers)
    assert response.status_code == 200
    protocol.verify(BANK_KEYS, response.data, response.headers)
    other = target.replace("BALANCE", "RECHARGE")
    assert client.get(other, headers=headers).status_code == 401


def test_the_member_confirms_on_the_bank_s_page(manual) -> None:
    client = client_of(manual)
    url = read(post_signed(client, manual, "/v1/orders", OPEN))["authorizeUrl"]
    path = url.removeprefix("http://bank.test")
    page = client.get(path)
    assert page.status_code == 200 and "OPEN_ACCOUNT" in page.text
    assert ID_NUMBER not in page.text and "<b>" not in page.text
    assert client.get(path + "x").status_code == 404
    token = path.partition("token=")[2]
    refused = client.post("/authorize/OPEN7", data={"token": token, "action": "confirm"})
    assert refused.status_code == 400
    done = client.post(
        "/authorize/OPEN7", data={"token": token, "action": "confirm", "password": "111111"}
    )
    assert (done.status_code, done.headers["Location"]) == (303, OPEN["returnUrl"])
    assert client.get(path).status_code == 404  # confirmed once
    manual.settle()
    assert manual.platform.events() == [("OPEN7", "SUCCEEDED")]


def test_the_member_cancels_on_the_bank_s_page(manual) -> None:
    client = client_of(manual)
    order = {key: value for key, value in OPEN.items() if key != "returnUrl"}
    url = read(post_signed(client, manual, "/v1/orders", order))
    token = url["authorizeUrl"].partition("token=")[2]
    page = client.post("/authorize/OPEN7", data={"token": token, "action": "cancel"})
    assert page.status_code == 200 and "Cancelled" in page.text
    assert manual.query("OPEN7")["reason"] == "CANCELLED_BY_MEMBER"


def test_admin_arms_lists_and_clears_faults(sim) -> None:
    client = client_of(sim)
    armed = client.post("/admin/faults", json={"orderType": "WITHDRAW", "fault": "refuse"})
    assert armed.status_code == 200
    assert armed.json["faults"] == [
        {"order_type": "WITHDRAW", "name": "refuse", "count": 1, "seconds": None}
    ]
    every = client.post("/admin/faults", json={"orderType": "*", "fault": "delay", "count": None})
    assert every.json["faults"][-1]["count"] is None
    assert len(client.get("/admin/faults").json["faults"]) == 2
    assert client.delete("/admin/faults").json == {"faults": []}
    bad = client.post("/admin/faults", json={"orderType": "RECHARGE", "fault": "explode"})
    assert bad.status_code == 400 and "fault must be one of" in bad.json["error"]
    assert client.post("/admin/faults", data=b"[").status_code == 400


def test_admin_shows_the_books_without_personal_data(sim) -> None:
    sim.open_account("7")
    client = client_of(sim)
    accounts = client.get("/admin/accounts")
    orders = client.get("/admin/orders")
    assert [a["memberId"] for a in accounts.json["accounts"]] == [None, "7"]
    order = orders.json["orders"][0]
    assert (order["orderNo"], order["status"]) == ("OPEN7", "SUCCEEDED")
    assert order["notifications"][0]["acknowledgedAt"] is not None
    for text in (accounts.text, orders.text):
        assert ID_NUMBER not in text and CARD not in text and "13812345678" not in text
    assert client.get("/admin/orders?orderNo=NOPE").json == {"orders": []}


def test_admin_answers_loopback_clients_only(sim) -> None:
    remote = client_of(sim, "10.0.0.5")
    assert remote.get("/admin/accounts").status_code == 404
    assert (
        remote.post("/admin/faults", json={"orderType": "*", "fault": "refuse"}).status_code == 404
    )
    assert sim.faults.listed() == []


def test_with_a_token_admin_answers_its_bearers_only(sim) -> None:
    client = client_of(sim, admin_token="s3cret-token")
    assert client.get("/admin/accounts").status_code == 404
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/admin/accounts", headers=wrong).status_code == 404
    remote = client_of(sim, "10.0.0.5", admin_token="s3cret-token")
    good = {"Authorization": "Bearer s3cret-token"}
    assert remote.get("/admin/accounts", headers=good).status_code == 200
