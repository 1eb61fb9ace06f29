"""Which catalogue codes (service/errors.py) an operation may raise: those it declares
(``@operation(errors=...)``), and those any call may meet whatever its operation, added here:

* the request refused before its operation is read (malformed, too large, too slow, of a
  media type, method or SOAP version not served, a mustUnderstand header not understood, a
  SOAP 1.2 action that is not the operation's);
* its input refused (VALIDATION_FAILED);
* credentials presented and not accepted, on any operation, public ones included
  (UNAUTHENTICATED; ACCOUNT_LOCKED for a locked member's password);
* FORBIDDEN where the operation's roles leave out some members;
* on a partner operation, every refusal of a signed partner call (PARTNER_CALL: unknown app,
  suspended app, unknown or revoked key, stale timestamp, replayed nonce, bad signature,
  scope missing, rate limited; service/partner/auth.py);
* our own failure (INTERNAL_ERROR) or a dependency's (SERVICE_UNAVAILABLE).

Both contracts publish each operation's codes (the WSDL in its documentation, OpenAPI by HTTP
status with an example of each), and the dispatcher logs a code raised that is not among them
(server/dispatcher.py ErrorFunnel), which the tests turn into a failure.
"""

from __future__ import annotations

from facade.contract import MEMBERS, Terms
from service import errors
from service.errors import CATALOGUE

EVERY_CALL = frozenset(
    e.code
    for e in (
        errors.MALFORMED_REQUEST,
        errors.VALIDATION_FAILED,
        errors.PAYLOAD_TOO_LARGE,
        errors.UNSUPPORTED_MEDIA_TYPE,
        errors.METHOD_NOT_ALLOWED,
        errors.REQUEST_TIMEOUT,
        errors.HEADERS_TOO_LARGE,
        errors.NOT_IMPLEMENTED,
        errors.VERSION_MISMATCH,
        errors.MUST_UNDERSTAND,
        errors.ACTION_MISMATCH,
        errors.UNAUTHENTICATED,
        errors.ACCOUNT_LOCKED,
        errors.INTERNAL_ERROR,
        errors.SERVICE_UNAVAILABLE,
    )
)
PARTNER_CALL = frozenset(
    e.code
    for e in (
        errors.PARTNER_SIGNATURE_MISSING,
        errors.PARTNER_APP_UNKNOWN,
        errors.PARTNER_APP_SUSPENDED,
        errors.PARTNER_KEY_UNKNOWN,
        errors.PARTNER_TIMESTAMP_STALE,
        errors.PARTNER_NONCE_REPLAYED,
        errors.PARTNER_SIGNATURE_INVALID,
        errors.PARTNER_SCOPE_MISSING,
        errors.PARTNER_RATE_LIMITED,
    )
)
#: The message in the log when an operation raises a code it did not declare.
UNDECLARED = "undeclared fault code"


def fault_codes(op: Terms) -> frozenset[str]:
    """Every code ``op`` may raise; TypeError when it declares one the catalogue lacks or one
    every call may meet anyway."""
    unknown = sorted(op.errors - CATALOGUE.keys())
    if unknown:
        raise TypeError(f"{op.name} declares codes not in the catalogue: {unknown}")
    implied = sorted(op.errors & _implied(op))
    if implied:
        raise TypeError(f"{op.name} declares codes every such call may meet: {implied}")
    return op.errors | _implied(op)


def _implied(op: Terms) -> frozenset[str]:
    if op.partner:
        return EVERY_CALL | PARTNER_CALL
    if op.roles is not None and op.roles != MEMBERS:
        return EVERY_CALL | {errors.FORBIDDEN.code}
    return EVERY_CALL
