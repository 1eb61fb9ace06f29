"""The fund account on SQLite and MariaDB: opening it with the depository (what the depository
is given, what is stored), every refusal, the deprecated flag; then, over whole onboarding
flows, that no column of any table and no log record holds a plain ID number, card number,
name or mobile number; and one member opening twice at once on MariaDB."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from sqlalchemy import inspect, text

from server.logformat import JsonFormatter
from server.registry import build_service
from service.errors import BusinessError
from service.gateway import AccountHolder, GatewayResult, SandboxGateway
from service.member import BindCardRequest, IdentityRequest, MemberService
from tests.integration.service.support import START, caller, error_of, race

BANK = "中国建设银行"
CARD_MOBILE = "13987654321"


class RecordingGateway(SandboxGateway):
    """The sandbox depository, remembering every account holder it was asked to open for."""

    def __init__(self) -> None:
        self.holders: list[AccountHolder] = []
        self._lock = threading.Lock()

    def open_account(self, holder: AccountHolder) -> GatewayResult:
        with self._lock:
            self.holders.append(holder)
        return super().open_account(holder)


class RefusingGateway(SandboxGateway):
    """A depository that declines to open accounts, as for a name that does not match."""

    reason = "the name does not match the bank's records"

    def open_account(self, holder: AccountHolder) -> GatewayResult:
        return GatewayResult(success=False, reason=self.reason)


@pytest.fixture
def members_via(platform):
    """Factory: a MemberService on the test's platform that talks to the given gateway."""
    return lambda gateway: build_service(
        "service.member:MemberService", {**platform.components, "gateway": gateway}
    )


@pytest.fixture
def applicant(members, make_member, identities):
    """Factory: a verified member with one bound card and no fund account; (vo, card id, who)."""

    def factory(role: str = "INVESTOR"):
        vo = make_member(role, onboarded=False)
        who = identities()
        members.verify_identity(IdentityRequest(who.real_name, who.id_number), caller(vo))
        card = members.bind_card(BindCardRequest(who.card_number, BANK, CARD_MOBILE), caller(vo))
        return vo, card.card_id, who

    return factory


def account_row(sql, member_id: int):
    with sql.connect() as conn:
        return conn.execute(
            text("SELECT fund_account_no, fund_account_opened_at FROM member WHERE id = :id"),
            {"id": member_id},
        ).one()


# -- opening ---------------------------------------------------------------------------------


def test_an_account_is_opened_with_the_members_own_data(
    members, members_via, applicant, sql
) -> None:
    vo, card_id, who = applicant()
    assert members.get_fund_account(caller(vo)).status == "NONE"
    assert members.has_fund_account(caller(vo)).has_fund_account is False

    gateway = RecordingGateway()
    account = members_via(gateway).open_fund_account(card_id, caller(vo))
    [holder] = gateway.holders
    assert holder == AccountHolder(
        vo.member_id, who.real_name, who.id_number, who.card_number, CARD_MOBILE
    )
    assert account.status == "OPEN" and account.account_no.startswith("SANDBOX-ACCT-")
    assert account.opened_at == START
    row = account_row(sql, vo.member_id)
    assert row.fund_account_no == account.account_no and row.fund_account_opened_at is not None
    assert members.get_fund_account(caller(vo)) == account
    assert members.has_fund_account(caller(vo)).has_fund_account is True
    assert members.get_profile(caller(vo)).fund_account_open


def test_a_second_opening_is_fund_account_exists_and_asks_nobody(
    members, members_via, applicant, sql
) -> None:
    vo, card_id, _ = applicant()
    first = members.open_fund_account(card_id, caller(vo))
    gateway = RecordingGateway()
    e = error_of(members_via(gateway).open_fund_account, card_id, caller(vo))
    assert e.code == "FUND_ACCOUNT_EXISTS"
    assert gateway.holders == []
    assert account_row(sql, vo.member_id).fund_account_no == first.account_no


def test_an_unverified_member_cannot_open_one(members, make_member, sql) -> None:
    vo = make_member("BORROWER", onboarded=False)
    assert error_of(members.open_fund_account, 1, caller(vo)).code == "IDENTITY_NOT_VERIFIED"
    assert tuple(account_row(sql, vo.member_id)) == (None, None)


def test_the_card_must_be_the_callers_and_bound(members, applicant, sql) -> None:
    vo, card_id, _ = applicant()
    other, other_card, _ = applicant("BORROWER")
    unbound = members.bind_card(
        BindCardRequest("4111111111111111", BANK, CARD_MOBILE), caller(vo)
    ).card_id
    members.unbind_card(unbound, caller(vo))
    for card in (other_card, unbound, card_id + 1000):
        e = error_of(members.open_fund_account, card, caller(vo))
        assert e.code == "CARD_NOT_FOUND"
    assert tuple(account_row(sql, vo.member_id)) == (None, None)
    assert tuple(account_row(sql, other.member_id)) == (None, None)


def test_a_refusal_is_fund_account_refused_with_the_reason_and_stores_nothing(
    members, members_via, applicant, sql
) -> None:
    vo, card_id, _ = applicant()
    e = error_of(members_via(RefusingGateway()).open_fund_account, card_id, caller(vo))
    assert e.code == "FUND_ACCOUNT_REFUSED"
    assert RefusingGateway.reason in e.message
    assert tuple(account_row(sql, vo.member_id)) == (None, None)
    assert members.get_fund_account(caller(vo)).status == "NONE"
    assert members.open_fund_account(card_id, caller(vo)).status == "OPEN"  # later, accepted


def test_a_depository_that_fails_leaves_nothing_behind(members_via, applicant, sql) -> None:
    class Unreachable(SandboxGateway):
        def open_account(self, holder: AccountHolder) -> GatewayResult:
            raise ConnectionError("depository unreachable")

    vo, card_id, _ = applicant()
    with pytest.raises(ConnectionError):
        members_via(Unreachable()).open_fund_account(card_id, caller(vo))
    assert tuple(account_row(sql, vo.member_id)) == (None, None)


# -- personal data, at rest and in logs ------------------------------------------------------


def onboard_with_every_refusal(members, make_member, identities, members_via) -> list[str]:
    """Two members onboard, meeting most refusals on the way (a taken ID number, a taken card,
    bad input, the depository's refusal, an unbound card); the plain personal data used."""
    one = make_member("INVESTOR", "13811112222", onboarded=False)
    two = make_member("BORROWER", "13833334444", onboarded=False)
    a, b, spare = identities(), identities(), identities()
    members.verify_identity(IdentityRequest("欧阳娜娜", a.id_number), caller(one))
    for request in (
        IdentityRequest("司马光明", a.id_number),  # taken
        IdentityRequest("司马光明", b.id_number[:17] + "Y"),  # malformed
        IdentityRequest("司马光明1", b.id_number),  # bad name
    ):
        with pytest.raises(BusinessError):
            members.verify_identity(request, caller(two))
    members.verify_identity(IdentityRequest("司马光明", b.id_number), caller(two))
    card = members.bind_card(BindCardRequest(a.card_number, BANK, "13955556666"), caller(one))
    spare_card = members.bind_card(
        BindCardRequest(spare.card_number, BANK, "13955556666"), caller(one)
    )
    members.unbind_card(spare_card.card_id, caller(one))
    with pytest.raises(BusinessError):  # taken
        members.bind_card(BindCardRequest(a.card_number, BANK, "13977778888"), caller(two))
    with pytest.raises(BusinessError):  # malformed
        members.bind_card(
            BindCardRequest(b.card_number[:-1] + "x", BANK, "13977778888"), caller(two)
        )
    card_two = members.bind_card(BindCardRequest(b.card_number, BANK, "13977778888"), caller(two))
    with pytest.raises(BusinessError):
        members_via(RefusingGateway()).open_fund_account(card.card_id, caller(one))
    members.open_fund_account(card.card_id, caller(one))
    members.open_fund_account(card_two.card_id, caller(two))
    members.get_profile(caller(one))
    members.get_member(two.member_id)
    members.list_cards(caller(two))
    return [
        a.id_number,
        b.id_number,
        a.card_number,
        b.card_number,
        spare.card_number,
        "欧阳娜娜",
        "司马光明",
        "13811112222",
        "13833334444",
        "13955556666",
        "13977778888",
    ]


def test_no_column_of_any_table_holds_a_plain_id_or_card_number(
    members, make_member, identities, members_via, sql
) -> None:
    secrets = onboard_with_every_refusal(members, make_member, identities, members_via)
    # The login mobile is the login name, stored plain by design; everything else is sealed.
    hidden = [s for s in secrets if s not in ("13811112222", "13833334444")]
    tables = inspect(sql).get_table_names()
    assert {"member", "bank_card"} <= set(tables)
    with sql.connect() as conn:
        scanned = 0
        for table in tables:
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    scanned += 1
                    stored = str(value)
                    for plain in hidden:
                        assert plain not in stored, f"{table} holds personal data in the clear"
                        assert plain.lower() not in stored.lower(), table
    assert scanned > 0


def test_no_log_record_holds_personal_data(
    members, make_member, identities, members_via, caplog
) -> None:
    # SQL echo off, as in production; then DEBUG for everything else (in this order: each call
    # also sets the capturing handler's level).
    caplog.set_level(logging.WARNING, logger="sqlalchemy")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("service.member").debug("probe")
    assert [r.getMessage() for r in caplog.records] == ["probe"], "DEBUG is not captured"
    secrets = onboard_with_every_refusal(members, make_member, identities, members_via)
    for record in caplog.records:
        seen = " ".join((record.getMessage(), str(record.args), record.exc_text or ""))
        for plain in secrets:
            assert plain not in seen, f"{record.name} logged personal data"
    for plain in secrets:
        assert plain not in caplog.text
    # The same records as the JSON log writes them (logging.format = JSON), every field read
    # back: its extra fields carry nothing the plain line would not.
    for entry in (json.loads(JsonFormatter().format(r)) for r in caplog.records):
        fields = " ".join(str(value) for value in entry.values())
        for plain in secrets:
            assert plain not in fields, f"{entry['logger']} logged personal data in JSON"


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_one_member_opening_twice_at_once_gets_one_account(members_via, applicant, sql) -> None:
    for _ in range(5):
        gateway = RecordingGateway()
        service: MemberService = members_via(gateway)
        vo, card_id, _ = applicant()
        outcomes = race([(service.open_fund_account, card_id, caller(vo))] * 2)
        codes = sorted(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
        assert codes == ["FUND_ACCOUNT_EXISTS", "FundAccountVo"], outcomes
        assert len(gateway.holders) == 1  # the depository was asked once
        opened = next(o for o in outcomes if not isinstance(o, str))
        assert account_row(sql, vo.member_id).fund_account_no == opened.account_no


def lock_waits_in(sql) -> int:
    """How many transactions wait for a row lock in the test's database now."""
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS w"
                " JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id"
                " WHERE l.lock_table LIKE :schema"
            ),
            {"schema": f"`{sql.url.database}`.%"},
        ).scalar_one()


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_a_card_is_not_unbound_while_the_depository_opens_the_account_with_it(
    members, members_via, applicant, sql
) -> None:
    """The owner unbinds the card while the depository is opening the account with it: the
    unbinding waits (seen in InnoDB's lock waits, not by timing) until the account is open and
    committed, and only then unbinds the card."""
    vo, card_id, _ = applicant()
    unbound = threading.Event()
    failures: list[BaseException] = []
    seen: dict[str, bool] = {}

    def unbind() -> None:
        try:
            members.unbind_card(card_id, caller(vo))
        except BaseException as e:  # surfaced by the assertion below
            failures.append(e)
        finally:
            unbound.set()

    worker = threading.Thread(target=unbind)

    class UnbindingMeanwhile(SandboxGateway):
        def open_account(self, holder: AccountHolder) -> GatewayResult:
            worker.start()
            while not unbound.is_set() and not lock_waits_in(sql):
                unbound.wait(0.01)
            seen["unbound while opening"] = unbound.is_set()
            return super().open_account(holder)

    account = members_via(UnbindingMeanwhile()).open_fund_account(card_id, caller(vo))
    worker.join()
    assert not failures
    assert seen == {"unbound while opening": False}
    assert account_row(sql, vo.member_id).fund_account_no == account.account_no
    assert members.list_cards(caller(vo)).items == ()  # unbound once the account was open
