"""PartnerFacade's implementation, composed of one part per group of operations
(facade/partner/)."""

from service.partner.listings import PartnerListingService


class PartnerService(PartnerListingService):
    """The partner open API's operations."""
