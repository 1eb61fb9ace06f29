"""The platform's own account with payment.gateway SANDBOX (the depository says yes at once), on
SQLite and MariaDB: the owners fund it, the platform pays members from it by purpose, each
movement one row and balanced postings between the two mirrors of the money at the bank; every
refusal writes nothing; request numbers repeat the first outcome; a payment the depository
refuses is released; racing payments never spend more than the account holds; the ledger
check passes after each."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from server.registry import build_service
from service.audit import LedgerAudit
from service.gateway import GatewayResult, SandboxGateway
from service.member import IdentityRequest
from service.security import Principal
from service.transaction import IllegalTransactionStateError
from service.treasury import PlatformTransfers, TreasuryService
from tests.integration.service.support import caller, error_of, race

D = Decimal


class RefusingGateway(SandboxGateway):
    """The sandbox, except that it refuses the platform's transfers and fundings."""

    def fund(self, order_no: str, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason="FUNDING_REFUSED")

    def transfer(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=False, reason="PAYEE_BLOCKED")


@pytest.fixture
def treasury(platform) -> TreasuryService:
    return platform.service(TreasuryService)


@pytest.fixture
def refusing(platform) -> TreasuryService:
    """The treasury on a depository that refuses the platform's own orders."""
    return build_service(
        "service.treasury:TreasuryService", {**platform.components, "gateway": RefusingGateway()}
    )


@pytest.fixture
def member(make_member) -> Principal:
    return caller(make_member("INVESTOR"))


def held(sql, code: str) -> tuple[Decimal, Decimal]:
    """A platform account's (available, frozen), in yuan."""
    with sql.connect() as conn:
        row = conn.execute(
            text("SELECT available, frozen FROM account WHERE code = :c"), {"c": code}
        ).one()
    return D(row.available) / 100, D(row.frozen) / 100


def balances(sql, member_id: int) -> tuple[Decimal, Decimal]:
    with sql.connect() as conn:
        row = conn.execute(
            text("SELECT available, frozen FROM account WHERE member_id = :m"), {"m": member_id}
        ).one()
    return D(row.available) / 100, D(row.frozen) / 100


def postings(sql, transfer_id: int) -> list[tuple[str, str, str, str, int]]:
    """The entries of a transfer's postings: (business type, account, bucket, direction, fen);
    a member's account shows as MEMBER."""
    with sql.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT p.business_type, COALESCE(a.code, 'MEMBER'), e.bucket, e.direction,"
                    " e.amount FROM posting p JOIN posting_entry e ON e.posting_id = p.id"
                    " JOIN account a ON a.id = e.account_id"
                    " WHERE p.ref_type = 'platform_transfer' AND p.ref_id = :id ORDER BY e.id"
                ),
                {"id": transfer_id},
            )
        ]


def ledger_ok(platform) -> bool:
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [c for c in report.checks if not c.ok]
    return True


def test_the_owners_fund_the_account_and_the_platform_pays_a_member(
    platform, treasury, operator, member, sql
) -> None:
    funded = treasury.fund_platform_account(D("500.00"), "fund-1", operator)
    assert (funded.kind, funded.status, funded.member_id, funded.amount) == (
        "FUND",
        "SUCCESS",
        None,
        D("500.00"),
    )
    assert funded.order_no.startswith("F") and funded.requested_by == operator.member_id
    assert funded.finished_at is not None and funded.authorize_url is None
    assert postings(sql, funded.transfer_id) == [
        ("PLATFORM_FUND", "PLATFORM_FUNDS", "AVAILABLE", "D", 50000),
        ("PLATFORM_FUND", "OWNER_FUNDING", "AVAILABLE", "C", 50000),
    ]
    assert ledger_ok(platform)

    paid = treasury.pay_member(
        member.member_id, D("88.80"), "MARKETING", "邀请好友奖励", "pay-1", operator
    )
    assert (paid.kind, paid.status, paid.member_id, paid.purpose, paid.memo) == (
        "TRANSFER",
        "SUCCESS",
        member.member_id,
        "MARKETING",
        "邀请好友奖励",
    )
    assert paid.order_no.startswith("T")
    assert balances(sql, member.member_id) == (D("88.80"), D("0.00"))
    assert postings(sql, paid.transfer_id) == [
        ("PLATFORM_TRANSFER_FREEZE", "PLATFORM_FUNDS", "AVAILABLE", "C", 8880),
        ("PLATFORM_TRANSFER_FREEZE", "PLATFORM_FUNDS", "FROZEN", "D", 8880),
        ("PLATFORM_TRANSFER", "PLATFORM_FUNDS", "FROZEN", "C", 8880),
        ("PLATFORM_TRANSFER", "CLEARING", "AVAILABLE", "D", 8880),
        ("PLATFORM_TRANSFER", "MARKETING_EXPENSE", "AVAILABLE", "D", 8880),
        ("PLATFORM_TRANSFER", "MEMBER", "AVAILABLE", "C", 8880),
    ]
    compensated = treasury.pay_member(
        member.member_id, D("11.20"), "COMPENSATION", None, "pay-2", operator
    )
    assert compensated.status == "SUCCESS"
    account = treasury.get_platform_account()
    assert account.account_no == "PF" + platform.settings.current().bank.merchant_id
    assert (account.available, account.frozen, account.owner_funding) == (
        D("400.00"),
        D("0.00"),
        D("500.00"),
    )
    assert (account.marketing_expense, account.compensation_expense) == (D("88.80"), D("11.20"))
    assert (account.fee_income, account.bank_fees) == (D("0.00"), D("0.00"))
    assert held(sql, "CLEARING") == (D("100.00"), D("0.00"))  # the member's money now
    with sql.connect() as conn:
        messages = conn.execute(
            text(
                "SELECT category, title, body, ref_id FROM member_message WHERE member_id = :m"
                " AND ref_type = 'platform_transfer' ORDER BY id"
            ),
            {"m": member.member_id},
        ).all()
    assert [(m.category, m.title, m.ref_id) for m in messages] == [
        ("PAYMENT", "平台转账到账", paid.transfer_id),
        ("PAYMENT", "平台转账到账", compensated.transfer_id),
    ]
    assert "88.80" in messages[0].body and "营销奖励：邀请好友奖励" in messages[0].body
    assert "补偿" in messages[1].body
    assert ledger_ok(platform)


def test_a_payment_above_the_platforms_available_balance_is_refused_and_writes_nothing(
    platform, treasury, operator, member, sql
) -> None:
    treasury.fund_platform_account(D("50.00"), "fund-1", operator)
    refused = error_of(
        treasury.pay_member, member.member_id, D("50.01"), "MARKETING", None, "pay-1", operator
    )
    assert refused.code == "PLATFORM_FUNDS_INSUFFICIENT"
    assert "50.01" in refused.message
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM platform_transfer")).scalar_one() == 1
    assert held(sql, "PLATFORM_FUNDS") == (D("50.00"), D("0.00"))
    # Nothing was claimed: the same request number pays once the account can.
    paid = treasury.pay_member(member.member_id, D("50.00"), "MARKETING", None, "pay-1", operator)
    assert paid.status == "SUCCESS"
    assert held(sql, "PLATFORM_FUNDS") == (D("0.00"), D("0.00"))
    assert ledger_ok(platform)


def test_an_unfunded_account_pays_nobody(treasury, operator, member) -> None:
    code = error_of(
        treasury.pay_member, member.member_id, D("0.01"), "MARKETING", None, "p", operator
    )
    assert code.code == "PLATFORM_FUNDS_INSUFFICIENT"


@pytest.mark.parametrize(
    ("who", "amount", "purpose", "memo", "code"),
    [
        ("nobody", "1.00", "MARKETING", None, "MEMBER_NOT_FOUND"),
        ("unverified", "1.00", "MARKETING", None, "IDENTITY_NOT_VERIFIED"),
        ("operator", "1.00", "MARKETING", None, "IDENTITY_NOT_VERIFIED"),
        ("member", "0.00", "MARKETING", None, "VALIDATION_FAILED"),
        ("member", "1.001", "MARKETING", None, "VALIDATION_FAILED"),
        ("member", "50000000.01", "MARKETING", None, "VALIDATION_FAILED"),
        ("member", "1.00", "BIRTHDAY", None, "VALIDATION_FAILED"),
        ("member", "1.00", "MARKETING", " \t", "VALIDATION_FAILED"),
        ("member", "1.00", "MARKETING", "x" * 201, "VALIDATION_FAILED"),
    ],
)
def test_a_payment_to_no_onboarded_member_or_of_no_valid_amount_is_refused_first(
    platform, treasury, operator, member, make_member, sql, who, amount, purpose, memo, code
) -> None:
    treasury.fund_platform_account(D("100.00"), "fund-1", operator)
    payee = {
        "nobody": 999999,
        "unverified": make_member("INVESTOR", onboarded=False).member_id,
        "operator": operator.member_id,
        "member": member.member_id,
    }[who]
    refused = error_of(treasury.pay_member, payee, D(amount), purpose, memo, "pay-1", operator)
    assert refused.code == code
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM platform_transfer")).scalar_one() == 1
        claimed = conn.execute(
            text("SELECT COUNT(*) FROM request_record WHERE request_no = 'pay-1'")
        ).scalar_one()
    assert claimed == 0
    assert ledger_ok(platform)


def test_a_member_without_a_fund_account_is_refused_fund_account_required(
    treasury, operator, make_member, members, identities
) -> None:
    """Verified, but no account at the depository: the bank has nowhere to pay."""
    who = caller(make_member("INVESTOR", onboarded=False))
    person = identities()
    members.verify_identity(IdentityRequest(person.real_name, person.id_number), who)
    treasury.fund_platform_account(D("10.00"), "fund-1", operator)
    refused = error_of(
        treasury.pay_member, who.member_id, D("1.00"), "MARKETING", None, "p", operator
    )
    assert refused.code == "FUND_ACCOUNT_REQUIRED"


def test_a_request_number_repeats_its_first_outcome_and_refuses_other_content(
    platform, treasury, operator, member, sql
) -> None:
    first_fund = treasury.fund_platform_account(D("100.00"), "fund-1", operator)
    assert treasury.fund_platform_account(D("100.00"), "fund-1", operator) == first_fund
    reused = error_of(treasury.fund_platform_account, D("100.01"), "fund-1", operator)
    assert reused.code == "REQUEST_NO_REUSED"
    first = treasury.pay_member(member.member_id, D("10.00"), "MARKETING", "a", "pay-1", operator)
    again = treasury.pay_member(member.member_id, D("10.00"), "MARKETING", "a", "pay-1", operator)
    assert again == first
    for change in (
        (member.member_id, D("10.01"), "MARKETING", "a"),
        (member.member_id, D("10.00"), "COMPENSATION", "a"),
        (member.member_id, D("10.00"), "MARKETING", "b"),
        (member.member_id, D("10.00"), "MARKETING", None),
    ):
        assert error_of(treasury.pay_member, *change, "pay-1", operator).code == "REQUEST_NO_REUSED"
    with sql.connect() as conn:
        rows = conn.execute(text("SELECT COUNT(*) FROM platform_transfer")).scalar_one()
    assert rows == 2
    assert balances(sql, member.member_id) == (D("10.00"), D("0.00"))
    assert held(sql, "PLATFORM_FUNDS") == (D("90.00"), D("0.00"))
    assert ledger_ok(platform)


def test_a_payment_the_depository_refuses_is_released_and_a_refused_funding_moves_nothing(
    platform, treasury, refusing, operator, member, sql
) -> None:
    treasury.fund_platform_account(D("100.00"), "fund-1", operator)
    paid = refusing.pay_member(member.member_id, D("40.00"), "COMPENSATION", None, "p", operator)
    assert (paid.status, paid.failure_reason) == ("FAILED", "PAYEE_BLOCKED")
    assert paid.finished_at is not None
    assert [p[0] for p in postings(sql, paid.transfer_id)] == [
        "PLATFORM_TRANSFER_FREEZE",
        "PLATFORM_TRANSFER_FREEZE",
        "PLATFORM_TRANSFER_UNFREEZE",
        "PLATFORM_TRANSFER_UNFREEZE",
    ]
    assert held(sql, "PLATFORM_FUNDS") == (D("100.00"), D("0.00"))
    assert balances(sql, member.member_id) == (D("0.00"), D("0.00"))
    fund = refusing.fund_platform_account(D("5.00"), "fund-2", operator)
    assert (fund.status, fund.failure_reason) == ("FAILED", "FUNDING_REFUSED")
    assert postings(sql, fund.transfer_id) == []
    assert held(sql, "PLATFORM_FUNDS") == (D("100.00"), D("0.00"))
    assert ledger_ok(platform)


def test_transfers_are_read_one_by_one_and_listed_newest_first(treasury, operator, member) -> None:
    fund = treasury.fund_platform_account(D("100.00"), "fund-1", operator)
    one = treasury.pay_member(member.member_id, D("1.00"), "MARKETING", None, "p-1", operator)
    two = treasury.pay_member(member.member_id, D("2.00"), "COMPENSATION", None, "p-2", operator)
    assert treasury.get_platform_transfer(one.transfer_id) == one
    missing = error_of(treasury.get_platform_transfer, 999999)
    assert missing.code == "PLATFORM_TRANSFER_NOT_FOUND"
    page = treasury.list_platform_transfers()
    assert [t.transfer_id for t in page.items] == [
        two.transfer_id,
        one.transfer_id,
        fund.transfer_id,
    ]
    assert page.total == 3
    transfers = treasury.list_platform_transfers(kind="TRANSFER", page=2, page_size=1)
    assert ([t.transfer_id for t in transfers.items], transfers.total) == ([one.transfer_id], 2)
    mine = treasury.list_platform_transfers(member_id=member.member_id, status="SUCCESS")
    assert [t.transfer_id for t in mine.items] == [two.transfer_id, one.transfer_id]
    assert treasury.list_platform_transfers(status="PENDING").total == 0
    assert error_of(treasury.list_platform_transfers, "GIFT").code == "VALIDATION_FAILED"
    assert error_of(treasury.list_platform_transfers, None, "DONE").code == "VALIDATION_FAILED"


def test_another_service_pays_a_member_inside_its_own_transaction(
    platform, treasury, operator, member, sql
) -> None:
    """What marketing will do: pay within its own transaction, by the same rules; its
    rollback leaves nothing, and outside a transaction nothing is paid at all."""
    treasury.fund_platform_account(D("100.00"), "fund-1", operator)
    c = platform.components
    transfers = PlatformTransfers(c["tx"], c["settings"], c["clock"], c["gateway"], None)

    def reward(request_no: str) -> tuple:
        paid = transfers.pay(
            member.member_id, D("5.00"), "MARKETING", "邀请", request_no, "marketing", None
        )
        return paid.status, paid.requested_by, paid.request_scope

    def reward_then_fail() -> None:
        assert reward("m-1")[0] == "SUCCESS"
        raise RuntimeError("the marketing service's own step failed")

    with pytest.raises(RuntimeError):
        platform.tx.run(reward_then_fail)
    assert balances(sql, member.member_id) == (D("0.00"), D("0.00"))
    assert platform.tx.run(reward, "m-1") == ("SUCCESS", None, "marketing")
    assert balances(sql, member.member_id) == (D("5.00"), D("0.00"))
    with pytest.raises(IllegalTransactionStateError):
        reward("m-2")
    assert ledger_ok(platform)


@pytest.mark.mysql
def test_racing_payments_never_spend_more_than_the_account_holds(
    platform, treasury, operator, make_member, sql, database
) -> None:
    """Twelve payments of 10.00 race for 75.00: exactly seven are paid, the others refused
    PLATFORM_FUNDS_INSUFFICIENT, and the account never goes below zero."""
    if database.engine.url.get_backend_name() != "mysql":
        pytest.skip("a race for a row lock needs MariaDB")
    treasury.fund_platform_account(D("75.00"), "fund-1", operator)
    payees = [caller(make_member("INVESTOR")) for _ in range(4)]
    calls = [
        (
            treasury.pay_member,
            payees[n % 4].member_id,
            D("10.00"),
            "MARKETING",
            None,
            f"r-{n}",
            operator,
        )
        for n in range(12)
    ]
    outcomes = race(calls)
    paid = [o for o in outcomes if not isinstance(o, str)]
    assert [o for o in outcomes if isinstance(o, str)] == ["PLATFORM_FUNDS_INSUFFICIENT"] * 5
    assert len(paid) == 7 and all(p.status == "SUCCESS" for p in paid), outcomes
    assert held(sql, "PLATFORM_FUNDS") == (D("5.00"), D("0.00"))
    assert sum(balances(sql, p.member_id)[0] for p in payees) == D("70.00")
    assert held(sql, "MARKETING_EXPENSE") == (D("70.00"), D("0.00"))
    assert ledger_ok(platform)
