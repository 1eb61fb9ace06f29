"""Callbacks to partner apps: the events each app subscribed to, written as deliveries in the
transaction of what they tell of, listed and replayed (README "Partner operations and
callbacks"). Delivering them is service/partner/delivery.py's job.

:class:`PartnerCallbacks` is a lifecycle listener (service/lifecycle.py): the lending core and
registration tell it what happened inside their transactions, and for each app subscribed to
the event (and entitled to hear of it) it writes a ``partner_callback`` row and an outbox job
(service/jobs.py) in that same transaction, so a callback exists exactly when what it tells
of committed and is never sent for something that rolled back. Who hears of what:

* MEMBER_REGISTERED: the app that registered the member (joint registration);
* INVESTMENT_CONFIRMED: the app a member authorised, when the member's investment is frozen;
* REPAYMENT_PAID: the app a member authorised, for each receipt paid to the member;
* LISTING_FULL: every subscribed app (listings are what partners show).

A body carries ids, amounts (decimal strings) and times, never personal data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dao.p2p import InvestmentEntity, LoanEntity, ReceiptEntity
from dao.partner import PartnerAppEntity, PartnerRepository
from dao.partner_callback import (
    EVENT_TYPES,
    PartnerCallbackAttemptEntity,
    PartnerCallbackEntity,
    PartnerCallbackRepository,
)
from dao.partner_member import PartnerMemberRepository
from service import errors
from service.errors import BusinessError, invalid
from service.lifecycle import LifecycleListener
from service.paging import PageVo, page_window
from service.transaction import transactional

MEMBER_REGISTERED, INVESTMENT_CONFIRMED, LISTING_FULL, REPAYMENT_PAID = EVENT_TYPES
DELIVER_JOB = "partner.deliver_callback"
STATUSES = ("PENDING", "ACKED", "EXPIRED")


@dataclass(frozen=True)
class CallbackEventsRequest:
    events: list[str] | None = None


@dataclass(frozen=True)
class CallbackAttemptVo:
    number: int
    at: datetime
    http_status: int | None
    outcome: str


@dataclass(frozen=True)
class PartnerCallbackVo:
    callback_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
    replay_of: int | None
    attempt_log: tuple[CallbackAttemptVo, ...]


@dataclass(frozen=True)
class CallbackEventsVo:
    app_id: str
    callback_url: str | None
    events: tuple[str, ...]


def _money(value: Decimal) -> str:
    return format(value, "f")


def _when(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def check_events(events: Sequence[str]) -> str:
    """The events as the app's row keeps them (sorted, space-separated); VALIDATION_FAILED
    for an unknown one."""
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise invalid("events", f"unknown event {unknown[0]}; one of {', '.join(EVENT_TYPES)}")
    return " ".join(sorted(set(events)))


class PartnerCallbacks(LifecycleListener):
    """Writes callbacks as events happen; lists them, replays them, and sets what an app
    subscribes to (for the partner's and the operators' facades)."""

    def __init__(self, tx, clock, outbox):
        self.tx = tx
        self._clock = clock
        self._outbox = outbox
        self._apps = PartnerRepository(tx.session)
        self._members = PartnerMemberRepository(tx.session)
        self._callbacks = PartnerCallbackRepository(tx.session)

    # -- the lifecycle's events, in their transactions ---------------------------------------
    def member_registered(self, member) -> None:
        row = self._members.of_member(member.id)
        if row is not None:
            app = self._apps.by_pk(row.app_id)
            self._write(app, MEMBER_REGISTERED, {"memberId": member.id})

    def investment_frozen(self, loan: LoanEntity, investment: InvestmentEntity) -> None:
        self.investments_frozen(loan, [investment])

    def investments_frozen(self, loan: LoanEntity, investments: Sequence[InvestmentEntity]) -> None:
        apps = self._members.authorising(sorted({i.investor_id for i in investments}))
        for investment in investments:
            if investment.investor_id not in apps:
                continue
            data = {
                "memberId": investment.investor_id,
                "investmentId": investment.id,
                "loanId": loan.id,
                "amount": _money(investment.amount),
            }
            self._write(self._apps.by_pk(apps[investment.investor_id]), INVESTMENT_CONFIRMED, data)

    def loan_full(self, loan: LoanEntity) -> None:
        for app in self._apps.active_apps():
            data = {"loanId": loan.id, "amount": _money(loan.amount)}
            self._write(app, LISTING_FULL, data)

    def receipts_paid(self, loan: LoanEntity, receipts: Sequence[ReceiptEntity]) -> None:
        apps = self._members.authorising(sorted({r.investor_id for r in receipts}))
        for receipt in receipts:
            if receipt.investor_id not in apps:
                continue
            data = {
                "memberId": receipt.investor_id,
                "loanId": loan.id,
                "investmentId": receipt.investment_id,
                "receiptId": receipt.id,
                "period": receipt.period,
                "principal": _money(receipt.principal),
                "interest": _money(receipt.interest),
                "penalty": _money(receipt.penalty),
                "fee": _money(receipt.fee),
            }
            self._write(self._apps.by_pk(apps[receipt.investor_id]), REPAYMENT_PAID, data)

    def _write(self, app: PartnerAppEntity, event_type: str, data: dict) -> None:
        """A delivery of a new event to ``app``, if it is ACTIVE, has a callback URL and is
        subscribed to the event."""
        if (
            app.status != "ACTIVE"
            or not app.callback_url
            or event_type not in app.callback_events.split()
        ):
            return
        now = self._clock()
        event_id = uuid.uuid4().hex
        body = {
            "eventId": event_id,
            "eventType": event_type,
            "appId": app.app_id,
            "occurredAt": _when(now),
            "data": data,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self._deliver(
            PartnerCallbackEntity(
                event_id=event_id, app_id=app.id, event_type=event_type, body=text
            ),
            now,
        )

    def _deliver(self, row: PartnerCallbackEntity, now: datetime) -> PartnerCallbackEntity:
        row.status, row.attempts, row.created_at, row.next_attempt_at = "PENDING", 0, now, now
        self._callbacks.add(row)
        self._outbox.add(DELIVER_JOB, {"callback_id": row.id, "attempt": 1})
        return row

    # -- what partners and operators ask -----------------------------------------------------
    @transactional(read_only=True)
    def list_callbacks(
        self, app_id: str, status: str | None, page: int | None, page_size: int | None, api
    ) -> PageVo[PartnerCallbackVo]:
        if status is not None and status not in STATUSES:
            raise invalid("status", f"must be one of {', '.join(STATUSES)}")
        page, page_size = page_window(page, page_size, api)
        app = self._app(app_id)
        rows, total = self._callbacks.of_app(
            app.id, status, offset=(page - 1) * page_size, limit=page_size
        )
        log: dict[int, list[CallbackAttemptVo]] = {}
        for a in self._callbacks.attempts([r.id for r in rows]):
            log.setdefault(a.callback_id, []).append(_attempt_vo(a))
        items = tuple(_vo(r, log.get(r.id, [])) for r in rows)
        return PageVo(items, total, page, page_size)

    @transactional
    def replay(self, app_id: str, callback_id: int) -> PartnerCallbackVo:
        """A new delivery of the callback's event (the same event id and body), from the
        first attempt; the callback itself stays as it is."""
        app = self._app(app_id)
        original = self._callbacks.get(callback_id)
        if original is None or original.app_id != app.id:
            raise BusinessError(errors.PARTNER_CALLBACK_NOT_FOUND, f"callback {callback_id}")
        row = self._deliver(
            PartnerCallbackEntity(
                event_id=original.event_id,
                app_id=app.id,
                event_type=original.event_type,
                body=original.body,
                replay_of=original.replay_of or original.id,
            ),
            self._clock(),
        )
        return _vo(row, [])

    @transactional
    def set_events(self, app_id: str, events: Sequence[str]) -> CallbackEventsVo:
        """Set what ``app_id`` subscribes to; an app without a callback URL (it is given one
        when it is registered) may subscribe to nothing (VALIDATION_FAILED): its callbacks
        could never be delivered."""
        value = check_events(events)
        app = self._app(app_id, lock=True)
        if value and not app.callback_url:
            raise invalid(
                "events",
                "the app has no callback URL to deliver them to (it is given one when it is"
                " registered)",
            )
        app.callback_events = value
        app.updated_at = self._clock()
        return CallbackEventsVo(app.app_id, app.callback_url, tuple(value.split()))

    @transactional(read_only=True)
    def events_of(self, app_id: str) -> CallbackEventsVo:
        app = self._app(app_id)
        return CallbackEventsVo(app.app_id, app.callback_url, tuple(app.callback_events.split()))

    def _app(self, app_id: str, *, lock: bool = False) -> PartnerAppEntity:
        app = self._apps.app(app_id, lock=lock)
        if app is None:
            raise BusinessError(errors.PARTNER_APP_NOT_FOUND, f"partner app {app_id}")
        return app


def _attempt_vo(a: PartnerCallbackAttemptEntity) -> CallbackAttemptVo:
    return CallbackAttemptVo(a.number, a.at, a.http_status, a.outcome)


def _vo(row: PartnerCallbackEntity, log: list[CallbackAttemptVo]) -> PartnerCallbackVo:
    return PartnerCallbackVo(
        row.id,
        row.event_id,
        row.event_type,
        row.status,
        row.attempts,
        row.created_at,
        row.next_attempt_at,
        row.finished_at,
        row.replay_of,
        tuple(log),
    )
