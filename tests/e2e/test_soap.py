"""SOAP through zeep, with clients built from the served WSDL alone: every test on the SOAP
1.1 port and on the SOAP 1.2 port."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import zeep
from zeep.plugins import HistoryPlugin

from service.errors import CATALOGUE

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("soap", ["1.1", "1.2"], indirect=True)]


def terms(borrower_id: int, **overrides) -> dict:
    base = {
        "title": "Orchard " + uuid.uuid4().hex[:6],
        "description": "Irrigation for the east orchard.",
        "borrowerId": borrower_id,
        "amount": Decimal("10000.01"),
        "annualRate": Decimal("12.3456"),
        "termMonths": 6,
        "repaymentMethod": "BULLET",
        "minInvest": Decimal("100.10"),
        "maxInvestPerInvestor": Decimal("5000.99"),
        "raiseDays": 7,
    }
    base.update(overrides)
    return base


def fault_of(call, *args, **kwargs) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(*args, **kwargs)
    return caught.value


def test_each_port_speaks_its_version_at_the_one_address(soap, server):
    """What the client sent and received: the port's media type (SOAP 1.2 with the
    operation's action) and envelope, to the facade's one address."""
    history = HistoryPlugin()
    client = soap.client("LoanFacade", plugins=[history])
    assert client.service.listLoans(pageSize=1).page == 1
    sent, received = history.last_sent, history.last_received
    media_type, *parameters = (p.strip() for p in sent["http_headers"]["Content-Type"].split(";"))
    assert media_type == soap.version.content_type.split(";")[0]
    if soap.version.name == "1.2":
        assert 'action="http://p2p.hry.com/facade/p2p/LoanFacade/listLoansRequest"' in parameters
    assert (
        sent["envelope"].tag == received["envelope"].tag == f"{{{soap.version.envelope}}}Envelope"
    )
    assert client.service._binding_options["address"] == server.url("/services/LoanFacade")


def test_register_then_login_and_a_taken_number_is_a_client_fault(soap, checks, server):
    mobile = "137" + str(uuid.uuid4().int)[:8]
    sent = soap.member.service.sendVerificationCode(
        request={"mobile": mobile, "purpose": "REGISTER"}
    )
    assert sent.expiresIn > 0 and sent.resendAfter > 0
    member = soap.member.service.register(
        request={
            "mobile": mobile,
            "password": "Secret123",
            "role": "INVESTOR",
            "verificationCode": server.last_code(mobile, "REGISTER"),
        }
    )
    assert member.memberId >= 1
    assert member.role == "INVESTOR"
    assert member.mobile == mobile[:3] + "****" + mobile[-4:]

    token = soap.member.service.login(request={"mobile": mobile, "password": "Secret123"})
    assert token.memberId == member.memberId
    assert token.role == "INVESTOR"
    assert token.expiresIn > 0 and len(token.token) >= 20

    again = fault_of(
        soap.member.service.register,
        request={
            "mobile": mobile,
            "password": "Secret123",
            "role": "BORROWER",
            "verificationCode": "000000",
        },
    )
    assert again.code.endswith(soap.version.sender)
    assert checks.zeep_code(again) == "MOBILE_TAKEN"

    wrong = fault_of(soap.member.service.login, request={"mobile": mobile, "password": "Wrong1234"})
    assert checks.zeep_code(wrong) == "LOGIN_FAILED"


def test_money_comes_back_as_exact_decimals(soap, operator, borrower):
    loan = soap.loan.service.publishLoan(
        request=terms(borrower.member_id), **soap.auth(operator.token)
    )
    fetched = soap.loan.service.getLoan(loanId=loan.loanId, **soap.auth(operator.token))
    for got in (loan, fetched):
        assert isinstance(got.amount, Decimal)
        assert got.amount == Decimal("10000.01")
        assert got.annualRate == Decimal("12.3456")
        assert got.minInvest == Decimal("100.10")
        assert got.maxInvestPerInvestor == Decimal("5000.99")
        assert got.status == "PENDING_AUDIT"
        assert got.borrowerId == borrower.member_id


def test_the_whole_life_of_a_listing(soap, operator, borrower, checks):
    auth = soap.auth(operator.token)
    svc = soap.loan.service
    loan = svc.publishLoan(request=terms(borrower.member_id), **auth)
    assert loan.status == "PENDING_AUDIT"
    assert loan.raiseDeadline is None

    changed = svc.updateLoan(
        loanId=loan.loanId,
        request=terms(borrower.member_id, amount=Decimal("20000.50"), termMonths=9),
        **auth,
    )
    assert (changed.amount, changed.termMonths) == (Decimal("20000.50"), 9)

    rejected = svc.auditLoan(
        loanId=loan.loanId, request={"approve": False, "reason": "Missing invoices"}, **auth
    )
    assert (rejected.status, rejected.rejectReason) == ("REJECTED", "Missing invoices")

    premature = fault_of(svc.auditLoan, loanId=loan.loanId, request={"approve": True}, **auth)
    assert checks.zeep_code(premature) == "LOAN_STATE_INVALID"

    svc.updateLoan(loanId=loan.loanId, request=terms(borrower.member_id, raiseDays=5), **auth)
    before = dt.datetime.now(dt.UTC)
    approved = svc.auditLoan(loanId=loan.loanId, request={"approve": True}, **auth)
    assert approved.status == "RAISING"
    assert approved.rejectReason is None
    expected = before + dt.timedelta(days=5)
    assert abs(approved.raiseDeadline - expected) < dt.timedelta(minutes=5)

    late = fault_of(svc.updateLoan, loanId=loan.loanId, request=terms(borrower.member_id), **auth)
    assert late.code.endswith(soap.version.sender)
    assert checks.zeep_code(late) == "LOAN_STATE_INVALID"
    assert "RAISING" in checks.zeep_detail(late)
    public = svc.getLoan(loanId=loan.loanId)
    assert (public.status, public.borrowerId) == ("RAISING", None)


def test_ws_security_username_token_authenticates(soap, operator, borrower, checks):
    client = soap.loan_as(operator.mobile, operator.password)
    loan = client.service.publishLoan(request=terms(borrower.member_id))
    assert loan.status == "PENDING_AUDIT"
    assert client.service.getLoan(loanId=loan.loanId).title == loan.title
    hidden = fault_of(soap.loan.service.getLoan, loanId=loan.loanId)  # pending: not public
    assert checks.zeep_code(hidden) == "LOAN_NOT_FOUND"

    impostor = soap.loan_as(operator.mobile, "NotThePassw0rd")
    refused = fault_of(impostor.service.publishLoan, request=terms(borrower.member_id))
    assert checks.zeep_code(refused) == "UNAUTHENTICATED"


def test_role_refusals(soap, investor, borrower, checks):
    svc = soap.loan.service
    forbidden = fault_of(
        svc.publishLoan, request=terms(borrower.member_id), **soap.auth(investor.token)
    )
    assert forbidden.code.endswith(soap.version.sender)
    assert checks.zeep_code(forbidden) == "FORBIDDEN"

    anonymous = fault_of(svc.publishLoan, request=terms(borrower.member_id))
    assert checks.zeep_code(anonymous) == "UNAUTHENTICATED"

    investor_ws = soap.loan_as(investor.mobile, investor.password)
    refused = fault_of(investor_ws.service.publishLoan, request=terms(borrower.member_id))
    assert checks.zeep_code(refused) == "FORBIDDEN"


def test_a_token_stops_working_after_logout(soap, operator, borrower, checks):
    token = soap.member.service.login(
        request={"mobile": operator.mobile, "password": operator.password}
    ).token
    auth = soap.auth(token)
    assert soap.loan.service.publishLoan(request=terms(borrower.member_id), **auth).loanId

    assert soap.member.service.logout(**auth) is None

    revoked = fault_of(soap.loan.service.publishLoan, request=terms(borrower.member_id), **auth)
    assert checks.zeep_code(revoked) == "UNAUTHENTICATED"
    twice = fault_of(soap.member.service.logout, **auth)
    assert checks.zeep_code(twice) == "UNAUTHENTICATED"
    anonymous = fault_of(soap.member.service.logout)
    assert checks.zeep_code(anonymous) == "UNAUTHENTICATED"


def test_business_errors_are_client_faults_with_the_code_in_detail(soap, operator, checks):
    missing = fault_of(soap.loan.service.getLoan, loanId=987654321)
    assert missing.code.endswith(soap.version.sender)
    assert checks.zeep_code(missing) == "LOAN_NOT_FOUND"
    assert "987654321" in checks.zeep_detail(missing)
    assert missing.message == CATALOGUE["LOAN_NOT_FOUND"].message

    invalid = fault_of(
        soap.loan.service.publishLoan,
        request=terms(1, termMonths=0),
        **soap.auth(operator.token),
    )
    assert checks.zeep_code(invalid) == "VALIDATION_FAILED"
    assert "termMonths" in checks.zeep_detail(invalid)


def test_list_loans_filters_and_pages(soap, operator, borrower):
    auth = soap.auth(operator.token)
    rate = Decimal("27.") + Decimal(uuid.uuid4().int % 9000 + 1000) / 10000
    ids = [
        soap.loan.service.publishLoan(
            request=terms(borrower.member_id, annualRate=rate, repaymentMethod=method), **auth
        ).loanId
        for method in ("BULLET", "EQUAL_PRINCIPAL", "BULLET")
    ]
    page = soap.loan.service.listLoans(minRate=rate, maxRate=rate, page=1, pageSize=2, **auth)
    assert page.total == 3
    assert (page.page, page.pageSize) == (1, 2)
    assert [x.loanId for x in page["items"]] == sorted(ids, reverse=True)[:2]
    second = soap.loan.service.listLoans(minRate=rate, maxRate=rate, page=2, pageSize=2, **auth)
    assert [x.loanId for x in second["items"]] == [min(ids)]
    public = soap.loan.service.listLoans(minRate=rate, maxRate=rate)  # none audited yet
    assert (public.total, public["items"]) == (0, [])

    bullets = soap.loan.service.listLoans(
        minRate=rate, maxRate=rate, repaymentMethod="BULLET", status="PENDING_AUDIT", **auth
    )
    assert bullets.total == 2
    assert {x.loanId for x in bullets["items"]} == {ids[0], ids[2]}
    assert all(x.annualRate == rate for x in bullets["items"])
