"""Bank cards (绑定): bound by verified members, listed masked, unbound; withdrawals and the
fund account pay out to one.

A card's number is stored as a keyed hash (UNIQUE among bound cards: one card, one member)
and sealed to its member for the depository; responses show only its last 4 digits.

A card a withdrawal names is not unbound until the withdrawal is final (CARD_IN_USE while its
payment order is PENDING: with payment.gateway BANK the bank pays out after the call's commit,
and the number must not be bound by anyone else before it has).

Locks: binding locks the member's row, so a member's bindings take turns and the count of bound
cards cannot overshoot the limit. Unbinding locks the card's row, so a card is never unbound
while the depository is given it (opening the fund account, a withdrawal: service/payment.py).
A withdrawal writes its order under that lock, so an unbinding racing it either comes first
(the withdrawal then finds no bound card: CARD_NOT_FOUND) or reads, once the lock is its, the
withdrawal's committed PENDING order (READ COMMITTED) and refuses: never both. The unbinding's
update then reads the member's row in share mode (InnoDB checks the foreign key through the
(member_id, status) index), as a withdrawal's new order does. Every path that takes both takes
the card's row before the member's, so none waits for another in a circle.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from dao.bank_card import BankCardEntity
from service import errors, pii
from service.errors import BusinessError, invalid
from service.member.base import MemberBase, check_mobile
from service.paging import PageVo
from service.security import Principal
from service.text import collapse
from service.transaction import transactional


@dataclass(frozen=True)
class BindCardRequest:
    card_number: str = field(repr=False)  # personal data stays out of every repr and log
    bank_name: str
    mobile: str = field(repr=False)


@dataclass(frozen=True)
class BankCardVo:
    card_id: int
    bank_name: str
    card_number: str
    mobile: str
    bound_at: datetime


class CardOperations(MemberBase):
    @transactional
    def bind_card(self, request: BindCardRequest, caller: Principal) -> BankCardVo:
        box = self._pii  # SERVICE_UNAVAILABLE first: without the key nothing can be stored
        number = pii.card_number(request.card_number)
        bank_name = collapse(request.bank_name)
        if not 2 <= len(bank_name) <= 50:
            raise invalid("bankName", "must have 2 to 50 characters")
        mobile = request.mobile.strip()
        check_mobile(mobile, "mobile")
        card_hash = box.lookup_hash(pii.CARD_NUMBER, number)
        member = self._members.lock(caller.member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        if member.identity_verified_at is None:
            raise BusinessError(
                errors.IDENTITY_NOT_VERIFIED, "verify your real name before binding a card"
            )
        if self._cards.find_bound_by_hash(card_hash) is not None:
            raise BusinessError(errors.CARD_TAKEN)
        limit = self._settings.member.max_bound_cards
        if self._cards.count_bound(member.id) >= limit:
            raise BusinessError(
                errors.CARD_LIMIT_REACHED, f"at most {limit} cards may be bound at once"
            )
        card = BankCardEntity(
            member_id=member.id,
            card_hash=card_hash,
            card_sealed=box.seal(pii.CARD_NUMBER, number, member.id),
            last4=number[-4:],
            bank_name=bank_name,
            mobile_sealed=box.seal(pii.CARD_MOBILE, mobile, member.id),
            status="BOUND",
            created_at=self._clock(),
        )
        try:
            self._cards.add(card)
        except IntegrityError:  # another member bound the same card at the same moment
            raise BusinessError(errors.CARD_TAKEN) from None
        return _card_vo(card, mobile)

    @transactional(read_only=True)
    def list_cards(self, caller: Principal) -> PageVo[BankCardVo]:
        """Every bound card on one page: there are at most member.max_bound_cards (more only
        when the limit was lowered after they were bound; the page size says so)."""
        cards = tuple(
            _card_vo(c, self._pii.open(pii.CARD_MOBILE, c.mobile_sealed, c.member_id))
            for c in self._cards.bound_of(caller.member_id)
        )
        limit = self._settings.member.max_bound_cards
        return PageVo(cards, len(cards), 1, max(limit, len(cards)))

    @transactional
    def unbind_card(self, card_id: int, caller: Principal) -> None:
        card = bound_to(self._cards.lock(card_id), card_id, caller.member_id)
        if self._payment_orders.pending_to_card(card.id):
            raise BusinessError(
                errors.CARD_IN_USE,
                f"a withdrawal to card {card_id} is in progress; unbind it once it is final",
            )
        card.status = "UNBOUND"
        card.card_hash = None  # the number may be bound again, by its owner or another
        card.unbound_at = self._clock()
        self.tx.session().flush()


def bound_to(card: BankCardEntity | None, card_id: int, member_id: int) -> BankCardEntity:
    """`card` when it is the member's and bound; else CARD_NOT_FOUND, the same answer for
    another member's card (its existence is not told)."""
    if card is None or card.member_id != member_id or card.status != "BOUND":
        raise BusinessError(errors.CARD_NOT_FOUND, f"you have no bound card {card_id}")
    return card


def _card_vo(card: BankCardEntity, mobile: str) -> BankCardVo:
    """The card as every response shows it, to its owner too: number and mobile masked."""
    return BankCardVo(
        card_id=card.id,
        bank_name=card.bank_name,
        card_number=pii.mask_card(card.last4),
        mobile=pii.mask_mobile(mobile),
        bound_at=card.created_at,
    )
