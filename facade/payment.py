"""PaymentFacade: money entering (recharge) and leaving (withdraw) the platform through the
depository, and the payment orders that record each."""

from spyne import ComplexModel, DateTime, Enum, Long, Unicode

from facade.contract import BORROWER, GET, INVESTOR, POST, Facade, operation
from facade.types import (
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

NS = "http://p2p.hry.com/facade/payment"

PaymentOrderType = Enum("RECHARGE", "WITHDRAW", type_name="PaymentOrderType")
PaymentOrderType.__namespace__ = NS

PaymentOrderStatus = Enum(
    "PENDING", "SUCCESS", "FAILED", "REVERSED", type_name="PaymentOrderStatus"
)
PaymentOrderStatus.__namespace__ = NS


class PaymentOrderDto(ComplexModel):
    """A recharge or withdrawal order and what the depository made of it."""

    __namespace__ = NS
    _type_info = [
        ("orderNo", required(Unicode, "The order number, unique on the platform.")),
        ("type", required(PaymentOrderType, "RECHARGE or WITHDRAW.")),
        ("amount", required(Money, "Amount in yuan.")),
        (
            "status",
            required(
                PaymentOrderStatus,
                "PENDING while the depository has not answered, then SUCCESS or FAILED; a "
                "withdrawal's SUCCESS becomes REVERSED when the receiving bank returns the "
                "money (退单), which is then back in your available balance.",
            ),
        ),
        (
            "failureReason",
            optional(MultilineText, "Why the depository refused; only when FAILED."),
        ),
        (
            "authorizeUrl",
            optional(
                Unicode,
                "While PENDING, once the depository has accepted the order: the bank's page "
                "where you confirm it with your bank password. Open it, confirm, then follow "
                "the order with getOrder until it is SUCCESS or FAILED.",
            ),
        ),
        (
            "cardNumber",
            optional(Unicode, "The bound card a withdrawal pays out to, masked to its last 4."),
        ),
        ("createdAt", required(DateTime, "When the order was made (UTC).")),
        ("updatedAt", required(DateTime, "When its status last changed (UTC).")),
    ]


class PaymentOrderPageDto(ComplexModel):
    """One page of the caller's payment orders."""

    __namespace__ = NS
    _type_info = page_fields(PaymentOrderDto, "The orders on this page, newest first.")


PaymentAmount = required(
    PositiveMoney,
    "Amount in yuan: above 0, at most 2 decimals, at most the largest loan amount "
    "(setting loan.max_amount).",
)
OrderNo = required(Unicode(min_len=1, max_len=32), "The order number.")
CardId = required(Long, "One of your bound cards (MemberFacade.listCards), to pay out to.")


class PaymentFacade(Facade):
    """Recharging and withdrawing through the depository bank, and the orders that record it."""

    namespace = NS
    service = "service.payment:PaymentService"

    @operation(
        rest=POST("/payments/recharges", status=201),
        returns=PaymentOrderDto,
        roles=[INVESTOR, BORROWER],
        errors=(
            "FUND_ACCOUNT_REQUIRED",
            "IDENTITY_NOT_VERIFIED",
            "MEMBER_NOT_FOUND",
            "REQUEST_NO_REUSED",
        ),
    )
    def recharge(amount: PaymentAmount, requestNo: RequestNo):
        """Recharge (充值): move amount from your bank into your available balance through the
        depository. Your real name must be verified (IDENTITY_NOT_VERIFIED) and your fund
        account open (FUND_ACCOUNT_REQUIRED). Returns the order: SUCCESS with the balance
        credited, or FAILED with the depository's reason and nothing moved; or PENDING when
        the depository answers later (the depository bank): a recharge is member-authorised,
        so follow the order with getOrder, open its authorizeUrl as soon as it has one and
        confirm there; the balance is credited when the order becomes SUCCESS. A repeat with
        the same requestNo returns the same order; the same requestNo with another amount is
        REQUEST_NO_REUSED."""

    @operation(
        rest=POST("/payments/withdrawals", status=201),
        returns=PaymentOrderDto,
        roles=[INVESTOR, BORROWER],
        errors=(
            "CARD_NOT_FOUND",
            "FUND_ACCOUNT_REQUIRED",
            "IDENTITY_NOT_VERIFIED",
            "INSUFFICIENT_FUNDS",
            "MEMBER_NOT_FOUND",
            "REQUEST_NO_REUSED",
        ),
    )
    def withdraw(amount: PaymentAmount, cardId: CardId, requestNo: RequestNo):
        """Withdraw (提现): amount leaves your available balance for one of your bound bank
        cards (CARD_NOT_FOUND for a card that is not yours or no longer bound) through the
        depository. It is frozen first (INSUFFICIENT_FUNDS when the available balance is too
        low); on SUCCESS it leaves the platform, on FAILED it is unfrozen and available
        again. With the depository bank the order is PENDING (frozen) until the bank says: a
        withdrawal is member-authorised, so follow it with getOrder and confirm on its
        authorizeUrl; a SUCCESS the receiving bank later returns becomes REVERSED, the amount
        back in your available balance, and you get a message. Your real name must be
        verified (IDENTITY_NOT_VERIFIED) and your fund account open (FUND_ACCOUNT_REQUIRED).
        A repeat with the same requestNo returns the same order; the same requestNo with
        another amount or card is REQUEST_NO_REUSED."""

    @operation(
        rest=GET("/payments/{orderNo}"),
        returns=PaymentOrderDto,
        roles=[INVESTOR, BORROWER],
        errors=("PAYMENT_ORDER_NOT_FOUND",),
    )
    def getOrder(orderNo: OrderNo):
        """One of your payment orders, by order number; PAYMENT_ORDER_NOT_FOUND for a number
        that is not yours."""

    @operation(rest=GET("/payments"), returns=PaymentOrderPageDto, roles=[INVESTOR, BORROWER])
    def listOrders(page: PageParam, pageSize: PageSizeParam):
        """Your payment orders, recharges and withdrawals, newest first, paged."""
