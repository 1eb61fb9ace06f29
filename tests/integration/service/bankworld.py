"""The platform with payment.gateway BANK as the composition root builds it (the HTTP client,
the outbox with jobs run in process, /bank/notify in the WSGI application), against the bank
simulator (banksim) served over HTTP from a thread, time moved by the test's clock: the world
the simulator's tests, the reconciliation's and the randomised ones share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text
from werkzeug.test import Client

from banksim.bank import Bank, BankConfig
from banksim.books import Books
from banksim.faults import Faults, make_fault
from banksim.web import BankApp
from conf import load_settings
from server.app import Application, Platform, create_platform
from service.audit import LedgerAudit
from service.jobs import InProcessPublisher
from service.member import BindCardRequest, IdentityRequest, MemberService
from service.ocp.orders import BankOrders
from service.ocp.signing import KeyRing, Signer
from service.payment import PaymentService
from service.security import Principal
from service.treasury import TreasuryService
from tests.banksupport import (
    BANK_KEY_ID,
    BANK_PRIVATE,
    BANK_PUBLIC,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
    PLATFORM_PUBLIC,
    serving,
)
from tests.integration.service.support import caller

D = Decimal


@dataclass
class World:
    """The platform and the bank it talks to."""

    platform: Platform
    bank: Bank
    faults: Faults
    clock: object
    http: Client  # the platform's WSGI application, where the bank posts its notifications
    publisher: InProcessPublisher
    bank_url: str  # where the simulator is served
    _operator: Principal | None = None

    @property
    def payments(self) -> PaymentService:
        return self.platform.service(PaymentService)

    @property
    def members(self) -> MemberService:
        return self.platform.service(MemberService)

    @property
    def orders(self) -> BankOrders:
        return self.platform.components["bank"]

    @property
    def treasury(self) -> TreasuryService:
        return self.platform.service(TreasuryService)

    def operator(self) -> Principal:
        """The platform's operator (made once)."""
        if self._operator is None:
            self._operator = caller(self.members.create_operator("13700000000", "secret123"))
        return self._operator

    def fund_platform(self, amount: Decimal, request_no: str = "world-funds") -> None:
        """The operator funds the platform's own account with a FUND order, its treasurer
        confirming on the bank's page when the bank asks, and the bank carries it out."""
        fund = self.treasury.fund_platform_account(amount, request_no, self.operator())
        page = self.treasury.get_platform_transfer(fund.transfer_id).authorize_url
        if page is not None:
            confirm(self, page)
        self.settle()
        done = self.treasury.get_platform_transfer(fund.transfer_id)
        assert done.status == "SUCCESS", done

    def arm(self, order_type: str, fault: str, seconds: float | None = None) -> None:
        self.faults.arm(make_fault(order_type, fault, 1, seconds))

    def settle(self, seconds: float = 3.0, rounds: int = 1) -> None:
        """Let time pass: the bank finishes and notifies what is due, the platform queries
        what is due."""
        for _ in range(rounds):
            self.clock.advance(seconds=seconds)
            self.bank.run_due()
            self.bank.deliver_due()
            self.orders.query_due()

    def books_agree(self, who: Principal, account_no: str) -> Decimal:
        """The member's available balance, the same at the platform and at the bank."""
        at_bank = next(a for a in self.bank.accounts() if a["accountNo"] == account_no)
        with self.platform.database.engine.connect() as conn:
            fen = conn.execute(
                text("SELECT available, frozen FROM account WHERE member_id = :m"),
                {"m": who.member_id},
            ).one()
        mine = (D(fen[0]) / 100, D(fen[1]) / 100)
        assert mine == (D(at_bank["available"]), D(at_bank["frozen"])), (mine, at_bank)
        report = LedgerAudit(self.platform.tx).run()
        assert report.ok, [c for c in report.checks if not c.ok]
        assert self.publisher.failures == []
        return mine[0]


def bank_world(
    tmp_path: Path,
    clock,
    service_url: str,
    *,
    auto_authorize: bool,
    fees: dict[str, Decimal] | None = None,
    funds: str = "0.00",
    overrides: dict[str, Any] | None = None,
) -> Iterator[World]:
    """The world; the bank takes ``fees`` by order type from the platform's own account, which
    starts empty and is funded with ``funds`` by a FUND order first; ``overrides``: more of the
    platform's settings."""
    faults = Faults()
    holder: dict[str, Client] = {}

    def post(url: str, body: bytes, headers, timeout: float):
        answer = holder["http"].post("/bank/notify", data=body, headers=dict(headers))
        return answer.status_code, answer.data, answer.headers

    config = BankConfig(
        merchant_id=MERCHANT,
        public_url="http://bank.test",
        delay_seconds=2.0,
        auto_authorize=auto_authorize,
        query_min_interval_seconds=30.0,
        hang_seconds=1.0,
        fees=fees or {},
    )
    books = Books(str(tmp_path / "bank.db"))
    bank = Bank(
        config,
        books,
        Signer(BANK_KEY_ID, BANK_PRIVATE),
        KeyRing({PLATFORM_KEY_ID: PLATFORM_PUBLIC}),
        faults,
        clock=clock,
        post=post,
    )
    with serving(BankApp(bank)) as url:
        settings = load_settings(
            {"P2P_ENV": "test"},
            {
                "database.url": service_url,
                "payment.gateway": "BANK",
                "bank.url": url,
                "bank.merchant_id": MERCHANT,
                "bank.platform_key_id": PLATFORM_KEY_ID,
                "bank.platform_private_key": PLATFORM_PRIVATE.decode(),
                "bank.bank_public_keys": {BANK_KEY_ID: BANK_PUBLIC.decode()},
                "bank.notify_url": "http://platform.test/bank/notify",
                "bank.read_timeout_seconds": 0.5,
                "jobs.schedule": {"bank.query_due": 30, "outbox.sweep": 30},
                **(overrides or {}),
            },
        )
        publishers: list[InProcessPublisher] = []

        def in_process(jobs):
            publishers.append(InProcessPublisher(jobs))
            return publishers[-1]

        platform = create_platform(settings, publisher=in_process)
        holder["http"] = Client(Application(platform))
        try:
            world = World(platform, bank, faults, clock, holder["http"], publishers[0], url)
            if D(funds):
                world.fund_platform(D(funds))
            yield world
        finally:
            platform.close()
            books.close()


def onboarded(
    world: World, make_member, identities, role: str = "INVESTOR"
) -> tuple[Principal, int, str]:
    """A member whose fund account the bank opened: (caller, card id, account number)."""
    who = caller(make_member(role, onboarded=False))
    person = identities()
    world.members.verify_identity(IdentityRequest(person.real_name, person.id_number), who)
    card = world.members.bind_card(
        BindCardRequest(person.card_number, "中国银行", "13987654321"), who
    )
    assert world.members.open_fund_account(card.card_id, who).status == "PENDING"
    world.settle()
    account = world.members.get_fund_account(who)
    assert account.status == "OPEN", account
    return who, card.card_id, account.account_no


def confirm(world: World, page: str, *, waiting: bool = True) -> None:
    """The member opens the bank's page and confirms with the bank password. With
    ``waiting=False`` the page may wait no more (confirmed already, expired): the bank's 404
    is then an answer too."""
    path = page.removeprefix("http://bank.test")  # the page's base is the bank's public URL
    token = re.search(r"token=([^&]+)", page).group(1)
    answer = requests.post(
        world.bank_url + path.split("?")[0],
        data={"token": token, "password": "123456", "action": "confirm"},
        timeout=10,
    )
    assert answer.status_code in ((200,) if waiting else (200, 404)), answer.text
