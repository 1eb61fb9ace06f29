"""MarketingFacade: a member's coupons (优惠券: 红包 CASH, 加息券 RATE_BOOST, 体验金券
EXPERIENCE), by state. Coupons are used by naming them on LoanFacade.invest (couponIds)."""

from spyne import Boolean, ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import BORROWER, GET, INVESTOR, OPERATOR, Facade, operation
from facade.types import (
    Money,
    PageParam,
    PageSizeParam,
    Rate,
    optional,
    page_fields,
    repeated,
    required,
)

NS = "http://p2p.hry.com/facade/marketing"

CouponKind = Enum("CASH", "RATE_BOOST", "EXPERIENCE", type_name="CouponKind")
CouponKind.__namespace__ = NS

#: Listings' repayment methods (LoanFacade's RepaymentMethod), declared again in this namespace
#: so that each facade's WSDL is whole in its own namespaces.
CouponRepaymentMethod = Enum(
    "EQUAL_INSTALLMENT",
    "EQUAL_PRINCIPAL",
    "MONTHLY_INTEREST",
    "BULLET",
    type_name="CouponRepaymentMethod",
)
CouponRepaymentMethod.__namespace__ = NS

CouponState = Enum("AVAILABLE", "LOCKED", "USED", "EXPIRED", type_name="CouponState")
CouponState.__namespace__ = NS


class CouponDto(ComplexModel):
    """A coupon issued to a member, with the terms it is used on."""

    __namespace__ = NS
    _type_info = [
        ("couponId", required(Long, "Its id; name it in invest's couponIds to use it.")),
        ("templateId", required(Long, "The coupon template it was issued from.")),
        ("campaignId", required(Long, "The campaign that pays for it.")),
        ("name", required(Unicode, "Its name, as the campaign calls it.")),
        (
            "kind",
            required(
                CouponKind,
                "CASH: faceValue paid to you when the listing is disbursed; RATE_BOOST: "
                "extraRate a year added to your interest, paid with each repayment; "
                "EXPERIENCE: experience money (体验金), not used on invest.",
            ),
        ),
        (
            "state",
            required(
                CouponState,
                "AVAILABLE to use; LOCKED to a pending investment (AVAILABLE again if the "
                "listing fails or is cancelled, or the bank does not freeze the money); USED "
                "once the listing is disbursed; EXPIRED: never used within its validity.",
            ),
        ),
        ("faceValue", optional(Money, "A CASH or EXPERIENCE coupon's value, yuan.")),
        ("extraRate", optional(Rate, "A RATE_BOOST coupon's extra yearly rate, percent.")),
        (
            "boostPeriods",
            optional(Integer32, "A RATE_BOOST coupon boosts only the first this many months."),
        ),
        ("minInvest", required(Money, "The smallest investment it is used on, yuan.")),
        (
            "maxInvest",
            optional(Money, "It is used only on investments below this amount, yuan."),
        ),
        ("terms", repeated(Integer32, "The listing terms (months) it is used on; any if none.")),
        (
            "methods",
            repeated(CouponRepaymentMethod, "The repayment methods it is used on; any if none."),
        ),
        (
            "stackable",
            required(Boolean, "Whether it may be used with other coupons on one investment."),
        ),
        ("validFrom", required(DateTime, "Usable from (UTC).")),
        ("validUntil", required(DateTime, "Usable until, excluded (UTC).")),
        ("reason", required(Unicode, "Why it was issued to you.")),
        ("investmentId", optional(Long, "The investment it is LOCKED to or was USED on.")),
        ("createdAt", required(DateTime, "When it was issued (UTC).")),
        ("usedAt", optional(DateTime, "When it was USED (UTC).")),
    ]


class CouponPageDto(ComplexModel):
    """One page of a member's coupons."""

    __namespace__ = NS
    _type_info = page_fields(CouponDto, "The coupons on this page, newest first.")


CouponId = required(Long(ge=1), "The coupon's id.")


class MarketingFacade(Facade):
    """A member's coupons."""

    namespace = NS
    service = "service.marketing:MarketingService"

    @operation(
        rest=GET("/coupons"),
        returns=CouponPageDto,
        roles=[INVESTOR, BORROWER, OPERATOR],
    )
    def listCoupons(
        state: optional(CouponState, "Only the coupons in this state; all when left out."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Your coupons, newest first, paged, optionally of one state: AVAILABLE ones to use
        on invest, LOCKED, USED or EXPIRED."""

    @operation(
        rest=GET("/coupons/{couponId}"),
        returns=CouponDto,
        roles=[INVESTOR, BORROWER, OPERATOR],
        errors=("COUPON_NOT_FOUND",),
    )
    def getCoupon(couponId: CouponId):
        """One of your coupons; COUPON_NOT_FOUND for an id that is not yours."""
