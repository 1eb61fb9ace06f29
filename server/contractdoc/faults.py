"""The fault codes an operation's document lists, with when a caller meets them: the codes the
contracts publish for it (server/faults.py), those the operation declares first, then those
any call may meet."""

from __future__ import annotations

from dataclasses import dataclass

from server.registry import BoundOperation
from service import errors
from service.errors import CATALOGUE, ErrorCode

#: Says, in each operation's document, where its list of codes comes from.
PROVENANCE = (
    "The codes this operation declares, then those any call may meet, as the WSDL and OpenAPI "
    "publish them; the error catalogue at the end says how each is answered."
)

DECLARED = "declared by the operation"

#: When a call meets each code any call may meet, in the order a document lists them.
_ANY_CALL = {
    errors.VALIDATION_FAILED.code: "the input breaks the contract: a field missing, unknown "
    "or invalid",
    errors.UNAUTHENTICATED.code: "no valid credentials",
    errors.ACCOUNT_LOCKED.code: "credentials with the password of a member locked out",
    errors.FORBIDDEN.code: "the caller's role is not one of the operation's",
    errors.MALFORMED_REQUEST.code: "the request cannot be read (XML, JSON)",
    errors.PAYLOAD_TOO_LARGE.code: "a body larger than the server takes",
    errors.UNSUPPORTED_MEDIA_TYPE.code: "a body of another media type than the protocol's",
    errors.METHOD_NOT_ALLOWED.code: "another HTTP method than the operation's",
    errors.REQUEST_TIMEOUT.code: "the request did not arrive whole in time",
    errors.HEADERS_TOO_LARGE.code: "a request line and headers too large",
    errors.NOT_IMPLEMENTED.code: "an HTTP feature the server does not implement",
    errors.VERSION_MISMATCH.code: "SOAP: an envelope of another version than its Content-Type's",
    errors.MUST_UNDERSTAND.code: "SOAP: a header marked mustUnderstand that is not understood",
    errors.ACTION_MISMATCH.code: "SOAP 1.2: an action parameter that is not the operation's",
    errors.PARTNER_SIGNATURE_MISSING.code: "partner call: a signature field missing or malformed",
    errors.PARTNER_TIMESTAMP_STALE.code: "partner call: a timestamp outside the window",
    errors.PARTNER_APP_UNKNOWN.code: "partner call: no app has this app id",
    errors.PARTNER_KEY_UNKNOWN.code: "partner call: no active key of the app has this key id",
    errors.PARTNER_SIGNATURE_INVALID.code: "partner call: the signature does not match",
    errors.PARTNER_APP_SUSPENDED.code: "partner call: the app is suspended",
    errors.PARTNER_NONCE_REPLAYED.code: "partner call: a nonce used before",
    errors.PARTNER_SCOPE_MISSING.code: "partner call: the app lacks the operation's scope",
    errors.PARTNER_RATE_LIMITED.code: "partner call: the app's rate limit is spent",
    errors.INTERNAL_ERROR.code: "an unexpected failure on our side",
    errors.SERVICE_UNAVAILABLE.code: "something the call needs is down for a moment",
}
_PUBLIC_UNAUTHENTICATED = "credentials were sent and are not valid"


@dataclass(frozen=True)
class Fault:
    error: ErrorCode
    when: str


def _when(op: BoundOperation, code: str) -> str:
    if code == errors.UNAUTHENTICATED.code and op.operation.public:
        return _PUBLIC_UNAUTHENTICATED
    return _ANY_CALL.get(code, "any call may meet it")


def operation_faults(op: BoundOperation) -> list[Fault]:
    """Every code ``op`` may raise: those it declares, by name, then the others."""
    declared = sorted(op.operation.errors)
    order = list(_ANY_CALL)
    others = sorted(
        op.fault_codes - op.operation.errors,
        key=lambda c: (order.index(c) if c in order else len(order), c),
    )
    return [Fault(CATALOGUE[c], DECLARED) for c in declared] + [
        Fault(CATALOGUE[c], _when(op, c)) for c in others
    ]
