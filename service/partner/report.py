"""The partner's attribution report (PartnerFacade, scope REPORT_READ): by business day (the
calendar day in Asia/Shanghai, service/businessday.py), the members the app registered and the
investments they made (confirmed: frozen, lent or settled), their count and amount.
Aggregates only: no member is named."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from service.businessday import business_day, day_start
from service.errors import invalid
from service.paging import PageVo, page_window
from service.partner.auth import PartnerPrincipal
from service.partner.base import PartnerBase
from service.transaction import transactional

#: The investments the report counts: money taken for a listing, not given back.
CONFIRMED = ("FROZEN", "ACTIVE", "SETTLED")
#: The longest range one report covers.
MAX_DAYS = 366


@dataclass(frozen=True)
class PartnerReportDayVo:
    day: dt.date
    members: int
    investments: int
    amount: Decimal


class PartnerReportService(PartnerBase):
    @transactional(read_only=True)
    def list_partner_report(
        self,
        from_date: dt.date,
        to_date: dt.date,
        page: int | None = None,
        page_size: int | None = None,
        caller: PartnerPrincipal = None,
    ) -> PageVo[PartnerReportDayVo]:
        if to_date < from_date:
            raise invalid("toDate", "must not be before fromDate")
        days = (to_date - from_date).days + 1
        if days > MAX_DAYS:
            raise invalid("toDate", f"a report covers at most {MAX_DAYS} days")
        page, page_size = page_window(page, page_size, self._settings.api)
        first = from_date + dt.timedelta(days=(page - 1) * page_size)
        last = min(to_date, first + dt.timedelta(days=page_size - 1))
        if first > to_date:
            return PageVo((), days, page, page_size)
        app = self._app_of(caller)
        start, end = day_start(first), day_start(last + dt.timedelta(days=1))
        members = Counter(
            business_day(t) for t in self._partner_members.registered_between(app.id, start, end)
        )
        count: Counter[dt.date] = Counter()
        amount: dict[dt.date, Decimal] = {}
        for at, value in self._partner_members.investments_between(app.id, CONFIRMED, start, end):
            day = business_day(at)
            count[day] += 1
            amount[day] = amount.get(day, Decimal("0.00")) + value
        items = tuple(
            PartnerReportDayVo(day, members[day], count[day], amount.get(day, Decimal("0.00")))
            for day in (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
        )
        return PageVo(items, days, page, page_size)
