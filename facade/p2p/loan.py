"""Listings (标的): their DTOs and the operations that publish, modify, audit and query them."""

from decimal import Decimal as Exact

from spyne import Boolean, ComplexModel, DateTime, Decimal, Enum, Integer32, Long, Unicode

from facade.contract import GET, OPERATOR, POST, PUT, operation
from facade.types import (
    NOT_BLANK,
    NOT_BLANK_LINE,
    Money,
    MultilineText,
    PageParam,
    PageSizeParam,
    PositiveMoney,
    Rate,
    optional,
    page_fields,
    required,
)

NS = "http://p2p.hry.com/facade/p2p"

RepaymentMethod = Enum(
    "EQUAL_INSTALLMENT",
    "EQUAL_PRINCIPAL",
    "MONTHLY_INTEREST",
    "BULLET",
    type_name="RepaymentMethod",
)
RepaymentMethod.__namespace__ = NS

LoanStatus = Enum(
    "PENDING_AUDIT",
    "REJECTED",
    "RAISING",
    "FULL",
    "REPAYING",
    "SETTLED",
    "FAILED",
    "CANCELLED",
    "DISBURSING",
    type_name="LoanStatus",
)
LoanStatus.__namespace__ = NS

#: A listing's yearly rate: above 0 and at most 36 (percent), up to 4 decimals.
AnnualRate = Decimal(total_digits=7, fraction_digits=4, ge=Exact("0.0001"), le=Exact(36))


class LoanRequest(ComplexModel):
    """The terms of a listing, as an operator publishes or modifies it."""

    __namespace__ = NS
    _type_info = [
        (
            "title",
            required(
                Unicode(min_len=1, max_len=100, pattern=NOT_BLANK_LINE),
                "Title shown to investors; not blank.",
            ),
        ),
        ("description", required(MultilineText(max_len=2000), "What the money is for.")),
        ("borrowerId", required(Long, "The borrowing member's id.")),
        (
            "amount",
            required(
                PositiveMoney,
                "Amount to raise, in yuan, from loan.min_amount to loan.max_amount (settings).",
            ),
        ),
        ("annualRate", required(AnnualRate, "Yearly rate as a percentage, above 0, at most 36.")),
        ("termMonths", required(Integer32(ge=1, le=60), "Term in months, 1 to 60.")),
        ("repaymentMethod", required(RepaymentMethod, "How the borrower repays.")),
        ("minInvest", required(PositiveMoney, "Smallest investment, at most the amount.")),
        (
            "maxInvestPerInvestor",
            optional(
                PositiveMoney,
                "Most one investor may put in, in total, from minInvest to the amount; no cap "
                "when left out.",
            ),
        ),
        (
            "raiseDays",
            required(
                Integer32(ge=1, le=365),
                "Days the listing raises after audit: 1 to loan.max_raise_days (a setting, at "
                "most 365).",
            ),
        ),
    ]


class AuditRequest(ComplexModel):
    """An operator's verdict on a listing pending audit."""

    __namespace__ = NS
    _type_info = [
        ("approve", required(Boolean, "true to start raising, false to reject.")),
        (
            "reason",
            optional(
                MultilineText(max_len=500, pattern=NOT_BLANK),
                "Why it was rejected; required to reject, not blank when given.",
            ),
        ),
    ]


class LoanDto(ComplexModel):
    """A loan listing. The borrower and operators see all of it; everyone else sees neither
    borrowerId nor rejectReason."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "Listing id.")),
        ("title", required(Unicode, "Title.")),
        ("description", required(MultilineText, "Description.")),
        (
            "borrowerId",
            optional(Long, "The borrowing member's id; only to the borrower and operators."),
        ),
        ("amount", required(Money, "Amount to raise, in yuan.")),
        ("annualRate", required(Rate, "Yearly rate as a percentage.")),
        ("termMonths", required(Integer32, "Term in months.")),
        ("repaymentMethod", required(RepaymentMethod, "How the borrower repays.")),
        ("minInvest", required(Money, "Smallest investment.")),
        ("maxInvestPerInvestor", optional(Money, "Most one investor may put in; absent: no cap.")),
        ("raiseDays", required(Integer32, "Days the listing raises after audit.")),
        ("status", required(LoanStatus, "Where the listing is in its life.")),
        ("raised", required(Money, "Amount invested so far (frozen or lent), in yuan.")),
        (
            "rejectReason",
            optional(
                MultilineText,
                "Why the last audit rejected it, or why it was cancelled; only to the borrower "
                "and operators.",
            ),
        ),
        ("raiseDeadline", optional(DateTime, "When raising ends (UTC); set on approval.")),
        ("createdAt", required(DateTime, "When it was published (UTC).")),
        ("updatedAt", required(DateTime, "When it last changed (UTC).")),
    ]


class LoanPageDto(ComplexModel):
    """One page of listings."""

    __namespace__ = NS
    _type_info = page_fields(LoanDto, "The listings on this page.")


LoanId = required(Long(ge=1), "Listing id.")


class ListingOperations:
    """Publishing, modifying, auditing and browsing listings."""

    @operation(
        rest=POST("/loans", body="request", status=201),
        returns=LoanDto,
        roles=[OPERATOR],
        errors=(
            "FUND_ACCOUNT_REQUIRED",
            "IDENTITY_NOT_VERIFIED",
            "MEMBER_NOT_FOUND",
            "NOT_A_BORROWER",
        ),
    )
    def publishLoan(request: required(LoanRequest, "The listing's terms.")):
        """Publish a listing for a borrower (发标). It starts PENDING_AUDIT. The borrower must
        have verified their real name (IDENTITY_NOT_VERIFIED) and opened a fund account
        (FUND_ACCOUNT_REQUIRED)."""

    @operation(
        rest=PUT("/loans/{loanId}", body="request"),
        returns=LoanDto,
        roles=[OPERATOR],
        errors=(
            "CONCURRENT_UPDATE",
            "FUND_ACCOUNT_REQUIRED",
            "IDENTITY_NOT_VERIFIED",
            "LOAN_NOT_FOUND",
            "LOAN_STATE_INVALID",
            "MEMBER_NOT_FOUND",
            "NOT_A_BORROWER",
        ),
    )
    def updateLoan(loanId: LoanId, request: required(LoanRequest, "The new terms, in full.")):
        """Modify a listing's terms (修改), only while PENDING_AUDIT or REJECTED; it goes back
        to PENDING_AUDIT. The borrower the new terms name must have verified their real name
        (IDENTITY_NOT_VERIFIED) and opened a fund account (FUND_ACCOUNT_REQUIRED)."""

    @operation(
        rest=POST("/loans/{loanId}/audit", body="request"),
        returns=LoanDto,
        roles=[OPERATOR],
        errors=("CONCURRENT_UPDATE", "LOAN_NOT_FOUND", "LOAN_STATE_INVALID"),
    )
    def auditLoan(loanId: LoanId, request: required(AuditRequest, "The verdict.")):
        """Audit a listing (审核): approve it to start raising until its deadline, or reject it
        with a reason."""

    @operation(rest=GET("/loans/{loanId}"), returns=LoanDto, errors=("LOAN_NOT_FOUND",))
    def getLoan(loanId: LoanId):
        """One listing, by id. Public: anyone sees a listing that passed audit (RAISING, FULL,
        DISBURSING, REPAYING, SETTLED, FAILED), without borrowerId and rejectReason; an
        investor also sees a CANCELLED listing they invested in. The borrower sees their own
        listings in every status, and operators every listing, in full. A listing the caller
        may not see answers LOAN_NOT_FOUND, exactly as one that does not exist."""

    @operation(rest=GET("/loans"), returns=LoanPageDto)
    def listLoans(
        status: optional(LoanStatus, "Only listings in this status."),
        repaymentMethod: optional(RepaymentMethod, "Only listings repaid this way."),
        minRate: optional(Rate, "Lowest yearly rate, inclusive; at most maxRate."),
        maxRate: optional(Rate, "Highest yearly rate, inclusive."),
        minTermMonths: optional(
            Integer32(ge=1, le=60), "Shortest term, inclusive; at most maxTermMonths."
        ),
        maxTermMonths: optional(Integer32(ge=1, le=60), "Longest term, inclusive."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Listings, newest first, filtered and paged. Public, and showing what getLoan shows
        each caller: anyone sees the listings that passed audit (RAISING, FULL, DISBURSING,
        REPAYING, SETTLED, FAILED) without borrowerId and rejectReason, a borrower their own in
        every status besides, in full, and operators all; total counts only those. Filtering
        by a status the caller may not see gives an empty page (a CANCELLED listing an
        investor invested in is shown them by getLoan, not here)."""
