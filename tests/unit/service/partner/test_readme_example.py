"""The worked example of README "Signed partner calls" is what the code computes, and what
openssl, an independent implementation, computes too: HMAC with ``openssl dgst -hmac``, and
RSA signatures made by ``openssl dgst -sign`` accepted by the code (and the code's accepted by
``openssl dgst -verify``) over the same canonical string."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from p2p_partner import canonical as sdk

from service.ocp.signing import generate_keypair
from service.partner import signing

ROOT = Path(__file__).resolve().parents[4]
APP, KEY, SECRET = (
    "pa3f9c2e7b41d08a65c2e19b7",
    "2026-12",
    "q3Vt0-2h8mYJc6b0yYwV5kq9nR1xZ7eLp4sT8uA2wD0",
)
NONCE = "9f2c4e1a7b3d5f60"
ANSWER = b'{"items":[],"total":0,"page":2,"pageSize":10}'

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not found")


def example(name: str) -> str:
    """The text block after ``<!-- partner-example:name -->`` in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- partner-example:{name} -->\n```text\n(.*?)\n```", text, re.S)
    assert found, f"the README has no partner example {name}"
    return found[1]


def headers(name: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in example(name).splitlines())


def openssl(*args: str, data: bytes) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def test_the_readme_names_the_values_the_example_uses() -> None:
    sent = headers("request-headers")
    assert (sent["X-P2P-App-Id"], sent["X-P2P-Key-Id"], sent["X-P2P-Nonce"]) == (APP, KEY, NONCE)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECRET in text and "GET /api/v1/partner/listings?pageSize=10&page=2" in text


def test_the_canonical_strings_are_the_codes_and_the_sdks() -> None:
    sent = headers("request-headers")
    request = signing.canonical_request(
        "GET",
        b"/api/v1/partner/listings",
        b"pageSize=10&page=2",
        APP,
        KEY,
        sent["X-P2P-Timestamp"],
        NONCE,
        signing.sha256_hex(b""),
    )
    assert request == example("request")
    assert request == sdk.request(
        "GET",
        "/api/v1/partner/listings",
        "pageSize=10&page=2",
        APP,
        KEY,
        sent["X-P2P-Timestamp"],
        NONCE,
        sdk.sha256_hex(b""),
    )
    answered = headers("response-headers")
    response = signing.canonical_response(
        200, APP, NONCE, KEY, answered["X-P2P-Timestamp"], signing.sha256_hex(ANSWER)
    )
    assert response == example("response")
    assert answered["X-P2P-Nonce"] == NONCE


def test_the_signatures_are_the_codes() -> None:
    assert (
        signing.sign_hmac(SECRET, example("request"))
        == headers("request-headers")["X-P2P-Signature"]
    )
    assert (
        signing.sign_hmac(SECRET, example("response"))
        == headers("response-headers")["X-P2P-Signature"]
    )


@needs_openssl
def test_openssl_computes_the_readme_signatures() -> None:
    for canonical, sent in (("request", "request-headers"), ("response", "response-headers")):
        mac = openssl(
            "dgst", "-sha256", "-hmac", SECRET, "-binary", data=example(canonical).encode()
        )
        assert base64.b64encode(mac).decode() == headers(sent)["X-P2P-Signature"]


@needs_openssl
def test_rsa_signatures_agree_with_openssl_both_ways(tmp_path: Path) -> None:
    private, public = generate_keypair()
    (tmp_path / "app.pem").write_bytes(private)
    (tmp_path / "app.pub.pem").write_bytes(public)
    text = example("request")
    by_openssl = openssl("dgst", "-sha256", "-sign", str(tmp_path / "app.pem"), data=text.encode())
    assert signing.verify_rsa(public, text, base64.b64encode(by_openssl).decode())
    assert not signing.verify_rsa(public, text + " ", base64.b64encode(by_openssl).decode())
    ours = signing.load_platform_key("k", private).sign(text)
    (tmp_path / "sig").write_bytes(base64.b64decode(ours))
    verified = openssl(
        "dgst",
        "-sha256",
        "-verify",
        str(tmp_path / "app.pub.pem"),
        "-signature",
        str(tmp_path / "sig"),
        data=text.encode(),
    )
    assert verified.strip() == b"Verified OK"
    assert base64.b64decode(ours) == by_openssl  # PKCS#1 v1.5 is deterministic
