"""The partner's attribution report (scope REPORT_READ)."""

from spyne import ComplexModel, Date, Integer32

from facade.contract import GET, operation
from facade.partner.listings import NS
from facade.types import Money, PageParam, PageSizeParam, page_fields, required

REPORT_READ = "REPORT_READ"


class PartnerReportDayDto(ComplexModel):
    """One business day (the calendar day in Asia/Shanghai) of the app's attribution."""

    __namespace__ = NS
    _type_info = [
        ("day", required(Date, "The business day (the calendar day in Asia/Shanghai).")),
        ("members", required(Integer32, "Members the app registered that day.")),
        (
            "investments",
            required(
                Integer32,
                "Investments its members made that day that took money (frozen, lent or "
                "settled), whenever the member registered.",
            ),
        ),
        ("amount", required(Money, "Their amount, in yuan.")),
    ]


class PartnerReportPageDto(ComplexModel):
    """One page of the report's days, oldest first; total is the days of the range."""

    __namespace__ = NS
    _type_info = page_fields(PartnerReportDayDto, "The days on this page, each of them.")


class PartnerReportOperations:
    """The partner's attribution report (REPORT_READ)."""

    @operation(
        rest=GET("/partner/report"),
        returns=PartnerReportPageDto,
        partner_scope=REPORT_READ,
    )
    def listPartnerReport(
        fromDate: required(Date, "The first business day (Asia/Shanghai), YYYY-MM-DD."),
        toDate: required(
            Date, "The last business day (Asia/Shanghai), at most 366 days after fromDate."
        ),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """The app's attribution by business day (the calendar day in Asia/Shanghai): members
        it registered, and the investments its members made, their count and amount; every
        day of the range, oldest first, paged (a page is pageSize days). Aggregates only, no
        member named. Signed partner call, scope REPORT_READ."""
