"""Encryption at rest of small secrets, with the master key from configuration.

``security.secret_key`` (Base64 of 32 bytes) is never used directly: each purpose derives its
own AES-256 key from it (HMAC-SHA256 of the purpose's name), so a value sealed for one purpose
cannot be opened as another, and one leaked sub-key reveals no other. Each value is sealed
with AES-256-GCM (``cryptography``, PyCA) under a fresh random 96-bit nonce, and bound to its
row by associated data (e.g. the member id): a sealed value copied onto another row does not
open there. The stored text is ``v1.`` + Base64(nonce || ciphertext || tag); the version lets
a later key or algorithm live beside this one. A database dump alone opens nothing.
``cryptography`` is loaded by the first seal or open, not by making a box.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os

_VERSION = "v1."
_NONCE_BYTES = 12


class SecretBoxError(ValueError):
    """A sealed value that does not open: another key, another row, or altered."""


class SecretBox:
    """Seals and opens text for one purpose with a key derived from the master key."""

    def __init__(self, master_key: bytes, purpose: str):
        if len(master_key) != 32:
            raise ValueError("the master key must have 32 bytes")
        sub_key = hmac.new(master_key, b"p2p secretbox v1 " + purpose.encode(), hashlib.sha256)
        self._sub_key = sub_key.digest()

    @functools.cached_property
    def _aead(self):
        """The cipher, made by the first seal or open (a box made at start loads nothing)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._sub_key)

    @classmethod
    def from_setting(cls, secret_key: str, purpose: str) -> SecretBox | None:
        """The box for `purpose` on ``security.secret_key``; None when the key is unset."""
        return cls(base64.b64decode(secret_key), purpose) if secret_key else None

    def seal(self, plaintext: str, bound_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return _VERSION + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, bound_to: str) -> str:
        from cryptography.exceptions import InvalidTag

        if not stored.startswith(_VERSION):
            raise SecretBoxError("unknown sealed-value version")
        try:
            raw = base64.b64decode(stored[len(_VERSION) :], validate=True)
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, sealed, bound_to.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise SecretBoxError("the sealed value does not open with this key") from None
