"""SOAP interoperability with suds, as partners on Python use it: clients built from the served
WSDL alone, no hand-written XML.

suds maps plain xs:decimal to Decimal but leaves named restrictions of it (common:money,
common:rate) as text, so money is checked as the exact string and as its Decimal value.
"""

import uuid
from decimal import Decimal

import pytest

from facade.member import MemberFacade
from facade.p2p import LoanFacade
from service.errors import CATALOGUE

suds = pytest.importorskip("suds", reason="suds is not installed (pip install -e '.[test]')")
from suds.client import Client  # noqa: E402
from suds.wsse import Security, UsernameToken  # noqa: E402

# Interop concerns the contract, not the storage: the embedded backend is enough.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("server", ["embedded"], indirect=True),
]


def client(server, facade: str, **options) -> Client:
    """A fresh suds client for one facade (suds keeps headers as client state)."""
    return Client(server.url(f"/services/{facade}?wsdl"), cache=None, **options)


def auth_header(loan: Client, token: str):
    """The AuthToken header, built from the type the WSDL declares."""
    header = loan.factory.create("{http://p2p.hry.com/facade/common}AuthToken")
    header.token = token
    return header


def operators_loans(server, operator) -> Client:
    """LoanFacade as an operator, who sees listings pending audit (the public does not)."""
    loan = client(server, "LoanFacade")
    loan.set_options(soapheaders=auth_header(loan, operator.token))
    return loan


def loan_request(loan: Client, borrower_id: int, **overrides):
    request = loan.factory.create("LoanRequest")
    values = {
        "title": "Greenhouse " + uuid.uuid4().hex[:6],
        "description": "Glass for the north greenhouse.",
        "borrowerId": borrower_id,
        "amount": Decimal("10000.01"),
        "annualRate": Decimal("12.3456"),
        "termMonths": 6,
        "repaymentMethod": "BULLET",
        "minInvest": Decimal("100.10"),
        "maxInvestPerInvestor": Decimal("5000.99"),
        "raiseDays": 7,
    }
    values.update(overrides)
    for name, value in values.items():
        setattr(request, name, value)
    return request


def fault_code(fault: suds.WebFault) -> str:
    """The catalogue code suds decoded from the fault's <detail>."""
    return fault.fault.detail.BusinessFault.code


def assert_money(value, expected: str) -> None:
    assert str(value) == expected
    assert Decimal(str(value)) == Decimal(expected)


@pytest.fixture
def published(api, operator, loan_terms) -> dict:
    """A listing the operator published over REST, for suds to read."""
    r = api.call("publishLoan", token=operator.token, json_body=loan_terms())
    return api.check_body("publishLoan", r)


def test_the_wsdl_reads_as_wrapped_operations(server):
    member, loan = client(server, "MemberFacade"), client(server, "LoanFacade")
    methods = {m.name for m in member.wsdl.services[0].ports[0].methods.values()}
    assert methods == {op.name for op in MemberFacade.operations}
    methods = {m.name for m in loan.wsdl.services[0].ports[0].methods.values()}
    assert methods == {op.name for op in LoanFacade.operations}
    assert {"publishLoan", "invest", "repay"} <= methods


def test_register_an_investor_and_log_in(server):
    member = client(server, "MemberFacade")
    mobile = "136" + str(uuid.uuid4().int)[:8]
    sent = member.service.sendVerificationCode(request={"mobile": mobile, "purpose": "REGISTER"})
    assert sent.expiresIn > 0
    registered = member.service.register(
        request={
            "mobile": mobile,
            "password": "Secret123",
            "role": "INVESTOR",
            "verificationCode": server.last_code(mobile, "REGISTER"),
        }
    )
    assert registered.memberId >= 1
    assert registered.role == "INVESTOR"
    assert registered.mobile == mobile[:3] + "****" + mobile[-4:]

    token = member.service.login(request={"mobile": mobile, "password": "Secret123"})
    assert token.memberId == registered.memberId
    assert token.role == "INVESTOR"
    assert token.expiresIn > 0
    assert len(token.token) >= 20


def test_get_loan_returns_money_exactly(server, published, operator):
    got = operators_loans(server, operator).service.getLoan(loanId=published["loanId"])
    assert got.loanId == published["loanId"]
    assert got.title == published["title"]
    assert got.status == "PENDING_AUDIT"
    assert_money(got.amount, "10000.01")
    assert_money(got.minInvest, "100.00")
    assert Decimal(str(got.annualRate)) == Decimal("9.5")


def test_list_loans_with_a_filter(server, api, operator, loan_terms):
    rate = str(Decimal("28.") + Decimal(uuid.uuid4().int % 9000 + 1000) / 10000)
    ids = []
    for method in ("BULLET", "EQUAL_PRINCIPAL", "BULLET"):
        r = api.call(
            "publishLoan",
            token=operator.token,
            json_body=loan_terms(annualRate=rate, repaymentMethod=method),
        )
        ids.append(api.check_body("publishLoan", r)["loanId"])

    loan = operators_loans(server, operator)
    page = loan.service.listLoans(
        minRate=Decimal(rate), maxRate=Decimal(rate), repaymentMethod="BULLET", pageSize=10
    )
    assert page.total == 2
    assert (page.page, page.pageSize) == (1, 10)
    assert [x.loanId for x in page["items"]] == [ids[2], ids[0]]
    for item in page["items"]:
        assert Decimal(str(item.annualRate)) == Decimal(rate)
        assert_money(item.amount, "10000.01")


def test_publish_loan_with_the_auth_token_header(server, operator, borrower):
    loan = client(server, "LoanFacade")
    loan.set_options(soapheaders=auth_header(loan, operator.token))
    published = loan.service.publishLoan(request=loan_request(loan, borrower.member_id))
    assert published.status == "PENDING_AUDIT"
    assert published.borrowerId == borrower.member_id
    assert_money(published.amount, "10000.01")
    assert_money(published.maxInvestPerInvestor, "5000.99")

    fetched = loan.service.getLoan(loanId=published.loanId)
    assert fetched.title == published.title
    assert_money(fetched.minInvest, "100.10")
    assert Decimal(str(fetched.annualRate)) == Decimal("12.3456")


def test_publish_loan_with_a_ws_security_username_token(server, operator, borrower):
    security = Security()
    security.tokens.append(UsernameToken(operator.mobile, operator.password))
    loan = client(server, "LoanFacade", wsse=security)
    published = loan.service.publishLoan(request=loan_request(loan, borrower.member_id))
    assert published.status == "PENDING_AUDIT"

    wrong = Security()
    wrong.tokens.append(UsernameToken(operator.mobile, "NotThePassw0rd"))
    impostor = client(server, "LoanFacade", wsse=wrong)
    with pytest.raises(suds.WebFault) as caught:
        impostor.service.publishLoan(request=loan_request(impostor, borrower.member_id))
    assert fault_code(caught.value) == "UNAUTHENTICATED"


def test_a_missing_listing_is_a_web_fault_with_the_code_in_detail(server):
    loan = client(server, "LoanFacade")
    with pytest.raises(suds.WebFault) as caught:
        loan.service.getLoan(loanId=987654321)
    fault = caught.value.fault
    assert fault.faultcode.endswith("Client")
    assert fault.faultstring == CATALOGUE["LOAN_NOT_FOUND"].message
    assert fault_code(caught.value) == "LOAN_NOT_FOUND"
    assert fault.detail.BusinessFault.requestId
    assert "987654321" in fault.detail.BusinessFault.detail
