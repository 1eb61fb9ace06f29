"""Signatures of the depository protocol: RSA PKCS#1 v1.5 with SHA-256 over the exact bytes.

Each side signs with its private key under a key id and verifies with the other side's public
keys by key id; a key ring holds several at once, so a key rotates without downtime (publish
the new public key, switch signing, retire the old id). A private key never appears in a repr
or an error. cryptography is loaded by the first key read, not by importing this module (a
platform on the sandbox gateway never reads one).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa


class SignatureInvalid(Exception):
    """A message whose signature cannot be trusted; ``reason`` is "missing", "unknown_key" or
    "bad_signature" (stable, for metrics and evidence)."""

    def __init__(self, reason: str):
        super().__init__(f"signature refused: {reason}")
        self.reason = reason


class Signer:
    """Signs bodies with the private key of ``key_id``."""

    def __init__(self, key_id: str, private_key_pem: bytes):
        if not key_id:
            raise ValueError("a signing key needs a key id")
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError):
            raise ValueError("not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the signing key must be an RSA key")
        self.key_id = key_id
        self._key = key
        self._padding, self._hash = padding.PKCS1v15, hashes.SHA256

    def sign(self, body: bytes) -> str:
        """The Base64 signature of ``body``."""
        raw = self._key.sign(body, self._padding(), self._hash())
        return base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:  # the private key never reaches a log through a repr
        return f"Signer(key_id={self.key_id!r})"


class KeyRing:
    """The other side's public keys by key id."""

    def __init__(self, public_keys_pem: Mapping[str, bytes]):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        self._invalid, self._padding, self._hash = InvalidSignature, padding.PKCS1v15, hashes.SHA256
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        for key_id, pem in public_keys_pem.items():
            try:
                key = serialization.load_pem_public_key(pem)
            except (ValueError, TypeError):
                raise ValueError(f"key {key_id!r} is not a PEM public key") from None
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError(f"key {key_id!r} is not an RSA key")
            self._keys[key_id] = key

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, body: bytes, key_id: str | None, signature: str | None) -> None:
        """Returns if ``signature`` is the signature of ``body`` by the key ``key_id``;
        raises ``SignatureInvalid`` otherwise."""
        if not key_id or not signature:
            raise SignatureInvalid("missing")
        key = self._keys.get(key_id)
        if key is None:
            raise SignatureInvalid("unknown_key")
        try:
            raw = base64.b64decode(signature, validate=True)
            key.verify(raw, body, self._padding(), self._hash())
        except (binascii.Error, ValueError, self._invalid):
            raise SignatureInvalid("bad_signature") from None

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={sorted(self._keys)!r})"


def generate_keypair(bits: int = 2048) -> tuple[bytes, bytes]:
    """A fresh RSA key pair as (private PEM, public PEM), for tooling and tests."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private_pem, _public_pem(key)


def public_key_of(private_pem: bytes) -> bytes:
    """The public key (SubjectPublicKeyInfo PEM) of an unencrypted PEM private key."""
    from cryptography.hazmat.primitives import serialization

    return _public_pem(serialization.load_pem_private_key(private_pem, password=None))


def _public_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
