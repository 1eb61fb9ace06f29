"""CampaignFacade: marketing campaigns (营销活动), their budgets, coupon templates, coupons
issued by operators, and the rewards paid to members. Operators only."""

from spyne import Boolean, ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import GET, OPERATOR, POST, PUT, Facade, operation
from facade.types import (
    NOT_BLANK_LINE,
    Money,
    PageParam,
    PageSizeParam,
    PositiveMoney,
    Rate,
    RequestNo,
    optional,
    page_fields,
    repeated,
    required,
)

NS = "http://p2p.hry.com/facade/campaign"

# The types below are declared in this namespace, even where MarketingFacade and LoanFacade
# have their like, so that each facade's WSDL is whole in its own namespaces.
TemplateKind = Enum("CASH", "RATE_BOOST", "EXPERIENCE", type_name="CouponTemplateKind")
TemplateKind.__namespace__ = NS

TemplateRepaymentMethod = Enum(
    "EQUAL_INSTALLMENT",
    "EQUAL_PRINCIPAL",
    "MONTHLY_INTEREST",
    "BULLET",
    type_name="CouponTemplateRepaymentMethod",
)
TemplateRepaymentMethod.__namespace__ = NS

CampaignStatus = Enum("ACTIVE", "INACTIVE", type_name="CampaignStatus")
CampaignStatus.__namespace__ = NS

Audience = Enum("ALL", "NEW_MEMBERS", "INVITED", "LEVEL", "LIST", type_name="CouponAudience")
Audience.__namespace__ = NS

IssueRule = Enum("REGISTRATION", type_name="CouponIssueRule")
IssueRule.__namespace__ = NS

RewardStatus = Enum("PENDING", "PAYING", "PAID", "CANCELLED", type_name="RewardStatus")
RewardStatus.__namespace__ = NS

Name = required(
    Unicode(min_len=1, max_len=100, pattern=NOT_BLANK_LINE), "Its name, not blank, one line."
)


class CampaignRequest(ComplexModel):
    """A campaign's dates and budget."""

    __namespace__ = NS
    _type_info = [
        ("name", Name),
        ("startsAt", required(DateTime, "When it starts (UTC).")),
        ("endsAt", optional(DateTime, "When it ends, excluded (UTC); open-ended when left out.")),
        (
            "budgetAmount",
            required(Money, "The most its coupons and rewards may cost, yuan; never below spent."),
        ),
        (
            "budgetCount",
            optional(
                Integer32(ge=0),
                "The most coupons (and counted rewards) it may issue; unlimited when left out.",
            ),
        ),
    ]


class CampaignDto(ComplexModel):
    """A marketing campaign."""

    __namespace__ = NS
    _type_info = [
        ("campaignId", required(Long, "Its id.")),
        ("name", required(Unicode, "Its name, unique.")),
        ("startsAt", required(DateTime, "When it starts (UTC).")),
        ("endsAt", optional(DateTime, "When it ends, excluded (UTC).")),
        ("budgetAmount", required(Money, "Its money budget, yuan.")),
        ("spentAmount", required(Money, "What it has spent or committed, yuan.")),
        ("budgetCount", optional(Integer32, "Its count budget.")),
        ("spentCount", required(Integer32, "Coupons (and counted rewards) it has issued.")),
        ("status", required(CampaignStatus, "ACTIVE (its coupons issue and apply) or INACTIVE.")),
        ("createdBy", required(Long, "The operator who created it.")),
        ("changedBy", required(Long, "The operator who changed it last.")),
        ("createdAt", required(DateTime, "When it was created (UTC).")),
        ("updatedAt", required(DateTime, "When it was changed last (UTC).")),
    ]


class CampaignPageDto(ComplexModel):
    """One page of campaigns."""

    __namespace__ = NS
    _type_info = page_fields(CampaignDto, "The campaigns on this page, newest first.")


class CampaignSpendDto(ComplexModel):
    """What a campaign has spent against its budget, and on what."""

    __namespace__ = NS
    _type_info = [
        ("campaignId", required(Long, "The campaign.")),
        ("budgetAmount", required(Money, "Its money budget, yuan.")),
        ("spentAmount", required(Money, "Spent or committed (locked coupons' cost), yuan.")),
        ("remainingAmount", required(Money, "Budget minus spent, yuan.")),
        ("budgetCount", optional(Integer32, "Its count budget.")),
        ("spentCount", required(Integer32, "Coupons (and counted rewards) issued.")),
        ("couponsIssued", required(Integer32, "Its coupons, in every state.")),
        ("couponsLocked", required(Integer32, "Its coupons locked to pending investments.")),
        ("couponsUsed", required(Integer32, "Its coupons used on disbursed investments.")),
        ("rewardsPaid", required(Money, "Rewards it paid members, yuan.")),
        ("rewardsOwed", required(Money, "Rewards recorded and not paid yet, yuan.")),
        (
            "rewardsWaiting",
            required(
                Integer32,
                "Rewards not paid yet that wait (the platform's account short, the member not "
                "onboarded): listRewards says why.",
            ),
        ),
    ]


class CouponTemplateRequest(ComplexModel):
    """A coupon template's terms."""

    __namespace__ = NS
    _type_info = [
        ("campaignId", required(Long(ge=1), "The campaign that pays for its coupons.")),
        ("name", Name),
        ("kind", required(TemplateKind, "CASH, RATE_BOOST or EXPERIENCE.")),
        (
            "faceValue",
            optional(PositiveMoney, "CASH and EXPERIENCE: its value, yuan; none for RATE_BOOST."),
        ),
        (
            "extraRate",
            optional(Rate, "RATE_BOOST: the extra yearly rate, percent, above 0, at most 10."),
        ),
        (
            "boostPeriods",
            optional(Integer32(ge=1, le=60), "RATE_BOOST: only the first this many months."),
        ),
        (
            "minInvest",
            required(Money, "Its tier's lower bound: the smallest investment it applies to."),
        ),
        (
            "maxInvest",
            optional(
                PositiveMoney,
                "Its tier's upper bound, excluded; none: no upper bound. The tiers of one kind "
                "in one campaign never overlap (COUPON_TIERS_OVERLAP).",
            ),
        ),
        ("terms", repeated(Integer32(ge=1, le=60), "Eligible listing terms, months; any if none.")),
        ("methods", repeated(TemplateRepaymentMethod, "Eligible repayment methods; any if none.")),
        ("validFrom", optional(DateTime, "A fixed window's start (UTC); from issue when none.")),
        ("validUntil", optional(DateTime, "A fixed window's end, excluded (UTC); or validDays.")),
        (
            "validDays",
            optional(Integer32(ge=1, le=3650), "Days a coupon is valid after issue; or a window."),
        ),
        ("stackable", required(Boolean, "Whether it may be used with other coupons.")),
        ("totalCount", optional(Integer32(ge=1), "The most coupons of it; unlimited if none.")),
        ("perMemberLimit", optional(Integer32(ge=1), "The most one member may hold.")),
        (
            "audience",
            required(
                Audience,
                "Who may receive it: ALL, NEW_MEMBERS (never invested), INVITED (signed up "
                "with an invite code), LEVEL (members of audienceLevel), LIST (only those an "
                "operator names in issueCoupons).",
            ),
        ),
        (
            "audienceLevel",
            optional(
                Unicode(max_len=16),
                "The member level (LoyaltyFacade) of a LEVEL audience, as configured in "
                "loyalty.levels; only for LEVEL.",
            ),
        ),
        (
            "issueRule",
            optional(IssueRule, "REGISTRATION: issued to each member who signs up, by itself."),
        ),
    ]


class CouponTemplateDto(ComplexModel):
    """A coupon template."""

    __namespace__ = NS
    _type_info = [
        ("templateId", required(Long, "Its id.")),
        ("campaignId", required(Long, "Its campaign.")),
        ("name", required(Unicode, "Its name.")),
        ("kind", required(TemplateKind, "CASH, RATE_BOOST or EXPERIENCE.")),
        ("faceValue", optional(Money, "Its value, yuan.")),
        ("extraRate", optional(Rate, "Its extra yearly rate, percent.")),
        ("boostPeriods", optional(Integer32, "The months it boosts.")),
        ("minInvest", required(Money, "Its tier's lower bound, yuan.")),
        ("maxInvest", optional(Money, "Its tier's upper bound, excluded, yuan.")),
        ("terms", repeated(Integer32, "Eligible listing terms, months.")),
        ("methods", repeated(TemplateRepaymentMethod, "Eligible repayment methods.")),
        ("validFrom", optional(DateTime, "A fixed window's start (UTC).")),
        ("validUntil", optional(DateTime, "A fixed window's end, excluded (UTC).")),
        ("validDays", optional(Integer32, "Days valid after issue.")),
        ("stackable", required(Boolean, "Whether it stacks with other coupons.")),
        ("totalCount", optional(Integer32, "The most coupons of it.")),
        ("issuedCount", required(Integer32, "Coupons of it issued.")),
        ("perMemberLimit", optional(Integer32, "The most one member may hold.")),
        ("audience", required(Audience, "Who may receive it.")),
        ("audienceLevel", optional(Unicode, "The member level of a LEVEL audience.")),
        ("issueRule", optional(IssueRule, "The rule that issues it by itself.")),
        ("status", required(CampaignStatus, "ACTIVE or INACTIVE.")),
        ("changedBy", required(Long, "The operator who changed it last.")),
        ("updatedAt", required(DateTime, "When it was changed last (UTC).")),
    ]


class CouponTemplatePageDto(ComplexModel):
    """One page of a campaign's coupon templates."""

    __namespace__ = NS
    _type_info = page_fields(CouponTemplateDto, "The templates on this page, oldest first.")


class IssuedCouponDto(ComplexModel):
    """A coupon an operator issued (the member sees it in MarketingFacade.listCoupons)."""

    __namespace__ = NS
    _type_info = [
        ("couponId", required(Long, "Its id.")),
        ("memberId", required(Long, "The member it was issued to.")),
        ("validFrom", required(DateTime, "Usable from (UTC).")),
        ("validUntil", required(DateTime, "Usable until, excluded (UTC).")),
    ]


class IssuedCouponsDto(ComplexModel):
    """The coupons an operator issued."""

    __namespace__ = NS
    _type_info = [
        ("items", repeated(IssuedCouponDto, "One coupon for each member named, in order."))
    ]


class RewardDto(ComplexModel):
    """Money the platform owes or paid a member for marketing."""

    __namespace__ = NS
    _type_info = [
        ("rewardId", required(Long, "Its id.")),
        ("kind", required(Unicode, "What earned it: CASH_COUPON, RATE_BOOST, REFERRAL, ...")),
        ("sourceType", required(Unicode, "The kind of thing that earned it (coupon, receipt).")),
        ("sourceId", required(Long, "Its id.")),
        ("memberId", required(Long, "The member paid.")),
        ("campaignId", optional(Long, "The campaign that pays it.")),
        ("couponId", optional(Long, "The coupon that earned it.")),
        ("amount", required(Money, "Amount, yuan.")),
        ("memo", required(Unicode, "What the member is told.")),
        (
            "status",
            required(
                RewardStatus,
                "PENDING (not paid yet), PAYING (its transfer waits for the bank), PAID, "
                "CANCELLED (what earned it was undone before it was paid).",
            ),
        ),
        ("transferId", optional(Long, "Its platform transfer (TreasuryFacade).")),
        ("waitingReason", optional(Unicode, "Why a PENDING reward is not paid yet.")),
        ("createdAt", required(DateTime, "When it was recorded (UTC).")),
        ("paidAt", optional(DateTime, "When it was paid (UTC).")),
    ]


class RewardPageDto(ComplexModel):
    """One page of rewards."""

    __namespace__ = NS
    _type_info = page_fields(RewardDto, "The rewards on this page, newest first.")


CampaignId = required(Long(ge=1), "The campaign's id.")
TemplateId = required(Long(ge=1), "The coupon template's id.")
NewStatus = required(CampaignStatus, "ACTIVE or INACTIVE.")


class CampaignFacade(Facade):
    """Marketing campaigns, their budgets and coupon templates, coupons issued by operators,
    and rewards. Operators only."""

    namespace = NS
    service = "service.marketing:CampaignService"

    @operation(
        rest=POST("/campaigns", body="request", status=201),
        returns=CampaignDto,
        roles=[OPERATOR],
        errors=("CAMPAIGN_NAME_TAKEN",),
    )
    def createCampaign(request: required(CampaignRequest, "The campaign.")):
        """Create a campaign, INACTIVE until setCampaignStatus makes it ACTIVE. Its budget
        bounds what its coupons and rewards may cost (money) and how many it may issue
        (count), enforced atomically: never exceeded, even by concurrent claims."""

    @operation(
        rest=PUT("/campaigns/{campaignId}", body="request"),
        returns=CampaignDto,
        roles=[OPERATOR],
        errors=("CAMPAIGN_NAME_TAKEN", "CAMPAIGN_NOT_FOUND"),
    )
    def updateCampaign(
        campaignId: CampaignId, request: required(CampaignRequest, "The campaign, in full.")
    ):
        """Change a campaign's name, dates or budget; a budget is never set below what the
        campaign has spent (VALIDATION_FAILED)."""

    @operation(
        rest=POST("/campaigns/{campaignId}/status"),
        returns=CampaignDto,
        roles=[OPERATOR],
        errors=("CAMPAIGN_NOT_FOUND",),
    )
    def setCampaignStatus(campaignId: CampaignId, status: NewStatus):
        """Activate or deactivate a campaign; the operator is recorded (changedBy). An
        inactive campaign's coupons are neither issued nor used."""

    @operation(rest=GET("/campaigns"), returns=CampaignPageDto, roles=[OPERATOR])
    def listCampaigns(
        status: optional(CampaignStatus, "Only campaigns of this status."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Campaigns, newest first, paged."""

    @operation(
        rest=GET("/campaigns/{campaignId}/spend"),
        returns=CampaignSpendDto,
        roles=[OPERATOR],
        errors=("CAMPAIGN_NOT_FOUND",),
    )
    def getCampaignSpend(campaignId: CampaignId):
        """What a campaign has spent against its budget: money committed by locked and used
        coupons and by rewards, coupons issued by state, rewards paid, owed and waiting."""

    @operation(
        rest=POST("/coupon-templates", body="request", status=201),
        returns=CouponTemplateDto,
        roles=[OPERATOR],
        errors=("CAMPAIGN_NOT_FOUND", "COUPON_TIERS_OVERLAP"),
    )
    def createCouponTemplate(request: required(CouponTemplateRequest, "The template.")):
        """Create a coupon template in a campaign, INACTIVE until setCouponTemplateStatus.
        Its terms must fit its kind (VALIDATION_FAILED otherwise); its amount tier must not
        overlap another template's of the same kind in the campaign (COUPON_TIERS_OVERLAP)."""

    @operation(
        rest=PUT("/coupon-templates/{templateId}", body="request"),
        returns=CouponTemplateDto,
        roles=[OPERATOR],
        errors=("CAMPAIGN_NOT_FOUND", "COUPON_TEMPLATE_NOT_FOUND", "COUPON_TIERS_OVERLAP"),
    )
    def updateCouponTemplate(
        templateId: TemplateId,
        request: required(CouponTemplateRequest, "The template, in full, in its campaign."),
    ):
        """Change a template's terms; coupons already issued keep their validity and are
        used on the template's terms as they are when used. Its total count never below what
        was issued (VALIDATION_FAILED)."""

    @operation(
        rest=POST("/coupon-templates/{templateId}/status"),
        returns=CouponTemplateDto,
        roles=[OPERATOR],
        errors=("COUPON_TEMPLATE_NOT_FOUND",),
    )
    def setCouponTemplateStatus(templateId: TemplateId, status: NewStatus):
        """Activate or deactivate a template; the operator is recorded (changedBy)."""

    @operation(
        rest=GET("/campaigns/{campaignId}/coupon-templates"),
        returns=CouponTemplatePageDto,
        roles=[OPERATOR],
        errors=("CAMPAIGN_NOT_FOUND",),
    )
    def listCouponTemplates(campaignId: CampaignId, page: PageParam, pageSize: PageSizeParam):
        """A campaign's coupon templates, oldest first, paged."""

    @operation(
        rest=POST("/coupon-templates/{templateId}/issues", status=201),
        returns=IssuedCouponsDto,
        roles=[OPERATOR],
        errors=(
            "CAMPAIGN_BUDGET_EXHAUSTED",
            "CAMPAIGN_INACTIVE",
            "CAMPAIGN_NOT_FOUND",
            "COUPON_AUDIENCE_MISMATCH",
            "COUPON_LIMIT_REACHED",
            "COUPON_TEMPLATE_NOT_FOUND",
            "MEMBER_NOT_FOUND",
            "REQUEST_NO_REUSED",
        ),
    )
    def issueCoupons(
        templateId: TemplateId,
        memberIds: repeated(Long(ge=1), "The members, 1 to 100, each once."),
        requestNo: RequestNo,
    ):
        """Issue one coupon of the template to each member named, all or none: every rule is
        checked for each (the template and its campaign ACTIVE and in their dates, the
        member in the audience, the total count, the per-member limit and the campaign's count
        budget). A repeat with the same requestNo returns the same coupons."""

    @operation(rest=GET("/rewards"), returns=RewardPageDto, roles=[OPERATOR])
    def listRewards(
        status: optional(RewardStatus, "Only rewards of this status."),
        campaignId: optional(Long(ge=1), "Only this campaign's."),
        memberId: optional(Long(ge=1), "Only this member's."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Rewards owed and paid to members, newest first, paged; a PENDING one with a
        waitingReason waits for the platform's account to be funded or the member to be
        onboarded, and is paid by itself once it can be."""
