"""Signed partner calls on both protocols (README "Signed partner calls"): what each endpoint
reads of a request's signature, the interceptor that proves it and applies scopes and rate
limits (service/partner/), and the signature every answer to a proven app carries.

REST sends the signature in X-P2P-* headers over the raw body bytes; SOAP in the
``PartnerSignature`` header block over the exclusive canonical form of the soap:Body (the
header sits inside the envelope it signs). Answers are signed on both in X-P2P-* HTTP
headers over the raw bytes of the answer's body, whether the call succeeded or not, once the
request's signature has verified.
"""

from __future__ import annotations

from typing import TypeVar

from lxml import etree
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from facade.contract import COMMON_NS
from server.answer import Answer
from server.dispatcher import Invocation, Proceed
from service import errors
from service.errors import BusinessError
from service.partner import signing
from service.partner.auth import PartnerAuthenticator, SignedRequest
from service.partner.ratelimit import PartnerRateLimiter

#: The SOAP header block of a signed partner call.
SOAP_HEADER = f"{{{COMMON_NS}}}PartnerSignature"
#: The REST header of a partner call that writes (in SOAP: the header block's idempotencyKey).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: What an endpoint answers: a call's Answer, or a werkzeug Response (an error).
R = TypeVar("R", bound=Answer | Response)


def _raw_target(request: Request) -> tuple[bytes, bytes]:
    """The path and query string as they arrived (WSGI keeps their bytes as latin-1)."""
    environ = request.environ
    path = environ.get("PATH_INFO", "").encode("latin-1")
    return path, environ.get("QUERY_STRING", "").encode("latin-1")


def rest_request(request: Request, max_body_bytes: int) -> SignedRequest:
    """The signature of a REST call, over its raw body (read once, kept for the codec)."""
    request.max_content_length = max_body_bytes
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise BusinessError(errors.PAYLOAD_TOO_LARGE) from None
    path, query = _raw_target(request)
    h = request.headers
    return SignedRequest(
        app_id=h.get(signing.APP_ID_HEADER),
        key_id=h.get(signing.KEY_ID_HEADER),
        timestamp=h.get(signing.TIMESTAMP_HEADER),
        nonce=h.get(signing.NONCE_HEADER),
        signature=h.get(signing.SIGNATURE_HEADER),
        method=request.method,
        path=path,
        query=query,
        body_sha256=signing.sha256_hex(body),
        idempotency_key=h.get(IDEMPOTENCY_HEADER),
    )


def soap_request(request: Request, header, call: etree._Element) -> SignedRequest:
    """The signature of a SOAP call, from its PartnerSignature header block, over the Body
    that holds ``call`` (the element the endpoint dispatches: no other can be signed)."""
    block = None if header is None else header.find(SOAP_HEADER)

    def text(name: str) -> str | None:
        value = None if block is None else block.findtext(f"{{{COMMON_NS}}}{name}")
        return None if value is None else value.strip()

    path, query = _raw_target(request)
    return SignedRequest(
        app_id=text("appId"),
        key_id=text("keyId"),
        timestamp=text("timestamp"),
        nonce=text("nonce"),
        signature=text("signature"),
        method=request.method,
        path=path,
        query=query,
        body_sha256=signing.soap_body_sha256(call.getparent()),
        idempotency_key=text("idempotencyKey"),
    )


class PartnerAuthentication:
    """For a partner operation: proves the app (service/partner/auth.py), from then on signs
    every answer, checks the app's status, nonce and scope, then takes a token from its rate
    limits; any other operation passes untouched."""

    def __init__(self, authenticator: PartnerAuthenticator, limiter: PartnerRateLimiter):
        self._auth = authenticator
        self._limiter = limiter

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        declared = inv.operation.operation
        if not declared.partner:
            return proceed(inv)
        signed = inv.credentials.partner
        if signed is None:
            raise BusinessError(errors.PARTNER_SIGNATURE_MISSING)
        principal = self._auth.verify(signed)
        inv.partner = principal
        inv.sign_answer = lambda status, body: self._auth.answer_headers(principal, status, body)
        self._auth.admit(principal, declared.partner_scope)
        state = self._limiter.take(principal, declared.name, declared.partner_rate)
        inv.answer_headers.update(state.headers())
        if not state.allowed:
            raise BusinessError(errors.PARTNER_RATE_LIMITED, retry_after=state.retry_after)
        return proceed(inv)


def finish(inv: Invocation, response: R) -> R:
    """The answer with the call's own headers and, for a proven partner app, signed."""
    response.headers.update(inv.answer_headers)
    if inv.sign_answer is not None:
        response.headers.update(inv.sign_answer(response.status_code, response.get_data()))
    return response
