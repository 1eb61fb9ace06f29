"""The ledger and its invariant check: balanced postings pass; each kind of corruption,
written with plain SQL behind the code's back, is reported by the check that guards it."""

from decimal import Decimal

import pytest
from sqlalchemy import text

from server.cli import main
from service.audit import LedgerAudit
from service.errors import BusinessError
from service.ledger import AVAILABLE, FROZEN, Ledger, UnbalancedPostingError, credit, debit

D = Decimal


@pytest.fixture
def ledger(platform):
    return Ledger(platform.tx)


@pytest.fixture
def audit(platform):
    return LedgerAudit(platform.tx)


def failing(report) -> dict[str, tuple[str, ...]]:
    return {c.name: c.problems for c in report.checks if not c.ok}


def recharge(platform, ledger, member_id: int, amount: str) -> None:
    """Money in, as the payment service records it: an order and its posting."""

    def work():
        account = ledger.account_of(member_id)
        clearing = ledger.platform("CLEARING")
        platform.tx.session().execute(
            text(
                "INSERT INTO payment_order (order_no, member_id, type, amount, status, request_no,"
                " created_at, updated_at) VALUES (:no, :m, 'RECHARGE', :fen, 'SUCCESS', :no,"
                " '2026-01-01', '2026-01-01')"
            ),
            {"no": f"T{member_id}-{amount}", "m": member_id, "fen": int(D(amount) * 100)},
        )
        ledger.post(
            "RECHARGE",
            ("payment_order", member_id),
            [debit(clearing, AVAILABLE, D(amount)), credit(account, AVAILABLE, D(amount))],
        )

    platform.tx.run(work)


def test_balanced_postings_keep_every_invariant(platform, ledger, audit, make_member, sql):
    member = make_member("INVESTOR")
    recharge(platform, ledger, member.member_id, "1000.00")

    def freeze():
        account = ledger.account_of(member.member_id)
        ledger.post(
            "FREEZE",
            ("test", 1),
            [debit(account, AVAILABLE, D("300.00")), credit(account, FROZEN, D("300.00"))],
        )

    platform.tx.run(freeze)
    with sql.connect() as conn:
        row = conn.execute(
            text("SELECT available, frozen FROM account WHERE member_id = :m"),
            {"m": member.member_id},
        ).one()
    assert tuple(row) == (70000, 30000)
    report = audit.run()
    # The frozen 300.00 belongs to no investment or withdrawal: exactly that is reported.
    assert set(failing(report)) == {"every frozen fen is accounted for"}


def test_an_unbalanced_posting_is_refused_before_anything_moves(platform, ledger, make_member, sql):
    member = make_member("INVESTOR")

    def bad():
        account = ledger.account_of(member.member_id)
        ledger.post(
            "BAD",
            ("test", 1),
            [
                debit(ledger.platform("CLEARING"), AVAILABLE, D("1.00")),
                credit(account, AVAILABLE, D("0.99")),
            ],
        )

    with pytest.raises(UnbalancedPostingError):
        platform.tx.run(bad)
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM posting")).scalar() == 0


def test_insufficient_funds_leaves_nothing_half_written(platform, ledger, make_member, sql):
    member = make_member("INVESTOR")
    recharge(platform, ledger, member.member_id, "10.00")

    def overdraw():
        account = ledger.account_of(member.member_id)
        ledger.post(
            "FREEZE",
            ("test", 2),
            [debit(account, AVAILABLE, D("10.01")), credit(account, FROZEN, D("10.01"))],
        )

    with pytest.raises(BusinessError) as e:
        platform.tx.run(overdraw)
    assert e.value.code == "INSUFFICIENT_FUNDS"
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM posting")).scalar() == 1
        row = conn.execute(
            text("SELECT available, frozen FROM account WHERE member_id = :m"),
            {"m": member.member_id},
        ).one()
    assert tuple(row) == (1000, 0)


@pytest.mark.parametrize(
    ("corruption", "check"),
    [
        (
            "UPDATE posting_entry SET amount = amount + 1 WHERE direction = 'C'",
            "every posting balances",
        ),
        (
            "UPDATE account SET available = available + 1 WHERE member_id IS NOT NULL",
            "every balance equals its entries",
        ),
        ("UPDATE payment_order SET amount = amount + 100", "the books close"),
        ("UPDATE loan SET raised = 1", "raised equals investments"),
    ],
)
def test_each_corruption_is_reported_by_its_check(
    platform, ledger, audit, make_member, sql, corruption, check
):
    member = make_member("INVESTOR")
    borrower = make_member("BORROWER")
    recharge(platform, ledger, member.member_id, "500.00")
    with sql.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO loan (title, description, borrower_id, amount, annual_rate,"
                " term_months, repayment_method, min_invest, raise_days, status, published_by,"
                " created_at, updated_at, raised) VALUES ('t', 'd', :b, 100000, 120000, 12,"
                " 'BULLET', 10000, 10, 'PENDING_AUDIT', :b, '2026-01-01', '2026-01-01', 0)"
            ),
            {"b": borrower.member_id},
        )
    assert audit.run().ok
    with sql.begin() as conn:
        conn.execute(text(corruption))
    report = audit.run()
    assert check in failing(report)
    assert all(failing(report)[check])  # each problem says what is off


def test_check_ledger_command_exits_non_zero_when_broken(
    service_url, platform, ledger, make_member, sql, capsys
):
    member = make_member("INVESTOR")
    recharge(platform, ledger, member.member_id, "20.00")
    settings = ["--set", f"database.url={service_url}"]
    assert main(["check-ledger", *settings]) == 0
    assert "ledger OK" in capsys.readouterr().out
    with sql.begin() as conn:
        conn.execute(text("UPDATE account SET available = 0 WHERE member_id IS NOT NULL"))
    assert main(["check-ledger", *settings]) == 1
    out = capsys.readouterr().out
    assert "FAIL every balance equals its entries" in out
    assert "ledger NOT OK" in out


def test_the_platforms_own_money_at_the_bank_closes_the_books_beside_the_members(
    platform, ledger, audit, make_member
):
    """The owners' funding enters the platform's mirror (PLATFORM_FUNDS), the platform's
    income moves from the members' mirror (CLEARING) into it, and a bank fee leaves it: the
    two mirrors close on what entered, the owners' funding and the fees, and CLEARING stays
    the members' total."""
    member = make_member("INVESTOR")
    recharge(platform, ledger, member.member_id, "100.00")

    def fund_earn_and_pay_a_fee():
        funds, owners = ledger.platform("PLATFORM_FUNDS"), ledger.platform("OWNER_FUNDING")
        ledger.post(
            "PLATFORM_FUND",
            ("test", 1),
            [debit(funds, AVAILABLE, D("50.00")), credit(owners, AVAILABLE, D("50.00"))],
        )
        account = ledger.account_of(member.member_id)
        ledger.post(
            "SERVICE_FEE",
            ("test", 2),
            [debit(account, AVAILABLE, D("3.00")), *ledger.earned(D("3.00"))],
        )
        platform.tx.session().execute(
            text(
                "INSERT INTO bank_order (order_no, order_type, ref_type, ref_id, member_id,"
                " amount, fee, status, send_count, query_count, created_at, updated_at,"
                " finished_at) VALUES ('R1', 'RECHARGE', 'test', 3, :m, 100, 150, 'SUCCEEDED',"
                " 1, 0, '2026-01-01', '2026-01-01', '2026-01-01')"
            ),
            {"m": member.member_id},
        )
        ledger.post(
            "BANK_FEE",
            ("BANK_ORDER", 1),
            [
                debit(ledger.platform("BANK_FEES"), AVAILABLE, D("1.50")),
                credit(funds, AVAILABLE, D("1.50")),
            ],
        )

    platform.tx.run(fund_earn_and_pay_a_fee)
    report = audit.run()
    assert report.ok, failing(report)


def test_income_taken_from_a_member_without_moving_the_mirrors_is_reported(
    platform, ledger, audit, make_member
):
    """A balanced posting from a member to FEE_INCOME alone leaves the member's money in
    CLEARING: the books still close, but CLEARING no longer equals the members' total."""
    member = make_member("INVESTOR")
    recharge(platform, ledger, member.member_id, "100.00")

    def income_only():
        account = ledger.account_of(member.member_id)
        ledger.post(
            "SERVICE_FEE",
            ("test", 1),
            [
                debit(account, AVAILABLE, D("3.00")),
                credit(ledger.platform("FEE_INCOME"), AVAILABLE, D("3.00")),
            ],
        )

    platform.tx.run(income_only)
    assert failing(audit.run()) == {
        "clearing equals the members' money": (
            "clearing 100.00 != members' available + frozen 97.00",
        )
    }
