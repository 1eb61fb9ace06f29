"""A listing's whole life over REST, as ``p2p demo`` walks it: members sign up (their codes
read from the development SMS outbox), verify their real names, bind cards, open fund
accounts and recharge at the depository bank; an operator publishes and audits a listing;
investors invest; the operator disburses; the borrower repays an installment, lets the next
fall overdue (the development clock moved past its due date, service/clock.py) and pays its
penalty, then settles early; an investor withdraws; the ledger is checked."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from server.demo.bank import settle, until
from server.demo.people import PASSWORD, Person, SmsOutbox, new_person
from server.demo.wire import DemoFailed, Wire
from service.clock import PlatformClock

#: The final states of what a member authorises at the bank.
ACCOUNT_DONE = {"OPEN", "REFUSED"}
ORDER_DONE = {"SUCCESS", "FAILED"}
INVESTMENT_DONE = {"FROZEN", "FAILED"}
AMOUNT = "10000.00"
SHARES = ("6000.00", "4000.00")


@dataclass
class Member:
    person: Person
    role: str
    member_id: int = 0
    token: str = ""
    card_id: int = 0
    invite_code: str | None = None


@dataclass(frozen=True)
class Operator:
    mobile: str
    password: str
    #: Creates the operator (``p2p create-operator``) when it cannot log in; None: do not.
    create: Callable[[str, str], bool] | None


class Journey:
    def __init__(self, wire: Wire, sms: SmsOutbox, clock: PlatformClock, operator: Operator):
        self.wire, self.sms, self.clock, self.operator = wire, sms, clock, operator
        self.run = secrets.token_hex(3)  # this run's request numbers
        self.rng = secrets.SystemRandom()

    def request_no(self, what: str) -> str:
        return f"demo-{self.run}-{what}"

    # -- the walk --------------------------------------------------------------------------
    def walk(self) -> None:
        w = self.wire
        w.section("0. The platform's clock")
        self.clock_reset()
        w.section("1. Members sign up, with codes read from the SMS outbox")
        borrower = self.sign_up("Borrower 王借款", "BORROWER")
        first = self.sign_up("Investor 李投资", "INVESTOR")
        second = self.sign_up("Investor 赵出借", "INVESTOR", invited_by=first)
        members = (borrower, first, second)
        w.section("2. Real names, bank cards, fund accounts at the depository bank")
        for m in members:
            self.onboard(m)
        w.section("3. Recharges (充值), confirmed on the bank's page")
        for m, amount in ((borrower, "1000.00"), (first, SHARES[0]), (second, SHARES[1])):
            self.recharge(m, amount)
        w.section("4. An operator publishes a listing for the borrower and audits it")
        operator = self.operator_token()
        loan_id = self.publish(operator, borrower)
        w.section("5. Investors invest (投标): the bank freezes their money")
        for m, amount in zip((first, second), SHARES, strict=True):
            self.invest(m, loan_id, amount)
        until(w, "the listing is FULL", lambda: self.loan(loan_id), lambda x: x == "FULL")
        w.call("GET", f"/loans/{loan_id}")
        w.section("6. The operator disburses (放款): the borrower gets the money")
        w.call("POST", f"/loans/{loan_id}/disbursement", {"requestNo": self.request_no("lend")},
               token=operator)  # fmt: skip
        until(w, "the listing is REPAYING", lambda: self.loan(loan_id), lambda x: x == "REPAYING")
        schedule = w.call("GET", f"/loans/{loan_id}/schedule", token=borrower.token)
        w.section("7. The borrower repays the first installment")
        self.repay(borrower, loan_id, 1)
        w.section("8. The second installment falls overdue: the development clock moves")
        due = dt.date.fromisoformat(schedule["items"][1]["dueDate"])
        late = dt.datetime.combine(due + dt.timedelta(days=10), dt.time(10), dt.UTC)
        self.clock_set(late)
        marked = w.call("POST", "/installments/overdue/mark", token=operator)
        if marked["marked"] < 1:
            raise DemoFailed("no installment was marked overdue")
        overdue = w.call("GET", f"/loans/{loan_id}/schedule", token=borrower.token)
        second_installment = overdue["items"][1]
        w.note(
            f"installment 2 is {second_installment['status']}, penalty "
            f"{second_installment['penalty']} (repayment.penalty_daily_rate a day)"
        )
        paid = self.repay(borrower, loan_id, 2)
        w.note(f"penalty paid with installment 2: {paid['penalty']}")
        w.section("9. The borrower settles the rest early (提前还款)")
        w.call("POST", f"/loans/{loan_id}/settlement", {"requestNo": self.request_no("settle")},
               token=borrower.token)  # fmt: skip
        until(w, "the listing is SETTLED", lambda: self.loan(loan_id), lambda x: x == "SETTLED")
        w.call("GET", f"/loans/{loan_id}/schedule", token=borrower.token)
        w.call("GET", "/receipts?page=1&pageSize=5", token=first.token)
        w.section("10. An investor withdraws (提现) to their card")
        self.withdraw(first, "1000.00")
        for m in members:
            w.call("GET", "/accounts/me", token=m.token)
        w.section("11. The clock goes back to the wall clock")
        self.clock_reset()

    # -- steps -----------------------------------------------------------------------------
    def sign_up(self, name: str, role: str, invited_by: Member | None = None) -> Member:
        w = self.wire
        for _ in range(5):  # a made-up number someone already registered: another
            m = Member(new_person(name, self.rng), role)
            w.note(f"{name} signs up with the made-up number {m.person.mobile}")
            sent = w.call(
                "POST",
                "/verification-codes",
                {"mobile": m.person.mobile, "purpose": "REGISTER"},
                expect=(201, 409),
            )
            if sent.get("code") != "MOBILE_TAKEN":
                break
        else:
            raise DemoFailed("five made-up numbers were all taken")
        code = self.sms.last_code(m.person.mobile, "REGISTER")
        if code is None:
            raise DemoFailed(
                f"no REGISTER code for {m.person.mobile} in {self.sms.path}: the server must "
                "write its SMS to that file (verification.outbox_file, as make run does)"
            )
        w.note(f"the SMS outbox ({self.sms.path}) holds the code {code}")
        body = {
            "mobile": m.person.mobile,
            "password": PASSWORD,
            "role": role,
            "verificationCode": code,
        }
        if invited_by is not None:
            body["inviteCode"] = invited_by.invite_code
        registered = w.call("POST", "/members", body)
        m.member_id, m.invite_code = registered["memberId"], registered.get("inviteCode")
        login = w.call("POST", "/sessions", {"mobile": m.person.mobile, "password": PASSWORD})
        m.token = login["token"]
        return m

    def onboard(self, m: Member) -> None:
        w = self.wire
        for _ in range(5):  # a made-up ID or card number taken by an earlier run: another
            p = m.person
            answer = w.call(
                "POST",
                "/members/current/identity",
                {"realName": p.name.split()[-1], "idNumber": p.id_number},
                token=m.token,
                expect=(200, 201, 409),
            )
            if answer.get("code") != "ID_NUMBER_TAKEN":
                break
            m.person = new_person(p.name, self.rng)
        card = {"cardNumber": "", "bankName": "中国工商银行", "mobile": m.person.mobile}
        for _ in range(5):
            card["cardNumber"] = m.person.card_number
            answer = w.call(
                "POST", "/members/current/cards", card, token=m.token, expect=(200, 201, 409)
            )
            if answer.get("code") != "CARD_TAKEN":
                break
            m.person = new_person(m.person.name, self.rng)
        m.card_id = answer["cardId"]
        w.call("POST", "/members/current/fund-account", {"cardId": m.card_id}, token=m.token)
        account = settle(
            w, "the bank opens the fund account", "/members/current/fund-account", m.token,
            ACCOUNT_DONE,
        )  # fmt: skip
        if account["status"] != "OPEN":
            raise DemoFailed(f"the bank did not open the account: {account}")

    def recharge(self, m: Member, amount: str) -> None:
        body = {"amount": amount, "requestNo": self.request_no(f"recharge-{m.member_id}")}
        order = self.wire.call("POST", "/payments/recharges", body, token=m.token)
        self.follow_order(m, order, "the recharge")

    def withdraw(self, m: Member, amount: str) -> None:
        body = {
            "amount": amount,
            "cardId": m.card_id,
            "requestNo": self.request_no(f"withdraw-{m.member_id}"),
        }
        order = self.wire.call("POST", "/payments/withdrawals", body, token=m.token)
        self.follow_order(m, order, "the withdrawal")

    def follow_order(self, m: Member, order: dict, what: str) -> None:
        path = f"/payments/{order['orderNo']}"
        done = settle(self.wire, f"{what} succeeds", path, m.token, ORDER_DONE)
        if done["status"] != "SUCCESS":
            raise DemoFailed(f"{what} failed: {done}")

    def operator_token(self) -> str:
        op, w = self.operator, self.wire
        credentials = {"mobile": op.mobile, "password": op.password}
        answer = w.call("POST", "/sessions", credentials, expect=(201, 401))
        if "token" in answer:
            return answer["token"]
        if op.create is None:
            raise DemoFailed(
                f"the operator {op.mobile} cannot log in: create one first "
                f"(p2p create-operator --mobile {op.mobile}, the password on standard input) "
                "or pass "
                "--create-operator"
            )
        w.note(f"no operator {op.mobile} yet: the demo creates one, as an administrator does")
        w.say(f"$ echo '{op.password}' | p2p create-operator --mobile {op.mobile}")
        if not op.create(op.mobile, op.password):
            raise DemoFailed("p2p create-operator failed (see above)")
        return w.call("POST", "/sessions", credentials)["token"]

    def publish(self, operator: str, borrower: Member) -> int:
        terms = {
            "title": "Demo: working capital",
            "description": "A listing walked through its whole life by p2p demo.",
            "borrowerId": borrower.member_id,
            "amount": AMOUNT,
            "annualRate": "12",
            "termMonths": 3,
            "repaymentMethod": "EQUAL_INSTALLMENT",
            "minInvest": "100.00",
            "raiseDays": 10,
        }
        loan_id = self.wire.call("POST", "/loans", terms, token=operator)["loanId"]
        self.wire.call("POST", f"/loans/{loan_id}/audit", {"approve": True}, token=operator)
        return loan_id

    def invest(self, m: Member, loan_id: int, amount: str) -> None:
        body = {"amount": amount, "requestNo": self.request_no(f"invest-{m.member_id}")}
        made = self.wire.call("POST", f"/loans/{loan_id}/investments", body, token=m.token)
        path = f"/investments/{made['investmentId']}"
        done = settle(self.wire, "the bank freezes the investment", path, m.token, INVESTMENT_DONE)
        if done["status"] != "FROZEN":
            raise DemoFailed(f"the investment failed: {done}")

    def repay(self, borrower: Member, loan_id: int, period: int) -> dict:
        w = self.wire
        body = {"requestNo": self.request_no(f"repay-{period}")}
        paid = w.call("POST", f"/loans/{loan_id}/repayments", body, token=borrower.token)

        def status() -> str:
            plan = w.call("GET", f"/loans/{loan_id}/schedule", token=borrower.token, quiet=True)
            return plan["items"][period - 1]["status"]

        until(w, f"installment {period} is PAID", status, lambda s: s == "PAID")
        return paid

    def loan(self, loan_id: int) -> str:
        return self.wire.call("GET", f"/loans/{loan_id}", quiet=True)["status"]

    # -- the development clock -------------------------------------------------------------
    def clock_set(self, at: dt.datetime) -> None:
        self.wire.say(f"\n$ p2p clock set {at:%Y-%m-%dT%H:%M:%SZ}")
        self.clock.set(at)
        self.wire.say(f"platform time {self.clock():%Y-%m-%dT%H:%M:%SZ}")

    def clock_reset(self) -> None:
        self.wire.say("\n$ p2p clock reset")
        self.clock.reset()
        self.wire.say(f"platform time {self.clock():%Y-%m-%dT%H:%M:%SZ} (the wall clock)")
