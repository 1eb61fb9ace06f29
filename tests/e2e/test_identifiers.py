"""Identifiers compare exactly as sent, on both protocols and both backends (SQLite, and
MariaDB + Redis when configured): request numbers that differ only in case, an accent or
full-width letters are different requests, an order number in other case names no order, and a
member is found by their exact number only. A case- and accent-blind, space-padding collation
once made each of these one on MariaDB."""

from __future__ import annotations

from decimal import Decimal

import pytest
import zeep

pytestmark = pytest.mark.slow

LOOK_ALIKES = ("order-abc", "ORDER-ABC", "ordér-abc", "ｏｒｄｅｒ-ａｂｃ")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.fixture(scope="module")
def payment_client(server) -> zeep.Client:
    return zeep.Client(server.url("/services/PaymentFacade?wsdl"))


def fault_of(call, **kwargs) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(**kwargs)
    return caught.value


def test_rest_look_alike_request_numbers_are_different_requests(api, members, checks) -> None:
    member = members("INVESTOR")

    def recharge(no: str) -> dict:
        body = {"amount": "10.00", "requestNo": no}
        return api.check_body("recharge", api.call("recharge", token=member.token, json_body=body))

    orders = [recharge(no)["orderNo"] for no in LOOK_ALIKES]
    assert len(set(orders)) == len(LOOK_ALIKES)
    assert recharge("ORDER-ABC")["orderNo"] == orders[1]
    assert api.call("getAccount", token=member.token).json()["available"] == "40.00"
    checks.error(
        api.call("getOrder", token=member.token, orderNo=orders[0].lower()),
        404,
        "PAYMENT_ORDER_NOT_FOUND",
    )
    blank = {"amount": "10.00", "requestNo": "   "}
    checks.error(
        api.call("recharge", token=member.token, json_body=blank),
        400,
        "VALIDATION_FAILED",
        mentions="requestNo",
    )


def test_soap_look_alike_request_numbers_are_different_requests(
    payment_client, members, checks
) -> None:
    member = members("INVESTOR")
    pay, auth = payment_client.service, {"_soapheaders": {"auth": {"token": member.token}}}
    orders = [
        pay.recharge(amount=Decimal("10.00"), requestNo=no, **auth).orderNo for no in LOOK_ALIKES
    ]
    assert len(set(orders)) == len(LOOK_ALIKES)
    again = pay.recharge(amount=Decimal("10.00"), requestNo="ordér-abc", **auth)
    assert again.orderNo == orders[2]
    missing = fault_of(pay.getOrder, orderNo=orders[0].lower(), **auth)
    assert checks.zeep_code(missing) == "PAYMENT_ORDER_NOT_FOUND"


def test_ws_security_finds_a_member_by_the_exact_number_only(soap, members, checks) -> None:
    """A full-width spelling of a member's number is nobody's (its failures count under a key
    of their own, so finding the member by it would sidestep the lock)."""
    member = members("INVESTOR", onboarded=False)
    look_alike = soap.loan_as(member.mobile.translate(FULL_WIDTH), member.password)
    refused = fault_of(look_alike.service.listInvestments, page=1, pageSize=10)
    assert checks.zeep_code(refused) == "UNAUTHENTICATED"
    exact = soap.loan_as(member.mobile, member.password)
    assert exact.service.listInvestments(page=1, pageSize=10).total == 0
