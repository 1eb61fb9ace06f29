"""Member messages on SQLite and MariaDB: the messages investing, disbursement, repayment and
settlement write (checked with plain SQL), none when the money call is refused or rolled back,
and a member's reading of their own messages: paging, ownership, unread count, marking read."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.language import Texts
from service.message import Messages, MessageService
from service.p2p import AuditRequest, investing
from service.payment import PaymentService
from service.security import Principal

D = Decimal
_numbers = itertools.count(1)


def rno(prefix: str) -> str:
    return f"{prefix}{next(_numbers)}"


def messages_in(sql, category: str | None = None) -> list:
    """(member_id, category, ref_type, ref_id, title, body) of every message, in id order."""
    where = "" if category is None else " WHERE category = :c"
    with sql.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT member_id, category, ref_type, ref_id, title, body "
                    f"FROM member_message{where} ORDER BY id"
                ),
                {"c": category},
            )
        )


def scalar(sql, query: str, **params):
    with sql.connect() as conn:
        return conn.scalar(text(query), params)


def principal(vo) -> Principal:
    return Principal(member_id=vo.member_id, role=vo.role)


@pytest.fixture
def payments(platform) -> PaymentService:
    return platform.service(PaymentService)


@pytest.fixture
def inbox(platform) -> MessageService:
    return platform.service(MessageService)


@pytest.fixture
def investor(make_member, payments) -> Principal:
    me = principal(make_member("INVESTOR"))
    payments.recharge(D("100000.00"), rno("r"), me)
    return me


@pytest.fixture
def raising(loans, operator, loan_request):
    """Factory: a new RAISING listing of the test's borrower."""

    def factory(**terms) -> int:
        vo = loans.publish_loan(loan_request(min_invest=D("0.01"), **terms), operator)
        loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
        return vo.loan_id

    return factory


@pytest.fixture
def system_message(platform, clock):
    """Factory: a SYSTEM message to ``member_id`` written by the writer, in its own
    transaction; its id."""

    def factory(member_id: int, title: str = "通知") -> int:
        writer = Messages(platform.tx, clock)
        title_texts, body = Texts(f"{title} (en)", title), Texts("Text", "正文")
        return platform.tx.run(lambda: writer.write(member_id, "SYSTEM", title_texts, body))

    return factory


# -- what the money calls write ------------------------------------------------------------


def test_investing_tells_the_investor(loans, raising, investor, sql) -> None:
    loan_id = raising()
    vo = loans.invest(loan_id, D("1234.50"), rno("i"), investor)
    [(member_id, category, ref_type, ref_id, title, body)] = messages_in(sql)
    assert (member_id, category, ref_type, ref_id) == (
        investor.member_id,
        "INVESTMENT",
        "investment",
        vo.investment_id,
    )
    assert title == "投资成功"
    assert f"标的 {loan_id}" in body and "1234.50 元" in body
    # A repeat of the same requestNo moves nothing, and tells nothing again.
    loans.invest(loan_id, D("1234.50"), f"i{next(_numbers) - 1}", investor)
    assert len(messages_in(sql)) == 1


def test_a_cancelled_listing_tells_each_investor_their_money_is_free_again(
    loans, raising, investor, operator, sql
) -> None:
    loan_id = raising()
    first = loans.invest(loan_id, D("100.00"), rno("i"), investor)
    second = loans.invest(loan_id, D("200.00"), rno("i"), investor)
    loans.cancel_loan(loan_id, "the borrower withdrew", operator)

    released = [m for m in messages_in(sql) if m[4] == "投资资金已解冻"]
    assert [(m[0], m[2], m[3]) for m in released] == [
        (investor.member_id, "investment", first.investment_id),
        (investor.member_id, "investment", second.investment_id),
    ]
    assert "100.00 元已解冻" in released[0][5]


def test_disbursement_tells_each_investor_once_and_the_borrower(
    loans, raising, make_member, payments, operator, borrower, sql
) -> None:
    loan_id = raising(amount=D("10000.00"))
    first = principal(make_member("INVESTOR"))
    second = principal(make_member("INVESTOR"))
    for who in (first, second):
        payments.recharge(D("10000.00"), rno("r"), who)
    loans.invest(loan_id, D("3000.00"), rno("i"), first)
    loans.invest(loan_id, D("4000.00"), rno("i"), second)
    loans.invest(loan_id, D("3000.00"), rno("i"), first)  # two investments, one message
    loans.disburse_loan(loan_id, rno("d"), operator)

    told = messages_in(sql, "DISBURSEMENT")
    assert [(m[0], m[2], m[3]) for m in told] == [
        (first.member_id, "loan", loan_id),
        (second.member_id, "loan", loan_id),
        (borrower.member_id, "loan", loan_id),
    ]
    assert "6000.00 元" in told[0][5] and "4000.00 元" in told[1][5]
    fee = D(scalar(sql, "SELECT fee FROM loan WHERE id = :l", l=loan_id)) / 100
    assert fee == D("100.00")  # loan.platform_fee_rate 1% of 10000.00
    assert "平台服务费 100.00 元" in told[2][5] and "到账 9900.00 元" in told[2][5]


def test_auto_disbursement_writes_in_the_investing_call(
    make_platform, make_member, operator, loan_request, sql
) -> None:
    from service.p2p import LoanService

    platform = make_platform(**{"loan.auto_disburse": True})
    loans = platform.service(LoanService)
    who = principal(make_member("INVESTOR"))
    platform.service(PaymentService).recharge(D("10000.00"), rno("r"), who)
    vo = loans.publish_loan(loan_request(amount=D("500.00"), min_invest=D("0.01")), operator)
    loans.audit_loan(vo.loan_id, AuditRequest(True, None), operator)
    loans.invest(vo.loan_id, D("500.00"), rno("i"), who)
    assert [m[1] for m in messages_in(sql)] == ["INVESTMENT", "DISBURSEMENT", "DISBURSEMENT"]


def test_each_repayment_tells_each_investor_and_the_last_one_the_borrower(
    loans, raising, make_member, payments, operator, borrower, sql
) -> None:
    loan_id = raising(amount=D("1000.01"), term_months=2, repayment_method="EQUAL_PRINCIPAL")
    investors = [principal(make_member("INVESTOR")) for _ in range(3)]
    for who, amount in zip(investors, ("333.33", "333.34", "333.34"), strict=True):
        payments.recharge(D(amount), rno("r"), who)
        loans.invest(loan_id, D(amount), rno("i"), who)
    loans.disburse_loan(loan_id, rno("d"), operator)
    me = principal(borrower)
    payments.recharge(D("100.00"), rno("r"), me)

    for period in (1, 2):
        loans.repay(loan_id, rno("p"), me)
        installment = scalar(
            sql,
            "SELECT id FROM installment WHERE loan_id = :l AND period = :p",
            l=loan_id,
            p=period,
        )
        told = [m for m in messages_in(sql, "REPAYMENT") if m[2] == "installment"]
        told = [m for m in told if m[3] == installment]
        assert sorted(m[0] for m in told) == sorted(w.member_id for w in investors)
        for member_id, _, _, _, title, body in told:
            fen = scalar(
                sql,
                "SELECT principal + interest + penalty FROM receipt "
                "WHERE installment_id = :i AND investor_id = :m",
                i=installment,
                m=member_id,
            )
            assert title == "收到还款"
            assert f"第 {period} 期还款已到账：{D(fen) / 100:.2f} 元" in body
    settled = [m for m in messages_in(sql, "REPAYMENT") if m[0] == borrower.member_id]
    assert [(m[2], m[3], m[4]) for m in settled] == [("loan", loan_id, "借款已结清")]
    assert len(messages_in(sql, "REPAYMENT")) == 2 * 3 + 1


def test_early_settlement_tells_each_investor_once_and_the_borrower(
    loans, raising, make_member, payments, operator, borrower, sql
) -> None:
    loan_id = raising(amount=D("2000.00"), term_months=6)
    investors = [principal(make_member("INVESTOR")) for _ in range(2)]
    for who in investors:
        payments.recharge(D("1000.00"), rno("r"), who)
        loans.invest(loan_id, D("1000.00"), rno("i"), who)
    loans.disburse_loan(loan_id, rno("d"), operator)
    me = principal(borrower)
    payments.recharge(D("500.00"), rno("r"), me)
    loans.settle_early(loan_id, rno("s"), me)

    told = messages_in(sql, "REPAYMENT")
    assert [(m[0], m[2], m[3]) for m in told] == [
        (investors[0].member_id, "loan", loan_id),
        (investors[1].member_id, "loan", loan_id),
        (borrower.member_id, "loan", loan_id),
    ]
    for who, message in zip(investors, told[:2], strict=True):
        fen = scalar(
            sql,
            "SELECT SUM(principal + interest + penalty) FROM receipt "
            "WHERE loan_id = :l AND investor_id = :m",
            l=loan_id,
            m=who.member_id,
        )
        assert f"第 1-6 期还款已到账：{D(fen) / 100:.2f} 元" in message[5]


def test_messages_hold_no_personal_data(loans, raising, investor, operator, sql) -> None:
    loan_id = raising(amount=D("100.00"))
    loans.invest(loan_id, D("100.00"), rno("i"), investor)
    loans.disburse_loan(loan_id, rno("d"), operator)
    mobiles = [r[0] for r in sql.connect().execute(text("SELECT mobile FROM member"))]
    bodies = " ".join(m[4] + m[5] for m in messages_in(sql))
    assert bodies and not any(mobile in bodies for mobile in mobiles)


# -- no money, no message ----------------------------------------------------------------


def test_a_refused_money_call_writes_nothing(
    loans, raising, make_member, investor, borrower, operator, sql
) -> None:
    loan_id = raising(amount=D("1000.00"))
    poor = principal(make_member("INVESTOR"))
    with pytest.raises(BusinessError) as e:
        loans.invest(loan_id, D("10.00"), rno("i"), poor)
    assert e.value.code == "INSUFFICIENT_FUNDS"
    with pytest.raises(BusinessError) as e:
        loans.invest(loan_id, D("1000.01"), rno("i"), investor)
    assert e.value.code == "INVEST_ABOVE_REMAINING"
    loans.invest(loan_id, D("1000.00"), rno("i"), investor)
    loans.disburse_loan(loan_id, rno("d"), operator)
    stranger = principal(make_member("BORROWER"))
    with pytest.raises(BusinessError) as e:
        loans.repay(loan_id, rno("p"), stranger)
    assert e.value.code == "FORBIDDEN"
    assert [m[1] for m in messages_in(sql)] == ["INVESTMENT", "DISBURSEMENT", "DISBURSEMENT"]


def test_a_rolled_back_investment_leaves_no_message(
    loans, raising, investor, monkeypatch, sql
) -> None:
    """The message is written before the investing call fails: the rollback takes both."""
    loan_id = raising()

    def fail(self, loan_id, pages=True):
        raise RuntimeError("failed after the money moved")

    monkeypatch.setattr(investing.InvestingService, "_evict_loan", fail)
    with pytest.raises(RuntimeError):
        loans.invest(loan_id, D("100.00"), rno("i"), investor)
    assert messages_in(sql) == []
    assert scalar(sql, "SELECT COUNT(*) FROM investment") == 0


# -- reading -------------------------------------------------------------------------------


def test_a_member_pages_their_own_messages_newest_first(
    inbox, investor, make_member, system_message
) -> None:
    other = principal(make_member("BORROWER"))
    mine = [system_message(investor.member_id, f"m{k}") for k in range(5)]
    system_message(other.member_id)

    page = inbox.list_messages(investor, page=1, page_size=2)
    assert ([m.message_id for m in page.items], page.total) == (mine[:-3:-1], 5)
    last = inbox.list_messages(investor, page=3, page_size=2)
    assert [m.message_id for m in last.items] == [mine[0]]
    assert inbox.list_messages(investor, page=4, page_size=2).items == ()
    first = page.items[0]
    assert (first.category, first.title, first.body, first.read, first.read_at) == (
        "SYSTEM",
        "m4 (en)",  # in English unless Chinese is asked for
        "Text",
        False,
        None,
    )
    assert (first.ref_type, first.ref_id) == (None, None)
    with pytest.raises(BusinessError) as e:
        inbox.list_messages(investor, page=0)
    assert e.value.code == "VALIDATION_FAILED"


def test_a_member_reads_each_message_in_their_language(
    inbox, loans, raising, investor, system_message, sql
) -> None:
    """Every message is written in both languages and read in the one asked for; one written
    before there was English (its English NULL) is read in Chinese, as written."""
    loan_id = raising()
    loans.invest(loan_id, D("1234.50"), rno("i"), investor)
    [invested] = inbox.list_messages(investor, language="en").items
    assert invested.title == "Investment made"
    assert invested.body.startswith(f"You invested 1234.50 yuan in listing {loan_id} “")
    zh = inbox.get_message(invested.message_id, investor, language="zh")
    assert (zh.title, zh.body) == ("投资成功", messages_in(sql)[0][5])
    assert inbox.mark_read(invested.message_id, investor, language="en").title == (
        "Investment made"
    )
    old = system_message(investor.member_id, "旧通知")
    with sql.begin() as conn:
        forget = "UPDATE member_message SET title_en = NULL, body_en = NULL WHERE id = :id"
        conn.execute(text(forget), {"id": old})
    assert inbox.get_message(old, investor, language="en").title == "旧通知"
    assert inbox.get_message(old, investor, language="zh").title == "旧通知"


def test_reading_and_marking_read(inbox, investor, system_message, clock, sql) -> None:
    ids = [system_message(investor.member_id) for _ in range(4)]
    assert inbox.get_unread_count(investor).unread == 4

    assert inbox.get_message(ids[1], investor).read is False  # reading does not mark it
    clock.advance(minutes=5)
    marked = inbox.mark_read(ids[1], investor)
    assert (marked.read, marked.read_at) == (True, clock.now)
    clock.advance(minutes=5)
    assert inbox.mark_read(ids[1], investor).read_at == clock.now - dt.timedelta(minutes=5)
    assert inbox.get_unread_count(investor).unread == 3
    unread = inbox.list_messages(investor, unread_only=True)
    assert [m.message_id for m in unread.items] == [ids[3], ids[2], ids[0]]
    assert unread.total == 3

    assert inbox.mark_all_read(investor).marked == 3
    assert inbox.mark_all_read(investor).marked == 0
    assert inbox.get_unread_count(investor).unread == 0
    assert scalar(sql, "SELECT COUNT(*) FROM member_message WHERE read_at IS NULL") == 0
    assert inbox.list_messages(investor, unread_only=True).total == 0


def test_another_members_message_is_not_found(
    inbox, investor, make_member, system_message, sql
) -> None:
    other = principal(make_member("INVESTOR"))
    theirs = system_message(other.member_id)
    missing = theirs + 1000
    for message_id in (theirs, missing):
        for call in (inbox.get_message, inbox.mark_read):
            with pytest.raises(BusinessError) as e:
                call(message_id, investor)
            assert e.value.code == "MESSAGE_NOT_FOUND"
            assert str(message_id) in e.value.message
    assert inbox.mark_all_read(investor).marked == 0
    assert inbox.get_unread_count(other).unread == 1
    assert scalar(sql, "SELECT read_at FROM member_message WHERE id = :i", i=theirs) is None
