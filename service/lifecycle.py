"""What happens to members, listings and investments, told to other modules inside the
transaction it happens in.

The lending core (service/p2p/) and registration (service/member/) call :class:`Lifecycle` at
the points where they also write the member's message: an investment's money frozen, given
back or refused by the bank, a listing full, disbursed or settled, receipts paid, a member
registered. Modules built on top of the core (marketing's rewards, partners' callbacks)
subscribe a :class:`LifecycleListener` once, when the platform builds them, and the core
knows nothing of them.

A listener runs in the transaction of the event, after the core's own writes for it, so what it
writes commits or rolls back with them: a reward recorded for a disbursement exists exactly when
the disbursement does, and a callback is never written for something that rolled back. An
exception from a listener rolls the whole event back, so a listener keeps to short, local
writes (its own rows, a job in the outbox) and hands anything slow or remote (a payment at the
bank, an HTTP call) to a job. The same event may be told again when the transaction is retried
(@transactional retries a deadlock loser from the start), never after it commits; with the
depository bank an event is told when the bank's word is applied, exactly once per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dao.member import MemberEntity
    from dao.p2p import InvestmentEntity, LoanEntity, ReceiptEntity


class LifecycleListener:
    """Subclass and override the events of interest; each default does nothing."""

    def member_registered(self, member: MemberEntity) -> None:
        """A member signed up (``member.referrer_id`` names who invited them, if anyone)."""

    def investment_frozen(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        """The investment's money is frozen: at once with the sandbox, when the bank froze it
        with the depository. The investment holds part of the listing now."""

    def investments_frozen(self, loan: LoanEntity, investments: Sequence[InvestmentEntity]) -> None:
        """Investments in one listing made together (service/p2p/hotlisting.py), each as
        ``investment_frozen`` is told one, which this default does for each in turn; a
        listener may do the same for all at once."""
        for investment in investments:
            self.investment_frozen(loan, investment)

    def investment_refused(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        """The bank did not freeze a PENDING investment (refused, not confirmed in time,
        cancelled on its page): it is FAILED, nothing was taken, its part of the listing is
        free again."""

    def investment_released(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        """Frozen money given back to the investor: the listing failed (FAILED), was cancelled
        (CANCELLED), or had ended when the bank's freeze arrived (a refund)."""

    def loan_full(self, loan: LoanEntity) -> None:
        """The listing's last fen is taken and no investment in it is pending any more."""

    def loan_disbursed(self, loan: LoanEntity, investments: Sequence[InvestmentEntity]) -> None:
        """The listing's money is lent to its borrower (REPAYING): ``investments`` are those
        lent, every one of them ACTIVE now."""

    def receipts_paid(self, loan: LoanEntity, receipts: Sequence[ReceiptEntity]) -> None:
        """Investors were paid these receipts (an installment, each investor's share of it;
        with the bank, each receipt when its REPAY item succeeds; early settlement, every
        outstanding period at once, ``receipt.period`` telling which)."""

    def loan_settled(self, loan: LoanEntity) -> None:
        """The listing's last installment is paid (SETTLED), by schedule or early."""


class Lifecycle:
    """The listeners, and the events told to each of them in the order they subscribed."""

    def __init__(self) -> None:
        self._listeners: list[LifecycleListener] = []

    def subscribe(self, listener: LifecycleListener) -> None:
        self._listeners.append(listener)

    def member_registered(self, member: MemberEntity) -> None:
        for listener in self._listeners:
            listener.member_registered(member)

    def investment_frozen(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        for listener in self._listeners:
            listener.investment_frozen(loan, investment)

    def investments_frozen(self, loan: LoanEntity, investments: Sequence[InvestmentEntity]) -> None:
        for listener in self._listeners:
            listener.investments_frozen(loan, investments)

    def investment_refused(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        for listener in self._listeners:
            listener.investment_refused(loan, investment)

    def investment_released(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        for listener in self._listeners:
            listener.investment_released(loan, investment)

    def loan_full(self, loan: LoanEntity) -> None:
        for listener in self._listeners:
            listener.loan_full(loan)

    def loan_disbursed(self, loan: LoanEntity, investments: Sequence[InvestmentEntity]) -> None:
        for listener in self._listeners:
            listener.loan_disbursed(loan, investments)

    def receipts_paid(self, loan: LoanEntity, receipts: Sequence[ReceiptEntity]) -> None:
        for listener in self._listeners:
            listener.receipts_paid(loan, receipts)

    def loan_settled(self, loan: LoanEntity) -> None:
        for listener in self._listeners:
            listener.loan_settled(loan)
