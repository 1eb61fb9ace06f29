"""The simulated bank on a SQLite file with a clock the test moves, talking to a platform in
miniature: the test signs requests as the platform does, and the bank's notifications reach a
``Platform`` that verifies them and acknowledges (or not, as the test says)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from banksim.bank import Bank, BankConfig, Reply
from banksim.books import Books
from banksim.faults import Faults, make_fault
from service.ocp import protocol
from service.ocp.signing import KeyRing, Signer
from tests.banksupport import (
    BANK_KEY_ID,
    BANK_PRIVATE,
    BANK_PUBLIC,
    MERCHANT,
    PLATFORM_KEY_ID,
    PLATFORM_PRIVATE,
    PLATFORM_PUBLIC,
)

START = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
PLATFORM = Signer(PLATFORM_KEY_ID, PLATFORM_PRIVATE)
BANK_KEYS = KeyRing({BANK_KEY_ID: BANK_PUBLIC})
NOTIFY_URL = "http://platform.test/bank/notify"
CARD = "6222020200112233445"


@dataclass
class Clock:
    now: dt.datetime = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Platform:
    """Where the bank posts notifications: verifies each like the platform must, keeps the
    good ones, and acknowledges unless ``down`` (no connection) or ``refuse`` (HTTP 503)
    says otherwise, or ``ack`` is replaced."""

    clock: Clock
    received: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    down: bool = False
    refuse: int = 0
    ack: Callable[[dict], tuple[int, bytes, Mapping]] | None = None

    def post(self, url: str, body: bytes, headers, timeout: float):
        assert url == NOTIFY_URL
        if self.down:
            raise ConnectionRefusedError("platform down")
        try:
            message = protocol.read(
                BANK_KEYS, body, headers, merchant_id=MERCHANT, now=self.clock(), window_seconds=300
            )
            protocol.check_notification(message)
        except protocol.REFUSALS as refused:
            self.refused.append(getattr(refused, "reason", "stale"))
            return 400, b"refused", {}
        if self.refuse > 0:
            self.refuse -= 1
            return 503, b"busy", {}
        self.received.append(message)
        if self.ack is not None:
            return self.ack(message)
        return acknowledgement(message["notifyId"], self.clock())

    def events(self, order_no: str | None = None) -> list[tuple[str, str]]:
        return [
            (m["orderNo"], m["status"])
            for m in self.received
            if order_no is None or m["orderNo"] == order_no
        ]


def acknowledgement(notify_id: str, now: dt.datetime, signer: Signer = PLATFORM):
    body = protocol.encode(
        {
            "merchantId": MERCHANT,
            "timestamp": protocol.format_time(now),
            "notifyId": notify_id,
            "result": "OK",
        }
    )
    return 200, body, protocol.signed_headers(signer, body)


class Sim:
    """The bank and the platform around it, with helpers speaking the protocol."""

    def __init__(self, path: Path, clock: Clock, platform: Platform, **config):
        self.path, self.clock, self.platform = path, clock, platform
        defaults = {
            "delay_seconds": 2.0,
            "auto_authorize": True,
            "query_min_interval_seconds": 0.0,
            "hang_seconds": 3.0,
        }
        self.config = BankConfig(
            merchant_id=MERCHANT, public_url="http://bank.test", **{**defaults, **config}
        )
        self.faults = Faults()
        self.bank = self.open()

    def open(self) -> Bank:
        """The bank on its SQLite file (again: a restart)."""
        return Bank(
            self.config,
            Books(str(self.path)),
            Signer(BANK_KEY_ID, BANK_PRIVATE),
            KeyRing({PLATFORM_KEY_ID: PLATFORM_PUBLIC}),
            self.faults,
            clock=self.clock,
            post=self.platform.post,
        )

    def arm(self, order_type: str, fault: str, count: int | None = 1, seconds=None) -> None:
        self.faults.arm(make_fault(order_type, fault, count, seconds))

    def signed(self, fields: dict, *, at: dt.datetime | None = None) -> tuple[bytes, dict]:
        body = protocol.encode(
            {
                **fields,
                "merchantId": fields.get("merchantId", MERCHANT),
                "timestamp": protocol.format_time(at or self.clock()),
            }
        )
        return body, protocol.signed_headers(PLATFORM, body)

    def submit(self, order_no: str, order_type: str, **fields: str) -> Reply:
        order = {"orderNo": order_no, "orderType": order_type, "notifyUrl": NOTIFY_URL, **fields}
        return self.bank.submit(*self.signed(order))

    def answer(self, reply: Reply) -> dict:
        """The bank's signed answer, verified as the platform's client does."""
        return protocol.read(
            BANK_KEYS,
            reply.body,
            reply.headers,
            merchant_id=MERCHANT,
            now=self.clock(),
            window_seconds=300,
        )

    def query(self, order_no: str) -> dict:
        reply = self.bank.query(*self.signed({"orderNo": order_no}))
        assert reply.status == 200
        return self.answer(reply)

    def open_account(self, member_id: str) -> str:
        """A member's sub-account, opened through the protocol; its accountNo."""
        order_no = f"OPEN{member_id}"
        reply = self.submit(
            order_no,
            "OPEN_ACCOUNT",
            memberId=member_id,
            realName="张测试",
            idNumber="11010519491231002X",
            cardNumber=CARD,
            mobile="13812345678",
        )
        assert self.answer(reply)["result"] == "ACCEPTED"
        self.settle()
        return self.query(order_no)["accountNo"]

    def funded_account(self, member_id: str, amount: str) -> str:
        account_no = self.open_account(member_id)
        self.submit(f"FUND{member_id}", "RECHARGE", accountNo=account_no, amount=amount)
        self.settle()
        return account_no

    def settle(self, seconds: float = 2.0) -> None:
        """Let ``seconds`` pass, then finish what is due and deliver what is due."""
        self.clock.advance(seconds)
        self.bank.run_due()
        self.bank.deliver_due()

    def balance(self, account_no: str) -> tuple[Decimal, Decimal]:
        for account in self.bank.accounts():
            if account["accountNo"] == account_no:
                return Decimal(account["available"]), Decimal(account["frozen"])
        raise AssertionError(f"no account {account_no}")

    def movements(self, order_no: str) -> list[tuple[str, str, str]]:
        with self.bank.books.transaction() as db:
            return [
                (row["kind"], row["available"], row["frozen"])
                for row in db.execute(
                    "SELECT * FROM movements WHERE order_no = ? ORDER BY id", (order_no,)
                )
            ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def platform(clock: Clock) -> Platform:
    return Platform(clock)


@pytest.fixture
def sim(tmp_path: Path, clock: Clock, platform: Platform) -> Iterator[Sim]:
    s = Sim(tmp_path / "bank.db", clock, platform)
    yield s
    s.bank.books.close()


@pytest.fixture
def make_sim(tmp_path: Path, clock: Clock, platform: Platform) -> Iterator[Callable[..., Sim]]:
    """A Sim with other settings (BankConfig fields)."""
    made: list[Sim] = []

    def make(**config) -> Sim:
        made.append(Sim(tmp_path / f"bank{len(made)}.db", clock, platform, **config))
        return made[-1]

    yield make
    for s in made:
        s.bank.books.close()
