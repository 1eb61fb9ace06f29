"""Verifying the platform's callbacks (signed webhooks) on the partner's server.

A callback is a POST with a JSON body and the headers ``X-P2P-App-Id``, ``X-P2P-Event-Id``,
``X-P2P-Timestamp`` and ``X-P2P-Signature``. Its signatures sign::

    P2P-PARTNER-CALLBACK-V1
    <app id>
    <event id>
    <timestamp, seconds>
    <lower-case hex SHA-256 of the raw body bytes>

``X-P2P-Signature`` lists one signature per key, ``<key id>:<Base64>`` joined by ``,``: one
for each active HMAC key of the app (so a partner rotating keys verifies with whichever it
holds) and, for an app with an RSA key, the platform's. Answer 2xx once the callback is
stored; a repeat (a retry, a replay) has the same event id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from p2p_partner.keys import HmacKey, rsa_verifies

VERSION = "P2P-PARTNER-CALLBACK-V1"


class CallbackNotVerified(Exception):
    """The callback is not the platform's, not for this app, or too old: refuse it (4xx)."""


@dataclass(frozen=True)
class Callback:
    event_id: str
    event_type: str
    occurred_at: str
    data: dict
    key_id: str  # the key whose signature verified


def canonical(app_id: str, event_id: str, timestamp: str, body: bytes) -> str:
    return "\n".join((VERSION, app_id, event_id, timestamp, hashlib.sha256(body).hexdigest()))


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    *,
    app_id: str,
    keys: Sequence[HmacKey] = (),
    platform_public_key: bytes | None = None,
    platform_key_id: str | None = None,
    tolerance_seconds: int = 300,
    clock: Callable[[], float] = time.time,
) -> Callback:
    """The callback, once one of its signatures verifies with one of ``keys`` (the app's
    HMAC keys) or with the platform's public key; CallbackNotVerified otherwise, or when it
    names another app or event than its body, or its timestamp is further than
    ``tolerance_seconds`` from ``clock``."""
    h = {k.lower(): v for k, v in headers.items()}
    sent_app, event_id = h.get("x-p2p-app-id"), h.get("x-p2p-event-id")
    timestamp, signatures = h.get("x-p2p-timestamp", ""), h.get("x-p2p-signature", "")
    if sent_app != app_id or not event_id or not timestamp.isdigit():
        raise CallbackNotVerified("not a callback for this app")
    if abs(int(timestamp) - clock()) > tolerance_seconds:
        raise CallbackNotVerified("the callback's timestamp is outside the tolerance")
    text = canonical(app_id, event_id, timestamp, body)
    hmac_keys = {k.key_id: k for k in keys}
    for entry in signatures.split(","):
        key_id, _, signature = entry.strip().partition(":")
        if key_id in hmac_keys:
            valid = hmac_keys[key_id].verifies(text, signature, key_id)
        elif platform_public_key is not None and key_id == platform_key_id:
            valid = rsa_verifies(platform_public_key, text, signature)
        else:
            continue
        if valid:
            event = json.loads(body)
            if event.get("eventId") != event_id or event.get("appId") != app_id:
                raise CallbackNotVerified("the body tells of another event")
            return Callback(
                event_id, event["eventType"], event["occurredAt"], event["data"], key_id
            )
    raise CallbackNotVerified("no signature verifies with the keys held")
