"""Error messages show values as people write them, never as Python does: no Decimal('0'),
no 1E+3, no quoted repr. Every message that carries a caller's amount, a bound or a key is
triggered over REST and over SOAP (the WSDL's zeep client), against the running server."""

import functools
import json
import re
import uuid
from decimal import Decimal

import pytest
import zeep

pytestmark = pytest.mark.slow

D = Decimal
#: What a Python repr or scientific notation looks like inside a message.
PYTHON = re.compile(r"Decimal\(|\d[eE][+-]?\d|'|\"")


def plain(message: str) -> str:
    assert not PYTHON.search(message), message
    return message


def rest_message(response, code: str) -> str:
    """The error's detail, where the values it quotes are (its message is the catalogue's)."""
    body = response.json()
    assert body["code"] == code, body
    return plain(body["detail"])


def soap_message(checks, call, code: str) -> str:
    with pytest.raises(zeep.exceptions.Fault) as fault:
        call()
    assert checks.zeep_code(fault.value) == code
    ns = "{http://p2p.hry.com/facade/common}"
    return plain(fault.value.detail.findtext(f"{ns}BusinessFault/{ns}detail"))


def rno() -> str:
    return uuid.uuid4().hex


def with_numbers(body: dict, **numbers: str) -> bytes:
    """`body` as JSON with `numbers` added as JSON numbers written as given (e.g. 1E+3)."""
    fields = [json.dumps(body)[1:-1], *(f'"{k}": {v}' for k, v in numbers.items())]
    return ("{" + ", ".join(f for f in fields if f) + "}").encode()


def post_json(api, operation: str, token: str, data: bytes, **path):
    headers = {"Content-Type": "application/json"}
    return api.call(operation, token=token, data=data, headers=headers, **path)


@pytest.fixture
def listing(api, operator, loan_terms):
    """A RAISING listing of 100.00, at least 50.00 an investment, at most 80.00 each."""
    terms = loan_terms(amount="100.00", minInvest="50.00", maxInvestPerInvestor="80.00")
    r = api.call("publishLoan", token=operator.token, json_body=terms)
    loan_id = r.json()["loanId"]
    api.call("auditLoan", token=operator.token, loanId=loan_id, json_body={"approve": True})
    return loan_id


@pytest.fixture
def backer(api, members):
    who = members("INVESTOR")
    r = api.call("recharge", token=who.token, json_body={"amount": "1000.00", "requestNo": rno()})
    assert r.status_code == 201, r.text
    return who


def test_schedule_preview_refusals(api, soap, checks) -> None:
    """The contract refuses these first now; either way no repr reaches the caller."""
    for field, value in [("principal", "0"), ("annualRate", "40"), ("termMonths", "0")]:
        args = {"principal": "1000", "annualRate": "9.5", "termMonths": 12}
        args |= {"repaymentMethod": "BULLET", field: value}
        r = api.call("previewRepaymentSchedule", params=args)
        assert rest_message(r, "VALIDATION_FAILED").startswith(field)
        typed = {**args, "principal": D(args["principal"]), "annualRate": D(args["annualRate"])}
        typed["termMonths"] = int(typed["termMonths"])
        call = functools.partial(soap.loan.service.previewRepaymentSchedule, **typed)
        assert soap_message(checks, call, "VALIDATION_FAILED").startswith(field)


def test_investment_refusals_show_plain_amounts(api, soap, checks, listing, backer) -> None:
    def rest(amount: str):
        data = with_numbers({"requestNo": rno()}, amount=amount)
        return post_json(api, "invest", backer.token, data, loanId=listing)

    # A JSON number is taken exactly: 1E+3 is 1000, and the message says 1000.
    assert rest_message(rest("1E+3"), "INVEST_ABOVE_REMAINING") == (
        "amount 1000 exceeds the 100.00 remaining"
    )
    assert rest_message(rest("1.05E+1"), "INVEST_BELOW_MINIMUM") == (
        "amount 10.5: invest at least minInvest 50.00"
    )
    assert rest_message(rest("9E+1"), "INVEST_CAP_EXCEEDED") == (
        "amount 90 on top of 0.00 exceeds maxInvestPerInvestor 80.00"
    )
    svc = soap.loan.service

    def soap_invest(amount):
        return lambda: svc.invest(
            loanId=listing, amount=amount, requestNo=rno(), **soap.auth(backer.token)
        )

    assert soap_message(checks, soap_invest(D("1000.0")), "INVEST_ABOVE_REMAINING") == (
        "amount 1000.0 exceeds the 100.00 remaining"
    )
    assert "minInvest 50.00" in soap_message(checks, soap_invest(D("10")), "INVEST_BELOW_MINIMUM")


def test_amount_bounds_show_plain_amounts(api, soap, checks, operator, backer, loan_terms):
    terms = loan_terms(amount=None)
    r = post_json(api, "publishLoan", operator.token, with_numbers(terms, amount="6E+7"))
    assert rest_message(r, "VALIDATION_FAILED") == (
        "amount: must be between 100.00 and 50000000.00"
    )
    r = post_json(api, "recharge", backer.token, with_numbers({"requestNo": rno()}, amount="6E+7"))
    assert rest_message(r, "VALIDATION_FAILED") == "amount: must be above 0 and at most 50000000.00"
    payments = zeep.Client(soap.server.url("/services/PaymentFacade?wsdl")).service
    call = lambda: payments.recharge(  # noqa: E731
        amount=D("60000000"), requestNo=rno(), **soap.auth(backer.token)
    )
    assert soap_message(checks, call, "VALIDATION_FAILED") == (
        "amount: must be above 0 and at most 50000000.00"
    )


def test_a_duplicate_json_key_is_named_plainly(api, backer) -> None:
    body = b'{"amount": "1.00", "amount": "2.00", "requestNo": "dup-key"}'
    r = post_json(api, "recharge", backer.token, body)
    assert rest_message(r, "MALFORMED_REQUEST") == "duplicate key amount"
