"""Signatures of the partner open API: the canonical strings partners and the platform sign,
and the HMAC-SHA256 and RSA-SHA256 primitives (README "Signed partner calls").

A request's canonical string is nine lines joined by a line feed (no line feed at the end)::

    P2P-PARTNER-V1
    <METHOD, upper case>
    <path, each segment percent-encoded (RFC 3986 unreserved characters kept)>
    <query: pairs decoded, re-encoded alike, sorted by name then value, joined by & and =>
    <app id>
    <key id>
    <timestamp, seconds since 1970-01-01T00:00:00Z>
    <nonce>
    <lower-case hex SHA-256 of the body bytes exactly as sent>

On SOAP the body digest is of the exclusive XML canonical form (C14N 1.0, no comments) of
the soap:Body element, since the signature travels in the envelope's own header
(soap_body_sha256). A response's canonical string binds the answer to the request it
answers (its app and nonce)::

    P2P-PARTNER-RESPONSE-V1
    <HTTP status code>
    <app id>
    <the request's nonce>
    <key id of the signing key>
    <timestamp, seconds>
    <lower-case hex SHA-256 of the response body bytes exactly as sent>

A signature is the standard Base64 (with padding) of HMAC-SHA256 keyed with the UTF-8 bytes
of the key's secret, or of RSASSA-PKCS1-v1_5 with SHA-256 (``openssl dgst -sha256 -hmac`` and
``openssl dgst -sha256 -sign`` compute the same), over the UTF-8 bytes of the canonical
string. Comparisons are constant-time. The platform signs answers to RSA apps with its own
key (``partner.platform_private_key``, ``partner.platform_key_id``), whose public key it
publishes. cryptography is loaded by the first RSA key read or signature checked, not by
importing this module (HMAC needs only the standard library).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_to_bytes

from lxml import etree

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

REQUEST_VERSION = "P2P-PARTNER-V1"
RESPONSE_VERSION = "P2P-PARTNER-RESPONSE-V1"
#: HTTP headers of a signed REST request, and of a signed answer on both protocols.
APP_ID_HEADER = "X-P2P-App-Id"
KEY_ID_HEADER = "X-P2P-Key-Id"
TIMESTAMP_HEADER = "X-P2P-Timestamp"
NONCE_HEADER = "X-P2P-Nonce"
SIGNATURE_HEADER = "X-P2P-Signature"
_UNRESERVED = "-._~"  # with letters and digits, never percent-encoded


def sha256_hex(data: bytes) -> str:
    """The lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def soap_body_sha256(body: etree._Element) -> str:
    """The digest of a SOAP Body element: SHA-256 of its exclusive C14N form."""
    return sha256_hex(etree.tostring(body, method="c14n", exclusive=True, with_comments=False))


def canonical_path(path: bytes) -> str:
    """The path's raw bytes (as sent, or percent-decoded: the same result) with each
    segment percent-encoded and the slashes kept."""
    return quote(unquote_to_bytes(path), safe="/" + _UNRESERVED)


def canonical_query(query: bytes) -> str:
    """A raw query string as sorted ``name=value`` pairs, each decoded (``+`` is a space)
    then percent-encoded; an empty query is the empty string."""
    pairs = []
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(component: bytes) -> str:
    return quote(unquote_to_bytes(component.replace(b"+", b" ")), safe=_UNRESERVED)


def canonical_request(
    method: str,
    path: bytes,
    query: bytes,
    app_id: str,
    key_id: str,
    timestamp: str,
    nonce: str,
    body_sha256: str,
) -> str:
    """The string a partner signs for one request (see the module's docstring)."""
    return "\n".join(
        (
            REQUEST_VERSION,
            method.upper(),
            canonical_path(path),
            canonical_query(query),
            app_id,
            key_id,
            timestamp,
            nonce,
            body_sha256,
        )
    )


def canonical_response(
    status: int, app_id: str, request_nonce: str, key_id: str, timestamp: str, body_sha256: str
) -> str:
    """The string the platform signs for its answer to one request."""
    return "\n".join(
        (RESPONSE_VERSION, str(status), app_id, request_nonce, key_id, timestamp, body_sha256)
    )


def sign_hmac(secret: str, message: str) -> str:
    """Base64 of HMAC-SHA256 of ``message`` keyed with ``secret`` (both UTF-8)."""
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_hmac(secret: str, message: str, signature: str) -> bool:
    """Whether ``signature`` is ``sign_hmac(secret, message)``, compared in constant time."""
    return hmac.compare_digest(sign_hmac(secret, message).encode(), signature.encode())


def sign_rsa(private_key: rsa.RSAPrivateKey, message: str) -> str:
    """Base64 of RSASSA-PKCS1-v1_5 with SHA-256 of ``message`` (UTF-8)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    raw = private_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify_rsa(public_key_pem: str | bytes, message: str, signature: str) -> bool:
    """Whether ``signature`` is an RSASSA-PKCS1-v1_5 SHA-256 signature of ``message`` by the
    PEM public key; a malformed key or signature is simply not a valid signature."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class PlatformKey:
    """The platform's own RSA key, signing answers to RSA apps; its private half never shows
    in a repr or a log."""

    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def sign(self, message: str) -> str:
        return sign_rsa(self.private_key, message)

    def public_pem(self) -> str:
        """The public key partners verify with (SubjectPublicKeyInfo PEM)."""
        from cryptography.hazmat.primitives import serialization

        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


def load_platform_key(key_id: str, private_key_pem: bytes | None) -> PlatformKey | None:
    """The platform key from configuration (``partner.platform_key_id`` and the PEM of
    ``partner.platform_private_key``, checked at start-up); None when it is unset."""
    if not private_key_pem:
        return None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the platform's partner key must be an RSA key")
    return PlatformKey(key_id, key)
