"""The callback example of README "Partner operations and callbacks" is what the code signs
(service/partner/delivery.py), what openssl computes, and what the SDK verifies: with either
key of a rotation, with the platform's RSA key, and never a callback altered, late, for
another app or signed by a key the partner does not hold."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from p2p_partner import CallbackNotVerified, HmacKey, verify_callback

from service.partner import signing
from service.partner.delivery import canonical_callback
from service.partner.signing import PlatformKey
from tests.unit.service.partner.test_readme_example import APP, KEY, SECRET, example, headers

NEXT_KEY, NEXT_SECRET = "2027-06", "Hn4pQ8sV1xZ5cB9fJ2mR6tW0yE3uI7oA4dG8kL1nP5q"
EVENT = "5b1e0c7a9d2f4e6b8a0c1d2e3f405162"


def body() -> bytes:
    return example("callback-body").encode()


def sent() -> dict[str, str]:
    return headers("callback-headers")


def at(seconds_later: int = 0):
    return lambda: int(sent()["X-P2P-Timestamp"]) + seconds_later


def test_the_example_is_what_the_code_signs() -> None:
    h = sent()
    text = canonical_callback(APP, EVENT, h["X-P2P-Timestamp"], signing.sha256_hex(body()))
    assert text == example("callback")
    assert (h["X-P2P-App-Id"], h["X-P2P-Event-Id"]) == (APP, EVENT)
    expected = ",".join(
        f"{key}:{signing.sign_hmac(secret, text)}"
        for key, secret in ((KEY, SECRET), (NEXT_KEY, NEXT_SECRET))
    )
    assert h["X-P2P-Signature"] == expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not found")
def test_openssl_computes_the_same_signatures() -> None:
    signatures = dict(pair.split(":", 1) for pair in sent()["X-P2P-Signature"].split(","))
    for key, secret in ((KEY, SECRET), (NEXT_KEY, NEXT_SECRET)):
        mac = subprocess.run(
            ["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"],
            input=example("callback").encode(),
            capture_output=True,
            check=True,
        ).stdout
        assert base64.b64encode(mac).decode() == signatures[key]


@pytest.mark.parametrize("held", [[HmacKey(KEY, SECRET)], [HmacKey(NEXT_KEY, NEXT_SECRET)]])
def test_the_sdk_verifies_with_either_key_of_a_rotation(held) -> None:
    told = verify_callback(sent(), body(), app_id=APP, keys=held, clock=at(30))
    assert (told.event_id, told.event_type, told.key_id) == (EVENT, "LISTING_FULL", held[0].key_id)
    assert told.data == {"amount": "50000.00", "loanId": 1024}


@pytest.mark.parametrize(
    ("change", "app", "keys", "clock"),
    [
        ("body", APP, [HmacKey(KEY, SECRET)], at()),
        ("none", "pa0000000000000000000000", [HmacKey(KEY, SECRET)], at()),
        ("none", APP, [HmacKey(KEY, NEXT_SECRET)], at()),  # a key id with another secret
        ("none", APP, [HmacKey("2025-01", SECRET)], at()),  # a key the callback names not
        ("none", APP, [HmacKey(KEY, SECRET)], at(301)),
        ("event", APP, [HmacKey(KEY, SECRET)], at()),
    ],
)
def test_the_sdk_refuses_what_it_cannot_trust(change, app, keys, clock) -> None:
    h, raw = sent(), body()
    if change == "body":
        raw = raw.replace(b"50000.00", b"60000.00")
    if change == "event":
        h["X-P2P-Event-Id"] = "0" * 32
    with pytest.raises(CallbackNotVerified):
        verify_callback(h, raw, app_id=app, keys=keys, clock=clock)


def test_an_rsa_app_verifies_the_platform_s_signature() -> None:
    platform = PlatformKey("platform-1", rsa.generate_private_key(65537, 2048))
    h = sent()
    text = canonical_callback(APP, EVENT, h["X-P2P-Timestamp"], signing.sha256_hex(body()))
    h["X-P2P-Signature"] = f"platform-1:{platform.sign(text)}"
    public = platform.public_pem().encode()
    told = verify_callback(
        h, body(), app_id=APP, platform_public_key=public, platform_key_id="platform-1", clock=at()
    )
    assert told.key_id == "platform-1"
    other = rsa.generate_private_key(65537, 2048).public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(CallbackNotVerified):
        verify_callback(
            h,
            body(),
            app_id=APP,
            platform_public_key=other_pem,
            platform_key_id="platform-1",
            clock=at(),
        )
