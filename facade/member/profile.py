"""MemberFacade's profile operations: the member's own data, real-name verification (实名认证)
and the operators' view of a member."""

from spyne import Boolean, ComplexModel, DateTime, Long, Unicode

from facade.contract import BORROWER, GET, INVESTOR, MEMBERS, OPERATOR, POST, operation
from facade.member.account import NS, Mobile
from facade.types import optional, required


class IdentityRequest(ComplexModel):
    """The name and resident ID number as printed on the member's ID card."""

    __namespace__ = NS
    _type_info = [
        (
            "realName",
            required(
                Unicode(min_len=2, max_len=30),
                "The name on the ID card: Chinese characters (· between the parts of a "
                "transliterated name) or Latin letters.",
            ),
        ),
        (
            "idNumber",
            required(
                Unicode(
                    min_len=18,
                    max_len=18,
                    pattern="[1-9][0-9]{5}(19|[2-9][0-9])[0-9]{2}(0[1-9]|1[0-2])"
                    "(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]",
                ),
                "The 18-character resident ID number (GB 11643): area code, birth date from "
                "1900 (a real date, not in the future), sequence and check character (x "
                "counts as X); the holder must be 18.",
            ),
        ),
    ]


class ProfileDto(ComplexModel):
    """A member's data. To the member themselves it is shown in full; to an operator the
    mobile number, name and ID number are masked."""

    __namespace__ = NS
    _type_info = [
        ("memberId", required(Long, "Member id.")),
        ("mobile", required(Unicode, "The mobile number (masked to others: 138****5678).")),
        ("role", required(Unicode, "INVESTOR, BORROWER or OPERATOR.")),
        ("createdAt", required(DateTime, "When the member registered (UTC).")),
        ("identityVerified", required(Boolean, "true once the real name is verified.")),
        ("realName", optional(Unicode, "The verified name (masked to others: 张*).")),
        ("idNumber", optional(Unicode, "The verified ID number (masked to others).")),
        ("identityVerifiedAt", optional(DateTime, "When the real name was verified (UTC).")),
        ("fundAccountOpen", required(Boolean, "true once the depository account is open.")),
        ("inviteCode", optional(Unicode, "The member's own invite code.")),
    ]


class ProfileOperations:
    """Who the member is."""

    @operation(
        rest=GET("/members/current"),
        returns=ProfileDto,
        roles=MEMBERS,
        errors=("MEMBER_NOT_FOUND",),
    )
    def getProfile():
        """Your own data, in full."""

    @operation(
        rest=POST("/members/current/identity", body="request"),
        returns=ProfileDto,
        roles=[INVESTOR, BORROWER],
        errors=("IDENTITY_ALREADY_VERIFIED", "ID_NUMBER_TAKEN", "MEMBER_NOT_FOUND", "UNDERAGE"),
    )
    def verifyIdentity(request: required(IdentityRequest, "Name and ID number.")):
        """Real-name verification (实名认证), once: the ID number's format, birth date and
        check character (GB 11643) are checked (VALIDATION_FAILED), the holder must be 18 or
        older on today's date in China (UNDERAGE), and one ID number verifies one member only
        (ID_NUMBER_TAKEN). Only verified members invest, borrow or open a fund account.
        IDENTITY_ALREADY_VERIFIED when done before."""

    @operation(
        rest=GET("/members/{memberId}"),
        returns=ProfileDto,
        roles=[OPERATOR],
        errors=("MEMBER_NOT_FOUND",),
    )
    def getMember(memberId: required(Long, "The member.")):
        """A member as operators see them: personal data masked. MEMBER_NOT_FOUND for an
        unknown id."""

    @operation(
        rest=POST("/members/lookup"),
        returns=ProfileDto,
        roles=[OPERATOR],
        errors=("MEMBER_NOT_FOUND",),
    )
    def findMemberByMobile(mobile: required(Mobile, "The member's mobile number (11 digits).")):
        """The member registered with a mobile number, as operators see them (getMember):
        personal data masked, the mobile number too. MEMBER_NOT_FOUND when no member has it.
        The number travels in the body (a POST), never in a URL, and is never logged."""
