"""An app's signing key: an HMAC secret the platform issued, or the app's RSA private key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass(frozen=True)
class HmacKey:
    """An HMAC_SHA256 key: its key id and the secret shown once when it was issued. Answers
    are signed with the same key."""

    key_id: str
    secret: str = field(repr=False)

    def sign(self, message: str) -> str:
        mac = hmac.new(self.secret.encode(), message.encode(), hashlib.sha256)
        return base64.b64encode(mac.digest()).decode("ascii")

    def verifies(self, message: str, signature: str, key_id: str) -> bool:
        return key_id == self.key_id and hmac.compare_digest(
            self.sign(message).encode(), signature.encode()
        )


@dataclass(frozen=True)
class RsaKey:
    """An RSA_SHA256 key: its key id and the app's private key (PEM); the platform holds the
    public half. Answers are signed with the platform's key."""

    key_id: str
    private_key_pem: bytes = field(repr=False)

    def sign(self, message: str) -> str:
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA private key")
        raw = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode("ascii")


def rsa_verifies(public_key_pem: bytes, message: str, signature: str) -> bool:
    """Whether ``signature`` is the RSASSA-PKCS1-v1_5 SHA-256 signature of ``message``."""
    key = serialization.load_pem_public_key(public_key_pem)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True
