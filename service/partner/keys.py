"""The keys partner apps sign with: RSA public keys the partner uploads, and HMAC secrets the
platform generates and shows once.

An RSA key (RSA_SHA256) is the partner's public key in PEM (SubjectPublicKeyInfo), at least
2048 bits: the private key never leaves the partner, so nothing secret is stored. It is kept
as the platform re-serialises it, so what is shown is what is verified with.

An HMAC secret (HMAC_SHA256) is 256 random bits, generated, never chosen (a signature travels
with every request, and a guessable secret falls offline). It is returned once, by the call
that issues it, and stored sealed as members' API secrets are (service/secretbox.py, purpose
``partner-hmac-key``), bound to the app and the key id: a database dump alone signs nothing,
and a sealed secret copied onto another key's row does not open there. Without
``security.secret_key`` no HMAC secret is issued (SERVICE_UNAVAILABLE): there is no silent,
insecure fallback; RSA keys need no sealing and are issued all the same.
"""

from __future__ import annotations

import secrets

from dao.partner import MAX_PUBLIC_KEY
from service import errors
from service.errors import BusinessError, invalid
from service.secretbox import SecretBox, SecretBoxError

PURPOSE = "partner-hmac-key"
RSA_SHA256 = "RSA_SHA256"
HMAC_SHA256 = "HMAC_SHA256"
MIN_RSA_BITS = 2048
DISABLED = "HMAC keys are not enabled on this platform (no security.secret_key); use an RSA key"


def bound_to(app_id: str, key_id: str) -> str:
    """What an HMAC secret is sealed to: its app and key id."""
    return f"partner-key:{app_id}:{key_id}"


class PartnerKeys:
    """Reads uploaded RSA public keys, and issues, seals and opens HMAC secrets."""

    def __init__(self, box: SecretBox | None):
        self._box = box

    @classmethod
    def from_setting(cls, secret_key: str) -> PartnerKeys:
        return cls(SecretBox.from_setting(secret_key, PURPOSE))

    def public_key(self, pem: str) -> str:
        """``pem`` as the platform keeps it; VALIDATION_FAILED unless it is an RSA public
        key of at least MIN_RSA_BITS bits."""
        if len(pem) > MAX_PUBLIC_KEY:
            raise invalid("publicKey", f"must be at most {MAX_PUBLIC_KEY} characters")
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

        try:
            key = serialization.load_pem_public_key(pem.encode())
        except (ValueError, UnsupportedAlgorithm):
            raise invalid("publicKey", "must be a PEM public key (BEGIN PUBLIC KEY)") from None
        if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            raise invalid("publicKey", f"must be an RSA key of at least {MIN_RSA_BITS} bits")
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def issue_secret(self, app_id: str, key_id: str) -> tuple[str, str]:
        """A new HMAC secret and its sealed form for the key's row."""
        if self._box is None:
            raise BusinessError(errors.SERVICE_UNAVAILABLE, DISABLED)
        secret = secrets.token_urlsafe(32)
        return secret, self._box.seal(secret, bound_to(app_id, key_id))

    def open_secret(self, app_id: str, key_id: str, sealed: str) -> str | None:
        """The key's HMAC secret, or None when it does not open (no key configured, sealed
        under another key, or copied from another row)."""
        if self._box is None:
            return None
        try:
            return self._box.open(sealed, bound_to(app_id, key_id))
        except SecretBoxError:
            return None
