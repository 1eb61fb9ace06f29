"""What every part of the p2p module's service shares: the transaction, settings, clock,
repositories, the ledger, request numbers, business events, the lifecycle's listeners
(service/lifecycle.py), the members' discounts on the interest service fee (service/p2p/fees.py),
the read cache and, with payment.gateway BANK, the depository bank's orders."""

from sqlalchemy import select

from dao.cache import Cache
from dao.member import MemberEntity, MemberRepository
from dao.ocp import BankOrderEntity, BankOrderRepository
from dao.p2p import InvestmentRepository, LoanRepository, PlanRepository
from service.caching import CacheAside, Region
from service.events import BusinessEvents
from service.idempotency import Idempotency
from service.ledger import Ledger
from service.lifecycle import Lifecycle
from service.marketing.usage import CouponUse
from service.message import Messages
from service.ocp.orders import BankOrders, BankResult, Effects
from service.p2p.fees import FeeDiscounts

#: getLoan, one listing a key (listLoans reads its listings there too); listLoans pages, the
#: ids of their listings, all evicted together by any change that may move a listing in or out
#: of a page or along it.
LOAN = Region("loan", ttl=lambda s: s.cache.loan_ttl_seconds)
LOAN_PAGES = Region("loans", ttl=lambda s: s.cache.loan_list_ttl_seconds, shared_generation=True)


class P2PBase:
    def __init__(
        self,
        tx,
        settings,
        clock,
        events: BusinessEvents,
        read_cache: Cache | None,
        lifecycle: Lifecycle,
        fee_discounts: FeeDiscounts,
        bank: BankOrders | None = None,
    ):
        self.tx = tx
        self._events = events
        self._lifecycle = lifecycle  # other modules' listeners, told in the same transaction
        self._fee_discounts = fee_discounts  # investors' share of the interest fee waived
        self._settings = settings  # LiveSettings: reloadable keys are read at call time
        self._clock = clock
        self._loans = LoanRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._investments = InvestmentRepository(tx.session)
        self._plans = PlanRepository(tx.session)
        self._ledger = Ledger(tx)
        self._requests = Idempotency(tx)
        self._messages = Messages(tx, clock)
        self._coupons = CouponUse(tx, clock)  # marketing's coupons named on an investment
        self.cache_aside = CacheAside(read_cache, settings, tx)
        self._bank = bank  # the depository over HTTP (payment.gateway BANK), else None
        self._bank_orders = BankOrderRepository(tx.session)
        if bank is not None:
            for order_type, effects in self._bank_effects().items():
                bank.register(order_type, effects)
        self._built()

    def _built(self) -> None:
        """A part's own state, made once the common one above is (each part adds its own to
        its parents')."""

    def _bank_effects(self) -> dict[str, Effects]:
        """The bank order types this service owns (investing's FREEZE, UNFREEZE and DISBURSE,
        repayment's REPAY); each part adds its own to its parents'."""
        return {}

    def _fund_accounts(self, member_ids: set[int]) -> dict[int, str | None]:
        """Member id -> account number at the bank, in one query."""
        stmt = select(MemberEntity.id, MemberEntity.fund_account_no).where(
            MemberEntity.id.in_(member_ids)
        )
        return {m: no for m, no in self.tx.session().execute(stmt)}

    def _reissue(self, item: BankOrderEntity, result: BankResult) -> None:
        """The bank FAILED a batch item of this module (DISBURSE, REPAY): re-issued under a new
        number, its money staying frozen for it, or, once its attempts are used up, waiting
        for an operator to re-issue it (service/ocp/batches.py); the listing or installment
        stays in progress meanwhile, and moves on when a later item succeeds."""
        self._bank.reissue(item)

    def _evict_loan(self, loan_id: int, pages: bool = True) -> None:
        """Every command that changes what getLoan or listLoans return calls this: the
        listing and (unless `pages` is False: the change moves no listing in or out of a
        page, nor along it, as an investment that leaves the listing RAISING) every page are
        evicted once (and only if) the transaction commits."""
        self.cache_aside.evict_after_commit(LOAN, loan_id)
        if pages:
            self.cache_aside.evict_after_commit(LOAN_PAGES)

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
