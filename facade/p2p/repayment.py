"""Repayment (还款): schedules, repaying installments, early settlement, overdue marking and
investors' receipts; the DTOs and the operations."""

from decimal import Decimal as Exact

from spyne import Boolean, ComplexModel, Date, DateTime, Decimal, Enum, Integer32, Long

from facade.contract import BORROWER, GET, INVESTOR, OPERATOR, POST, operation
from facade.p2p.loan import NS, LoanId, LoanStatus, RepaymentMethod
from facade.types import (
    Money,
    PageParam,
    PageSizeParam,
    PositiveMoney,
    RequestNo,
    optional,
    page_fields,
    required,
)

InstallmentStatus = Enum(
    "PENDING", "OVERDUE", "PAID", "SETTLED_EARLY", "PAYING", type_name="InstallmentStatus"
)
InstallmentStatus.__namespace__ = NS

#: A repayment's or settlement's outcome: PAID at once, or PENDING while the depository bank
#: pays the investors.
RepaymentStatus = Enum("PAID", "PENDING", type_name="RepaymentStatus")
RepaymentStatus.__namespace__ = NS

ReceiptStatus = Enum("PENDING", "RECEIVED", type_name="ReceiptStatus")
ReceiptStatus.__namespace__ = NS

#: A rate a schedule may be previewed at: 0 to 36 (percent), up to 4 decimals.
PreviewRate = Decimal(total_digits=7, fraction_digits=4, ge=0, le=Exact(36))


class ScheduleRowDto(ComplexModel):
    """One period of a previewed schedule."""

    __namespace__ = NS
    _type_info = [
        ("period", required(Integer32, "Period number; a BULLET plan's one row is the term.")),
        ("principal", required(Money, "Principal repaid in this period.")),
        ("interest", required(Money, "Interest paid in this period.")),
        ("payment", required(Money, "principal + interest.")),
        ("remaining", required(Money, "Principal still owed after this period.")),
    ]


class SchedulePreviewDto(ComplexModel):
    """What a loan on these terms repays, period by period: every period on one page (a term
    is at most 60 months), so page is 1 and total and pageSize the number of periods."""

    __namespace__ = NS
    _type_info = [
        *page_fields(ScheduleRowDto, "The periods, in order."),
        ("totalInterest", required(Money, "Interest over the whole term.")),
        ("totalPayment", required(Money, "Principal plus all interest.")),
    ]


class InstallmentDto(ComplexModel):
    """One installment of a listing's repayment plan, as the borrower owes it."""

    __namespace__ = NS
    _type_info = [
        ("period", required(Integer32, "Period number; a BULLET plan's one row is the term.")),
        ("dueDate", optional(Date, "When it falls due; absent on a projected plan.")),
        ("principal", required(Money, "Principal of this installment.")),
        ("interest", required(Money, "Interest of this installment.")),
        (
            "penalty",
            required(Money, "Overdue penalty: accrued to today while unpaid, as paid once paid."),
        ),
        ("payment", required(Money, "principal + interest + penalty.")),
        ("remaining", required(Money, "Principal still owed after this installment.")),
        (
            "status",
            required(
                InstallmentStatus,
                "PENDING, OVERDUE, PAID or SETTLED_EARLY; PAYING while the depository bank pays "
                "it to the investors (payment.gateway BANK).",
            ),
        ),
        ("paidAt", optional(DateTime, "When it was paid or settled (UTC).")),
    ]


class RepaymentScheduleDto(ComplexModel):
    """A listing's repayment plan: every installment on one page (a term is at most 60
    months), so page is 1 and total and pageSize the number of installments."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "Listing id.")),
        ("loanStatus", required(LoanStatus, "The listing's status.")),
        (
            "projected",
            required(
                Boolean,
                "true before disbursement: the plan computed from the listing's terms, with no "
                "due dates yet; false: the stored plan.",
            ),
        ),
        *page_fields(InstallmentDto, "The installments, in period order."),
    ]


class RepaymentDto(ComplexModel):
    """One repaid installment."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "Listing id.")),
        ("period", required(Integer32, "The installment repaid.")),
        ("principal", required(Money, "Principal paid.")),
        ("interest", required(Money, "Interest paid.")),
        ("penalty", required(Money, "Overdue penalty paid.")),
        ("amount", required(Money, "Total taken from your available balance.")),
        ("paidAt", optional(DateTime, "When it was paid (UTC); absent while PENDING.")),
        ("settled", required(Boolean, "true when this was the last installment.")),
        (
            "status",
            required(
                RepaymentStatus,
                "PAID; or PENDING: the amount is frozen in your balance while the depository "
                "bank pays the investors; follow it with getRepaymentSchedule (the installment "
                "PAYING, then PAID).",
            ),
        ),
    ]


class SettlementDto(ComplexModel):
    """An early settlement of a whole listing."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "Listing id.")),
        ("principal", required(Money, "All the principal that was outstanding.")),
        (
            "interest",
            required(
                Money,
                "Interest paid: past-due installments' and, by "
                "configuration, the current period's.",
            ),
        ),
        ("penalty", required(Money, "Penalties of overdue installments.")),
        ("amount", required(Money, "Total taken from your available balance.")),
        (
            "settledAt",
            optional(DateTime, "When the listing was settled (UTC); absent while PENDING."),
        ),
        (
            "status",
            required(
                RepaymentStatus,
                "PAID; or PENDING: the amount is frozen in your balance while the depository "
                "bank pays the investors; follow it with getRepaymentSchedule (the installments "
                "PAYING, then SETTLED_EARLY, the listing SETTLED).",
            ),
        ),
    ]


class OverdueMarkDto(ComplexModel):
    """The outcome of marking overdue installments."""

    __namespace__ = NS
    _type_info = [("marked", required(Integer32, "Installments newly marked OVERDUE."))]


class ReceiptDto(ComplexModel):
    """An investor's share of one installment."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "Listing id.")),
        ("investmentId", required(Long, "The investment it is paid on.")),
        ("period", required(Integer32, "The installment's period.")),
        ("dueDate", required(Date, "When the installment falls due.")),
        ("principal", required(Money, "Principal due to you.")),
        ("interest", required(Money, "Interest due to you.")),
        ("penalty", required(Money, "Your share of the overdue penalty, once received.")),
        ("amount", required(Money, "principal + interest + penalty.")),
        (
            "fee",
            required(
                Money,
                "The platform's interest service fee kept from this receipt (0.00 until it is "
                "received): you received amount - fee.",
            ),
        ),
        ("status", required(ReceiptStatus, "PENDING until the borrower pays, then RECEIVED.")),
        ("receivedAt", optional(DateTime, "When it was received (UTC).")),
    ]


class ReceiptPageDto(ComplexModel):
    """One page of receipts."""

    __namespace__ = NS
    _type_info = page_fields(ReceiptDto, "The receipts on this page.")


class RepaymentDueDto(ComplexModel):
    """The next installment a borrower owes on one listing."""

    __namespace__ = NS
    _type_info = [
        ("loanId", required(Long, "Listing id.")),
        ("period", required(Integer32, "The installment's period.")),
        ("dueDate", required(Date, "When it falls (or fell) due.")),
        ("principal", required(Money, "Principal.")),
        ("interest", required(Money, "Interest.")),
        ("penalty", required(Money, "Overdue penalty accrued to today.")),
        ("amount", required(Money, "What repaying it today takes.")),
        ("status", required(InstallmentStatus, "PENDING or OVERDUE.")),
    ]


class RepaymentDuePageDto(ComplexModel):
    """One page of what a borrower owes next, listing by listing."""

    __namespace__ = NS
    _type_info = page_fields(RepaymentDueDto, "One row per listing being repaid.")


class RepaymentOperations:
    """Repayment schedules, repaying, early settlement, overdue marking and receipts."""

    @operation(
        rest=GET("/loans/{loanId}/schedule"),
        returns=RepaymentScheduleDto,
        errors=("LOAN_NOT_FOUND",),
    )
    def getRepaymentSchedule(loanId: LoanId):
        """A listing's repayment plan (还款计划). Public for the listings getLoan shows the
        caller (LOAN_NOT_FOUND for the others, as for one that does not exist). Once
        disbursed, the stored plan with due dates and statuses; before, the plan its terms
        would give (projected, no due dates). Every installment is on one page."""

    @operation(rest=GET("/schedules/preview"), returns=SchedulePreviewDto)
    def previewRepaymentSchedule(
        principal: required(PositiveMoney, "Amount borrowed or invested, in yuan, above 0."),
        annualRate: required(PreviewRate, "Yearly rate as a percentage, 0 to 36."),
        termMonths: required(Integer32(ge=1, le=60), "Term in months, 1 to 60."),
        repaymentMethod: required(RepaymentMethod, "How it is repaid."),
    ):
        """The full repayment table for these terms: what an amount would earn, every period
        on one page. Public."""

    @operation(
        rest=POST("/loans/{loanId}/repayments"),
        returns=RepaymentDto,
        roles=[BORROWER],
        errors=(
            "FUND_ACCOUNT_REQUIRED",
            "INSUFFICIENT_FUNDS",
            "LOAN_NOT_FOUND",
            "LOAN_STATE_INVALID",
            "MEMBER_NOT_FOUND",
            "REQUEST_NO_REUSED",
        ),
    )
    def repay(loanId: LoanId, requestNo: RequestNo):
        """Repay the next unpaid installment of your listing (还款), with its overdue penalty,
        from your available balance; the investors are paid at once (status PAID), or, through
        the depository bank, the amount is frozen and the answer is PENDING until the bank has
        paid every investor (the installment PAYING, then PAID). Repaying the last one settles
        the listing. LOAN_STATE_INVALID while an installment is PAYING."""

    @operation(
        rest=POST("/loans/{loanId}/settlement"),
        returns=SettlementDto,
        roles=[BORROWER],
        errors=(
            "FUND_ACCOUNT_REQUIRED",
            "INSUFFICIENT_FUNDS",
            "LOAN_NOT_FOUND",
            "LOAN_STATE_INVALID",
            "MEMBER_NOT_FOUND",
            "REQUEST_NO_REUSED",
        ),
    )
    def settleEarly(loanId: LoanId, requestNo: RequestNo):
        """Settle your listing early (提前结清): all outstanding principal, the interest and
        penalties of installments already due, and the current period's interest as
        configured, in one payment: PAID at once, or PENDING while the depository bank pays
        the investors (the installments PAYING, then SETTLED_EARLY). LOAN_STATE_INVALID while
        an installment is PAYING."""

    @operation(rest=POST("/installments/overdue/mark"), returns=OverdueMarkDto, roles=[OPERATOR])
    def markOverdueInstallments():
        """Mark every unpaid installment whose due date has passed (UTC) as OVERDUE."""

    @operation(rest=GET("/receipts"), returns=ReceiptPageDto, roles=[INVESTOR])
    def listReceipts(
        loanId: optional(Long(ge=1), "Only this listing's receipts."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Your receipts (回款计划), planned and received: newest listing first, then period."""

    @operation(rest=GET("/repayments/due"), returns=RepaymentDuePageDto, roles=[BORROWER])
    def getRepaymentsDue(page: PageParam, pageSize: PageSizeParam):
        """What you owe next on each of your listings being repaid, penalty accrued to today,
        oldest listing first."""
