"""AccountFacade: a member's balances and the ledger entries that made them."""

from spyne import ComplexModel, DateTime, Decimal, Enum, Long, Unicode

from facade.contract import BORROWER, GET, INVESTOR, Facade, operation
from facade.types import (
    Money,
    PageParam,
    PageSizeParam,
    page_fields,
    required,
)

NS = "http://p2p.hry.com/facade/account"

#: A change of a balance in yuan, negative when it went down: exact to the fen.
SignedMoney = Decimal(total_digits=15, fraction_digits=2, type_name="signedMoney")
SignedMoney.__namespace__ = NS

Bucket = Enum("AVAILABLE", "FROZEN", type_name="Bucket")
Bucket.__namespace__ = NS

Direction = Enum("D", "C", type_name="Direction")
Direction.__namespace__ = NS


class AccountDto(ComplexModel):
    """A member's balances: available to invest or withdraw, and frozen (held for pending
    investments and withdrawals)."""

    __namespace__ = NS
    _type_info = [
        ("memberId", required(Long, "The member.")),
        ("available", required(Money, "Available balance in yuan.")),
        ("frozen", required(Money, "Frozen balance in yuan.")),
        ("total", required(Money, "available + frozen.")),
    ]


class PostingDto(ComplexModel):
    """One entry on the caller's account: one bucket changed by one posting of the ledger."""

    __namespace__ = NS
    _type_info = [
        ("postingId", required(Long, "The posting (one balanced money movement) it belongs to.")),
        (
            "businessType",
            required(Unicode, "What moved the money, e.g. RECHARGE, WITHDRAW_FREEZE, WITHDRAW."),
        ),
        ("refType", required(Unicode, "What caused it, e.g. PAYMENT_ORDER.")),
        ("refId", required(Long, "The id of what caused it.")),
        ("bucket", required(Bucket, "The balance changed: AVAILABLE or FROZEN.")),
        ("direction", required(Direction, "D (debit) or C (credit), as booked.")),
        ("amount", required(Money, "The entry's amount, always positive.")),
        (
            "balanceEffect",
            required(SignedMoney, "How the bucket changed: positive up, negative down."),
        ),
        ("createdAt", required(DateTime, "When it was booked (UTC).")),
    ]


class PostingPageDto(ComplexModel):
    """One page of the caller's ledger entries."""

    __namespace__ = NS
    _type_info = page_fields(PostingDto, "The entries on this page, newest first.")


class AccountFacade(Facade):
    """Members' accounts: balances and the ledger entries behind them."""

    namespace = NS
    service = "service.account:AccountService"

    @operation(
        rest=GET("/accounts/me"),
        returns=AccountDto,
        roles=[INVESTOR, BORROWER],
        errors=("MEMBER_NOT_FOUND",),
    )
    def getAccount():
        """Your balances: available, frozen and their total."""

    @operation(
        rest=GET("/accounts/me/postings"),
        returns=PostingPageDto,
        roles=[INVESTOR, BORROWER],
        errors=("MEMBER_NOT_FOUND",),
    )
    def listPostings(page: PageParam, pageSize: PageSizeParam):
        """Every change of your balances, newest first, paged: each entry names the business
        that caused it and its effect on the balance."""
