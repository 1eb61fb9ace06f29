"""Investing (购买标的), failure (流标), cancellation and disbursement (融资收款): their DTOs and
operations."""

from spyne import ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import GET, INVESTOR, OPERATOR, POST, operation
from facade.p2p.loan import NS, LoanDto, LoanId
from facade.types import (
    NOT_BLANK,
    Money,
    MultilineText,
    PageParam,
    PageSizeParam,
    PositiveMoney,
    RequestNo,
    optional,
    page_fields,
    repeated,
    required,
)

InvestmentStatus = Enum(
    "FROZEN",
    "ACTIVE",
    "RELEASED",
    "SETTLED",
    "PENDING",
    "FAILED",
    "RELEASING",
    type_name="InvestmentStatus",
)
InvestmentStatus.__namespace__ = NS


class InvestmentDto(ComplexModel):
    """An investor's share of a listing."""

    __namespace__ = NS
    _type_info = [
        ("investmentId", required(Long, "Investment id.")),
        ("loanId", required(Long, "The listing invested in.")),
        ("amount", required(Money, "Amount invested, in yuan.")),
        (
            "status",
            required(
                InvestmentStatus,
                "FROZEN while the listing raises, ACTIVE once lent, RELEASED when the listing "
                "failed or was cancelled (funds returned), SETTLED when repaid in full. "
                "Through the depository bank also PENDING until the bank has frozen the "
                "amount (you confirm on its page, authorizeUrl), FAILED when it did not "
                "(failureReason says why; nothing was taken), RELEASING while the bank "
                "releases it after the listing failed or was cancelled.",
            ),
        ),
        ("createdAt", required(DateTime, "When it was made (UTC).")),
        (
            "orderNo",
            optional(
                Unicode,
                "Through the depository bank: the number of the bank order that freezes it.",
            ),
        ),
        (
            "authorizeUrl",
            optional(
                Unicode,
                "While PENDING, once the bank has accepted the order: the bank's page where "
                "you confirm it with your bank password. Open it, confirm, then follow the "
                "investment with getInvestment until it is FROZEN or FAILED.",
            ),
        ),
        (
            "failureReason",
            optional(
                MultilineText,
                "Why the bank did not freeze it (FAILED), or did not release it (RELEASING).",
            ),
        ),
    ]


class InvestmentPageDto(ComplexModel):
    """One page of investments."""

    __namespace__ = NS
    _type_info = page_fields(InvestmentDto, "The investments on this page.")


class ExpiredLoansDto(ComplexModel):
    """The outcome of closing expired listings."""

    __namespace__ = NS
    _type_info = [("failed", required(Integer32(ge=0), "Listings this call marked FAILED."))]


class InvestingOperations:
    """Investing in listings, failing or cancelling them, and disbursing them."""

    @operation(
        rest=POST("/loans/{loanId}/investments", status=201),
        returns=InvestmentDto,
        roles=[INVESTOR],
        errors=(
            "CAMPAIGN_BUDGET_EXHAUSTED",
            "CAMPAIGN_INACTIVE",
            "COUPONS_NOT_STACKABLE",
            "COUPON_EXPIRED",
            "COUPON_NOT_APPLICABLE",
            "COUPON_NOT_AVAILABLE",
            "COUPON_NOT_FOUND",
            "FUND_ACCOUNT_REQUIRED",
            "IDENTITY_NOT_VERIFIED",
            "INSUFFICIENT_FUNDS",
            "INVEST_ABOVE_REMAINING",
            "INVEST_BELOW_MINIMUM",
            "INVEST_CAP_EXCEEDED",
            "LOAN_NOT_FOUND",
            "LOAN_STATE_INVALID",
            "MEMBER_NOT_FOUND",
            "OWN_LOAN",
            "RAISING_ENDED",
            "REQUEST_NO_REUSED",
        ),
    )
    def invest(
        loanId: LoanId,
        amount: required(PositiveMoney, "Amount to invest, in yuan."),
        requestNo: RequestNo,
        couponIds: repeated(
            Long(ge=1),
            "Your coupons to use on it (MarketingFacade.listCoupons): CASH (paid to you when "
            "the listing is disbursed) and RATE_BOOST (extra interest with each repayment); "
            "at most 5, one RATE_BOOST at most, a coupon that is not stackable alone.",
        ),
    ):
        """Invest in a RAISING listing before its deadline (购买标的); the amount is frozen in
        your account until the listing is disbursed, fails or is cancelled. At least
        minInvest, or exactly what remains when less than minInvest is left; never more than
        remains; your investments in the listing together within maxInvestPerInvestor. The
        listing becomes FULL when its last fen is taken. You must have verified your real name
        (IDENTITY_NOT_VERIFIED) and opened a fund account (FUND_ACCOUNT_REQUIRED) first.
        Through the depository bank the investment is PENDING: the amount is reserved in the
        listing at once, and frozen once you confirm on the bank's page (authorizeUrl, see
        getInvestment); your available balance must cover it (INSUFFICIENT_FUNDS). Coupons
        named in couponIds are checked now (COUPON_NOT_FOUND, COUPON_NOT_AVAILABLE,
        COUPON_EXPIRED, COUPON_NOT_APPLICABLE: amount tier, term, repayment method or kind;
        COUPONS_NOT_STACKABLE; CAMPAIGN_INACTIVE; CAMPAIGN_BUDGET_EXHAUSTED) and locked to the
        investment, or nothing is invested; they are used when the listing is disbursed, and
        AVAILABLE again when the investment is released or not frozen. A coupon is never
        used twice, even by two investments at once."""

    @operation(
        rest=GET("/investments/{investmentId}"),
        returns=InvestmentDto,
        roles=[INVESTOR],
        errors=("INVESTMENT_NOT_FOUND",),
    )
    def getInvestment(investmentId: required(Long(ge=1), "Investment id.")):
        """One of your investments, to follow a PENDING one; INVESTMENT_NOT_FOUND for an id
        that is not yours."""

    @operation(rest=GET("/investments"), returns=InvestmentPageDto, roles=[INVESTOR])
    def listInvestments(
        loanId: optional(Long(ge=1), "Only investments in this listing."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Your investments, newest first, paged."""

    @operation(
        rest=POST("/loans/{loanId}/cancel"),
        returns=LoanDto,
        roles=[OPERATOR],
        errors=("INSUFFICIENT_FUNDS", "LOAN_NOT_FOUND", "LOAN_STATE_INVALID", "MEMBER_NOT_FOUND"),
    )
    def cancelLoan(
        loanId: LoanId,
        reason: required(
            MultilineText(min_len=1, max_len=500, pattern=NOT_BLANK),
            "Why it is cancelled; not blank.",
        ),
    ):
        """Cancel a listing not yet disbursed (PENDING_AUDIT, REJECTED, RAISING or FULL):
        it becomes CANCELLED and every investor's frozen funds are released (through the
        depository bank: RELEASING until the bank has released them)."""

    @operation(
        rest=POST("/loans/expired/close"),
        returns=ExpiredLoansDto,
        roles=[OPERATOR],
        errors=("INSUFFICIENT_FUNDS", "LOAN_NOT_FOUND", "LOAN_STATE_INVALID", "MEMBER_NOT_FOUND"),
    )
    def closeExpiredLoans():
        """Mark every RAISING listing past its deadline FAILED (流标) and release its
        investors' frozen funds (through the depository bank: RELEASING until the bank has
        released them). Safe to run at any time, e.g. from a scheduler."""

    @operation(
        rest=POST("/loans/{loanId}/disbursement"),
        returns=LoanDto,
        roles=[OPERATOR],
        errors=(
            "FUND_ACCOUNT_REQUIRED",
            "INSUFFICIENT_FUNDS",
            "LOAN_NOT_FOUND",
            "LOAN_STATE_INVALID",
            "MEMBER_NOT_FOUND",
            "REQUEST_NO_REUSED",
        ),
    )
    def disburseLoan(loanId: LoanId, requestNo: RequestNo):
        """Disburse a FULL listing (融资收款): in one transaction the investors' frozen funds
        go to the borrower less the platform fee, the listing becomes REPAYING and the
        repayment plan and each investor's receipts are written. Through the depository
        bank the listing is DISBURSING until the bank has lent every investment (follow it
        with getLoan), then REPAYING with its plan. Refused (LOAN_STATE_INVALID) while an
        investment is PENDING or RELEASING at the bank."""
