"""The canonical strings of the partner open API (the platform's README, "Signed partner
calls"): what a request's and an answer's signatures cover."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote_to_bytes

REQUEST_VERSION = "P2P-PARTNER-V1"
RESPONSE_VERSION = "P2P-PARTNER-RESPONSE-V1"
_UNRESERVED = "-._~"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _encode(component: bytes) -> str:
    return quote(unquote_to_bytes(component.replace(b"+", b" ")), safe=_UNRESERVED)


def path(raw: str) -> str:
    """Each segment percent-encoded (unreserved characters kept), slashes kept."""
    return quote(unquote_to_bytes(raw.encode("utf-8")), safe="/" + _UNRESERVED)


def query(raw: str) -> str:
    """Pairs decoded and re-encoded, sorted by name then value, joined by & and =."""
    pairs = []
    for part in raw.encode("utf-8").split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def request(
    method: str,
    raw_path: str,
    raw_query: str,
    app_id: str,
    key_id: str,
    timestamp: str,
    nonce: str,
    body_sha256: str,
) -> str:
    return "\n".join(
        (
            REQUEST_VERSION,
            method.upper(),
            path(raw_path),
            query(raw_query),
            app_id,
            key_id,
            timestamp,
            nonce,
            body_sha256,
        )
    )


def response(
    status: int, app_id: str, nonce: str, key_id: str, timestamp: str, body_sha256: str
) -> str:
    return "\n".join((RESPONSE_VERSION, str(status), app_id, nonce, key_id, timestamp, body_sha256))
