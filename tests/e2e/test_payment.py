"""Payments and accounts end to end: every operation of PaymentFacade and AccountFacade over
JSON REST (found through /openapi.json) and SOAP (zeep clients built from the served WSDL);
withdrawals to the caller's bound cards only, the card number masked in every answer and kept
out of the server's log."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import zeep

pytestmark = pytest.mark.slow

D = Decimal


def request_no() -> str:
    return "e2e-" + uuid.uuid4().hex


def fault_of(call, *args, **kwargs) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.fixture(scope="module")
def payment_client(server) -> zeep.Client:
    return zeep.Client(server.url("/services/PaymentFacade?wsdl"))


@pytest.fixture(scope="module")
def account_client(server) -> zeep.Client:
    return zeep.Client(server.url("/services/AccountFacade?wsdl"))


def auth(token: str) -> dict:
    return {"_soapheaders": {"auth": {"token": token}}}


# -- REST ------------------------------------------------------------------------------------


def test_rest_recharge_withdraw_and_the_account(api, members, checks) -> None:
    member = members("INVESTOR")
    no = request_no()
    r = api.call("recharge", token=member.token, json_body={"amount": "500.50", "requestNo": no})
    assert r.status_code == 201
    order = api.check_body("recharge", r)
    assert (order["type"], order["status"], order["amount"]) == ("RECHARGE", "SUCCESS", "500.50")
    assert "failureReason" not in order

    again = api.call("recharge", token=member.token, json_body={"amount": "500.5", "requestNo": no})
    assert again.status_code == 201 and again.json() == order
    checks.error(
        api.call("recharge", token=member.token, json_body={"amount": "1.00", "requestNo": no}),
        409,
        "REQUEST_NO_REUSED",
    )

    card = {"cardId": member.card_id}
    r = api.call(
        "withdraw",
        token=member.token,
        json_body={"amount": "100.25", "requestNo": request_no(), **card},
    )
    assert r.status_code == 201
    withdrawal = api.check_body("withdraw", r)
    assert (withdrawal["type"], withdrawal["status"]) == ("WITHDRAW", "SUCCESS")
    [bound] = api.call("listCards", token=member.token).json()["items"]
    assert withdrawal["cardNumber"] == bound["cardNumber"]
    assert withdrawal["cardNumber"].startswith("**** **** **** ")
    checks.error(
        api.call(
            "withdraw",
            token=member.token,
            json_body={"amount": "400.26", "requestNo": "e2e-x", **card},
        ),
        422,
        "INSUFFICIENT_FUNDS",
    )

    account = api.check_body("getAccount", api.call("getAccount", token=member.token))
    assert account == {
        "memberId": member.member_id,
        "available": "400.25",
        "frozen": "0.00",
        "total": "400.25",
    }
    page = api.check_body(
        "listPostings", api.call("listPostings", token=member.token, params={"pageSize": 2})
    )
    assert (page["total"], page["page"], page["pageSize"]) == (4, 1, 2)
    assert [(p["businessType"], p["bucket"], p["balanceEffect"]) for p in page["items"]] == [
        ("WITHDRAW", "FROZEN", "-100.25"),
        ("WITHDRAW_FREEZE", "FROZEN", "100.25"),
    ]


def test_rest_orders_belong_to_their_owner(api, members, checks) -> None:
    owner, stranger = members("BORROWER"), members("INVESTOR")
    made = [
        api.call(
            "recharge",
            token=owner.token,
            json_body={"amount": f"{i}.00", "requestNo": request_no()},
        ).json()
        for i in (1, 2, 3)
    ]
    got = api.check_body(
        "getOrder", api.call("getOrder", token=owner.token, orderNo=made[0]["orderNo"])
    )
    assert got == made[0]
    checks.error(
        api.call("getOrder", token=stranger.token, orderNo=made[0]["orderNo"]),
        404,
        "PAYMENT_ORDER_NOT_FOUND",
    )

    page = api.check_body(
        "listOrders",
        api.call("listOrders", token=owner.token, params={"page": 1, "pageSize": 2}),
    )
    assert page["total"] == 3
    assert [o["orderNo"] for o in page["items"]] == [made[2]["orderNo"], made[1]["orderNo"]]
    assert api.call("listOrders", token=stranger.token).json()["total"] == 0
    checks.error(
        api.call("listOrders", token=owner.token, params={"pageSize": 101}),
        400,
        "VALIDATION_FAILED",
        mentions="pageSize",
    )


def test_rest_refuses_bad_amounts_strangers_and_operators(api, members, operator, checks):
    member = members("INVESTOR")
    for amount in ("0", "1.001", "50000000.01"):
        checks.error(
            api.call(
                "recharge",
                token=member.token,
                json_body={"amount": amount, "requestNo": request_no()},
            ),
            400,
            "VALIDATION_FAILED",
            mentions="amount",
        )
    checks.error(
        api.call("recharge", json_body={"amount": "1.00", "requestNo": request_no()}),
        401,
        "UNAUTHENTICATED",
    )
    checks.error(api.call("getAccount", token=operator.token), 403, "FORBIDDEN")


# -- SOAP ------------------------------------------------------------------------------------


def test_soap_every_operation(payment_client, account_client, members, checks) -> None:
    member = members("INVESTOR")
    pay, acc, a = payment_client.service, account_client.service, auth(member.token)

    no = request_no()
    order = pay.recharge(amount=D("300.10"), requestNo=no, **a)
    assert (order.type, order.status, order.amount) == ("RECHARGE", "SUCCESS", D("300.10"))
    assert isinstance(order.amount, Decimal)
    assert pay.recharge(amount=D("300.10"), requestNo=no, **a).orderNo == order.orderNo

    withdrawal = pay.withdraw(amount=D("0.10"), cardId=member.card_id, requestNo=request_no(), **a)
    assert (withdrawal.type, withdrawal.status) == ("WITHDRAW", "SUCCESS")
    assert withdrawal.cardNumber.startswith("**** **** **** ")
    assert order.cardNumber is None
    short = fault_of(
        pay.withdraw, amount=D("300.01"), cardId=member.card_id, requestNo=request_no(), **a
    )
    assert short.code.endswith("Client")
    assert checks.zeep_code(short) == "INSUFFICIENT_FUNDS"

    assert pay.getOrder(orderNo=order.orderNo, **a).orderNo == order.orderNo
    stranger = members("BORROWER")
    hidden = fault_of(pay.getOrder, orderNo=order.orderNo, **auth(stranger.token))
    assert checks.zeep_code(hidden) == "PAYMENT_ORDER_NOT_FOUND"

    page = pay.listOrders(page=1, pageSize=10, **a)
    assert page.total == 2
    assert [o.orderNo for o in page.items] == [withdrawal.orderNo, order.orderNo]

    account = acc.getAccount(**a)
    assert (account.memberId, account.available, account.frozen, account.total) == (
        member.member_id,
        D("300.00"),
        D("0.00"),
        D("300.00"),
    )
    postings = acc.listPostings(page=1, pageSize=10, **a)
    assert postings.total == 4
    assert [p.balanceEffect for p in postings.items] == [
        D("-0.10"),
        D("0.10"),
        D("-0.10"),
        D("300.10"),
    ]
    assert all(isinstance(p.balanceEffect, Decimal) for p in postings.items)


# -- the card a withdrawal pays out to -------------------------------------------------------


def test_withdrawals_show_only_the_mask_of_the_card_they_pay_out_to(
    server, api, payment_client, signup, identities, checks
) -> None:
    """A member whose card number the test knows: every answer shows its mask, none the
    number, and the server's log never holds it."""
    person = identities()
    mobile, password = f"135{uuid.uuid4().int % 10**8:08d}", "Passw0rd-card1"
    signup.register(server, "INVESTOR", mobile, password)
    token = api.call("login", json_body={"mobile": mobile, "password": password}).json()["token"]
    card_id = signup.onboard(server, token, mobile, person)
    mask = "**** **** **** " + person.card_number[-4:]
    api.call("recharge", token=token, json_body={"amount": "50.00", "requestNo": request_no()})

    body = {"amount": "10.00", "cardId": card_id, "requestNo": request_no()}
    rest = api.call("withdraw", token=token, json_body=body)
    assert api.check_body("withdraw", rest)["cardNumber"] == mask
    soap = payment_client.service.withdraw(
        amount=D("10.00"), cardId=card_id, requestNo=request_no(), **auth(token)
    )
    assert soap.cardNumber == mask
    listed = api.call("listOrders", token=token)
    fetched = api.call("getOrder", token=token, orderNo=soap.orderNo)
    assert [o.get("cardNumber") for o in listed.json()["items"]] == [mask, mask, None]
    assert fetched.json()["cardNumber"] == mask
    for response in (rest, listed, fetched):
        assert person.card_number not in response.text
    assert person.card_number not in server.log_text()


def test_only_your_own_bound_cards_are_paid_out_to(
    api, payment_client, members, identities, checks
) -> None:
    owner, stranger = members("INVESTOR"), members("BORROWER")
    for who in (owner, stranger):
        body = {"amount": "100.00", "requestNo": request_no()}
        assert api.call("recharge", token=who.token, json_body=body).status_code == 201
    no = request_no()
    body = {"amount": "1.00", "cardId": owner.card_id, "requestNo": no}
    checks.error(api.call("withdraw", token=stranger.token, json_body=body), 404, "CARD_NOT_FOUND")
    refused = fault_of(
        payment_client.service.withdraw,
        amount=D("1.00"),
        cardId=owner.card_id,
        requestNo=no,
        **auth(stranger.token),
    )
    assert checks.zeep_code(refused) == "CARD_NOT_FOUND"

    # The owner's second card; the first request number names the first card only.
    spare = api.call(
        "bindCard",
        token=owner.token,
        json_body={
            "cardNumber": identities().card_number,
            "bankName": "招商银行",
            "mobile": owner.mobile,
        },
    )
    assert spare.status_code == 201, spare.text
    spare_id = spare.json()["cardId"]
    first = api.call("withdraw", token=owner.token, json_body=body)
    assert first.status_code == 201
    checks.error(
        api.call("withdraw", token=owner.token, json_body={**body, "cardId": spare_id}),
        409,
        "REQUEST_NO_REUSED",
    )
    assert api.call("unbindCard", token=owner.token, cardId=spare_id).status_code == 204
    checks.error(
        api.call(
            "withdraw",
            token=owner.token,
            json_body={"amount": "1.00", "cardId": spare_id, "requestNo": request_no()},
        ),
        404,
        "CARD_NOT_FOUND",
    )
    account = api.call("getAccount", token=owner.token).json()
    assert account["available"] == "99.00"
