"""The one catalogue of error codes, and the one exception type that carries them.

Every error a caller can see is listed here with a stable code, an HTTP status for REST and
whether it is the caller's fault (SOAP faultcode Client) or ours (Server).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: str

    @property
    def client(self) -> bool:
        return self.status < 500


def _codes(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {c.code: c for c in codes}


MALFORMED_REQUEST = ErrorCode("MALFORMED_REQUEST", 400, "The request could not be read.")
VALIDATION_FAILED = ErrorCode("VALIDATION_FAILED", 400, "A field is missing or invalid.")
UNAUTHENTICATED = ErrorCode("UNAUTHENTICATED", 401, "Log in first: no valid credentials.")
FORBIDDEN = ErrorCode("FORBIDDEN", 403, "The caller may not do this.")
UNKNOWN_OPERATION = ErrorCode("UNKNOWN_OPERATION", 404, "No such operation or resource.")
METHOD_NOT_ALLOWED = ErrorCode("METHOD_NOT_ALLOWED", 405, "This HTTP method is not allowed.")
PAYLOAD_TOO_LARGE = ErrorCode("PAYLOAD_TOO_LARGE", 413, "The request body is too large.")
UNSUPPORTED_MEDIA_TYPE = ErrorCode(
    "UNSUPPORTED_MEDIA_TYPE", 415, "The request's Content-Type is not accepted."
)
# Refusals of a SOAP envelope that SOAP names with a fault code of its own (server/soap.py).
VERSION_MISMATCH = ErrorCode(
    "VERSION_MISMATCH",
    400,
    "The envelope is neither SOAP 1.1 sent as text/xml nor SOAP 1.2 sent as application/soap+xml.",
)
MUST_UNDERSTAND = ErrorCode(
    "MUST_UNDERSTAND", 400, "A SOAP header marked mustUnderstand is not understood here."
)
ACTION_MISMATCH = ErrorCode(
    "ACTION_MISMATCH", 400, "The SOAP 1.2 action is not that of the operation the Body names."
)
REQUEST_TIMEOUT = ErrorCode(
    "REQUEST_TIMEOUT", 408, "The request did not arrive whole in time; send it again."
)
HEADERS_TOO_LARGE = ErrorCode(
    "HEADERS_TOO_LARGE", 431, "The request line and headers are too large."
)
INTERNAL_ERROR = ErrorCode("INTERNAL_ERROR", 500, "Internal error; quote the request id.")
NOT_IMPLEMENTED = ErrorCode(
    "NOT_IMPLEMENTED", 501, "The request uses an HTTP feature this server does not implement."
)
SERVICE_UNAVAILABLE = ErrorCode(
    "SERVICE_UNAVAILABLE", 503, "Temporarily unavailable; try again later."
)
LOGIN_FAILED = ErrorCode("LOGIN_FAILED", 401, "Wrong mobile number or password.")
# 423 Locked, not 429: the account is locked for everyone, whatever client or rate asks.
ACCOUNT_LOCKED = ErrorCode(
    "ACCOUNT_LOCKED", 423, "Too many failed password attempts; the account is locked for a while."
)
MOBILE_TAKEN = ErrorCode("MOBILE_TAKEN", 409, "This mobile number is already registered.")
MEMBER_NOT_FOUND = ErrorCode("MEMBER_NOT_FOUND", 404, "No such member.")
NOT_A_BORROWER = ErrorCode("NOT_A_BORROWER", 422, "The member is not a borrower.")
LOAN_NOT_FOUND = ErrorCode("LOAN_NOT_FOUND", 404, "No such listing.")
LOAN_STATE_INVALID = ErrorCode(
    "LOAN_STATE_INVALID", 409, "The listing's status does not allow this."
)
CONCURRENT_UPDATE = ErrorCode(
    "CONCURRENT_UPDATE", 409, "Someone else changed this at the same time; reload and retry."
)

INSUFFICIENT_FUNDS = ErrorCode("INSUFFICIENT_FUNDS", 422, "The balance is too low for this.")
REQUEST_NO_REUSED = ErrorCode(
    "REQUEST_NO_REUSED", 409, "This requestNo was already used for a different request."
)
RAISING_ENDED = ErrorCode("RAISING_ENDED", 409, "The listing's raising period has ended.")
INVEST_BELOW_MINIMUM = ErrorCode(
    "INVEST_BELOW_MINIMUM", 422, "Invest at least minInvest, or exactly what remains."
)
INVEST_ABOVE_REMAINING = ErrorCode(
    "INVEST_ABOVE_REMAINING", 409, "The amount is more than what remains to be raised."
)
INVEST_CAP_EXCEEDED = ErrorCode(
    "INVEST_CAP_EXCEEDED", 422, "This would exceed the listing's maxInvestPerInvestor."
)
OWN_LOAN = ErrorCode("OWN_LOAN", 403, "A borrower may not invest in their own listing.")
PAYMENT_ORDER_NOT_FOUND = ErrorCode("PAYMENT_ORDER_NOT_FOUND", 404, "No such payment order.")
INVESTMENT_NOT_FOUND = ErrorCode("INVESTMENT_NOT_FOUND", 404, "No such investment.")
MESSAGE_NOT_FOUND = ErrorCode("MESSAGE_NOT_FOUND", 404, "No such message.")
VERIFICATION_CODE_INVALID = ErrorCode(
    "VERIFICATION_CODE_INVALID", 422, "The verification code is wrong, used or expired."
)
VERIFICATION_CODE_TOO_SOON = ErrorCode(
    "VERIFICATION_CODE_TOO_SOON", 429, "A code was sent moments ago, or too many today; wait."
)
INVITE_CODE_INVALID = ErrorCode("INVITE_CODE_INVALID", 422, "No member has this invite code.")
IDENTITY_NOT_VERIFIED = ErrorCode(
    "IDENTITY_NOT_VERIFIED", 403, "Real-name verification is required first."
)
IDENTITY_ALREADY_VERIFIED = ErrorCode(
    "IDENTITY_ALREADY_VERIFIED", 409, "The member's real name is already verified."
)
ID_NUMBER_TAKEN = ErrorCode(
    "ID_NUMBER_TAKEN", 409, "This ID number is already verified for another member."
)
UNDERAGE = ErrorCode("UNDERAGE", 422, "Members must be 18 or older.")
CARD_NOT_FOUND = ErrorCode("CARD_NOT_FOUND", 404, "No such bound bank card.")
CARD_TAKEN = ErrorCode("CARD_TAKEN", 409, "This card is already bound.")
CARD_IN_USE = ErrorCode(
    "CARD_IN_USE", 409, "A withdrawal to this card is not final yet; unbind it afterwards."
)
CARD_LIMIT_REACHED = ErrorCode(
    "CARD_LIMIT_REACHED", 422, "The member has bound as many cards as allowed."
)
FUND_ACCOUNT_REQUIRED = ErrorCode(
    "FUND_ACCOUNT_REQUIRED", 403, "Open a fund account at the depository first."
)
FUND_ACCOUNT_EXISTS = ErrorCode(
    "FUND_ACCOUNT_EXISTS", 409, "The member already has a fund account."
)
FUND_ACCOUNT_REFUSED = ErrorCode(
    "FUND_ACCOUNT_REFUSED", 422, "The depository refused to open the fund account."
)
RECONCILIATION_RUN_NOT_FOUND = ErrorCode(
    "RECONCILIATION_RUN_NOT_FOUND", 404, "No reconciliation run for this day."
)
RECONCILIATION_RUNNING = ErrorCode(
    "RECONCILIATION_RUNNING", 409, "This day's reconciliation is running; try again later."
)
DISCREPANCY_NOT_FOUND = ErrorCode("DISCREPANCY_NOT_FOUND", 404, "No such discrepancy.")
DISCREPANCY_RESOLVED = ErrorCode(
    "DISCREPANCY_RESOLVED", 409, "The discrepancy is already resolved."
)
RECONCILIATION_UNAVAILABLE = ErrorCode(
    "RECONCILIATION_UNAVAILABLE",
    409,
    "Reconciliation needs the depository bank (payment.gateway BANK).",
)
APPLY_NOT_APPLICABLE = ErrorCode(
    "APPLY_NOT_APPLICABLE", 422, "The bank's outcome cannot be applied here; explain it."
)
BANK_ORDER_NOT_FOUND = ErrorCode("BANK_ORDER_NOT_FOUND", 404, "No such bank order.")
ORDER_NOT_REISSUABLE = ErrorCode(
    "ORDER_NOT_REISSUABLE", 409, "This bank order does not wait for a person to re-issue it."
)
PLATFORM_FUNDS_INSUFFICIENT = ErrorCode(
    "PLATFORM_FUNDS_INSUFFICIENT",
    422,
    "The platform's own account holds too little for this; fund it first.",
)
PLATFORM_TRANSFER_NOT_FOUND = ErrorCode(
    "PLATFORM_TRANSFER_NOT_FOUND", 404, "No such transfer of the platform's own account."
)
ALREADY_CHECKED_IN = ErrorCode(
    "ALREADY_CHECKED_IN", 409, "Already checked in today (the business day, Asia/Shanghai)."
)
POINTS_INSUFFICIENT = ErrorCode(
    "POINTS_INSUFFICIENT", 409, "Not enough unexpired points for this item."
)
CATALOGUE_ITEM_UNKNOWN = ErrorCode(
    "CATALOGUE_ITEM_UNKNOWN", 404, "No such item in the points catalogue."
)
EXPERIENCE_INSUFFICIENT = ErrorCode(
    "EXPERIENCE_INSUFFICIENT", 409, "Not enough experience gold left to invest."
)
PARTNER_APP_NOT_FOUND = ErrorCode("PARTNER_APP_NOT_FOUND", 404, "No such partner app.")
PARTNER_APP_NAME_TAKEN = ErrorCode(
    "PARTNER_APP_NAME_TAKEN", 409, "A partner app of this name is already registered."
)
PARTNER_APP_STATE_INVALID = ErrorCode(
    "PARTNER_APP_STATE_INVALID", 409, "The partner app's status does not allow this."
)
PARTNER_KEY_NOT_FOUND = ErrorCode(
    "PARTNER_KEY_NOT_FOUND", 404, "The partner app has no key with this key id."
)
PARTNER_KEY_EXISTS = ErrorCode(
    "PARTNER_KEY_EXISTS", 409, "The partner app already has a key with this key id."
)
PARTNER_KEY_REVOKED = ErrorCode("PARTNER_KEY_REVOKED", 409, "This key is already revoked.")
PARTNER_KEY_LIMIT_REACHED = ErrorCode(
    "PARTNER_KEY_LIMIT_REACHED",
    422,
    "The partner app has as many active keys as allowed; revoke one first.",
)

# Refusals of a signed partner call (service/partner/auth.py; README "Signed partner calls").
# Each names one cause and nothing a caller without the app's key could not know already.
PARTNER_SIGNATURE_MISSING = ErrorCode(
    "PARTNER_SIGNATURE_MISSING",
    401,
    "A partner operation needs the signature headers (app id, key id, timestamp, nonce, "
    "signature).",
)
PARTNER_APP_UNKNOWN = ErrorCode("PARTNER_APP_UNKNOWN", 401, "No partner app has this app id.")
PARTNER_KEY_UNKNOWN = ErrorCode(
    "PARTNER_KEY_UNKNOWN", 401, "The app has no active key with this key id."
)
PARTNER_TIMESTAMP_STALE = ErrorCode(
    "PARTNER_TIMESTAMP_STALE",
    401,
    "The timestamp is too far from the platform's clock; send seconds since the epoch, UTC.",
)
PARTNER_SIGNATURE_INVALID = ErrorCode(
    "PARTNER_SIGNATURE_INVALID", 401, "The signature does not match the request."
)
PARTNER_NONCE_REPLAYED = ErrorCode(
    "PARTNER_NONCE_REPLAYED", 401, "This nonce was already used; sign every request anew."
)
PARTNER_APP_SUSPENDED = ErrorCode(
    "PARTNER_APP_SUSPENDED", 403, "The partner app is suspended; contact the platform."
)
PARTNER_SCOPE_MISSING = ErrorCode(
    "PARTNER_SCOPE_MISSING", 403, "The partner app is not granted the scope this operation needs."
)
PARTNER_RATE_LIMITED = ErrorCode(
    "PARTNER_RATE_LIMITED", 429, "Too many calls; wait Retry-After seconds."
)
PARTNER_IDEMPOTENCY_KEY_MISSING = ErrorCode(
    "PARTNER_IDEMPOTENCY_KEY_MISSING",
    400,
    "A partner call that writes needs an Idempotency-Key: 1 to 64 letters, digits, '-' or '_'.",
)
PARTNER_IDEMPOTENCY_KEY_REUSED = ErrorCode(
    "PARTNER_IDEMPOTENCY_KEY_REUSED", 409, "This Idempotency-Key was used for another request."
)
PARTNER_MEMBER_NOT_AUTHORISED = ErrorCode(
    "PARTNER_MEMBER_NOT_AUTHORISED",
    403,
    "The member has not authorised this partner app, or has revoked it.",
)
PARTNER_CALLBACK_NOT_FOUND = ErrorCode(
    "PARTNER_CALLBACK_NOT_FOUND", 404, "No such callback of this partner app."
)
PARTNER_AUTHORISATION_NOT_FOUND = ErrorCode(
    "PARTNER_AUTHORISATION_NOT_FOUND", 404, "You have not authorised this partner app."
)
CAMPAIGN_NOT_FOUND = ErrorCode("CAMPAIGN_NOT_FOUND", 404, "No such marketing campaign.")
CAMPAIGN_NAME_TAKEN = ErrorCode(
    "CAMPAIGN_NAME_TAKEN", 409, "A marketing campaign of this name already exists."
)
CAMPAIGN_INACTIVE = ErrorCode(
    "CAMPAIGN_INACTIVE", 409, "The campaign or coupon template is inactive or outside its dates."
)
CAMPAIGN_BUDGET_EXHAUSTED = ErrorCode(
    "CAMPAIGN_BUDGET_EXHAUSTED", 409, "The campaign's budget does not cover this."
)
COUPON_TEMPLATE_NOT_FOUND = ErrorCode("COUPON_TEMPLATE_NOT_FOUND", 404, "No such coupon template.")
COUPON_TIERS_OVERLAP = ErrorCode(
    "COUPON_TIERS_OVERLAP",
    422,
    "The template's investment tier overlaps another template's of the same kind in its campaign.",
)
COUPON_LIMIT_REACHED = ErrorCode(
    "COUPON_LIMIT_REACHED",
    409,
    "No more coupons of this template: its total count or the per-member limit is reached.",
)
COUPON_AUDIENCE_MISMATCH = ErrorCode(
    "COUPON_AUDIENCE_MISMATCH", 422, "The member is not in the template's audience."
)
COUPON_NOT_FOUND = ErrorCode("COUPON_NOT_FOUND", 404, "No such coupon.")
COUPON_NOT_AVAILABLE = ErrorCode(
    "COUPON_NOT_AVAILABLE", 409, "The coupon is already locked to an investment or used."
)
COUPON_EXPIRED = ErrorCode("COUPON_EXPIRED", 422, "The coupon is not valid at this time.")
COUPON_NOT_APPLICABLE = ErrorCode(
    "COUPON_NOT_APPLICABLE",
    422,
    "The coupon does not apply to this investment (amount, term, repayment method or kind).",
)
COUPONS_NOT_STACKABLE = ErrorCode(
    "COUPONS_NOT_STACKABLE",
    422,
    "A coupon that is not stackable cannot be used with another, nor one coupon twice.",
)

CATALOGUE = _codes(
    MALFORMED_REQUEST,
    VALIDATION_FAILED,
    UNAUTHENTICATED,
    FORBIDDEN,
    UNKNOWN_OPERATION,
    METHOD_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    VERSION_MISMATCH,
    MUST_UNDERSTAND,
    ACTION_MISMATCH,
    REQUEST_TIMEOUT,
    HEADERS_TOO_LARGE,
    INTERNAL_ERROR,
    NOT_IMPLEMENTED,
    SERVICE_UNAVAILABLE,
    LOGIN_FAILED,
    ACCOUNT_LOCKED,
    MOBILE_TAKEN,
    MEMBER_NOT_FOUND,
    NOT_A_BORROWER,
    LOAN_NOT_FOUND,
    LOAN_STATE_INVALID,
    CONCURRENT_UPDATE,
    INSUFFICIENT_FUNDS,
    REQUEST_NO_REUSED,
    PAYMENT_ORDER_NOT_FOUND,
    INVESTMENT_NOT_FOUND,
    RAISING_ENDED,
    INVEST_BELOW_MINIMUM,
    INVEST_ABOVE_REMAINING,
    INVEST_CAP_EXCEEDED,
    OWN_LOAN,
    MESSAGE_NOT_FOUND,
    VERIFICATION_CODE_INVALID,
    VERIFICATION_CODE_TOO_SOON,
    INVITE_CODE_INVALID,
    IDENTITY_NOT_VERIFIED,
    IDENTITY_ALREADY_VERIFIED,
    ID_NUMBER_TAKEN,
    UNDERAGE,
    CARD_NOT_FOUND,
    CARD_TAKEN,
    CARD_IN_USE,
    CARD_LIMIT_REACHED,
    FUND_ACCOUNT_REQUIRED,
    FUND_ACCOUNT_EXISTS,
    FUND_ACCOUNT_REFUSED,
    RECONCILIATION_RUN_NOT_FOUND,
    RECONCILIATION_RUNNING,
    DISCREPANCY_NOT_FOUND,
    DISCREPANCY_RESOLVED,
    APPLY_NOT_APPLICABLE,
    RECONCILIATION_UNAVAILABLE,
    BANK_ORDER_NOT_FOUND,
    ORDER_NOT_REISSUABLE,
    PLATFORM_FUNDS_INSUFFICIENT,
    PLATFORM_TRANSFER_NOT_FOUND,
    ALREADY_CHECKED_IN,
    POINTS_INSUFFICIENT,
    CATALOGUE_ITEM_UNKNOWN,
    EXPERIENCE_INSUFFICIENT,
    PARTNER_APP_NOT_FOUND,
    PARTNER_APP_NAME_TAKEN,
    PARTNER_APP_STATE_INVALID,
    PARTNER_KEY_NOT_FOUND,
    PARTNER_KEY_EXISTS,
    PARTNER_KEY_REVOKED,
    PARTNER_KEY_LIMIT_REACHED,
    PARTNER_SIGNATURE_MISSING,
    PARTNER_APP_UNKNOWN,
    PARTNER_KEY_UNKNOWN,
    PARTNER_TIMESTAMP_STALE,
    PARTNER_SIGNATURE_INVALID,
    PARTNER_NONCE_REPLAYED,
    PARTNER_APP_SUSPENDED,
    PARTNER_SCOPE_MISSING,
    PARTNER_RATE_LIMITED,
    PARTNER_IDEMPOTENCY_KEY_MISSING,
    PARTNER_IDEMPOTENCY_KEY_REUSED,
    PARTNER_MEMBER_NOT_AUTHORISED,
    PARTNER_CALLBACK_NOT_FOUND,
    PARTNER_AUTHORISATION_NOT_FOUND,
    CAMPAIGN_NOT_FOUND,
    CAMPAIGN_NAME_TAKEN,
    CAMPAIGN_INACTIVE,
    CAMPAIGN_BUDGET_EXHAUSTED,
    COUPON_TEMPLATE_NOT_FOUND,
    COUPON_TIERS_OVERLAP,
    COUPON_LIMIT_REACHED,
    COUPON_AUDIENCE_MISMATCH,
    COUPON_NOT_FOUND,
    COUPON_NOT_AVAILABLE,
    COUPON_EXPIRED,
    COUPON_NOT_APPLICABLE,
    COUPONS_NOT_STACKABLE,
)


class BusinessError(Exception):
    """An error the caller is told about: a catalogue entry and, optionally, a precise message
    and, when the service knows it, how many seconds to wait before trying again
    (``retry_after``, sent as Retry-After by both protocols)."""

    def __init__(
        self, error: ErrorCode, message: str | None = None, *, retry_after: int | None = None
    ):
        super().__init__(message or error.message)
        self.error = error
        self.message = message or error.message
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        return self.error.code


def invalid(field: str, problem: str) -> BusinessError:
    """A VALIDATION_FAILED error that names the field, as ``field: problem``."""
    return BusinessError(VALIDATION_FAILED, f"{field}: {problem}")
