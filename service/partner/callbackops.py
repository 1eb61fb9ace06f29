"""A partner's own callbacks (PartnerFacade, scope CALLBACK_MANAGE): the events its app
subscribes to, its deliveries with every attempt, and a replay (a new delivery of the same
event). The writes take an Idempotency-Key."""

from __future__ import annotations

from service.paging import PageVo
from service.partner.auth import PartnerPrincipal
from service.partner.base import PartnerBase
from service.partner.callbacks import CallbackEventsRequest, CallbackEventsVo, PartnerCallbackVo
from service.transaction import transactional


class PartnerCallbackService(PartnerBase):
    def list_partner_callbacks(
        self,
        status: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
        caller: PartnerPrincipal = None,
    ) -> PageVo[PartnerCallbackVo]:
        return self._callbacks.list_callbacks(
            caller.app_id, status, page, page_size, self._settings.api
        )

    @transactional
    def replay_partner_callback(
        self, callback_id: int, caller: PartnerPrincipal
    ) -> PartnerCallbackVo:
        return self._once(
            caller,
            "replayPartnerCallback",
            PartnerCallbackVo,
            lambda: self._callbacks.replay(caller.app_id, callback_id),
        )

    def get_partner_callback_events(self, caller: PartnerPrincipal) -> CallbackEventsVo:
        return self._callbacks.events_of(caller.app_id)

    @transactional
    def set_partner_callback_events(
        self, request: CallbackEventsRequest, caller: PartnerPrincipal
    ) -> CallbackEventsVo:
        return self._once(
            caller,
            "setPartnerCallbackEvents",
            CallbackEventsVo,
            lambda: self._callbacks.set_events(caller.app_id, request.events or ()),
        )
