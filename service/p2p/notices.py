"""The messages the p2p module writes to members when money moves (会员消息).

Each is written by :class:`service.message.Messages` in the transaction that moves the money,
so it exists exactly when the money moved. They name the listing (its id and title) and the
amounts in yuan as exact decimal text; never a member's personal data.

One message per member per event: an investor with several investments in a listing gets one
message at its disbursement and one per installment repaid, each for their total. Early
settlement pays every outstanding installment in one posting, so each investor gets one
message for what it paid them.
"""

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from dao.p2p import InvestmentEntity, LoanEntity, ReceiptEntity
from service.message import DISBURSEMENT, INVESTMENT, REPAYMENT, Messages


def _yuan(amount: Decimal) -> str:
    return f"{amount:f}"


def _listing(loan: LoanEntity) -> str:
    return f"标的 {loan.id}「{loan.title}」"


def _totals(pairs: Iterable[tuple[int, Decimal]]) -> dict[int, Decimal]:
    """Sum amounts by member, in the order each member first appears."""
    totals: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for member_id, amount in pairs:
        totals[member_id] += amount
    return totals


def invested(messages: Messages, loan: LoanEntity, investment: InvestmentEntity) -> None:
    messages.write(
        investment.investor_id,
        INVESTMENT,
        "投资成功",
        f"您已投资{_listing(loan)} {_yuan(investment.amount)} 元，资金已冻结，放款后开始计息。",
        ("investment", investment.id),
    )


def not_invested(messages: Messages, loan: LoanEntity, investment: InvestmentEntity) -> None:
    """The bank did not freeze an investment (refused, not confirmed in time, cancelled on
    its page): nothing was taken."""
    messages.write(
        investment.investor_id,
        INVESTMENT,
        "投资未成功",
        f"您对{_listing(loan)}的 {_yuan(investment.amount)} 元投资未成功"
        f"（存管银行：{investment.failure_reason}），资金未冻结。",
        ("investment", investment.id),
    )


def released(messages: Messages, loan: LoanEntity, investment: InvestmentEntity) -> None:
    """The bank released an investment's frozen money: the listing failed or was cancelled
    (before or after the bank froze it)."""
    messages.write(
        investment.investor_id,
        INVESTMENT,
        "投资资金已解冻",
        f"{_listing(loan)}未能放款，您投资的 {_yuan(investment.amount)} 元已解冻，回到可用余额。",
        ("investment", investment.id),
    )


def disbursed(
    messages: Messages, loan: LoanEntity, investments: list[InvestmentEntity], fee: Decimal
) -> None:
    for investor_id, amount in _totals((i.investor_id, i.amount) for i in investments).items():
        messages.write(
            investor_id,
            DISBURSEMENT,
            "标的已放款",
            f"{_listing(loan)}已放款，您投资的 {_yuan(amount)} 元已出借给借款人，开始计息。",
            ("loan", loan.id),
        )
    messages.write(
        loan.borrower_id,
        DISBURSEMENT,
        "借款已到账",
        f"{_listing(loan)}已放款：借款 {_yuan(loan.amount)} 元，平台服务费 {_yuan(fee)} 元，"
        f"到账 {_yuan(loan.amount - fee)} 元。",
        ("loan", loan.id),
    )


def repaid(
    messages: Messages, loan: LoanEntity, receipts: list[ReceiptEntity], ref: tuple[str, int]
) -> None:
    """To each investor paid by ``receipts`` (once their penalty shares are set), for their
    total; an investor paid nothing (an installment of 0.00) is not told."""
    totals = _totals((r.investor_id, r.principal + r.interest + r.penalty) for r in receipts)
    periods = sorted({r.period for r in receipts})
    what = f"第 {periods[0]} 期" if len(periods) == 1 else f"第 {periods[0]}-{periods[-1]} 期"
    for investor_id, amount in totals.items():
        if amount:
            messages.write(
                investor_id,
                REPAYMENT,
                "收到还款",
                f"{_listing(loan)}{what}还款已到账：{_yuan(amount)} 元。",
                ref,
            )


def settled(messages: Messages, loan: LoanEntity) -> None:
    messages.write(
        loan.borrower_id,
        REPAYMENT,
        "借款已结清",
        f"{_listing(loan)}已全部还清。",
        ("loan", loan.id),
    )
