"""What every part of PartnerFacade's implementation shares: the transaction, settings and
clock, the repositories, the app a call comes from, Idempotency-Keys, the callbacks, and the
member module's registration (for joint registration)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dao.p2p import InvestmentRepository, LoanRepository, PlanRepository
from dao.partner import PartnerAppEntity, PartnerRepository
from dao.partner_member import PartnerMemberRepository
from service import errors
from service.errors import BusinessError
from service.member.registration import RegistrationOperations
from service.partner.auth import PartnerPrincipal
from service.partner.callbacks import PartnerCallbacks
from service.partner.requests import PartnerRequests

T = TypeVar("T")


class PartnerBase:
    def __init__(
        self,
        tx,
        settings,
        clock,
        partner_callbacks: PartnerCallbacks,
        passwords,
        tokens,
        api_secrets,
        lockout,
        verification,
        pii,
        gateway,
        lifecycle,
    ):
        self.tx = tx
        self._settings = settings  # LiveSettings: the page sizes are read at call time
        self._clock = clock
        self._callbacks = partner_callbacks
        # Registration as members sign up, without the depository bank's order effects
        # (the member module's own service registers those).
        self._registration = RegistrationOperations(
            tx,
            settings,
            clock,
            passwords,
            tokens,
            api_secrets,
            lockout,
            verification,
            pii,
            gateway,
            lifecycle,
        )
        self._requests = PartnerRequests(tx)
        self._apps = PartnerRepository(tx.session)
        self._partner_members = PartnerMemberRepository(tx.session)
        self._loans = LoanRepository(tx.session)
        self._investments = InvestmentRepository(tx.session)
        self._plans = PlanRepository(tx.session)

    def _app_of(self, caller: PartnerPrincipal) -> PartnerAppEntity:
        app = self._apps.app(caller.app_id)
        if app is None:  # removed between the signature's check and now: never today
            raise BusinessError(errors.PARTNER_APP_UNKNOWN)
        return app

    def _once(
        self, caller: PartnerPrincipal, operation: str, cls: type[T], write: Callable[[], T]
    ) -> T:
        """``write`` once per Idempotency-Key, in the caller's transaction: a repeat gets the
        first answer (service/partner/requests.py)."""
        app = self._app_of(caller)
        first = self._requests.repeat(app.id, caller, operation, cls)
        if first is not None:
            return first
        answer = write()
        self._requests.record(app.id, caller, operation, answer, self._clock())
        return answer
