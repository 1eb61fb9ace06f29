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
        self._settings = settings  # LiveSettings: reloadable keys are read at call time
        self._clock = clock
        self._loans = LoanRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._investments = InvestmentRepository(tx.session)
        self._plans = PlanRepository(tx.session)
        self._ledger = Ledger(tx)
        self._requests = Idempotency(tx)

    # Each is the section of the settings in force now: read it once per call (into a local
    # when a call needs several of its keys), never keep it across calls.
    @property
    def _loan_settings(self):
        return self._settings.loan

    @property
    def _repayment_settings(self):
        return self._settings.repayment

    @property
    def _api(self):
        return self._settings.api
