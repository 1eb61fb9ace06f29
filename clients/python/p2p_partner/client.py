"""A REST client that signs every request and verifies every signed answer."""

from __future__ import annotations

import json as jsonlib
import secrets
import time
from urllib.parse import urlencode

import requests

from p2p_partner import canonical
from p2p_partner.keys import HmacKey, RsaKey, rsa_verifies

APP_ID = "X-P2P-App-Id"
KEY_ID = "X-P2P-Key-Id"
TIMESTAMP = "X-P2P-Timestamp"
NONCE = "X-P2P-Nonce"
SIGNATURE = "X-P2P-Signature"


class AnswerNotSigned(Exception):
    """An answer without a valid signature of the platform for this request: not to be
    trusted. ``response`` is what arrived."""

    def __init__(self, message: str, response: requests.Response):
        super().__init__(message)
        self.response = response


class PartnerClient:
    """Calls the partner open API as one app with one of its keys."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        key: HmacKey | RsaKey,
        *,
        platform_public_key: str | bytes | None = None,
        platform_key_id: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        clock=time.time,
    ):
        if isinstance(key, RsaKey) and platform_public_key is None:
            raise ValueError("an RSA app verifies answers with the platform's public key")
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.key = key
        pem = platform_public_key
        self._platform_key = pem.encode() if isinstance(pem, str) else pem
        self._platform_key_id = platform_key_id
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock

    def signature_headers(
        self, method: str, path: str, query: str, body: bytes, nonce: str | None = None
    ) -> dict[str, str]:
        """The X-P2P-* headers of one request (a fresh nonce unless one is given)."""
        return self.sign_digest(method, path, query, canonical.sha256_hex(body), nonce)

    def sign_digest(
        self, method: str, path: str, query: str, body_sha256: str, nonce: str | None = None
    ) -> dict[str, str]:
        """The same, given the body's digest (SOAP: of the canonical Body)."""
        timestamp = str(int(self._clock()))
        nonce = nonce or secrets.token_urlsafe(24)
        text = canonical.request(
            method, path, query, self.app_id, self.key.key_id, timestamp, nonce, body_sha256
        )
        return {
            APP_ID: self.app_id,
            KEY_ID: self.key.key_id,
            TIMESTAMP: timestamp,
            NONCE: nonce,
            SIGNATURE: self.key.sign(text),
        }

    def request(
        self, method: str, path: str, *, params=None, json=None, verify: bool = True
    ) -> requests.Response:
        """Send a signed request; the answer's signature is checked (AnswerNotSigned) unless
        ``verify`` is False."""
        query = urlencode(params or {}, doseq=True)
        body = b"" if json is None else jsonlib.dumps(json, ensure_ascii=False).encode()
        headers = self.signature_headers(method, path, query, body)
        if json is not None:
            headers["Content-Type"] = "application/json"
        url = self.base_url + path + ("?" + query if query else "")
        response = self._session.request(
            method, url, data=body or None, headers=headers, timeout=self._timeout
        )
        if verify:
            self.verify_answer(response, headers[NONCE])
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def verify_answer(self, response: requests.Response, nonce: str) -> None:
        """Raise AnswerNotSigned unless ``response`` carries the platform's valid signature
        of its status and body, bound to this app and the request's ``nonce``. An error
        answered before the request's signature was proven (unknown app or key, stale
        timestamp, bad signature) is unsigned: it passes, to be read as a failure whose
        details nobody vouches for; a success never passes unsigned."""
        h = response.headers
        key_id, timestamp, signature = h.get(KEY_ID), h.get(TIMESTAMP), h.get(SIGNATURE)
        if not (key_id or timestamp or signature) and response.status_code >= 400:
            return
        if not (key_id and timestamp and signature) or h.get(NONCE) != nonce:
            raise AnswerNotSigned("the answer is not signed for this request", response)
        text = canonical.response(
            response.status_code,
            self.app_id,
            nonce,
            key_id,
            timestamp,
            canonical.sha256_hex(response.content),
        )
        if isinstance(self.key, HmacKey):
            valid = self.key.verifies(text, signature, key_id)
        else:
            expected = self._platform_key_id
            valid = (expected is None or key_id == expected) and rsa_verifies(
                self._platform_key, text, signature
            )
        if not valid:
            raise AnswerNotSigned("the answer's signature does not verify", response)
