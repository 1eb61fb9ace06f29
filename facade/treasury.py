"""TreasuryFacade: the platform's own account at the depository bank (平台自有账户), its funding
by the platform's owners (平台充值) and its payments to members (平台转账: marketing rewards,
compensation). Operators only."""

from spyne import ComplexModel, DateTime, Enum, Long, Unicode

from facade.contract import GET, OPERATOR, POST, Facade, operation
from facade.types import (
    NOT_BLANK_LINE,
    Money,
    MultilineText,
    PageParam,
    PageSizeParam,
    PositiveMoney,
    RequestNo,
    optional,
    page_fields,
    required,
)

NS = "http://p2p.hry.com/facade/treasury"

TransferKind = Enum("FUND", "TRANSFER", type_name="PlatformTransferKind")
TransferKind.__namespace__ = NS

TransferStatus = Enum("PENDING", "SUCCESS", "FAILED", type_name="PlatformTransferStatus")
TransferStatus.__namespace__ = NS

Purpose = Enum("MARKETING", "COMPENSATION", type_name="PlatformTransferPurpose")
Purpose.__namespace__ = NS


class PlatformAccountDto(ComplexModel):
    """The platform's own account at the depository bank as the ledger holds it, and what has
    moved it."""

    __namespace__ = NS
    _type_info = [
        ("accountNo", required(Unicode, "Its number at the bank (PF and the merchant id).")),
        ("available", required(Money, "What it may pay: fees and transfers to members, yuan.")),
        ("frozen", required(Money, "Held for transfers the bank has not finished, yuan.")),
        ("ownerFunding", required(Money, "What the platform's owners paid in (FUND), yuan.")),
        ("feeIncome", required(Money, "What the platform earned from members: fees, penalties.")),
        ("bankFees", required(Money, "What the bank took in fees from it, yuan.")),
        ("marketingExpense", required(Money, "Paid to members for MARKETING, yuan.")),
        ("compensationExpense", required(Money, "Paid to members for COMPENSATION, yuan.")),
    ]


class PlatformTransferDto(ComplexModel):
    """One movement of the platform's own account: a FUND into it or a TRANSFER from it to a
    member, and what the depository made of it."""

    __namespace__ = NS
    _type_info = [
        ("transferId", required(Long, "Its id.")),
        ("orderNo", required(Unicode, "Its order number at the bank, unique on the platform.")),
        ("kind", required(TransferKind, "FUND (into the account) or TRANSFER (to a member).")),
        ("memberId", optional(Long, "The member paid; only for a TRANSFER.")),
        ("amount", required(Money, "Amount in yuan.")),
        ("purpose", optional(Purpose, "Why the member was paid; only for a TRANSFER.")),
        ("memo", optional(Unicode, "What the member was told about it.")),
        (
            "status",
            required(
                TransferStatus,
                "PENDING while the depository has not answered, then SUCCESS or FAILED.",
            ),
        ),
        ("failureReason", optional(MultilineText, "Why the depository refused; only when FAILED.")),
        ("requestedBy", optional(Long, "The operator who asked; none when a service did.")),
        (
            "authorizeUrl",
            optional(
                Unicode,
                "A PENDING FUND, once the bank has accepted it: the bank's page where the "
                "platform's treasurer confirms it with the bank password.",
            ),
        ),
        ("createdAt", required(DateTime, "When it was asked for (UTC).")),
        ("updatedAt", required(DateTime, "When its status last changed (UTC).")),
        ("finishedAt", optional(DateTime, "When it became SUCCESS or FAILED (UTC).")),
    ]


class PlatformTransferPageDto(ComplexModel):
    """One page of the platform account's movements."""

    __namespace__ = NS
    _type_info = page_fields(PlatformTransferDto, "The movements on this page, newest first.")


Amount = required(
    PositiveMoney,
    "Amount in yuan: above 0, at most 2 decimals, at most the largest loan amount "
    "(setting loan.max_amount).",
)


class TreasuryFacade(Facade):
    """The platform's own account at the depository bank: its balance, its funding by the
    platform's owners and its payments to members. Operators only."""

    namespace = NS
    service = "service.treasury:TreasuryService"

    @operation(rest=GET("/platform-account"), returns=PlatformAccountDto, roles=[OPERATOR])
    def getPlatformAccount():
        """The platform's own account at the bank: what it holds available and frozen, and
        what has moved it (the owners' funding, the income from members, the bank's fees and
        the payments to members by purpose). The bank takes its fees from this account: fund
        it before the bank charges them, or the orders they are charged on stay unsettled
        until it can pay."""

    @operation(
        rest=POST("/platform-account/fundings", status=201),
        returns=PlatformTransferDto,
        roles=[OPERATOR],
        errors=("REQUEST_NO_REUSED",),
    )
    def fundPlatformAccount(amount: Amount, requestNo: RequestNo):
        """Fund the platform's own account (平台充值): amount from the platform's owners into
        it, through the depository. Returns the FUND: SUCCESS at once with the sandbox
        depository (FAILED with its reason, nothing moved, when it refuses); with the
        depository bank PENDING: the platform's treasurer must confirm it on the bank's page
        with the bank password, so follow it with getPlatformTransfer, open its authorizeUrl
        as soon as it has one and confirm there; the account is credited when it becomes
        SUCCESS (FAILED if nobody confirms in time). A repeat with the same requestNo returns
        the same FUND; the same requestNo with another amount is REQUEST_NO_REUSED."""

    @operation(
        rest=POST("/platform-account/transfers", status=201),
        returns=PlatformTransferDto,
        roles=[OPERATOR],
        errors=(
            "FUND_ACCOUNT_REQUIRED",
            "IDENTITY_NOT_VERIFIED",
            "MEMBER_NOT_FOUND",
            "PLATFORM_FUNDS_INSUFFICIENT",
            "REQUEST_NO_REUSED",
        ),
    )
    def payMember(
        memberId: required(Long(ge=1), "The member to pay."),
        amount: Amount,
        purpose: required(
            Purpose,
            "MARKETING (a reward: marketing expense) or COMPENSATION (compensation expense).",
        ),
        memo: optional(
            Unicode(max_len=200, pattern=NOT_BLANK_LINE),
            "Why, in words the member reads in their message; not blank when given.",
        ),
        requestNo: RequestNo,
    ):
        """Pay a member from the platform's own account (平台转账): no confirmation by anyone.
        The member must exist (MEMBER_NOT_FOUND), have verified their real name
        (IDENTITY_NOT_VERIFIED) and opened a fund account (FUND_ACCOUNT_REQUIRED): the bank
        pays into it. The amount is held on the platform's account at once
        (PLATFORM_FUNDS_INSUFFICIENT, nothing written, when its available balance is too
        low). Returns the TRANSFER: SUCCESS at once with the sandbox depository, the money in
        the member's available balance and a message telling them; or PENDING with the
        depository bank until it says: follow it with getPlatformTransfer until SUCCESS or
        FAILED (the amount is available to the platform again). A repeat with the same
        requestNo returns the same TRANSFER; the same requestNo with another member, amount,
        purpose or memo is REQUEST_NO_REUSED."""

    @operation(
        rest=GET("/platform-account/transfers/{transferId}"),
        returns=PlatformTransferDto,
        roles=[OPERATOR],
        errors=("PLATFORM_TRANSFER_NOT_FOUND",),
    )
    def getPlatformTransfer(transferId: required(Long(ge=1), "Its id.")):
        """One FUND or TRANSFER of the platform's account; PLATFORM_TRANSFER_NOT_FOUND for an
        id that names none."""

    @operation(
        rest=GET("/platform-account/transfers"),
        returns=PlatformTransferPageDto,
        roles=[OPERATOR],
    )
    def listPlatformTransfers(
        kind: optional(TransferKind, "Only FUNDs, or only TRANSFERs."),
        status: optional(TransferStatus, "Only those of this status."),
        memberId: optional(Long(ge=1), "Only the TRANSFERs to this member."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """The platform account's FUNDs and TRANSFERs, newest first, paged."""
