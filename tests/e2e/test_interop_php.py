"""SOAP interoperability with PHP's SoapClient (ext/soap) in WSDL mode: the client knows only
the served WSDL. tests/e2e/interop/soap_client.php makes one call and prints JSON. Every test
runs with ``soap_version`` SOAP_1_1 and with SOAP_1_2; every facade is called both ways.
"""

import json
import shutil
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "interop" / "soap_client.php"
#: Every facade the server publishes, as the committed contracts list them.
FACADES = sorted(p.stem for p in (ROOT / "wsdl").glob("*.wsdl"))

# Interop concerns the contract, not the storage: the embedded backend is enough.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("server", ["embedded"], indirect=True),
]


@pytest.fixture(scope="module")
def php() -> str:
    found = shutil.which("php")
    if found is None:
        pytest.skip("php not found: install php-cli and php-soap (as .ci/run does)")
    soap = subprocess.run(
        [found, "-r", 'exit(extension_loaded("soap") ? 0 : 1);'], check=False, timeout=30
    )
    if soap.returncode != 0:
        pytest.skip("PHP's soap extension is not loaded: install php-soap")
    return found


@pytest.fixture(params=["1.1", "1.2"])
def version(request) -> str:
    """The SOAP version SoapClient is told to speak."""
    return request.param


@pytest.fixture
def call(php, server, version):
    """call(facade, operation, parameters, token=None) -> what soap_client.php printed."""

    def run(facade: str, operation: str, parameters: dict, token: str | None = None) -> dict:
        args = [php, SCRIPT, server.url(f"/services/{facade}?wsdl"), version, operation]
        args += [json.dumps(parameters)] + ([token] if token is not None else [])
        done = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    return run


def result(output: dict) -> dict:
    assert "fault" not in output, output["fault"]
    return output["result"]["return"]


def fault_code(output: dict) -> str:
    assert "fault" in output, output.get("result")
    return output["fault"]["detail"]["BusinessFault"]["code"]


#: The fault code of a caller's fault, as SoapClient reports it in each version.
SENDER = {"1.1": "soap:Client", "1.2": "env:Sender"}


def loan_terms(borrower_id: int, **overrides) -> dict:
    terms = {
        "title": "Bakery " + uuid.uuid4().hex[:6],
        "description": "A second oven.",
        "borrowerId": borrower_id,
        "amount": "10000.01",
        "annualRate": "12.3456",
        "termMonths": 6,
        "repaymentMethod": "BULLET",
        "minInvest": "100.10",
        "raiseDays": 7,
    }
    terms.update(overrides)
    return terms


def test_the_wsdl_reads_as_wrapped_operations(call):
    functions = call("LoanFacade", "getLoan", {"loanId": 987654321})["functions"]
    assert "getLoanResponse getLoan(getLoan $parameters)" in functions
    assert "publishLoanResponse publishLoan(publishLoan $parameters)" in functions


def test_the_client_speaks_the_version_it_was_told_to_at_the_one_address(call, version):
    """SOAP 1.2 as application/soap+xml with the SOAP 1.2 envelope, posted to the address of
    the WSDL's first port: the facade's one address, whatever the version."""
    output = call("LoanFacade", "listLoans", {"pageSize": 1})
    assert result(output)["pageSize"] == 1
    head = output["requestHeaders"].split("\r\n")
    assert head[0] == "POST /services/LoanFacade HTTP/1.1"
    [content_type] = [h for h in head if h.lower().startswith("content-type:")]
    namespace = {
        "1.1": "http://schemas.xmlsoap.org/soap/envelope/",
        "1.2": "http://www.w3.org/2003/05/soap-envelope",
    }[version]
    media_type = {"1.1": "text/xml", "1.2": "application/soap+xml"}[version]
    assert content_type.split(":", 1)[1].strip().startswith(media_type + ";"), content_type
    assert f'"{namespace}"' in output["request"]


#: For every facade, a call an onboarded investor (an operator, for an operators' facade) may
#: make, its parameters, and a field of the answer with its value (or its type); and a call
#: refused with a catalogue code: the same call anonymous, unless it is public.
EVERY_FACADE = {
    "AccountFacade": ("getAccount", {}, "memberId", "me"),
    "CampaignFacade": ("listCampaigns", {"pageSize": 8}, "pageSize", 8),
    "FundFacade": ("hasFundAccount", {}, "hasFundAccount", True),
    "LoanFacade": ("listLoans", {"pageSize": 3}, "pageSize", 3),
    "LoyaltyFacade": ("listPointEntries", {"pageSize": 10}, "pageSize", 10),
    "MarketingFacade": ("listCoupons", {"pageSize": 9}, "pageSize", 9),
    "MemberFacade": ("getProfile", {}, "memberId", "me"),
    "MessageFacade": ("getUnreadCount", {}, "unread", int),
    "PartnerAdminFacade": ("listPartnerApps", {"pageSize": 6}, "pageSize", 6),
    "PaymentFacade": ("listOrders", {"pageSize": 4}, "pageSize", 4),
    "ReconciliationFacade": ("listRuns", {"pageSize": 5}, "pageSize", 5),
    "TreasuryFacade": ("listPlatformTransfers", {"pageSize": 7}, "pageSize", 7),
}
REFUSED = {"LoanFacade": ("getLoan", {"loanId": 987654321}, "LOAN_NOT_FOUND")}
OPERATORS_ONLY = frozenset(
    {"CampaignFacade", "PartnerAdminFacade", "ReconciliationFacade", "TreasuryFacade"}
)
#: Facades that take a partner app's signed request only (tests/e2e/test_partner_api.py signs
#: them): SoapClient's call, a member's token or none, is refused with this code.
SIGNED_ONLY = {
    "PartnerFacade": ("listPartnerListings", {"pageSize": 2}, "PARTNER_SIGNATURE_MISSING")
}


def test_every_facade_has_a_call_here(server):  # server: the module's tests all take it
    assert sorted([*EVERY_FACADE, *SIGNED_ONLY]) == FACADES


@pytest.mark.parametrize("facade", sorted(SIGNED_ONLY))
def test_a_signed_only_facade_refuses_a_members_call(call, version, investor, facade):
    operation, parameters, code = SIGNED_ONLY[facade]
    for token in (None, investor.token):
        refused = call(facade, operation, parameters, token)
        assert fault_code(refused) == code
        assert refused["fault"]["faultcode"] == SENDER[version]


@pytest.mark.parametrize("facade", sorted(EVERY_FACADE))
def test_every_facade_answers_and_refuses_with_the_catalogue_code(
    call, version, investor, operator, facade
):
    operation, parameters, name, expected = EVERY_FACADE[facade]
    me = operator if facade in OPERATORS_ONLY else investor
    got = result(call(facade, operation, parameters, me.token))[name]
    if expected == "me":
        assert got == me.member_id
    elif isinstance(expected, type):
        assert type(got) is expected, got
    else:
        assert got == expected
    operation, parameters, code = REFUSED.get(facade, (operation, parameters, "UNAUTHENTICATED"))
    refused = call(facade, operation, parameters)
    assert fault_code(refused) == code
    assert refused["fault"]["faultcode"] == SENDER[version]


def test_login(call, operator):
    token = result(
        call(
            "MemberFacade",
            "login",
            {"request": {"mobile": operator.mobile, "password": operator.password}},
        )
    )
    assert token["memberId"] == operator.member_id
    assert token["role"] == "OPERATOR"
    assert token["expiresIn"] > 0
    assert len(token["token"]) >= 20


def test_get_loan_returns_money_as_the_exact_string(call, api, operator, loan_terms):
    r = api.call("publishLoan", token=operator.token, json_body=loan_terms())
    published = api.check_body("publishLoan", r)
    got = result(call("LoanFacade", "getLoan", {"loanId": published["loanId"]}, operator.token))
    assert got["loanId"] == published["loanId"]
    assert got["title"] == published["title"]
    assert got["amount"] == "10000.01"  # xs:decimal stays a string in PHP: no float on the way
    assert got["minInvest"] == "100.00"
    assert Decimal(got["annualRate"]) == Decimal("9.5")
    assert got["status"] == "PENDING_AUDIT"


def test_publish_loan_with_the_auth_token_header(call, operator, borrower):
    token = result(
        call(
            "MemberFacade",
            "login",
            {"request": {"mobile": operator.mobile, "password": operator.password}},
        )
    )["token"]
    request = {"request": loan_terms(borrower.member_id)}
    published = result(call("LoanFacade", "publishLoan", request, token))
    assert published["status"] == "PENDING_AUDIT"
    assert published["borrowerId"] == borrower.member_id
    assert published["amount"] == "10000.01"
    assert published["minInvest"] == "100.10"
    assert "maxInvestPerInvestor" not in published

    fetched = result(call("LoanFacade", "getLoan", {"loanId": published["loanId"]}, token))
    assert fetched["title"] == published["title"]

    assert fault_code(call("LoanFacade", "publishLoan", request)) == "UNAUTHENTICATED"


def test_list_loans_with_a_filter(call, operator, borrower):
    rate = str(Decimal("30.") + Decimal(uuid.uuid4().int % 9000 + 1000) / 10000)
    ids = [
        result(
            call(
                "LoanFacade",
                "publishLoan",
                {"request": loan_terms(borrower.member_id, annualRate=rate, repaymentMethod=m)},
                operator.token,
            )
        )["loanId"]
        for m in ("BULLET", "EQUAL_PRINCIPAL")
    ]
    filters = {"minRate": rate, "maxRate": rate, "status": "PENDING_AUDIT"}
    page = result(call("LoanFacade", "listLoans", filters, operator.token))
    assert page["total"] == 2
    assert [x["loanId"] for x in page["items"]] == sorted(ids, reverse=True)

    one = result(
        call(
            "LoanFacade",
            "listLoans",
            {"minRate": rate, "maxRate": rate, "repaymentMethod": "BULLET"},
            operator.token,
        )
    )
    assert one["total"] == 1
    assert [x["loanId"] for x in one["items"]] == [ids[0]]  # still a list when one item


def test_a_missing_listing_is_a_soap_fault_with_the_code_in_detail(call, version):
    output = call("LoanFacade", "getLoan", {"loanId": 987654321})
    fault = output["fault"]
    assert fault["faultcode"] == SENDER[version]
    assert "987654321" in fault["detail"]["BusinessFault"]["detail"]
    assert fault_code(output) == "LOAN_NOT_FOUND"
    assert fault["detail"]["BusinessFault"]["requestId"]
