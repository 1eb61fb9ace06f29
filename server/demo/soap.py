"""``p2p demo --soap``: a short walk over SOAP with zeep, each envelope printed: a member signs
up and logs in on MemberFacade's SOAP 1.1 port (the code read from the SMS outbox), reads
their profile and account with the AuthToken header, and browses listings and previews a
repayment plan on LoanFacade's SOAP 1.2 port. zeep is in the test extra (``pip install -e
'.[test]'``); without it the walk says so."""

from __future__ import annotations

import secrets
from decimal import Decimal

from lxml import etree

from server.demo.people import PASSWORD, SmsOutbox, new_person
from server.demo.wire import DemoFailed, Wire


def soap_walk(wire: Wire, sms: SmsOutbox) -> None:
    try:
        import zeep
        from zeep.plugins import HistoryPlugin
    except ImportError:
        raise DemoFailed(
            "zeep is not installed: it is in the test extra (.venv/bin/pip install -e "
            "'.[test]', which make test does)"
        ) from None
    history = HistoryPlugin()

    def client(facade: str, port: str) -> zeep.Client:
        wsdl = f"{wire.base_url}/services/{facade}?wsdl"
        wire.say(f"\n# zeep.Client({wsdl!r}, port_name={port!r})")
        return zeep.Client(wsdl, port_name=port, plugins=[history])

    def call(service, operation: str, **kwargs):
        shown = {k: v for k, v in kwargs.items() if k != "_soapheaders"}
        wire.say(f"\n> {operation}({', '.join(f'{k}={v!r}' for k, v in shown.items())})")
        try:
            answer = getattr(service, operation)(**kwargs)
        except zeep.exceptions.Fault as fault:
            envelopes()
            raise DemoFailed(f"{operation}: SOAP fault {fault.message}") from None
        envelopes()
        return answer

    def envelopes() -> None:
        for label, exchange in (("request", history.last_sent), ("answer", history.last_received)):
            text = etree.tostring(exchange["envelope"], pretty_print=True, encoding="unicode")
            wire.say(f"--- {label} envelope\n{text.rstrip()}")

    wire.section("SOAP 1.1: MemberFacade, a member signs up and logs in")
    members = client("MemberFacade", "MemberFacadePort").service
    person = new_person("Investor 钱投资", secrets.SystemRandom())
    call(members, "sendVerificationCode", request={"mobile": person.mobile, "purpose": "REGISTER"})
    code = sms.last_code(person.mobile, "REGISTER")
    if code is None:
        raise DemoFailed(f"no REGISTER code for {person.mobile} in {sms.path}")
    wire.note(f"the SMS outbox ({sms.path}) holds the code {code}")
    request = {
        "mobile": person.mobile,
        "password": PASSWORD,
        "role": "INVESTOR",
        "verificationCode": code,
    }
    call(members, "register", request=request)
    token = call(members, "login", request={"mobile": person.mobile, "password": PASSWORD}).token
    auth = {"_soapheaders": {"auth": {"token": token}}}
    call(members, "getProfile", **auth)
    accounts = client("AccountFacade", "AccountFacadePort").service
    call(accounts, "getAccount", **auth)

    wire.section("SOAP 1.2: LoanFacade, the market and a plan's preview")
    loans = client("LoanFacade", "LoanFacadeSoap12Port").service
    call(loans, "listLoans", page=1, pageSize=3)
    call(
        loans,
        "previewRepaymentSchedule",
        principal=Decimal("10000.00"),
        annualRate=Decimal("12"),
        termMonths=3,
        repaymentMethod="EQUAL_INSTALLMENT",
    )
