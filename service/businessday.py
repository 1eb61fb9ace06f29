"""The platform's business day: the calendar day in Asia/Shanghai, whatever the server's zone.

A member's day (one check-in a day, the month's level coupons) and a partner's report by day
are counted in it. The depository bank's own business day (its daily files) is the bank
protocol's (service/ocp/protocol.py), in the same zone.
"""

import datetime as dt
from zoneinfo import ZoneInfo

#: The business's zone: a business day is a calendar day there.
BUSINESS_ZONE = ZoneInfo("Asia/Shanghai")


def business_day(moment: dt.datetime) -> dt.date:
    """The business day ``moment`` (timezone-aware) falls in."""
    return moment.astimezone(BUSINESS_ZONE).date()


def day_start(day: dt.date) -> dt.datetime:
    """When business day ``day`` begins (midnight in Asia/Shanghai), as an aware UTC time."""
    return dt.datetime.combine(day, dt.time(), BUSINESS_ZONE).astimezone(dt.UTC)
