"""The member's fund account (开户) at the depository bank, and the deprecated FundFacade.

The card's row is locked first, so the card is not unbound meanwhile, then the member's: two
requests of one member take turns, so the second finds the account the first opened
(FUND_ACCOUNT_EXISTS) or the application it made.

With ``payment.gateway`` SANDBOX the depository is asked inside the transaction and opens the
account at once; when it refuses, the transaction rolls back and nothing is stored
(FUND_ACCOUNT_REFUSED). With BANK the call writes an OPEN_ACCOUNT bank order and answers
PENDING: the bank is called after the commit, the member confirms on the bank's page
(``authorizeUrl``, once the bank has accepted), and the bank's final word opens the account
with the number the bank gives (SUCCEEDED), or leaves it REFUSED with the bank's reason (the
member may apply again). Calling again while an application is pending answers that
application. getFundAccount shows where it stands.
"""

from dataclasses import dataclass
from datetime import datetime

from dao.member import MemberEntity
from dao.ocp import OPEN_STATUSES, BankOrderEntity
from service import errors, pii
from service.errors import BusinessError
from service.gateway import AccountHolder
from service.member.base import MemberBase
from service.member.cards import bound_to
from service.ocp import protocol
from service.ocp.orders import BankResult, Effects, new_order_no
from service.security import Principal
from service.transaction import transactional

#: How much of the depository's reason for a refusal the caller is told.
MAX_REASON = 200
OPEN_ACCOUNT = protocol.OPEN_ACCOUNT
#: The business leg an account opening serves: the member.
REF_TYPE = "MEMBER"


@dataclass(frozen=True)
class FundAccountVo:
    status: str
    account_no: str | None
    opened_at: datetime | None
    # An application at the bank (gateway BANK): its order, the page where the member
    # confirms it while PENDING, why the bank refused it (REFUSED).
    order_no: str | None = None
    authorize_url: str | None = None
    failure_reason: str | None = None


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
        if self._bank is not None:
            return self._apply_at_bank(member, card.id)
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
        return _account_vo(member, None)

    @transactional(read_only=True)
    def get_fund_account(self, caller: Principal) -> FundAccountVo:
        member = self._members.get(caller.member_id)
        if member is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND)
        return _account_vo(member, self._bank_orders.latest_for(REF_TYPE, member.id))

    @transactional(read_only=True)
    def has_fund_account(self, caller: Principal) -> FundAccountFlagVo:
        """FundFacade's one operation (deprecated): get_fund_account's status as a flag."""
        return FundAccountFlagVo(self.get_fund_account(caller).status == "OPEN")

    # -- at the bank (payment.gateway BANK) ---------------------------------------------------
    def _apply_at_bank(self, member: MemberEntity, card_id: int) -> FundAccountVo:
        """The member's pending application, or a new one (an OPEN_ACCOUNT bank order)."""
        order = self._bank_orders.latest_for(REF_TYPE, member.id)
        if order is None or order.status not in OPEN_STATUSES:
            order = self._bank.create(
                OPEN_ACCOUNT,
                (REF_TYPE, member.id),
                member.id,
                order_no=new_order_no("A", self._clock()),
                card_id=card_id,
            )
        return _account_vo(member, order)

    def _bank_effects(self) -> dict[str, Effects]:
        return {OPEN_ACCOUNT: Effects(self._holder_fields, self._account_opened, _refused)}

    def _holder_fields(self, order: BankOrderEntity) -> dict[str, str]:
        """The account holder as the bank must know them: the verified name and ID number,
        the card the account pays out to and that card's mobile number."""
        box = self._pii
        member = self._members.get(order.member_id)
        card = self._cards.get(order.card_id)
        return {
            "memberId": str(member.id),
            "realName": box.open(pii.REAL_NAME, member.real_name_sealed, member.id),
            "idNumber": box.open(pii.ID_NUMBER, member.id_number_sealed, member.id),
            "cardNumber": box.open(pii.CARD_NUMBER, card.card_sealed, member.id),
            "mobile": box.open(pii.CARD_MOBILE, card.mobile_sealed, member.id),
        }

    def _account_opened(self, order: BankOrderEntity, result: BankResult) -> None:
        if not order.account_no:  # the bank's fault: refused, so that it says it again
            raise protocol.MessageInvalid("malformed", "accountNo")
        member = self._members.lock(order.member_id)
        if member.fund_account_no is None:
            member.fund_account_no = order.account_no
            member.fund_account_opened_at = self._clock()
            self.tx.session().flush()


def _refused(order: BankOrderEntity, result: BankResult) -> None:
    """Nothing to undo: the order keeps the bank's reason, getFundAccount shows it."""


def _account_vo(member: MemberEntity, order: BankOrderEntity | None) -> FundAccountVo:
    """OPEN with its number; else the latest application at the bank: PENDING, or REFUSED
    with why; else NONE."""
    if member.fund_account_no is not None:
        return FundAccountVo("OPEN", member.fund_account_no, member.fund_account_opened_at)
    if order is None or order.status not in (*OPEN_STATUSES, protocol.FAILED):
        return FundAccountVo("NONE", None, None)
    if order.status == protocol.FAILED:
        return FundAccountVo("REFUSED", None, None, order.order_no, failure_reason=order.reason)
    return FundAccountVo("PENDING", None, None, order.order_no, order.authorize_url)
