"""The fund account opened through the depository bank's orders (payment.gateway BANK), on
SQLite and MariaDB: PENDING until the bank says, OPEN with the bank's account number,
REFUSED with its reason (and applied for again), one application at a time; and the
evidence of what the bank was sent masks the personal data it carried, keeping the exact
bytes sealed, so that no table holds a plain ID or card number."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text

from service import pii
from service.member import BindCardRequest, IdentityRequest
from service.ocp import protocol
from tests.integration.service.banking import AUTHORIZE, Banking
from tests.integration.service.support import caller, sealer

BANK = "中国农业银行"
CARD_MOBILE = "13987654321"


@pytest.fixture
def applicant(banking: Banking, make_member, identities):
    """A verified member with a bound card and no fund account: (principal, card id, who)."""
    vo = make_member("INVESTOR", onboarded=False)
    who = identities()
    members = banking.members
    members.verify_identity(IdentityRequest(who.real_name, who.id_number), caller(vo))
    card = members.bind_card(BindCardRequest(who.card_number, BANK, CARD_MOBILE), caller(vo))
    return caller(vo), card.card_id, who


def test_an_account_is_pending_then_opened_with_the_banks_number(
    banking: Banking, applicant
) -> None:
    who, card_id, person = applicant
    pending = banking.members.open_fund_account(card_id, who)
    assert (pending.status, pending.account_no, pending.authorize_url) == ("PENDING", None, None)
    assert banking.members.get_fund_account(who).order_no == pending.order_no
    assert banking.members.has_fund_account(who).has_fund_account is False

    banking.run_jobs()
    [sent] = banking.bank.submitted
    assert sent == {
        "orderNo": pending.order_no,
        "orderType": "OPEN_ACCOUNT",
        "memberId": str(who.member_id),
        "realName": person.real_name,
        "idNumber": person.id_number,
        "cardNumber": person.card_number,
        "mobile": CARD_MOBILE,
    }
    shown = banking.members.get_fund_account(who)
    assert (shown.status, shown.authorize_url) == ("PENDING", AUTHORIZE + pending.order_no)

    opened = banking.notification(
        pending.order_no, "SUCCEEDED", "0.00", "OPEN_ACCOUNT", accountNo="6212000011112222"
    )
    assert banking.notify(opened).outcome == "applied"
    account = banking.members.get_fund_account(who)
    assert (account.status, account.account_no) == ("OPEN", "6212000011112222")
    assert account.opened_at is not None and account.authorize_url is None
    assert banking.members.has_fund_account(who).has_fund_account is True
    # Onboarded now: the member may recharge.
    assert banking.payments.recharge(Decimal("1.00"), "after-open", who).status == "PENDING"


def test_a_second_call_while_pending_is_the_same_application(banking: Banking, applicant):
    who, card_id, _ = applicant
    first = banking.members.open_fund_account(card_id, who)
    again = banking.members.open_fund_account(card_id, who)
    assert again.order_no == first.order_no
    assert banking.run_jobs() == 1


def test_a_refused_application_shows_why_and_may_be_made_again(banking: Banking, applicant) -> None:
    who, card_id, _ = applicant
    banking.bank.result = protocol.REFUSED
    banking.bank.reason = "ACCOUNT_EXISTS"
    first = banking.members.open_fund_account(card_id, who)
    banking.run_jobs()
    refused = banking.members.get_fund_account(who)
    assert (refused.status, refused.failure_reason, refused.order_no) == (
        "REFUSED",
        "ACCOUNT_EXISTS",
        first.order_no,
    )

    banking.bank.result = protocol.ACCEPTED
    second = banking.members.open_fund_account(card_id, who)
    assert second.status == "PENDING" and second.order_no != first.order_no
    banking.run_jobs()
    failed = banking.notification(
        second.order_no, "FAILED", "0.00", "OPEN_ACCOUNT", reason="AUTHORIZATION_EXPIRED"
    )
    banking.notify(failed)
    assert banking.members.get_fund_account(who).failure_reason == "AUTHORIZATION_EXPIRED"


def test_a_success_without_an_account_number_is_refused_and_changes_nothing(
    banking: Banking, applicant
) -> None:
    who, card_id, _ = applicant
    pending = banking.members.open_fund_account(card_id, who)
    banking.run_jobs()
    with pytest.raises(protocol.MessageInvalid):
        banking.notify(banking.notification(pending.order_no, "SUCCEEDED", "0.00", "OPEN_ACCOUNT"))
    assert banking.members.get_fund_account(who).status == "PENDING"
    assert banking.order(pending.order_no).status == "ACCEPTED"


def test_evidence_masks_personal_data_and_keeps_the_exact_bytes_sealed(
    banking: Banking, applicant, sql, caplog
) -> None:
    who, card_id, person = applicant
    with caplog.at_level(logging.DEBUG):
        pending = banking.members.open_fund_account(card_id, who)
        banking.run_jobs()
        banking.notify(
            banking.notification(
                pending.order_no, "SUCCEEDED", "0.00", "OPEN_ACCOUNT", accountNo="6212000033334444"
            )
        )
        recharge = banking.payments.recharge(Decimal("100.00"), "ev-r", who)
        banking.run_jobs()
        banking.notify(banking.notification(recharge.order_no, "SUCCEEDED", "100.00"))
        order = banking.payments.withdraw(Decimal("0.01"), card_id, "ev-w", who)
        banking.run_jobs()
    with sql.connect() as conn:
        request, sealed = conn.execute(
            text(
                "SELECT e.body, e.body_sealed FROM bank_evidence e JOIN bank_order o"
                " ON e.order_id = o.id WHERE o.order_no = :no AND e.kind = 'REQUEST'"
            ),
            {"no": pending.order_no},
        ).one()
        withdrawal = conn.execute(
            text(
                "SELECT e.body FROM bank_evidence e JOIN bank_order o ON e.order_id = o.id"
                " WHERE o.order_no = :no AND e.kind = 'REQUEST'"
            ),
            {"no": order.order_no},
        ).scalar_one()
    shown = protocol.decode(request.encode())
    assert shown["idNumber"] == pii.mask_id_number(person.id_number)
    assert shown["realName"] == pii.mask_name(person.real_name)
    assert shown["cardNumber"] == pii.mask_card(person.card_number[-4:])
    assert shown["mobile"] == pii.mask_mobile(CARD_MOBILE)
    exact = sealer().open(pii.BANK_MESSAGE, sealed, who.member_id)
    assert protocol.decode(exact.encode())["idNumber"] == person.id_number
    assert protocol.decode(withdrawal.encode())["cardNumber"].endswith(person.card_number[-4:])

    secrets = (person.id_number, person.card_number, person.real_name, CARD_MOBILE)
    scanned = 0
    with sql.connect() as conn:
        for table in inspect(sql).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    scanned += 1
                    assert not any(s in str(value) for s in secrets), f"{table} holds it"
    assert scanned > 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(s in logged for s in secrets)
