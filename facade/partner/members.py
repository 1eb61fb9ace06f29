"""Members a partner app brings: joint registration (scope MEMBER_REGISTER), and the
investments and receipts of the members who authorised the app (MEMBER_INVESTMENT_READ)."""

from spyne import ComplexModel, Date, DateTime, Integer32, Long, Unicode

from facade.contract import GET, POST, operation
from facade.member.account import Mobile, VerificationCode
from facade.partner.listings import NS
from facade.types import Money, PageParam, PageSizeParam, optional, page_fields, required

MEMBER_REGISTER = "MEMBER_REGISTER"
MEMBER_INVESTMENT_READ = "MEMBER_INVESTMENT_READ"
MemberId = required(Long(ge=1), "The member's id, as joint registration answered it.")
NOT_AUTHORISED = ("PARTNER_MEMBER_NOT_AUTHORISED",)


class PartnerMemberRequest(ComplexModel):
    """A member the partner brings: the mobile number and the code the platform sent to it."""

    __namespace__ = NS
    _type_info = [
        ("mobile", required(Mobile, "The member's 11-digit mainland mobile number.")),
        (
            "verificationCode",
            required(
                VerificationCode,
                "The 6-digit code the platform sent to this mobile for REGISTER "
                "(MemberFacade.sendVerificationCode), as the member read it.",
            ),
        ),
    ]


class PartnerMemberDto(ComplexModel):
    """A member the app registered, attributed to it."""

    __namespace__ = NS
    _type_info = [
        ("memberId", required(Long, "The member's id: the key of the partner's other calls.")),
        ("mobile", required(Unicode, "The mobile number, masked (139****0001).")),
        ("createdAt", required(DateTime, "When the member was registered (UTC).")),
    ]


class PartnerInvestmentDto(ComplexModel):
    """One investment of a member who authorised the app."""

    __namespace__ = NS
    _type_info = [
        ("investmentId", required(Long, "Investment id.")),
        ("loanId", required(Long, "The listing invested in.")),
        ("amount", required(Money, "Amount invested, in yuan.")),
        (
            "status",
            required(
                Unicode,
                "PENDING, FROZEN, ACTIVE, SETTLED, RELEASING, RELEASED or FAILED "
                "(LoanFacade's investment statuses).",
            ),
        ),
        ("createdAt", required(DateTime, "When it was made (UTC).")),
    ]


class PartnerInvestmentPageDto(ComplexModel):
    """One page of a member's investments, newest first."""

    __namespace__ = NS
    _type_info = page_fields(PartnerInvestmentDto, "The investments on this page.")


class PartnerReceiptDto(ComplexModel):
    """One receipt (a period's share of an installment) due to a member who authorised the
    app."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "The listing.")),
        ("investmentId", required(Long, "The investment it is due on.")),
        ("period", required(Integer32, "The installment's period, from 1.")),
        ("dueDate", required(Date, "When the installment is due.")),
        ("principal", required(Money, "Principal, in yuan.")),
        ("interest", required(Money, "Interest, in yuan.")),
        ("penalty", required(Money, "Penalty interest for lateness, in yuan.")),
        (
            "fee",
            required(
                Money,
                "The platform's interest service fee kept from this receipt, in yuan (0.00 "
                "until it is paid): the member received principal + interest + penalty - fee.",
            ),
        ),
        ("status", required(Unicode, "PENDING or PAID.")),
        ("receivedAt", optional(DateTime, "When it was paid (UTC); absent while pending.")),
    ]


class PartnerReceiptPageDto(ComplexModel):
    """One page of a member's receipts, newest listing first, then by period."""

    __namespace__ = NS
    _type_info = page_fields(PartnerReceiptDto, "The receipts on this page.")


class PartnerMemberOperations:
    """Members the partner brings (MEMBER_REGISTER) and what they authorised it to read
    (MEMBER_INVESTMENT_READ)."""

    @operation(
        rest=POST("/partner/members", body="request", status=201),
        returns=PartnerMemberDto,
        errors=(
            "MOBILE_TAKEN",
            "VERIFICATION_CODE_INVALID",
            "PARTNER_IDEMPOTENCY_KEY_MISSING",
            "PARTNER_IDEMPOTENCY_KEY_REUSED",
        ),
        partner_scope=MEMBER_REGISTER,
    )
    def registerPartnerMember(request: required(PartnerMemberRequest, "The member.")):
        """Joint registration: sign an investor up with their mobile number and the code the
        platform sent to it for REGISTER (VERIFICATION_CODE_INVALID when wrong, used or
        expired; MOBILE_TAKEN for a registered number). The member is attributed to the app
        and authorises it to read their investments and receipts until they revoke it; they
        set a password (resetPassword) and complete verification on the platform. Needs an
        Idempotency-Key: a repeat gets the first answer. Signed partner call, scope
        MEMBER_REGISTER."""

    @operation(
        rest=GET("/partner/members/{memberId}/investments"),
        returns=PartnerInvestmentPageDto,
        errors=NOT_AUTHORISED,
        partner_scope=MEMBER_INVESTMENT_READ,
    )
    def listPartnerMemberInvestments(memberId: MemberId, page: PageParam, pageSize: PageSizeParam):
        """The investments of a member who authorised the app, newest first, paged;
        PARTNER_MEMBER_NOT_AUTHORISED for any other member (never authorised, revoked, or no
        such member, alike). Signed partner call, scope MEMBER_INVESTMENT_READ."""

    @operation(
        rest=GET("/partner/members/{memberId}/receipts"),
        returns=PartnerReceiptPageDto,
        errors=NOT_AUTHORISED,
        partner_scope=MEMBER_INVESTMENT_READ,
    )
    def listPartnerMemberReceipts(memberId: MemberId, page: PageParam, pageSize: PageSizeParam):
        """The receipts due or paid to a member who authorised the app, paged;
        PARTNER_MEMBER_NOT_AUTHORISED for any other member. Signed partner call, scope
        MEMBER_INVESTMENT_READ."""
