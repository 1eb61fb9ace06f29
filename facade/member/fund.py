"""MemberFacade's fund account operations (开户): the member's account at the depository bank,
which holds their money; opened before recharging, investing, borrowing or withdrawing."""

from spyne import ComplexModel, DateTime, Enum, Unicode

from facade.contract import BORROWER, GET, INVESTOR, POST, operation
from facade.member.account import NS
from facade.member.cards import CardId
from facade.types import optional, required

FundAccountStatus = Enum("NONE", "PENDING", "OPEN", "REFUSED", type_name="FundAccountStatus")
FundAccountStatus.__namespace__ = NS


class FundAccountDto(ComplexModel):
    """The caller's depository account."""

    __namespace__ = NS
    _type_info = [
        (
            "status",
            required(
                FundAccountStatus,
                "NONE until you apply; PENDING while the depository bank has not decided; "
                "OPEN once opened; REFUSED when the bank refused your last application (you "
                "may apply again).",
            ),
        ),
        ("accountNo", optional(Unicode, "The depository's account number, once open.")),
        ("openedAt", optional(DateTime, "When it was opened (UTC).")),
        (
            "orderNo",
            optional(Unicode, "The application's order at the depository bank (PENDING, REFUSED)."),
        ),
        (
            "authorizeUrl",
            optional(
                Unicode,
                "While PENDING, once the bank has accepted the application: its page where you "
                "confirm it with your bank password.",
            ),
        ),
        ("failureReason", optional(Unicode, "Why the bank refused it (REFUSED).")),
    ]


class FundAccountOperations:
    """The member's account at the depository."""

    @operation(
        rest=POST("/members/current/fund-account", status=201),
        returns=FundAccountDto,
        roles=[INVESTOR, BORROWER],
        errors=(
            "CARD_NOT_FOUND",
            "FUND_ACCOUNT_EXISTS",
            "FUND_ACCOUNT_REFUSED",
            "FUND_ACCOUNT_REQUIRED",
            "IDENTITY_NOT_VERIFIED",
            "MEMBER_NOT_FOUND",
        ),
    )
    def openFundAccount(cardId: CardId):
        """Open your account at the depository bank with your verified name and ID number and
        one of your bound cards (IDENTITY_NOT_VERIFIED, CARD_NOT_FOUND). Recharging,
        investing, borrowing and withdrawing need it (FUND_ACCOUNT_REQUIRED).
        FUND_ACCOUNT_EXISTS when it is open already; FUND_ACCOUNT_REFUSED with the
        depository's reason when it declines at once. With the depository bank the answer is
        PENDING: opening an account is member-authorised, so follow it with getFundAccount,
        open its authorizeUrl as soon as it has one and confirm there; it becomes OPEN, or
        REFUSED with the bank's reason. Calling again while it is PENDING answers the same
        application."""

    @operation(
        rest=GET("/members/current/fund-account"),
        returns=FundAccountDto,
        roles=[INVESTOR, BORROWER],
        errors=("MEMBER_NOT_FOUND",),
    )
    def getFundAccount():
        """Your depository account: NONE until you apply, PENDING while the bank decides (with
        the page where you confirm), OPEN, or REFUSED with why."""
