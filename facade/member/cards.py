"""MemberFacade's bank card operations (绑定): cards members bind for withdrawals and their
depository account."""

from spyne import ComplexModel, DateTime, Long, Unicode

from facade.contract import BORROWER, DELETE, GET, INVESTOR, POST, operation
from facade.member.account import NS, Mobile
from facade.types import page_fields, required

CARD_HOLDERS = [INVESTOR, BORROWER]
#: One line with two characters other than space (see facade.types.NOT_BLANK_LINE).
TWO_NOT_BLANK = r"[^\t\n\r]*[^ \t\n\r][^\t\n\r]*[^ \t\n\r][^\t\n\r]*"


class BindCardRequest(ComplexModel):
    """A debit card in the member's own name, and the mobile number the bank has for it."""

    __namespace__ = NS
    _type_info = [
        (
            "cardNumber",
            required(
                Unicode(min_len=16, max_len=23, pattern="( *[0-9]){16,19} *"),
                "16 to 19 digits (spaces allowed between and around them), passing the Luhn check.",
            ),
        ),
        (
            "bankName",
            required(
                Unicode(min_len=2, max_len=50, pattern=TWO_NOT_BLANK),
                "The issuing bank: at least 2 characters besides blanks (blanks at the ends "
                "are dropped, a run of them inside becomes one space).",
            ),
        ),
        ("mobile", required(Mobile, "The mobile number registered with the bank for it.")),
    ]


class BankCardDto(ComplexModel):
    """A bound card; its number is masked to the last 4 digits, even to its owner."""

    __namespace__ = NS
    _type_info = [
        ("cardId", required(Long, "The card, as withdraw and openFundAccount name it.")),
        ("bankName", required(Unicode, "The issuing bank.")),
        ("cardNumber", required(Unicode, "Masked: **** **** **** 1234.")),
        ("mobile", required(Unicode, "The bank's mobile number for it, masked.")),
        ("boundAt", required(DateTime, "When it was bound (UTC).")),
    ]


class BankCardPageDto(ComplexModel):
    """The caller's bound cards, all on one page: there are at most member.max_bound_cards
    (20 at most), so page is 1, total the number of cards and pageSize that limit (or the
    number of cards, if the limit was lowered after they were bound)."""

    __namespace__ = NS
    _type_info = page_fields(BankCardDto, "Bound cards, oldest first.")


CardId = required(Long, "The card.")


class CardOperations:
    """The member's bank cards."""

    @operation(
        rest=POST("/members/current/cards", body="request", status=201),
        returns=BankCardDto,
        roles=CARD_HOLDERS,
        errors=("CARD_LIMIT_REACHED", "CARD_TAKEN", "IDENTITY_NOT_VERIFIED", "MEMBER_NOT_FOUND"),
    )
    def bindCard(request: required(BindCardRequest, "The card.")):
        """Bind a card (real-name verification first: IDENTITY_NOT_VERIFIED). The number is
        checked for length and Luhn (VALIDATION_FAILED); a card bound already, to you or to
        anyone, is CARD_TAKEN; past member.max_bound_cards cards, CARD_LIMIT_REACHED."""

    @operation(rest=GET("/members/current/cards"), returns=BankCardPageDto, roles=CARD_HOLDERS)
    def listCards():
        """Your bound cards, numbers masked to the last 4 digits, all on one page (page 1,
        pageSize member.max_bound_cards)."""

    @operation(
        rest=DELETE("/members/current/cards/{cardId}"),
        roles=CARD_HOLDERS,
        errors=("CARD_IN_USE", "CARD_NOT_FOUND"),
    )
    def unbindCard(cardId: CardId):
        """Unbind one of your cards; withdrawals to it stop. CARD_NOT_FOUND for a card that is
        not yours or not bound; CARD_IN_USE while a withdrawal to it is not final (PENDING)."""
