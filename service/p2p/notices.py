"""The messages the p2p module writes to members when money moves (会员消息).

Each is written by :class:`service.message.Messages` in the transaction that moves the money,
so it exists exactly when the money moved. They name the listing (its id and title) and the
amounts in yuan as exact decimal text; never a member's personal data. Each is written in
Chinese and English (service.language.Texts), side by side here.

One message per member per event: an investor with several investments in a listing gets one
message at its disbursement and one per installment repaid, each for their total (for a
repayment, what they received: the interest service fee kept is deducted, and named). Early
settlement pays every outstanding installment in one posting, so each investor gets one
message for what it paid them.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from dao.p2p import InvestmentEntity, LoanEntity, ReceiptEntity
from service.language import Texts
from service.message import DISBURSEMENT, INVESTMENT, REPAYMENT, Messages


def _yuan(amount: Decimal) -> str:
    return f"{amount:f}"


def _listing(loan: LoanEntity) -> str:
    return f"标的 {loan.id}「{loan.title}」"


def _listing_en(loan: LoanEntity, start: bool = False) -> str:
    """The listing named in English; ``start``: at the start of a sentence."""
    return f"{'Listing' if start else 'listing'} {loan.id} “{loan.title}”"


def _totals(pairs: Iterable[tuple[int, Decimal]]) -> dict[int, Decimal]:
    """Sum amounts by member, in the order each member first appears."""
    totals: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for member_id, amount in pairs:
        totals[member_id] += amount
    return totals


def invested(messages: Messages, loan: LoanEntity, investment: InvestmentEntity) -> None:
    invested_all(messages, loan, [investment])


def invested_all(
    messages: Messages, loan: LoanEntity, investments: Sequence[InvestmentEntity]
) -> None:
    """Each investor told their investment is made (one INSERT for all)."""
    messages.write_each(
        INVESTMENT,
        (
            (
                investment.investor_id,
                Texts("Investment made", "投资成功"),
                Texts(
                    f"You invested {_yuan(investment.amount)} yuan in {_listing_en(loan)}; the "
                    "money is frozen and earns interest from disbursement.",
                    f"您已投资{_listing(loan)} {_yuan(investment.amount)} 元，资金已冻结，"
                    "放款后开始计息。",
                ),
                ("investment", investment.id),
            )
            for investment in investments
        ),
    )


def not_invested(messages: Messages, loan: LoanEntity, investment: InvestmentEntity) -> None:
    """The bank did not freeze an investment (refused, not confirmed in time, cancelled on
    its page): nothing was taken."""
    messages.write(
        investment.investor_id,
        INVESTMENT,
        Texts("Investment not made", "投资未成功"),
        Texts(
            f"Your investment of {_yuan(investment.amount)} yuan in {_listing_en(loan)} was not "
            f"made (the depository bank: {investment.failure_reason}); nothing was frozen.",
            f"您对{_listing(loan)}的 {_yuan(investment.amount)} 元投资未成功"
            f"（存管银行：{investment.failure_reason}），资金未冻结。",
        ),
        ("investment", investment.id),
    )


def released(messages: Messages, loan: LoanEntity, investment: InvestmentEntity) -> None:
    """The bank released an investment's frozen money: the listing failed or was cancelled
    (before or after the bank froze it)."""
    messages.write(
        investment.investor_id,
        INVESTMENT,
        Texts("Investment released", "投资资金已解冻"),
        Texts(
            f"{_listing_en(loan, start=True)} was not disbursed; the {_yuan(investment.amount)} "
            "yuan you invested is released to your available balance.",
            f"{_listing(loan)}未能放款，"
            f"您投资的 {_yuan(investment.amount)} 元已解冻，回到可用余额。",
        ),
        ("investment", investment.id),
    )


def disbursed(
    messages: Messages, loan: LoanEntity, investments: list[InvestmentEntity], fee: Decimal
) -> None:
    for investor_id, amount in _totals((i.investor_id, i.amount) for i in investments).items():
        messages.write(
            investor_id,
            DISBURSEMENT,
            Texts("Listing disbursed", "标的已放款"),
            Texts(
                f"{_listing_en(loan, start=True)} was disbursed; the {_yuan(amount)} yuan you "
                "invested is lent to the borrower and earns interest from now.",
                f"{_listing(loan)}已放款，您投资的 {_yuan(amount)} 元已出借给借款人，开始计息。",
            ),
            ("loan", loan.id),
        )
    messages.write(
        loan.borrower_id,
        DISBURSEMENT,
        Texts("Loan received", "借款已到账"),
        Texts(
            f"{_listing_en(loan, start=True)} was disbursed: {_yuan(loan.amount)} yuan "
            f"borrowed, a service fee of {_yuan(fee)} yuan, {_yuan(loan.amount - fee)} yuan "
            "received.",
            f"{_listing(loan)}已放款：借款 {_yuan(loan.amount)} 元，平台服务费 {_yuan(fee)} 元，"
            f"到账 {_yuan(loan.amount - fee)} 元。",
        ),
        ("loan", loan.id),
    )


def repaid(
    messages: Messages, loan: LoanEntity, receipts: list[ReceiptEntity], ref: tuple[str, int]
) -> None:
    """To each investor paid by ``receipts`` (once their penalty shares and interest service
    fees are set), for the total they received: principal, interest and penalty less the fee,
    the fee named when there is one; all in one multi-row INSERT. An investor paid nothing (an
    installment of 0.00) is not told."""
    totals = _totals(
        (r.investor_id, r.principal + r.interest + r.penalty - r.fee) for r in receipts
    )
    fees = _totals((r.investor_id, r.fee) for r in receipts)
    periods = sorted({r.period for r in receipts})
    what = f"第 {periods[0]} 期" if len(periods) == 1 else f"第 {periods[0]}-{periods[-1]} 期"
    what_en = (
        f"installment {periods[0]}"
        if len(periods) == 1
        else f"installments {periods[0]}-{periods[-1]}"
    )
    messages.write_all(
        REPAYMENT,
        (
            (
                investor_id,
                Texts("Repayment received", "收到还款"),
                Texts(
                    f"The repayment of {what_en} of {_listing_en(loan)} was received: "
                    f"{_yuan(amount)} yuan{_fee_kept_en(fees[investor_id])}.",
                    f"{_listing(loan)}{what}还款已到账：{_yuan(amount)} 元"
                    f"{_fee_kept(fees[investor_id])}。",
                ),
            )
            for investor_id, amount in totals.items()
            if amount
        ),
        ref,
    )


def _fee_kept_en(fee: Decimal) -> str:
    return f" (after the platform's interest service fee of {_yuan(fee)} yuan)" if fee else ""


def _fee_kept(fee: Decimal) -> str:
    return f"（已扣除平台利息管理费 {_yuan(fee)} 元）" if fee else ""


def settled(messages: Messages, loan: LoanEntity) -> None:
    messages.write(
        loan.borrower_id,
        REPAYMENT,
        Texts("Loan settled", "借款已结清"),
        Texts(
            f"{_listing_en(loan, start=True)} is repaid in full.",
            f"{_listing(loan)}已全部还清。",
        ),
        ("loan", loan.id),
    )
