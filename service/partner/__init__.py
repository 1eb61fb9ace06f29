"""The partner open API (hry-openapi): partner apps, their keys, and what partners may do.

Partners are other companies' servers (渠道: traffic partners, aggregators) that bring members
and show listings. Operators register their apps and keys (admin.py, keys.py) and grant them
scopes (scopes.py). Partners call PartnerFacade (api.py, one part a group: listings.py) with
signed requests: the canonical strings and signatures (signing.py), the checks of a signed
request and the answer's signature (auth.py), and the rate limits (ratelimit.py).
"""

from service.partner.admin import (
    IssuedPartnerKeyVo,
    PartnerAdminService,
    PartnerAppEventVo,
    PartnerAppRequest,
    PartnerAppVo,
    PartnerKeyVo,
)
from service.partner.keys import PartnerKeys

__all__ = [
    "IssuedPartnerKeyVo",
    "PartnerAdminService",
    "PartnerAppEventVo",
    "PartnerAppRequest",
    "PartnerAppVo",
    "PartnerKeyVo",
    "PartnerKeys",
]
