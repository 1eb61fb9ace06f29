"""LoyaltyFacade: a member's daily check-in and points, level, and experience gold."""

from spyne import ComplexModel, Date, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import BORROWER, GET, INVESTOR, POST, Facade, operation
from facade.types import (
    Money,
    PageParam,
    PageSizeParam,
    PositiveMoney,
    Rate,
    RequestNo,
    optional,
    page_fields,
    required,
)

NS = "http://p2p.hry.com/facade/loyalty"

PointKind = Enum("CHECK_IN", "INVEST", "REDEEM", "INVEST_REVERSAL", type_name="PointKind")
PointKind.__namespace__ = NS

ExperienceStatus = Enum("RUNNING", "PAID", type_name="ExperienceStatus")
ExperienceStatus.__namespace__ = NS


class CheckInDto(ComplexModel):
    """A day's check-in."""

    __namespace__ = NS
    _type_info = [
        ("businessDay", required(Date, "The business day checked in for (Asia/Shanghai).")),
        ("streak", required(Integer32, "Consecutive business days checked in, this one included.")),
        ("points", required(Integer32, "Points this check-in earned.")),
        ("balance", required(Long, "Your unexpired points now.")),
    ]


class PointsDto(ComplexModel):
    """Your points."""

    __namespace__ = NS
    _type_info = [
        ("balance", required(Long, "Unexpired points you may spend.")),
        ("nextExpiry", optional(DateTime, "When your next points expire (UTC); none if none.")),
        ("nextExpiryPoints", required(Long, "How many points expire then.")),
    ]


class PointEntryDto(ComplexModel):
    """One entry of your points ledger."""

    __namespace__ = NS
    _type_info = [
        ("entryId", required(Long, "Its id.")),
        (
            "kind",
            required(
                PointKind,
                "CHECK_IN and INVEST earn points; REDEEM spends them; INVEST_REVERSAL takes "
                "back an investment's points when its money was given back.",
            ),
        ),
        ("points", required(Integer32, "Points earned (above 0) or taken (below 0).")),
        ("remaining", required(Integer32, "Of points earned, those not spent or taken yet.")),
        ("expiresAt", optional(DateTime, "When points earned expire (UTC).")),
        ("createdAt", required(DateTime, "When (UTC).")),
    ]


class PointEntryPageDto(ComplexModel):
    """One page of your points ledger."""

    __namespace__ = NS
    _type_info = page_fields(PointEntryDto, "The entries on this page, newest first.")


class RedemptionDto(ComplexModel):
    """Points spent on an item of the catalogue."""

    __namespace__ = NS
    _type_info = [
        ("redemptionId", required(Long, "Its id.")),
        ("item", required(Unicode, "The catalogue item bought.")),
        ("points", required(Integer32, "Points it cost.")),
        ("couponId", required(Long, "The coupon issued for it (MarketingFacade.getCoupon).")),
        ("balance", required(Long, "Your unexpired points now.")),
        ("createdAt", required(DateTime, "When (UTC).")),
    ]


class LevelDto(ComplexModel):
    """Your member level (会员等级) and its benefits."""

    __namespace__ = NS
    _type_info = [
        ("level", required(Unicode, "The level's name, e.g. SILVER.")),
        ("invested", required(Money, "The amount your level was evaluated on, yuan.")),
        (
            "feeDiscount",
            required(Rate, "The share of the platform's fee on interest waived, percent."),
        ),
        ("nextLevel", optional(Unicode, "The level above yours; none at the top.")),
        ("nextLevelFrom", optional(Money, "The amount the level above starts at, yuan.")),
        ("evaluatedAt", optional(DateTime, "When it was last evaluated (UTC).")),
    ]


class ExperienceBalanceDto(ComplexModel):
    """Your experience gold (体验金): virtual money, never withdrawn."""

    __namespace__ = NS
    _type_info = [
        ("granted", required(Money, "Granted to you in all, yuan.")),
        ("invested", required(Money, "Invested in the experience product in all, yuan.")),
        ("available", required(Money, "Left to invest, yuan.")),
    ]


class ExperienceInvestmentDto(ComplexModel):
    """Experience gold invested in the experience product."""

    __namespace__ = NS
    _type_info = [
        ("investmentId", required(Long, "Its id.")),
        ("amount", required(Money, "Experience gold invested, yuan (never returned).")),
        ("annualRate", required(Rate, "The yearly rate it earns, percent.")),
        ("termDays", required(Integer32, "Its term, days.")),
        ("interest", required(Money, "The interest paid to you in real money at maturity.")),
        (
            "status",
            required(ExperienceStatus, "RUNNING until maturity; PAID once its interest is owed."),
        ),
        ("startedAt", required(DateTime, "When it was made (UTC).")),
        ("maturesAt", required(DateTime, "When it matures (UTC).")),
        ("paidAt", optional(DateTime, "When its interest was owed to you (UTC).")),
    ]


class ExperienceInvestmentPageDto(ComplexModel):
    """One page of your experience investments."""

    __namespace__ = NS
    _type_info = page_fields(ExperienceInvestmentDto, "On this page, newest first.")


class LoyaltyFacade(Facade):
    """A member's loyalty: daily check-in and points, level, experience gold."""

    namespace = NS
    service = "service.loyalty.service:LoyaltyService"

    @operation(
        rest=POST("/loyalty/check-ins", status=201),
        returns=CheckInDto,
        roles=[INVESTOR, BORROWER],
        errors=("ALREADY_CHECKED_IN",),
    )
    def checkIn():
        """Check in for today (签到): once a business day, the calendar day in Asia/Shanghai
        (ALREADY_CHECKED_IN once done, whatever the client's or the server's zone). A day
        after your last check-in continues your streak, a day missed starts it again; the
        points earned follow the streak's day."""

    @operation(rest=GET("/loyalty/points"), returns=PointsDto, roles=[INVESTOR, BORROWER])
    def getPoints():
        """Your unexpired points and when the next of them expire. Points are earned by
        checking in and by investing, and expire some time after they were earned."""

    @operation(
        rest=GET("/loyalty/points/entries"),
        returns=PointEntryPageDto,
        roles=[INVESTOR, BORROWER],
    )
    def listPointEntries(page: PageParam, pageSize: PageSizeParam):
        """Your points ledger, newest first, paged."""

    @operation(
        rest=POST("/loyalty/points/redemptions", status=201),
        returns=RedemptionDto,
        roles=[INVESTOR, BORROWER],
        errors=(
            "CATALOGUE_ITEM_UNKNOWN",
            "POINTS_INSUFFICIENT",
            "REQUEST_NO_REUSED",
            "COUPON_TEMPLATE_NOT_FOUND",
            "CAMPAIGN_INACTIVE",
            "COUPON_AUDIENCE_MISMATCH",
            "COUPON_LIMIT_REACHED",
            "CAMPAIGN_BUDGET_EXHAUSTED",
            "MEMBER_NOT_FOUND",
        ),
    )
    def redeemPoints(
        item: required(Unicode(max_len=64), "The catalogue item to buy."),
        requestNo: RequestNo,
    ):
        """Spend points on an item of the catalogue: its coupon is issued to you. Points
        expiring first are spent first (POINTS_INSUFFICIENT, nothing spent, when your
        balance is lower); a coupon the campaign cannot issue spends nothing either. A
        repeat with the same requestNo returns the same redemption; the same requestNo for
        another item is REQUEST_NO_REUSED."""

    @operation(rest=GET("/loyalty/level"), returns=LevelDto, roles=[INVESTOR, BORROWER])
    def getLevel():
        """Your member level: evaluated when an investment of yours is frozen and every day,
        by the amount you have invested."""

    @operation(
        rest=GET("/loyalty/experience"),
        returns=ExperienceBalanceDto,
        roles=[INVESTOR],
    )
    def getExperienceBalance():
        """Your experience gold: granted, invested and left to invest."""

    @operation(
        rest=POST("/loyalty/experience/coupons/{couponId}", status=201),
        returns=ExperienceBalanceDto,
        roles=[INVESTOR],
        errors=("COUPON_NOT_FOUND", "COUPON_NOT_APPLICABLE"),
    )
    def claimExperienceCoupon(couponId: required(Long(ge=1), "The EXPERIENCE coupon.")):
        """Turn one of your EXPERIENCE coupons into experience gold of its face value, within
        its validity (COUPON_NOT_APPLICABLE otherwise), once: claiming it again adds nothing."""

    @operation(
        rest=POST("/loyalty/experience/investments", status=201),
        returns=ExperienceInvestmentDto,
        roles=[INVESTOR],
        errors=("EXPERIENCE_INSUFFICIENT", "REQUEST_NO_REUSED"),
    )
    def investExperience(
        amount: required(PositiveMoney, "Experience gold to invest, yuan."),
        requestNo: RequestNo,
    ):
        """Invest experience gold in the experience product: it earns the product's yearly
        rate for its term, and the interest is paid to you in real money at maturity; the
        experience gold itself is spent (EXPERIENCE_INSUFFICIENT beyond what is left). A
        repeat with the same requestNo returns the same investment; the same requestNo with
        another amount is REQUEST_NO_REUSED."""

    @operation(
        rest=GET("/loyalty/experience/investments"),
        returns=ExperienceInvestmentPageDto,
        roles=[INVESTOR],
    )
    def listExperienceInvestments(page: PageParam, pageSize: PageSizeParam):
        """Your experience investments, newest first, paged."""
