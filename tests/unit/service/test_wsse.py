"""WS-Security PasswordDigest verification (service/wsse.py) and the sealing of API secrets
(service/secretbox.py), on the in-process cache with a clock the test moves."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import time

import pytest

from dao.cache import MemoryCache
from service.errors import BusinessError
from service.secretbox import SecretBox, SecretBoxError
from service.wsse import NOT_ACCEPTED, PURPOSE, ApiSecrets, PasswordDigest, compute_digest

KEY = bytes(range(32))
NOW = dt.datetime(2026, 3, 1, 8, 30, 0, tzinfo=dt.UTC)
MEMBER = 7


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> ApiSecrets:
    return ApiSecrets(SecretBox(KEY, PURPOSE), MemoryCache(), clock, max_skew_seconds=300)


def token(
    secret: str,
    created: str = "2026-03-01T08:30:00Z",
    nonce: bytes | None = None,
    nonce_text: str | None = None,
) -> PasswordDigest:
    nonce = os.urandom(16) if nonce is None else nonce
    digest = base64.b64encode(compute_digest(nonce, created, secret)).decode()
    if nonce_text is None:
        nonce_text = base64.b64encode(nonce).decode()
    return PasswordDigest(digest, nonce_text, created)


def authenticate(api: ApiSecrets, t: PasswordDigest, secret: str | None, member=MEMBER) -> None:
    api.verify(api.check(t), member, secret)


def refused(api: ApiSecrets, t: PasswordDigest, secret: str | None = None) -> str:
    with pytest.raises(BusinessError) as e:
        authenticate(api, t, secret)
    assert e.value.code == "UNAUTHENTICATED"
    return e.value.message


def test_a_good_digest_is_accepted(api: ApiSecrets) -> None:
    secret, _ = api.issue(MEMBER)
    authenticate(api, token(secret), secret)


def test_the_digest_of_the_ws_security_example_matches() -> None:
    # Base64(SHA-1(nonce + created + password)), the profile's formula, computed independently.
    nonce, created = b"0123456789abcdef", "2026-03-01T08:30:00Z"
    expected = hashlib.sha1(nonce + created.encode() + b"pw").digest()  # noqa: S324
    assert compute_digest(nonce, created, "pw") == expected


def test_a_digest_of_another_secret_is_refused_without_saying_why(api: ApiSecrets) -> None:
    secret, _ = api.issue(MEMBER)
    assert refused(api, token("the login password"), secret) == NOT_ACCEPTED


def test_no_secret_or_no_member_is_refused_like_a_wrong_one(api: ApiSecrets) -> None:
    t = token("anything")
    assert refused(api, t, None) == NOT_ACCEPTED
    with pytest.raises(BusinessError) as e:
        api.verify(api.check(t), None, None)
    assert e.value.message == NOT_ACCEPTED


def test_a_reused_nonce_is_refused(api: ApiSecrets) -> None:
    secret, _ = api.issue(MEMBER)
    t = token(secret)
    authenticate(api, t, secret)
    assert refused(api, t, secret) == NOT_ACCEPTED  # the same envelope again
    nonce = base64.b64decode(t.nonce)
    later = token(secret, created="2026-03-01T08:30:01Z", nonce=nonce)
    assert refused(api, later, secret) == NOT_ACCEPTED  # same nonce, new time: still refused


def test_the_nonce_is_per_member_and_recorded_only_after_a_good_digest(api: ApiSecrets) -> None:
    secret, _ = api.issue(MEMBER)
    nonce = os.urandom(16)
    refused(api, token("wrong", nonce=nonce), secret)  # a bad digest burns nothing
    authenticate(api, token(secret, nonce=nonce), secret)
    authenticate(api, token(secret, nonce=nonce), secret, member=MEMBER + 1)


def test_the_nonce_is_remembered_for_twice_the_window(clock: Clock) -> None:
    cache = MemoryCache()
    api = ApiSecrets(SecretBox(KEY, PURPOSE), cache, clock, max_skew_seconds=300)
    secret, _ = api.issue(MEMBER)
    t = token(secret)
    authenticate(api, t, secret)
    (key,) = cache._data  # one record, with a TTL of 600 s on its monotonic clock
    assert 590 < cache._data[key][1] - time.monotonic() <= 600


@pytest.mark.parametrize(
    ("created", "now_offset"),
    [
        ("2026-03-01T08:24:59Z", 0),  # 301 s old
        ("2026-03-01T08:35:01Z", 0),  # 301 s ahead of the server
        ("2026-03-01T08:30:00Z", 301),  # the server's clock moved on
        ("2026-03-01T16:30:00+08:00", 400),  # an offset is read as such
    ],
)
def test_a_stale_or_future_created_says_message_expired(
    api: ApiSecrets, clock: Clock, created: str, now_offset: int
) -> None:
    secret, _ = api.issue(MEMBER)
    clock.now = NOW + dt.timedelta(seconds=now_offset)
    message = refused(api, token(secret, created=created), secret)
    assert message.startswith("wsse:MessageExpired")
    assert "300 seconds" in message


@pytest.mark.parametrize(
    "created", ["2026-03-01T08:25:00Z", "2026-03-01T08:35:00Z", "2026-03-01T16:30:00.123+08:00"]
)
def test_created_at_the_window_edges_is_accepted(api: ApiSecrets, created: str) -> None:
    secret, _ = api.issue(MEMBER)
    authenticate(api, token(secret, created=created), secret)


@pytest.mark.parametrize(
    "nonce_text",
    [
        base64.b64encode(b"short-15-bytes!").decode(),  # 15 bytes
        base64.b64encode(bytes(range(65))).decode(),  # too long: 65 bytes
        "not base64 at all!",
        "AAAAAAAAAAAAAAAAAAAAAA",  # missing padding
        "",
    ],
)
def test_a_malformed_nonce_is_refused(api: ApiSecrets, nonce_text: str) -> None:
    secret, _ = api.issue(MEMBER)
    assert refused(api, token(secret, nonce_text=nonce_text), secret) == NOT_ACCEPTED


@pytest.mark.parametrize(
    "created",
    ["2026-03-01T08:30:00", "2026-03-01 08:30:00Z", "yesterday", "", "2026-02-30T08:30:00Z"],
)
def test_a_malformed_created_is_refused(api: ApiSecrets, created: str) -> None:
    secret, _ = api.issue(MEMBER)
    assert refused(api, token(secret, created=created), secret) == NOT_ACCEPTED


def test_a_malformed_digest_is_refused(api: ApiSecrets) -> None:
    secret, _ = api.issue(MEMBER)
    good = token(secret)
    for digest in ("", "abc", base64.b64encode(b"x" * 32).decode()):
        bad = PasswordDigest(digest, good.nonce, good.created)
        assert refused(api, bad, secret) == NOT_ACCEPTED


def test_without_a_key_nothing_is_issued_or_accepted(clock: Clock) -> None:
    api = ApiSecrets(None, MemoryCache(), clock, 300)
    with pytest.raises(BusinessError) as e:
        api.issue(MEMBER)
    assert e.value.code == "SERVICE_UNAVAILABLE"
    assert "not enabled" in refused(api, token("x"))
    assert api.open(MEMBER, "v1.anything") is None


# -- sealing ---------------------------------------------------------------------------------


def test_an_issued_secret_is_random_sealed_and_opens_only_for_its_member(api: ApiSecrets) -> None:
    secret, sealed = api.issue(MEMBER)
    other, _ = api.issue(MEMBER)
    assert secret != other and len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert secret not in sealed and sealed.startswith("v1.")
    assert api.open(MEMBER, sealed) == secret
    assert api.open(MEMBER + 1, sealed) is None  # copied onto another row: does not open
    assert api.open(MEMBER, None) is None


def test_a_sealed_secret_needs_the_same_key_and_purpose(clock: Clock) -> None:
    box = SecretBox(KEY, PURPOSE)
    sealed = box.seal("s3cret", "member:1")
    assert box.open(sealed, "member:1") == "s3cret"
    assert box.seal("s3cret", "member:1") != sealed  # a fresh nonce every time
    for other in (SecretBox(bytes(32), PURPOSE), SecretBox(KEY, "another purpose")):
        with pytest.raises(SecretBoxError):
            other.open(sealed, "member:1")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    for bad in (tampered, "v2." + sealed[3:], "v1.!!", "v1."):
        with pytest.raises(SecretBoxError):
            box.open(bad, "member:1")
    other_api = ApiSecrets(SecretBox(bytes(32), PURPOSE), MemoryCache(), clock, 300)
    assert other_api.open(1, sealed) is None  # the key changed: the secret is void


def test_from_setting() -> None:
    assert SecretBox.from_setting("", PURPOSE) is None
    box = SecretBox.from_setting(base64.b64encode(KEY).decode(), PURPOSE)
    assert box is not None and SecretBox(KEY, PURPOSE).open(box.seal("x", "b"), "b") == "x"
    with pytest.raises(ValueError):
        SecretBox(b"short", PURPOSE)
