"""PartnerFacade's implementation, composed of one part per group of operations
(facade/partner/), all on service/partner/base.py's PartnerBase."""

from service.partner.callbackops import PartnerCallbackService
from service.partner.listings import PartnerListingService
from service.partner.members import PartnerMemberService
from service.partner.report import PartnerReportService


class PartnerService(
    PartnerListingService, PartnerMemberService, PartnerReportService, PartnerCallbackService
):
    """The partner open API's operations."""
