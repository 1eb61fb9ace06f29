"""What every part of the p2p module's service shares: the transaction, settings, clock,
repositories, the ledger, request numbers and business events."""

from dao.member import MemberRepository
from dao.p2p import InvestmentRepository, LoanRepository, PlanRepository
from service.events import BusinessEvents
from service.idempotency import Idempotency
from service.ledger import Ledger


class P2PBase:
    def __init__(self, tx, settings, clock, events: BusinessEvents):
        self.tx = tx
        self._events = events
        self._loan_settings = settings.loan
        self._repayment_settings = settings.repayment
        self._api = settings.api
        self._clock = clock
        self._loans = LoanRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._investments = InvestmentRepository(tx.session)
        self._plans = PlanRepository(tx.session)
        self._ledger = Ledger(tx)
        self._requests = Idempotency(tx)
