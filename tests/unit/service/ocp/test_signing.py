"""Signatures of the depository protocol: what one side signs the other verifies over the exact
bytes; any change, an unknown or missing key id or a foreign key is refused with a stable
reason; keys rotate through a ring; a private key never shows in a repr."""

from __future__ import annotations

import base64

import pytest

from service.ocp.signing import KeyRing, SignatureInvalid, Signer, generate_keypair

OLD_PRIVATE, OLD_PUBLIC = generate_keypair()
NEW_PRIVATE, NEW_PUBLIC = generate_keypair()
BODY = '{"amount":"12.34","merchantId":"M1","realName":"张三"}'.encode()


def reason(ring: KeyRing, body: bytes, key_id: str | None, signature: str | None) -> str:
    with pytest.raises(SignatureInvalid) as refused:
        ring.verify(body, key_id, signature)
    return refused.value.reason


def test_a_signature_verifies_over_the_exact_bytes() -> None:
    signer = Signer("k1", OLD_PRIVATE)
    KeyRing({"k1": OLD_PUBLIC}).verify(BODY, "k1", signer.sign(BODY))


def test_a_changed_body_is_refused() -> None:
    signature = Signer("k1", OLD_PRIVATE).sign(BODY)
    ring = KeyRing({"k1": OLD_PUBLIC})
    assert reason(ring, BODY.replace(b"12.34", b"12.35"), "k1", signature) == "bad_signature"
    assert reason(ring, BODY + b" ", "k1", signature) == "bad_signature"


def test_missing_key_id_or_signature_is_refused() -> None:
    ring = KeyRing({"k1": OLD_PUBLIC})
    signature = Signer("k1", OLD_PRIVATE).sign(BODY)
    assert reason(ring, BODY, None, signature) == "missing"
    assert reason(ring, BODY, "k1", None) == "missing"
    assert reason(ring, BODY, "", "") == "missing"


def test_an_unknown_key_id_is_refused() -> None:
    signature = Signer("k9", OLD_PRIVATE).sign(BODY)
    assert reason(KeyRing({"k1": OLD_PUBLIC}), BODY, "k9", signature) == "unknown_key"


def test_a_signature_by_another_key_under_a_known_id_is_refused() -> None:
    signature = Signer("k1", NEW_PRIVATE).sign(BODY)
    assert reason(KeyRing({"k1": OLD_PUBLIC}), BODY, "k1", signature) == "bad_signature"


@pytest.mark.parametrize("garbage", ["not base64!", "QUJD", "é", base64.b64encode(b"x" * 256)])
def test_garbage_signatures_are_refused(garbage: str | bytes) -> None:
    text = garbage.decode() if isinstance(garbage, bytes) else garbage
    assert reason(KeyRing({"k1": OLD_PUBLIC}), BODY, "k1", text) == "bad_signature"


def test_a_ring_with_both_keys_accepts_either_during_rotation() -> None:
    ring = KeyRing({"2026a": OLD_PUBLIC, "2026b": NEW_PUBLIC})
    ring.verify(BODY, "2026a", Signer("2026a", OLD_PRIVATE).sign(BODY))
    ring.verify(BODY, "2026b", Signer("2026b", NEW_PRIVATE).sign(BODY))
    assert ring.key_ids == {"2026a", "2026b"}


def test_reprs_and_errors_never_show_a_private_key() -> None:
    signer = Signer("k1", OLD_PRIVATE)
    assert repr(signer) == "Signer(key_id='k1')"
    assert "PRIVATE" not in repr(KeyRing({"k1": OLD_PUBLIC}))
    with pytest.raises(ValueError) as refused:
        Signer("k1", OLD_PRIVATE[:-40])
    assert "MII" not in str(refused.value) and refused.value.__cause__ is None


def test_a_public_key_is_not_a_signing_key_and_a_private_key_not_a_ring_key() -> None:
    with pytest.raises(ValueError):
        Signer("k1", OLD_PUBLIC)
    with pytest.raises(ValueError, match="'k1'"):
        KeyRing({"k1": OLD_PRIVATE})
    with pytest.raises(ValueError):
        Signer("", OLD_PRIVATE)
