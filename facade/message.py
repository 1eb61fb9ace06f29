"""MessageFacade: the messages the platform writes to a member (会员消息), on investing,
disbursement, repayment, settlement and returned withdrawals, and the member's reading of them."""

from spyne import Boolean, ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import BORROWER, GET, INVESTOR, OPERATOR, POST, Facade, operation
from facade.types import PageParam, PageSizeParam, optional, page_fields, required

NS = "http://p2p.hry.com/facade/message"

MessageCategory = Enum(
    "INVESTMENT", "DISBURSEMENT", "REPAYMENT", "SYSTEM", "PAYMENT", type_name="MessageCategory"
)
MessageCategory.__namespace__ = NS


class MessageDto(ComplexModel):
    """One message to the caller."""

    __namespace__ = NS
    _type_info = [
        ("messageId", required(Long, "The message.")),
        (
            "category",
            required(
                MessageCategory,
                "What it is about: INVESTMENT, DISBURSEMENT, REPAYMENT, SYSTEM or PAYMENT "
                "(a recharge or withdrawal).",
            ),
        ),
        ("title", required(Unicode, "A short title.")),
        ("body", required(Unicode, "The text; amounts in yuan.")),
        (
            "refType",
            optional(Unicode, "What it is about, e.g. investment, loan, installment."),
        ),
        ("refId", optional(Long, "The id of what it is about.")),
        ("read", required(Boolean, "true once read.")),
        ("readAt", optional(DateTime, "When it was first read (UTC); absent while unread.")),
        ("createdAt", required(DateTime, "When it was written (UTC).")),
    ]


class MessagePageDto(ComplexModel):
    """One page of the caller's messages."""

    __namespace__ = NS
    _type_info = page_fields(MessageDto, "The messages on this page, newest first.")


class MarkedReadDto(ComplexModel):
    """What marking every message read changed."""

    __namespace__ = NS
    _type_info = [("marked", required(Integer32(ge=0), "Messages that were unread until now."))]


class UnreadCountDto(ComplexModel):
    """How many of the caller's messages are unread."""

    __namespace__ = NS
    _type_info = [("unread", required(Integer32(ge=0), "Unread messages."))]


MessageId = required(Long, "The message.")
UnreadOnly = optional(Boolean, "true for unread messages only (default false).")
MEMBERS = [INVESTOR, BORROWER, OPERATOR]


class MessageFacade(Facade):
    """Your messages from the platform: list, read, mark read, count the unread."""

    namespace = NS
    service = "service.message:MessageService"

    @operation(rest=GET("/messages"), returns=MessagePageDto, roles=MEMBERS)
    def listMessages(
        page: PageParam,
        pageSize: PageSizeParam,
        unreadOnly: UnreadOnly,
    ):
        """Your messages, newest first, paged; only the unread ones with unreadOnly=true."""

    @operation(
        rest=GET("/messages/{messageId}"),
        returns=MessageDto,
        roles=MEMBERS,
        errors=("MESSAGE_NOT_FOUND",),
    )
    def getMessage(messageId: MessageId):
        """One of your messages (reading it does not mark it read). Anyone else's message
        answers MESSAGE_NOT_FOUND, as one that does not exist."""

    @operation(
        rest=POST("/messages/{messageId}/read"),
        returns=MessageDto,
        roles=MEMBERS,
        errors=("MESSAGE_NOT_FOUND",),
    )
    def markRead(messageId: MessageId):
        """Mark one of your messages read; marking it again keeps the time it was first read."""

    @operation(rest=POST("/messages/read"), returns=MarkedReadDto, roles=MEMBERS)
    def markAllRead():
        """Mark all your messages read; says how many were unread."""

    @operation(rest=GET("/messages/unread-count"), returns=UnreadCountDto, roles=MEMBERS)
    def getUnreadCount():
        """How many of your messages are unread."""
