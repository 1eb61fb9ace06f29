"""The partner app a member authorised (joint registration through it), and revoking it."""

from spyne import ComplexModel, DateTime, Unicode

from facade.contract import DELETE, GET, INVESTOR, operation
from facade.member.account import NS
from facade.types import PageParam, PageSizeParam, optional, page_fields, required


class PartnerAuthorisationDto(ComplexModel):
    """A partner app the member was registered through, and whether it may still read the
    member's investments and receipts."""

    __namespace__ = NS
    _type_info = [
        ("appId", required(Unicode, "The partner app's id.")),
        ("appName", required(Unicode, "The partner app's name.")),
        ("authorisedAt", required(DateTime, "When the member registered through it (UTC).")),
        ("revokedAt", optional(DateTime, "When the member revoked it (UTC); absent: in force.")),
    ]


class PartnerAuthorisationPageDto(ComplexModel):
    """The partner apps a member authorised (at most one: the one they registered through)."""

    __namespace__ = NS
    _type_info = page_fields(PartnerAuthorisationDto, "The authorisations on this page.")


class PartnerAuthorisationOperations:
    """What partner apps a member authorised to read their investments."""

    @operation(
        rest=GET("/members/current/partner-authorisations"),
        returns=PartnerAuthorisationPageDto,
        roles=[INVESTOR],
    )
    def listPartnerAuthorisations(page: PageParam, pageSize: PageSizeParam):
        """The partner app the member registered through, if any, and whether it may still
        read their investments and receipts."""

    @operation(
        rest=DELETE("/members/current/partner-authorisations/{appId}"),
        roles=[INVESTOR],
        errors=("PARTNER_AUTHORISATION_NOT_FOUND",),
    )
    def revokePartnerAuthorisation(
        appId: required(Unicode(min_len=1, max_len=32), "The partner app's id."),
    ):
        """Stop the partner app from reading the member's investments and receipts, and from
        being told of them by callbacks; the member stays attributed to it (the partner's
        report counts them). PARTNER_AUTHORISATION_NOT_FOUND unless the member authorised
        that app; revoking again changes nothing (listPartnerAuthorisations tells when)."""
