"""Member messages end to end: the message an investment writes, read and marked read over
JSON REST (found through /openapi.json) and SOAP (a zeep client built from the served WSDL);
another member's message answers MESSAGE_NOT_FOUND on both."""

from __future__ import annotations

import uuid

import pytest
import requests
import zeep

pytestmark = pytest.mark.slow


def rno() -> str:
    return "e2e-msg-" + uuid.uuid4().hex


def auth(token: str) -> dict:
    return {"_soapheaders": {"auth": {"token": token}}}


def _session(headers: dict) -> requests.Session:
    session = requests.Session()
    session.headers.update(headers)
    return session


@pytest.fixture(scope="module")
def message_client(server) -> zeep.Client:
    return zeep.Client(server.url("/services/MessageFacade?wsdl"))


@pytest.fixture
def invested(api, operator, members, loan_terms):
    """Factory: a new investor who recharged and invested 100.00 in a new listing; the
    investor and the listing's id."""

    def factory():
        body = loan_terms(amount="1000.00", minInvest="100.00", maxInvestPerInvestor=None)
        loan_id = api.check_body(
            "publishLoan", api.call("publishLoan", token=operator.token, json_body=body)
        )["loanId"]
        r = api.call("auditLoan", token=operator.token, loanId=loan_id, json_body={"approve": True})
        assert r.status_code == 200, r.text
        who = members("INVESTOR")
        r = api.call(
            "recharge", token=who.token, json_body={"amount": "500.00", "requestNo": rno()}
        )
        assert r.status_code == 201, r.text
        r = api.call(
            "invest",
            token=who.token,
            loanId=loan_id,
            json_body={"amount": "100.00", "requestNo": rno()},
        )
        assert r.status_code == 201, r.text
        return who, loan_id

    return factory


def test_rest_list_read_and_mark_read(api, checks, invested, members) -> None:
    who, loan_id = invested()
    page = api.check_body(
        "listMessages", api.call("listMessages", token=who.token, params={"pageSize": 10})
    )
    assert (page["total"], page["page"], page["pageSize"]) == (1, 1, 10)
    [message] = page["items"]
    assert (message["category"], message["refType"], message["read"]) == (
        "INVESTMENT",
        "investment",
        False,
    )
    # In English without Accept-Language; in Chinese when the caller prefers it.
    assert f"listing {loan_id}" in message["body"] and "100.00 yuan" in message["body"]
    zh = api.call(
        "getMessage",
        token=who.token,
        messageId=message["messageId"],
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
    )
    assert zh.headers["Content-Language"] == "zh"
    chinese = api.check_body("getMessage", zh)
    assert chinese["title"] == "投资成功"
    assert f"标的 {loan_id}" in chinese["body"] and "100.00 元" in chinese["body"]
    assert "readAt" not in message and who.mobile not in message["body"]
    count = api.call("getUnreadCount", token=who.token)
    assert api.check_body("getUnreadCount", count) == {"unread": 1}

    one = api.call("getMessage", token=who.token, messageId=message["messageId"])
    assert api.check_body("getMessage", one) == message
    read = api.check_body(
        "markRead", api.call("markRead", token=who.token, messageId=message["messageId"])
    )
    assert read["read"] is True and read["readAt"]
    unread = api.call("listMessages", token=who.token, params={"unreadOnly": "true"})
    assert api.check_body("listMessages", unread)["total"] == 0
    everything = api.call("markAllRead", token=who.token)
    assert api.check_body("markAllRead", everything) == {"marked": 0}

    stranger = members("INVESTOR")
    for operation in ("getMessage", "markRead"):
        r = api.call(operation, token=stranger.token, messageId=message["messageId"])
        checks.error(r, 404, "MESSAGE_NOT_FOUND")
    checks.error(api.call("listMessages", params={"pageSize": 10}), 401, "UNAUTHENTICATED")
    checks.error(
        api.call("listMessages", token=who.token, params={"unreadOnly": "maybe"}),
        400,
        "VALIDATION_FAILED",
        mentions="unreadOnly",
    )


def test_soap_list_read_and_mark_all_read(message_client, checks, invested, members) -> None:
    who, loan_id = invested()
    service = message_client.service
    assert service.getUnreadCount(**auth(who.token)) == 1
    page = service.listMessages(page=1, pageSize=10, unreadOnly=True, **auth(who.token))
    assert page.total == 1
    [message] = page.items
    assert (message.category, message.refType, message.read) == ("INVESTMENT", "investment", False)
    assert f"listing {loan_id}" in message.body  # English: zeep sends no Accept-Language
    chinese = zeep.Client(
        message_client.wsdl.location,
        transport=zeep.Transport(session=_session({"Accept-Language": "zh"})),
    ).service.getMessage(messageId=message.messageId, **auth(who.token))
    assert f"标的 {loan_id}" in chinese.body

    assert service.getMessage(messageId=message.messageId, **auth(who.token)).read is False
    assert service.markAllRead(**auth(who.token)) == 1
    assert service.getUnreadCount(**auth(who.token)) == 0
    assert service.markRead(messageId=message.messageId, **auth(who.token)).read is True

    stranger = members("BORROWER")
    with pytest.raises(zeep.exceptions.Fault) as caught:
        service.getMessage(messageId=message.messageId, **auth(stranger.token))
    assert checks.zeep_code(caught.value) == "MESSAGE_NOT_FOUND"
