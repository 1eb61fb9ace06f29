"""The member's fund account (开户) at the depository bank, and the deprecated FundFacade.

The depository is asked inside the transaction, as service/payment.py asks it, with the
member's row locked: two requests of one member take turns, so the second finds the account
the first opened (FUND_ACCOUNT_EXISTS) and the depository is never asked twice for it. The
card's row is locked first, so the card is not unbound meanwhile. When the depository
refuses, the transaction rolls back and nothing is stored.
"""

from dataclasses import dataclass
from datetime import datetime

from service import errors, pii
from service.errors import BusinessError
from service.gateway import AccountHolder
from service.member.base import MemberBase
from service.member.cards import bound_to
from service.security import Principal
from service.transaction import transactional

#: How much of the depository's reason for a refusal the caller is told.
MAX_REASON = 200


@dataclass(frozen=True)
class FundAccountVo:
    status: str
    account_no: str | None
    opened_at: datetime | None


@dataclass(frozen=True)
class FundAccountFlagVo:
    has_fund_account: bool


class FundAccountOperations(MemberBase):
    @transactional
    def open_fund_account(self, card_id: int, caller: Principal) -> FundAccountVo:
        box = self._pii  # SERVICE_UNAVAILABLE first: the depository needs the opened data
        # The card's row before the member's, the order unbinding takes them in (cards.py).
        card = self._cards.lock(card_id)
        member = self._members.lock(caller.member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        if member.identity_verified_at is None:
            raise BusinessError(
                errors.IDENTITY_NOT_VERIFIED, "verify your real name before opening an account"
            )
        if member.fund_account_no is not None:
            raise BusinessError(errors.FUND_ACCOUNT_EXISTS)
        card = bound_to(card, card_id, member.id)
        holder = AccountHolder(
            member_id=member.id,
            real_name=box.open(pii.REAL_NAME, member.real_name_sealed, member.id),
            id_number=box.open(pii.ID_NUMBER, member.id_number_sealed, member.id),
            card_number=box.open(pii.CARD_NUMBER, card.card_sealed, member.id),
            mobile=box.open(pii.CARD_MOBILE, card.mobile_sealed, member.id),
        )
        answer = self._gateway.open_account(holder)
        if not answer.success:
            reason = (answer.reason or "no reason given")[:MAX_REASON]
            raise BusinessError(
                errors.FUND_ACCOUNT_REFUSED, f"the depository refused the account: {reason}"
            )
        if not answer.reference:  # a depository fault, not the caller's: INTERNAL_ERROR
            raise RuntimeError("the depository opened an account but sent no account number")
        member.fund_account_no = answer.reference
        member.fund_account_opened_at = self._clock()
        self.tx.session().flush()
        return _account_vo(member.fund_account_no, member.fund_account_opened_at)

    @transactional(read_only=True)
    def get_fund_account(self, caller: Principal) -> FundAccountVo:
        member = self._members.get(caller.member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        return _account_vo(member.fund_account_no, member.fund_account_opened_at)

    @transactional(read_only=True)
    def has_fund_account(self, caller: Principal) -> FundAccountFlagVo:
        """FundFacade's one operation (deprecated): get_fund_account's status as a flag."""
        return FundAccountFlagVo(self.get_fund_account(caller).status == "OPEN")


def _account_vo(account_no: str | None, opened_at: datetime | None) -> FundAccountVo:
    return FundAccountVo("NONE" if account_no is None else "OPEN", account_no, opened_at)
