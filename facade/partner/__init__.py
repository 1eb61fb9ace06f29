"""The partner open API's contract: PartnerFacade, composed of its groups of operations.

Every operation here is called by a partner app's server with a signed request (README
"Signed partner calls"), never with a member's credentials, and needs a scope granted to the
app. A new group is a module beside listings.py listed as a base below, served by a part of
``service.partner.api.PartnerService`` composed the same way.
"""

from facade.contract import Facade
from facade.partner.listings import NS, PartnerListingOperations


class PartnerFacade(PartnerListingOperations, Facade):
    """The partner open API (hry-openapi): what partner apps (渠道) call, with requests signed
    by one of the app's keys; answers are signed too."""

    namespace = NS
    service = "service.partner.api:PartnerService"


__all__ = ["PartnerFacade"]
