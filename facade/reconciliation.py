"""ReconciliationFacade: the daily two-way reconciliation with the depository bank, its
discrepancies and their audited repairs, the bank orders left in doubt, and the ones the bank
FAILED that wait for a person, who re-issues them. Operators only: the platform has no auditor
role, so operators both read and resolve."""

from spyne import ComplexModel, Date, DateTime, Decimal, Enum, Integer32, Long, Unicode

from facade.contract import GET, OPERATOR, POST, Facade, operation
from facade.types import (
    NOT_BLANK,
    Money,
    MultilineText,
    PageParam,
    PageSizeParam,
    RequestNo,
    optional,
    page_fields,
    required,
)

NS = "http://p2p.hry.com/facade/reconciliation"

RunStatus = Enum("RUNNING", "SUCCEEDED", "FAILED", type_name="ReconciliationRunStatus")
RunStatus.__namespace__ = NS

Category = Enum(
    "BANK_ONLY",
    "PLATFORM_ONLY",
    "AMOUNT",
    "STATUS",
    "FEE",
    "BALANCE",
    type_name="DiscrepancyCategory",
)
Category.__namespace__ = NS

DiscrepancyStatus = Enum("OPEN", "RESOLVED", type_name="DiscrepancyStatus")
DiscrepancyStatus.__namespace__ = NS

Resolution = Enum("APPLY", "EXPLAIN", "CLEARED", type_name="DiscrepancyResolution")
Resolution.__namespace__ = NS

Action = Enum("APPLY", "EXPLAIN", type_name="DiscrepancyAction")
Action.__namespace__ = NS

#: A ledger figure, which may fall below zero where the books disagree.
Figure = Decimal(total_digits=17, fraction_digits=2, type_name="figure")


class ReconciliationRunDto(ComplexModel):
    """The reconciliation of one business day and its latest outcome."""

    __namespace__ = NS
    _type_info = [
        ("businessDate", required(Date, "The business day (Asia/Shanghai) reconciled.")),
        ("status", required(RunStatus, "RUNNING, SUCCEEDED or FAILED (the latest attempt).")),
        (
            "reason",
            optional(
                Unicode,
                "Why the latest attempt failed: FILE_NOT_READY, SIGNATURE_INVALID, "
                "FILE_HEADER_MISMATCH, FILE_MALFORMED, BANK_UNAVAILABLE, or ERROR (anything "
                "else; the log says what).",
            ),
        ),
        ("failedFile", optional(Unicode, "The file type that failed it.")),
        ("attempts", required(Integer32, "Attempts so far.")),
        ("failedAttempts", required(Integer32, "Attempts that failed.")),
        ("startedAt", required(DateTime, "When the latest attempt started (UTC).")),
        ("finishedAt", optional(DateTime, "When it ended (UTC).")),
        ("succeededAt", optional(DateTime, "When an attempt last succeeded (UTC).")),
        ("bankOnly", required(Integer32, "BANK_ONLY discrepancies the last success found.")),
        ("platformOnly", required(Integer32, "PLATFORM_ONLY discrepancies found.")),
        ("amountMismatches", required(Integer32, "AMOUNT discrepancies found.")),
        ("statusMismatches", required(Integer32, "STATUS discrepancies found.")),
        ("feeMismatches", required(Integer32, "FEE discrepancies found.")),
        ("balanceMismatches", required(Integer32, "BALANCE discrepancies found.")),
        ("bankLines", required(Integer32, "Lines of the bank's order files.")),
        ("bankAmount", required(Money, "Their amounts' sum, in yuan.")),
        ("bankFee", required(Money, "Their fees' sum, in yuan.")),
        (
            "platformOrders",
            required(Integer32, "The platform's orders of the day: finished in it, or open."),
        ),
        ("platformAmount", required(Money, "Their amounts' sum, in yuan.")),
        ("platformFee", required(Money, "Their fees' sum, in yuan.")),
        ("bankBalance", required(Money, "Members' sub-account totals at the bank, end of day.")),
        ("platformBalance", required(Figure, "The platform's figures for them, end of day.")),
    ]


class ReconciliationRunPageDto(ComplexModel):
    """One page of runs."""

    __namespace__ = NS
    _type_info = page_fields(ReconciliationRunDto, "The runs on this page, latest day first.")


class DiscrepancyDto(ComplexModel):
    """One difference between the bank's files and the platform's books, both sides' values
    as found, and how it was resolved."""

    __namespace__ = NS
    _type_info = [
        ("discrepancyId", required(Long, "Discrepancy id.")),
        ("businessDate", required(Date, "The business day it was found for.")),
        ("category", required(Category, "What differs.")),
        ("subject", required(Unicode, "The order number, or the sub-account's for BALANCE.")),
        ("orderType", optional(Unicode, "The order's type.")),
        ("memberId", optional(Long, "The member concerned, when the platform knows one.")),
        ("bankStatus", optional(Unicode, "The order's status in the bank's file.")),
        ("platformStatus", optional(Unicode, "The order's status at the platform.")),
        ("bankAmount", optional(Money, "The bank's amount, or sub-account total (BALANCE).")),
        ("platformAmount", optional(Figure, "The platform's amount, or figure (BALANCE).")),
        ("bankFee", optional(Money, "The bank's fee.")),
        ("platformFee", optional(Money, "The platform's fee.")),
        ("bankRef", optional(Unicode, "The bank's reference.")),
        ("bankFinishedAt", optional(DateTime, "When the bank finished the order (UTC).")),
        ("status", required(DiscrepancyStatus, "OPEN until resolved.")),
        (
            "resolution",
            optional(
                Resolution,
                "APPLY or EXPLAIN (an operator), or CLEARED (a later run no longer found it).",
            ),
        ),
        ("reason", optional(MultilineText, "The operator's explanation.")),
        ("resolvedBy", optional(Long, "The operator who resolved it.")),
        ("resolvedAt", optional(DateTime, "When it was resolved (UTC).")),
        ("foundAt", required(DateTime, "When it was first found (UTC).")),
    ]


class DiscrepancyPageDto(ComplexModel):
    """One page of discrepancies."""

    __namespace__ = NS
    _type_info = page_fields(DiscrepancyDto, "The discrepancies on this page, latest day first.")


class OrderInDoubtDto(ComplexModel):
    """A bank order still open after bank.doubt_age_seconds."""

    __namespace__ = NS
    _type_info = [
        ("orderNo", required(Unicode, "The bank order number.")),
        ("orderType", required(Unicode, "Its type.")),
        ("memberId", required(Long, "The member it serves.")),
        ("amount", optional(Money, "Its amount, in yuan.")),
        ("status", required(Unicode, "CREATED, SENT, ACCEPTED or UNKNOWN.")),
        ("createdAt", required(DateTime, "When it was created (UTC).")),
        ("inDoubtSince", optional(DateTime, "Since when no trustworthy answer is known.")),
        ("handedToReconciliationAt", required(DateTime, "When it was handed over (UTC).")),
    ]


class OrderInDoubtPageDto(ComplexModel):
    """One page of bank orders in doubt."""

    __namespace__ = NS
    _type_info = page_fields(OrderInDoubtDto, "The orders on this page, the oldest first.")


class OrderWaitingDto(ComplexModel):
    """A bank order the bank FAILED that only a person can take further: a batch item
    (DISBURSE, REPAY) whose attempts are used up, or a release (UNFREEZE) of an investment
    still frozen; no later order re-issues it, and its business is not done."""

    __namespace__ = NS
    _type_info = [
        ("orderNo", required(Unicode, "The bank order number.")),
        ("orderType", required(Unicode, "DISBURSE, REPAY or UNFREEZE.")),
        ("memberId", required(Long, "The member it serves: the payer, or the investor.")),
        ("amount", required(Money, "Its amount, in yuan.")),
        ("reason", optional(Unicode, "Why the bank failed it, in the bank's words.")),
        ("failedAt", required(DateTime, "When the bank failed it (UTC).")),
        (
            "attempts",
            required(Integer32, "Orders tried for its business so far, this one included."),
        ),
    ]


class OrderWaitingPageDto(ComplexModel):
    """One page of bank orders waiting for a person."""

    __namespace__ = NS
    _type_info = page_fields(OrderWaitingDto, "The orders on this page, the oldest failure first.")


class BankOrderReissueDto(ComplexModel):
    """An operator's re-issue of a FAILED bank order under a new order number."""

    __namespace__ = NS
    _type_info = [
        ("orderNo", required(Unicode, "The FAILED bank order re-issued.")),
        ("newOrderNo", required(Unicode, "The new order re-issuing it (its retry).")),
        ("orderType", required(Unicode, "DISBURSE, REPAY or UNFREEZE.")),
        ("memberId", required(Long, "The member it serves.")),
        ("amount", required(Money, "Its amount, in yuan.")),
        ("reason", required(MultilineText, "The operator's reason.")),
        ("reissuedBy", required(Long, "The operator who re-issued it.")),
        ("reissuedAt", required(DateTime, "When it was re-issued (UTC).")),
    ]


BusinessDate = required(Date, "The business day, YYYY-MM-DD (Asia/Shanghai).")


class ReconciliationFacade(Facade):
    """The daily reconciliation with the depository bank (对账): runs, discrepancies, repairs.
    Operators only."""

    namespace = NS
    service = "service.reconciliation:ReconciliationService"

    @operation(
        rest=POST("/reconciliation/runs"), roles=[OPERATOR], errors=("RECONCILIATION_UNAVAILABLE",)
    )
    def runReconciliation(date: BusinessDate):
        """Reconcile a business day that has ended (VALIDATION_FAILED for today or later),
        again if it was already: the day is handed to the job engine (job bank.reconcile)
        and a worker runs it; follow it with getRun. What operators resolved stays resolved.
        RECONCILIATION_UNAVAILABLE unless the platform works with the depository bank."""

    @operation(
        rest=GET("/reconciliation/runs/{date}"),
        returns=ReconciliationRunDto,
        roles=[OPERATOR],
        errors=("RECONCILIATION_RUN_NOT_FOUND",),
    )
    def getRun(date: BusinessDate):
        """The reconciliation of one business day; RECONCILIATION_RUN_NOT_FOUND if it never
        ran."""

    @operation(rest=GET("/reconciliation/runs"), returns=ReconciliationRunPageDto, roles=[OPERATOR])
    def listRuns(
        fromDate: optional(Date, "The first business day, inclusive."),
        toDate: optional(Date, "The last business day, inclusive; not before fromDate."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Reconciliation runs, latest day first, paged."""

    @operation(
        rest=GET("/reconciliation/discrepancies"), returns=DiscrepancyPageDto, roles=[OPERATOR]
    )
    def listDiscrepancies(
        date: optional(Date, "Only those of this business day."),
        category: optional(Category, "Only those of this category."),
        status: optional(DiscrepancyStatus, "Only OPEN, or only RESOLVED, ones."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Discrepancies, latest day first, paged."""

    @operation(
        rest=POST("/reconciliation/discrepancies/{discrepancyId}/resolution"),
        returns=DiscrepancyDto,
        roles=[OPERATOR],
        errors=(
            "APPLY_NOT_APPLICABLE",
            "DISCREPANCY_NOT_FOUND",
            "DISCREPANCY_RESOLVED",
            "INSUFFICIENT_FUNDS",
            "RECONCILIATION_UNAVAILABLE",
            "REQUEST_NO_REUSED",
        ),
    )
    def resolveDiscrepancy(
        discrepancyId: required(Long(ge=1), "Discrepancy id."),
        action: required(
            Action,
            "APPLY the bank's outcome (a STATUS discrepancy whose order the platform still "
            "holds open, or SUCCEEDED when the bank says REVERSED), or EXPLAIN it.",
        ),
        reason: optional(
            MultilineText(max_len=2000, pattern=NOT_BLANK),
            "Why: required to EXPLAIN, optional to APPLY; not blank when given.",
        ),
        requestNo: RequestNo,
    ):
        """Resolve an open discrepancy, recording who, when, what and why. APPLY settles the
        order with the bank's outcome exactly as the bank's answer would (its postings
        once); APPLY_NOT_APPLICABLE for a discrepancy it cannot fix (bank-only,
        platform-only, amount, fee, balance, or an order already final otherwise): EXPLAIN
        those with a reason. DISCREPANCY_NOT_FOUND, DISCREPANCY_RESOLVED. A repeat with the
        same requestNo returns the discrepancy; with another request, REQUEST_NO_REUSED."""

    @operation(
        rest=GET("/reconciliation/orders-in-doubt"), returns=OrderInDoubtPageDto, roles=[OPERATOR]
    )
    def listOrdersInDoubt(page: PageParam, pageSize: PageSizeParam):
        """Bank orders still open bank.doubt_age_seconds after they were created (still
        queried): the oldest first, paged."""

    @operation(
        rest=GET("/reconciliation/orders-waiting"), returns=OrderWaitingPageDto, roles=[OPERATOR]
    )
    def listOrdersWaiting(page: PageParam, pageSize: PageSizeParam):
        """Bank orders the bank FAILED that wait for a person (reissueBankOrder): DISBURSE and
        REPAY items whose bank.item_attempts are used up (the listing stays DISBURSING, the
        installment PAYING), and releases (UNFREEZE) of investments still RELEASING; the
        oldest failure first, paged."""

    @operation(
        rest=POST("/reconciliation/orders/{orderNo}/reissue"),
        returns=BankOrderReissueDto,
        roles=[OPERATOR],
        errors=(
            "BANK_ORDER_NOT_FOUND",
            "ORDER_NOT_REISSUABLE",
            "RECONCILIATION_UNAVAILABLE",
            "REQUEST_NO_REUSED",
        ),
    )
    def reissueBankOrder(
        orderNo: required(
            Unicode(min_len=1, max_len=32, pattern="[A-Za-z0-9]+"),
            "A bank order listOrdersWaiting lists.",
        ),
        reason: required(MultilineText(max_len=2000, pattern=NOT_BLANK), "Why; not blank."),
        requestNo: RequestNo,
    ):
        """Re-issue a bank order that waits for a person: a new order under a new number for
        the same business (a batch item in a batch of its own, sent at once, whatever its
        attempts; an UNFREEZE of the same FREEZE), linked to the failed one, recording who,
        when and why. Once the new order succeeds the business moves on as if the first had
        (the listing REPAYING, the installment PAID, the investment RELEASED); if the bank
        fails it too, it waits for a person again. BANK_ORDER_NOT_FOUND;
        ORDER_NOT_REISSUABLE for an order that does not wait for a person (another type, not
        FAILED: never an UNKNOWN one, the bank may have moved the money; its business done,
        or re-issued already). A repeat with the same requestNo returns the re-issue; with
        another request, REQUEST_NO_REUSED. RECONCILIATION_UNAVAILABLE unless the platform
        works with the depository bank."""
