"""Recharges and withdrawals through the depository bank's orders (payment.gateway BANK), on
SQLite and MariaDB: the call answers PENDING and writes the bank order with its send job;
the job submits it after the commit; the bank's final word settles it exactly once with its
postings; a returned withdrawal (退单) comes back to the member's available balance with a
message. The ledger check passes after every step, orders in flight included."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from service.audit import LedgerAudit
from service.errors import BusinessError
from service.member import BindCardRequest
from service.ocp import protocol
from service.payment import PaymentService
from tests.integration.service.banking import AUTHORIZE, Banking
from tests.integration.service.support import caller, error_of, race
from tests.integration.service.test_bank_treasury import funded as platform_funded

D = Decimal


def balances(sql, member_id: int) -> tuple[Decimal, Decimal]:
    with sql.connect() as conn:
        row = conn.execute(
            text("SELECT available, frozen FROM account WHERE member_id = :m"), {"m": member_id}
        ).one()
    return D(row.available) / 100, D(row.frozen) / 100


def postings(sql, order_id: int) -> list[str]:
    with sql.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT business_type FROM posting WHERE ref_type = 'PAYMENT_ORDER'"
                    " AND ref_id = :id ORDER BY id"
                ),
                {"id": order_id},
            ).scalars()
        )


def order_id(sql, order_no: str) -> int:
    with sql.connect() as conn:
        return conn.execute(
            text("SELECT id FROM payment_order WHERE order_no = :no"), {"no": order_no}
        ).scalar_one()


@pytest.fixture
def investor(make_member):
    return caller(make_member("INVESTOR"))


def funded(banking: Banking, who, amount: str = "1000.00") -> None:
    """Give ``who`` an available balance through a completed bank recharge."""
    order = banking.payments.recharge(D(amount), f"fund-{amount}", who)
    banking.run_jobs()
    banking.notify(banking.notification(order.order_no, "SUCCEEDED", amount))


def test_a_recharge_is_pending_until_the_bank_says_it_succeeded(
    banking: Banking, investor, sql
) -> None:
    order = banking.payments.recharge(D("500.50"), "r-1", investor)
    assert (order.status, order.authorize_url) == ("PENDING", None)
    assert banking.order(order.order_no).status == "CREATED"
    assert banking.bank.submitted == []  # nothing is sent before the commit's job runs
    assert banking.ledger_ok()

    assert banking.run_jobs() == 1
    [sent] = banking.bank.submitted
    assert sent == {
        "orderNo": order.order_no,
        "orderType": "RECHARGE",
        "accountNo": banking.members.get_fund_account(investor).account_no,
        "amount": "500.50",
    }
    row = banking.order(order.order_no)
    assert (row.status, row.send_count, row.authorize_url) == (
        "ACCEPTED",
        1,
        AUTHORIZE + order.order_no,
    )
    shown = banking.payments.get_order(order.order_no, investor)
    assert (shown.status, shown.authorize_url) == ("PENDING", AUTHORIZE + order.order_no)
    assert banking.payments.list_orders(investor).items[0].authorize_url == shown.authorize_url
    assert balances(sql, investor.member_id) == (D("0.00"), D("0.00"))
    assert banking.ledger_ok()

    ack = banking.notify(banking.notification(order.order_no, "SUCCEEDED", "500.50"))
    assert ack.outcome == "applied"
    done = banking.payments.get_order(order.order_no, investor)
    assert (done.status, done.authorize_url) == ("SUCCESS", None)
    assert balances(sql, investor.member_id) == (D("500.50"), D("0.00"))
    assert postings(sql, order_id(sql, order.order_no)) == ["RECHARGE"]
    row = banking.order(order.order_no)
    assert (row.status, row.finished_at is not None, row.next_query_at) == ("SUCCEEDED", True, None)
    assert banking.ledger_ok()


def test_a_recharge_the_bank_fails_moves_nothing(banking: Banking, investor, sql) -> None:
    order = banking.payments.recharge(D("80.00"), "r-2", investor)
    banking.run_jobs()
    message = banking.notification(
        order.order_no, "FAILED", "80.00", reason="AUTHORIZATION_EXPIRED"
    )
    assert banking.notify(message).outcome == "applied"
    done = banking.payments.get_order(order.order_no, investor)
    assert (done.status, done.failure_reason) == ("FAILED", "AUTHORIZATION_EXPIRED")
    assert balances(sql, investor.member_id) == (D("0.00"), D("0.00"))
    assert postings(sql, order_id(sql, order.order_no)) == []
    assert banking.ledger_ok()


def test_a_refusal_in_the_banks_answer_fails_the_order_at_once(banking: Banking, investor) -> None:
    banking.bank.result = protocol.REFUSED
    order = banking.payments.recharge(D("80.00"), "r-3", investor)
    banking.run_jobs()
    done = banking.payments.get_order(order.order_no, investor)
    assert (done.status, done.failure_reason) == ("FAILED", "REFUSED_BY_BANK")
    assert banking.order(order.order_no).status == "FAILED"
    assert banking.ledger_ok()


def test_a_repeated_request_is_the_same_order_and_sends_nothing_again(
    banking: Banking, investor
) -> None:
    first = banking.payments.recharge(D("10.00"), "r-4", investor)
    again = banking.payments.recharge(D("10.00"), "r-4", investor)
    assert again.order_no == first.order_no
    assert banking.run_jobs() == 1
    assert len(banking.bank.submitted) == 1


def test_a_withdrawal_freezes_then_pays_out_when_the_bank_succeeds(
    banking: Banking, investor, sql
) -> None:
    funded(banking, investor)
    card = banking.members.list_cards(investor).items[0]
    order = banking.payments.withdraw(D("300.00"), card.card_id, "w-1", investor)
    assert order.status == "PENDING"
    assert balances(sql, investor.member_id) == (D("700.00"), D("300.00"))
    assert banking.ledger_ok()  # the frozen 300.00 is a pending withdrawal's

    banking.run_jobs()
    sent = banking.bank.submitted[-1]
    assert (sent["orderType"], sent["amount"]) == ("WITHDRAW", "300.00")
    assert sent["cardNumber"].endswith(card.card_number[-4:]) and len(sent["cardNumber"]) >= 16
    assert banking.ledger_ok()

    message = banking.notification(order.order_no, "SUCCEEDED", "300.00", "WITHDRAW")
    assert banking.notify(message).outcome == "applied"
    assert banking.payments.get_order(order.order_no, investor).status == "SUCCESS"
    assert balances(sql, investor.member_id) == (D("700.00"), D("0.00"))
    assert postings(sql, order_id(sql, order.order_no)) == ["WITHDRAW_FREEZE", "WITHDRAW"]
    assert banking.ledger_ok()


def test_a_withdrawal_the_bank_fails_is_unfrozen(banking: Banking, investor, sql) -> None:
    funded(banking, investor)
    card = banking.members.list_cards(investor).items[0]
    order = banking.payments.withdraw(D("300.00"), card.card_id, "w-2", investor)
    banking.run_jobs()
    message = banking.notification(
        order.order_no, "FAILED", "300.00", "WITHDRAW", reason="CARD_FROZEN"
    )
    assert banking.notify(message).outcome == "applied"
    done = banking.payments.get_order(order.order_no, investor)
    assert (done.status, done.failure_reason) == ("FAILED", "CARD_FROZEN")
    assert balances(sql, investor.member_id) == (D("1000.00"), D("0.00"))
    assert postings(sql, order_id(sql, order.order_no)) == [
        "WITHDRAW_FREEZE",
        "WITHDRAW_UNFREEZE",
    ]
    assert banking.ledger_ok()


def test_a_returned_withdrawal_comes_back_to_the_available_balance_with_a_message(
    banking: Banking, investor, sql
) -> None:
    funded(banking, investor)
    card = banking.members.list_cards(investor).items[0]
    order = banking.payments.withdraw(D("300.00"), card.card_id, "w-3", investor)
    banking.run_jobs()
    banking.notify(banking.notification(order.order_no, "SUCCEEDED", "300.00", "WITHDRAW"))
    assert balances(sql, investor.member_id) == (D("700.00"), D("0.00"))

    returned = banking.notification(order.order_no, "REVERSED", "300.00", "WITHDRAW")
    assert banking.notify(returned).outcome == "applied"
    assert banking.payments.get_order(order.order_no, investor).status == "REVERSED"
    assert banking.order(order.order_no).status == "REVERSED"
    assert balances(sql, investor.member_id) == (D("1000.00"), D("0.00"))
    assert postings(sql, order_id(sql, order.order_no)) == [
        "WITHDRAW_FREEZE",
        "WITHDRAW",
        "WITHDRAW_REVERSAL",
    ]
    with sql.connect() as conn:
        category, title, body = conn.execute(
            text(
                "SELECT category, title, body FROM member_message WHERE member_id = :m"
                " AND ref_type = 'PAYMENT_ORDER'"
            ),
            {"m": investor.member_id},
        ).one()
    assert (category, title) == ("PAYMENT", "提现被退回")
    assert order.order_no in body and "300.00" in body
    assert banking.ledger_ok()

    assert banking.notify(returned).outcome == "repeat"  # delivered again: nothing moves
    assert balances(sql, investor.member_id) == (D("1000.00"), D("0.00"))
    assert banking.ledger_ok()


def test_a_return_that_outruns_the_success_applies_both_once(
    banking: Banking, investor, sql
) -> None:
    """Events of one order may arrive in any order: REVERSED first means the withdrawal
    succeeded and came back; the success notification arriving afterwards confirms it."""
    funded(banking, investor)
    card = banking.members.list_cards(investor).items[0]
    order = banking.payments.withdraw(D("300.00"), card.card_id, "w-4", investor)
    banking.run_jobs()
    returned = banking.notification(order.order_no, "REVERSED", "300.00", "WITHDRAW")
    assert banking.notify(returned).outcome == "applied"
    success = banking.notification(order.order_no, "SUCCEEDED", "300.00", "WITHDRAW")
    assert banking.notify(success).outcome == "confirmed"
    assert balances(sql, investor.member_id) == (D("1000.00"), D("0.00"))
    assert postings(sql, order_id(sql, order.order_no)) == [
        "WITHDRAW_FREEZE",
        "WITHDRAW",
        "WITHDRAW_REVERSAL",
    ]
    assert banking.ledger_ok()


def test_the_sandbox_platform_is_unchanged_by_the_bank(platform, investor) -> None:
    """payment.gateway SANDBOX (the default) confirms at once, as before."""
    order = platform.service(PaymentService).recharge(D("5.00"), "s-1", investor)
    assert (order.status, order.authorize_url) == ("SUCCESS", None)


@pytest.mark.parametrize(
    ("corruption", "payment", "bank"),
    [
        # The bank's success applied without its business effect, and the other way round.
        (
            "UPDATE bank_order SET status = 'SUCCEEDED', finished_at = created_at",
            "PENDING",
            "SUCCEEDED",
        ),
        ("UPDATE payment_order SET status = 'FAILED'", "FAILED", "ACCEPTED"),
    ],
)
def test_a_payment_order_disagreeing_with_its_bank_order_fails_the_ledger_check(
    banking: Banking, investor, sql, corruption: str, payment: str, bank: str
) -> None:
    order = banking.payments.recharge(D("10.00"), "r-9", investor)
    banking.run_jobs()
    with sql.begin() as conn:
        conn.execute(text(corruption))
    report = LedgerAudit(banking.platform.tx).run()
    [check] = [c for c in report.checks if not c.ok]
    assert check.name == "payment orders agree with the bank's"
    assert check.problems == (f"payment order {order.order_no}: {payment}, its bank order {bank}",)


def test_a_return_outrunning_the_success_keeps_no_fee_of_its_own(
    banking: Banking, investor, operator, sql
) -> None:
    """The bank does not refund a withdrawal's fee: a REVERSED event carries 0.00, which is
    not the success's fee. The success that follows brings the fee, posted then, once."""
    platform_funded(banking, operator, "10.00")
    funded(banking, investor)
    card = banking.members.list_cards(investor).items[0]
    order = banking.payments.withdraw(D("300.00"), card.card_id, "w-5", investor)
    banking.run_jobs()
    returned = banking.notification(order.order_no, "REVERSED", "300.00", "WITHDRAW")
    banking.notify(returned)
    assert banking.order(order.order_no).fee is None
    assert fee_postings(sql, banking.order(order.order_no).id) == []
    success = banking.notification(order.order_no, "SUCCEEDED", "300.00", "WITHDRAW", fee="2.00")
    assert banking.notify(success).outcome == "applied"
    row = banking.order(order.order_no)
    assert (row.status, row.fee) == ("REVERSED", 200)
    assert fee_postings(sql, row.id) == [("BANK_FEES", "D", 200), ("PLATFORM_FUNDS", "C", 200)]
    assert banking.ledger_ok()
    again = banking.notification(order.order_no, "SUCCEEDED", "300.00", "WITHDRAW", fee="2.00")
    assert banking.notify(again).outcome == "confirmed"
    assert len(fee_postings(sql, row.id)) == 2
    assert platform_balance(sql, "BANK_FEES") == 200
    assert banking.ledger_ok()


def fee_postings(sql, bank_order_id: int) -> list[tuple[str, str, int]]:
    """The entries of the BANK_FEE postings of one bank order: (account, direction, fen)."""
    with sql.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT a.code, e.direction, e.amount FROM posting p"
                    " JOIN posting_entry e ON e.posting_id = p.id"
                    " JOIN account a ON a.id = e.account_id"
                    " WHERE p.business_type = 'BANK_FEE' AND p.ref_type = 'BANK_ORDER'"
                    " AND p.ref_id = :id ORDER BY e.id"
                ),
                {"id": bank_order_id},
            )
        ]


def platform_balance(sql, code: str) -> int:
    with sql.connect() as conn:
        return conn.execute(
            text("SELECT available FROM account WHERE code = :c"), {"c": code}
        ).scalar_one()


def test_the_banks_fee_is_posted_once_when_the_order_succeeds(
    banking: Banking, investor, operator, sql
) -> None:
    """A recharge and a withdrawal with a fee: each success posts BANK_FEE (debit BANK_FEES,
    credit PLATFORM_FUNDS: the fee leaves the platform's own account, never the members'
    money) in the transaction that settles it; whatever says the same afterwards (the
    notification after a query answer, the notification again) posts nothing more."""
    platform_funded(banking, operator, "10.00")
    order = banking.payments.recharge(D("1000.00"), "f-1", investor)
    banking.run_jobs()
    banking.bank.status[order.order_no] = {
        "status": "SUCCEEDED",
        "orderType": "RECHARGE",
        "amount": "1000.00",
        "fee": "1.50",
    }
    banking.platform.components["clock"].advance(hours=1)
    assert banking.orders.query(order.order_no)
    recharge = banking.order(order.order_no)
    assert (recharge.status, recharge.fee) == ("SUCCEEDED", 150)
    assert fee_postings(sql, recharge.id) == [
        ("BANK_FEES", "D", 150),
        ("PLATFORM_FUNDS", "C", 150),
    ]
    success = banking.notification(order.order_no, "SUCCEEDED", "1000.00", fee="1.50")
    assert banking.notify(success).outcome == "confirmed"
    assert banking.notify(success).outcome == "repeat"
    assert len(fee_postings(sql, recharge.id)) == 2
    assert mirrors(sql) == {"BANK_FEES": 150, "CLEARING": 100000, "PLATFORM_FUNDS": 850}
    assert banking.ledger_ok()

    card = banking.members.list_cards(investor).items[0]
    order = banking.payments.withdraw(D("300.00"), card.card_id, "f-2", investor)
    banking.run_jobs()
    paid = banking.notification(order.order_no, "SUCCEEDED", "300.00", "WITHDRAW", fee="2.00")
    assert banking.notify(paid).outcome == "applied"
    assert banking.notify(paid).outcome == "repeat"
    withdrawal = banking.order(order.order_no)
    assert fee_postings(sql, withdrawal.id) == [
        ("BANK_FEES", "D", 200),
        ("PLATFORM_FUNDS", "C", 200),
    ]
    assert balances(sql, investor.member_id) == (D("700.00"), D("0.00"))
    assert mirrors(sql) == {"BANK_FEES": 350, "CLEARING": 70000, "PLATFORM_FUNDS": 650}
    assert banking.ledger_ok()


def mirrors(sql) -> dict[str, int]:
    """The bank's fees and the two mirrors of the money at the bank, in fen."""
    return {
        code: platform_balance(sql, code) for code in ("BANK_FEES", "CLEARING", "PLATFORM_FUNDS")
    }


def test_a_fee_the_platforms_account_cannot_pay_leaves_the_settlement_unapplied(
    banking: Banking, investor, operator, sql
) -> None:
    """The platform's account in the ledger holds 1.00, the bank says the order's fee was 1.50:
    the ledger refuses the fee (INSUFFICIENT_FUNDS), so nothing of the settlement is applied
    and the notification is not acknowledged; once the owners have funded the account, the
    bank's next delivery settles the order with its fee."""
    platform_funded(banking, operator, "1.00")
    order = banking.payments.recharge(D("100.00"), "f-4", investor)
    banking.run_jobs()
    success = banking.notification(order.order_no, "SUCCEEDED", "100.00", fee="1.50")
    with pytest.raises(BusinessError) as refused:
        banking.notify(success)
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    assert banking.order(order.order_no).status == "ACCEPTED"
    assert banking.payments.get_order(order.order_no, investor).status == "PENDING"
    assert balances(sql, investor.member_id) == (D("0.00"), D("0.00"))
    assert mirrors(sql) == {"BANK_FEES": 0, "CLEARING": 0, "PLATFORM_FUNDS": 100}
    assert banking.ledger_ok()

    platform_funded(banking, operator, "1.00", "fund-2")
    assert banking.notify(success).outcome == "applied"
    assert banking.payments.get_order(order.order_no, investor).status == "SUCCESS"
    assert mirrors(sql) == {"BANK_FEES": 150, "CLEARING": 10000, "PLATFORM_FUNDS": 50}
    assert banking.ledger_ok()


def test_a_failed_orders_fee_was_released_and_is_not_posted(
    banking: Banking, investor, sql
) -> None:
    order = banking.payments.recharge(D("80.00"), "f-3", investor)
    banking.run_jobs()
    failed = banking.notification(
        order.order_no, "FAILED", "80.00", fee="1.00", reason="DECLINED_BY_BANK"
    )
    assert banking.notify(failed).outcome == "applied"
    assert fee_postings(sql, banking.order(order.order_no).id) == []
    assert platform_balance(sql, "BANK_FEES") == 0
    assert banking.ledger_ok()


def test_a_fee_the_ledger_lacks_fails_the_books_close_check(
    banking: Banking, investor, operator, sql
) -> None:
    """The check sums the fees the bank orders record, not the postings: a fee recorded on a
    succeeded order but never posted shows."""
    platform_funded(banking, operator, "5.00")
    funded(banking, investor)
    with sql.begin() as conn:
        conn.execute(
            text(
                "UPDATE bank_order SET fee = 100"
                " WHERE status = 'SUCCEEDED' AND order_type = 'RECHARGE'"
            )
        )
    report = LedgerAudit(banking.platform.tx).run()
    [check] = [c for c in report.checks if not c.ok]
    assert check.name == "the books close"
    assert check.problems == (
        "clearing + platform funds 1000.00 + 5.00 != recharged - withdrawn + owners' funding"
        " - bank fees 1000.00 + 5.00 - 1.00",
    )


def test_the_evidence_names_the_bank_key_that_signed_each_answer(
    banking: Banking, investor, sql
) -> None:
    """A signed answer's evidence keeps the bank key id that verified it; an answer that never
    came names none."""
    answered = banking.payments.recharge(D("10.00"), "k-1", investor)
    banking.run_jobs()
    banking.bank.result = None
    unanswered = banking.payments.recharge(D("20.00"), "k-2", investor)
    banking.run_jobs()
    with sql.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT b.order_no, e.signature, e.key_id, e.error FROM bank_evidence e"
                " JOIN bank_order b ON b.id = e.order_id WHERE e.kind = 'RESPONSE'"
            )
        ).all()
    shown = {row.order_no: (row.signature, row.key_id, row.error) for row in rows}
    assert shown == {
        answered.order_no: ("VALID", "bank-test", None),
        unanswered.order_no: (None, None, "read_timeout"),
    }


# -- a card in use is not unbound ------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["SUCCEEDED", "FAILED"])
def test_a_card_a_pending_withdrawal_names_is_not_unbound_until_it_is_final(
    banking: Banking, investor, sql, outcome: str
) -> None:
    funded(banking, investor)
    card = banking.members.list_cards(investor).items[0]
    order = banking.payments.withdraw(D("300.00"), card.card_id, "w-in-use", investor)
    e = error_of(banking.members.unbind_card, card.card_id, investor)
    assert e.code == "CARD_IN_USE"
    assert str(card.card_id) in e.message
    banking.run_jobs()
    e = error_of(banking.members.unbind_card, card.card_id, investor)
    assert e.code == "CARD_IN_USE"  # accepted by the bank, not paid out yet
    assert banking.members.list_cards(investor).items == (card,)

    banking.notify(banking.notification(order.order_no, outcome, "300.00", "WITHDRAW"))
    assert banking.members.unbind_card(card.card_id, investor) is None
    assert banking.members.list_cards(investor).items == ()
    assert banking.ledger_ok()


def test_another_cards_pending_withdrawal_does_not_hold_this_one(
    banking: Banking, investor, identities
) -> None:
    funded(banking, investor)
    card = banking.members.list_cards(investor).items[0]
    spare = banking.members.bind_card(
        BindCardRequest(identities().card_number, "中国银行", "13987654321"), investor
    )
    banking.payments.withdraw(D("300.00"), card.card_id, "w-other-card", investor)
    assert banking.members.unbind_card(spare.card_id, investor) is None
    assert error_of(banking.members.unbind_card, card.card_id, investor).code == "CARD_IN_USE"


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_a_withdrawal_and_the_unbinding_of_its_card_at_once_never_both_pass(
    banking: Banking, investor, identities, sql
) -> None:
    """Either the unbinding wins (the withdrawal finds no bound card) or the withdrawal wins
    (the unbinding finds it in use); the bank is never given a card that is unbound."""
    funded(banking, investor)
    for i in range(8):
        card = banking.members.bind_card(
            BindCardRequest(identities().card_number, "中国银行", "13987654321"), investor
        )
        withdraw = (banking.payments.withdraw, D("10.00"), card.card_id, f"w-race-{i}", investor)
        unbind = (banking.members.unbind_card, card.card_id, investor)
        paid, unbound = race([withdraw, unbind])
        if unbound is None:
            assert paid == "CARD_NOT_FOUND", (paid, unbound)
        else:
            assert (unbound, paid.status) == ("CARD_IN_USE", "PENDING"), (paid, unbound)
            banking.run_jobs()
            banking.notify(banking.notification(paid.order_no, "SUCCEEDED", "10.00", "WITHDRAW"))
            banking.members.unbind_card(card.card_id, investor)
        with sql.connect() as conn:
            pending_to_unbound = conn.execute(
                text(
                    "SELECT COUNT(*) FROM payment_order o JOIN bank_card c ON c.id = o.card_id"
                    " WHERE o.status = 'PENDING' AND c.status = 'UNBOUND'"
                )
            ).scalar_one()
        assert pending_to_unbound == 0
    assert banking.ledger_ok()
