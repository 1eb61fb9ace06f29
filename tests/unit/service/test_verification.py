"""Verification codes (service/verification.py) on an in-process cache and a clock the test
moves: consumed once, wrong entries counted and capped, the resend interval and the daily
count, replacement and expiry, failing closed, and never a code or a number in a log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path

import pytest

from dao.cache import CacheError, MemoryCache, RedisCache
from service.errors import BusinessError
from service.verification import (
    CodeSender,
    SandboxSender,
    SentMessage,
    VerificationCodes,
)

MOBILE = "13812345678"
OTHER = "13987654321"
FIELD = "verificationCode"
TTL, RESEND, PER_DAY, ATTEMPTS = 300, 60, 4, 3


class Clock:
    """The codes' clock and the cache's, moved by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def monotonic(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class FailingCache(MemoryCache):
    """A MemoryCache whose named methods fail as an unreachable Redis does."""

    def __init__(self, clock) -> None:
        super().__init__(clock=clock)
        self.failing: set[str] = set()

    def __getattribute__(self, name: str):
        if name in object.__getattribute__(self, "failing"):
            raise CacheError("cache down")
        return object.__getattribute__(self, name)


class BrokenSender(CodeSender):
    """An SMS provider failing with an error that quotes the message, as some do."""

    def send(self, message: SentMessage) -> None:
        raise RuntimeError(f"provider refused {message.mobile}: {message.text}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> FailingCache:
    return FailingCache(clock.monotonic)


@pytest.fixture
def sender() -> SandboxSender:
    return SandboxSender()


def make_codes(cache, sender, clock, **overrides: int) -> VerificationCodes:
    limits = {
        "code_ttl_seconds": TTL,
        "resend_seconds": RESEND,
        "max_per_day": PER_DAY,
        "max_attempts": ATTEMPTS,
        **overrides,
    }
    return VerificationCodes(cache, sender, clock, **limits)


@pytest.fixture
def codes(cache, sender, clock) -> VerificationCodes:
    return make_codes(cache, sender, clock)


def refusal(fn, *args, **kwargs) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args, **kwargs)
    return e.value


def send(codes: VerificationCodes, sender: SandboxSender, purpose: str = "REGISTER") -> str:
    codes.send(MOBILE, purpose)
    code = sender.last_code(MOBILE, purpose)
    assert code is not None and len(code) == 6 and code.isdigit()
    return code


def wrong(code: str) -> str:
    """Another six digits."""
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_sent_code_is_consumed_once(codes, sender) -> None:
    sent = codes.send(MOBILE, "REGISTER")
    assert (sent.expires_in, sent.resend_after) == (TTL, RESEND)
    code = sender.last_code(MOBILE, "REGISTER")
    codes.consume(MOBILE, "REGISTER", code, FIELD)
    e = refusal(codes.consume, MOBILE, "REGISTER", code, FIELD)
    assert (e.code, e.message) == (
        "VERIFICATION_CODE_INVALID",
        f"{FIELD}: no valid code: ask for a new one",
    )


def test_a_code_is_bound_to_its_number_and_purpose(codes, sender) -> None:
    code = send(codes, sender)
    assert (
        refusal(codes.consume, OTHER, "REGISTER", code, FIELD).code == "VERIFICATION_CODE_INVALID"
    )
    e = refusal(codes.consume, MOBILE, "RESET_PASSWORD", code, FIELD)
    assert e.code == "VERIFICATION_CODE_INVALID"
    codes.consume(MOBILE, "REGISTER", code, FIELD)


def test_a_wrong_code_counts_and_the_right_one_still_works(codes, sender) -> None:
    code = send(codes, sender)
    for _ in range(ATTEMPTS - 1):
        e = refusal(codes.consume, MOBILE, "REGISTER", wrong(code), FIELD)
        assert (e.code, e.message) == ("VERIFICATION_CODE_INVALID", f"{FIELD}: the code is wrong")
    codes.consume(MOBILE, "REGISTER", f" {code} ", FIELD)  # surrounding blanks forgiven


def test_max_attempts_wrong_entries_void_the_code(codes, sender) -> None:
    code = send(codes, sender)
    for _ in range(ATTEMPTS):
        refusal(codes.consume, MOBILE, "REGISTER", wrong(code), FIELD)
    e = refusal(codes.consume, MOBILE, "REGISTER", code, FIELD)
    assert e.message == f"{FIELD}: too many wrong entries: ask for a new one"
    # void for good: the right code stays refused
    assert refusal(codes.consume, MOBILE, "REGISTER", code, FIELD).code == (
        "VERIFICATION_CODE_INVALID"
    )


def test_parallel_guesses_cannot_overshoot_the_attempts(codes, sender) -> None:
    code = send(codes, sender)
    barrier = threading.Barrier(8)
    refused: list[str] = []

    def guess() -> None:
        barrier.wait()
        refused.append(refusal(codes.consume, MOBILE, "REGISTER", wrong(code), FIELD).message)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(m.endswith("the code is wrong") for m in refused) == ATTEMPTS
    assert refusal(codes.consume, MOBILE, "REGISTER", code, FIELD).code == (
        "VERIFICATION_CODE_INVALID"
    )


class RendezvousCache(MemoryCache):
    """Holds each reader of a code until `parties` readers have read it: requests that
    arrive together all see the code before any of them uses it up."""

    def __init__(self, clock, parties: int) -> None:
        super().__init__(clock=clock)
        self.barrier = threading.Barrier(parties, timeout=10)

    def get_many(self, keys: list[str]) -> list[str | None]:
        values = super().get_many(keys)
        if keys[0].startswith("vcode:"):
            self.barrier.wait()
        return values


def test_requests_with_the_right_code_at_the_same_moment_use_it_once(sender, clock) -> None:
    codes = make_codes(RendezvousCache(clock.monotonic, 3), sender, clock)
    code = send(codes, sender)
    outcomes: list[str] = []

    def use() -> None:
        try:
            codes.consume(MOBILE, "REGISTER", code, FIELD)
            outcomes.append("used")
        except BusinessError as e:
            outcomes.append(e.message)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["used"] + [f"{FIELD}: the code was already used"] * 2


def test_another_code_is_refused_within_the_resend_interval(codes, sender, clock) -> None:
    send(codes, sender)
    e = refusal(codes.send, MOBILE, "REGISTER")
    assert e.code == "VERIFICATION_CODE_TOO_SOON"
    assert "60 seconds" in e.message
    assert e.retry_after == RESEND
    send(codes, sender, "RESET_PASSWORD")  # the interval is per purpose
    clock.advance(seconds=RESEND - 1.5)
    e = refusal(codes.send, MOBILE, "REGISTER")
    assert (e.code, e.retry_after) == ("VERIFICATION_CODE_TOO_SOON", 2)  # whole seconds, up
    clock.advance(seconds=1.5)
    send(codes, sender)


def test_at_most_max_per_day_codes_in_any_24_hours(cache, sender, clock) -> None:
    codes = make_codes(cache, sender, clock, max_per_day=3)
    send(codes, sender)  # 08:30
    clock.advance(hours=1)
    send(codes, sender, "RESET_PASSWORD")  # 09:30: the count is per number, all purposes
    clock.advance(hours=1)
    send(codes, sender)  # 10:30
    clock.advance(hours=1)
    e = refusal(codes.send, MOBILE, "RESET_PASSWORD")  # 11:30
    assert (e.code, e.message) == (
        "VERIFICATION_CODE_TOO_SOON",
        "at most 3 codes a day are sent to one number",
    )
    assert e.retry_after == 21 * 3600  # when the 08:30 send is a day old
    codes.send(OTHER, "REGISTER")  # another number has its own count
    clock.now = dt.datetime(2026, 3, 2, 8, 30, 1, tzinfo=dt.UTC)  # the 08:30 send is a day old
    send(codes, sender)
    clock.advance(minutes=5)  # the 09:30 and 10:30 ones are not
    e = refusal(codes.send, MOBILE, "RESET_PASSWORD")
    assert (e.code, e.retry_after) == ("VERIFICATION_CODE_TOO_SOON", 3600 - 5 * 60 - 1)
    clock.now = dt.datetime(2026, 3, 2, 9, 30, 1, tzinfo=dt.UTC)
    send(codes, sender, "RESET_PASSWORD")  # the refused asks held no slot


def test_a_new_code_replaces_the_former_and_its_wrong_entries(codes, sender, clock) -> None:
    first = send(codes, sender)
    refusal(codes.consume, MOBILE, "REGISTER", wrong(first), FIELD)
    refusal(codes.consume, MOBILE, "REGISTER", wrong(first), FIELD)
    second = first
    while second == first:  # one chance in a million that the new code is the same
        clock.advance(seconds=RESEND)
        second = send(codes, sender)
    assert refusal(codes.consume, MOBILE, "REGISTER", first, FIELD).code == (
        "VERIFICATION_CODE_INVALID"
    )
    # the former code's wrong entries do not count against the new one
    refusal(codes.consume, MOBILE, "REGISTER", wrong(second), FIELD)
    codes.consume(MOBILE, "REGISTER", second, FIELD)


def test_a_code_expires_after_its_ttl(codes, sender, clock) -> None:
    code = send(codes, sender)
    clock.advance(seconds=TTL)
    e = refusal(codes.consume, MOBILE, "REGISTER", code, FIELD)
    assert e.message == f"{FIELD}: no valid code: ask for a new one"


def test_an_undelivered_code_spends_the_same_and_answers_alike(codes, sender) -> None:
    """deliver=False (a reset for an unregistered number): nothing reaches the sender, the
    throttle is spent, and a guess is told what a wrong guess of a real code is told."""
    delivered = codes.send(MOBILE, "RESET_PASSWORD")
    silent = codes.send(OTHER, "RESET_PASSWORD", deliver=False)
    assert silent == delivered
    assert sender.last_code(OTHER, "RESET_PASSWORD") is None
    assert refusal(codes.send, OTHER, "RESET_PASSWORD", deliver=False).message == (
        refusal(codes.send, MOBILE, "RESET_PASSWORD").message
    )
    guess = "000000" if sender.last_code(MOBILE, "RESET_PASSWORD") != "000000" else "000001"
    known = refusal(codes.consume, MOBILE, "RESET_PASSWORD", guess, FIELD)
    unknown = refusal(codes.consume, OTHER, "RESET_PASSWORD", guess, FIELD)
    assert (known.code, known.message) == (unknown.code, unknown.message)


@pytest.mark.parametrize("failing", ["add", "get_many", "set", "delete"])
def test_sending_fails_closed_when_the_cache_cannot_answer(codes, sender, cache, failing) -> None:
    cache.failing.add(failing)
    e = refusal(codes.send, MOBILE, "REGISTER")
    assert e.code == "SERVICE_UNAVAILABLE"
    assert sender.last_code(MOBILE, "REGISTER") is None


@pytest.mark.parametrize("failing", ["get_many", "incr", "add"])
def test_checking_fails_closed_when_the_cache_cannot_answer(codes, sender, cache, failing) -> None:
    code = send(codes, sender)
    cache.failing.add(failing)
    assert refusal(codes.consume, MOBILE, "REGISTER", code, FIELD).code == "SERVICE_UNAVAILABLE"


def test_an_unreachable_redis_is_service_unavailable(sender, clock) -> None:
    codes = make_codes(RedisCache("redis://127.0.0.1:1/0"), sender, clock)
    assert refusal(codes.send, MOBILE, "REGISTER").code == "SERVICE_UNAVAILABLE"
    e = refusal(codes.consume, MOBILE, "REGISTER", "123456", FIELD)
    assert e.code == "SERVICE_UNAVAILABLE"


def test_a_failed_delivery_voids_the_code_and_frees_the_resend(cache, clock) -> None:
    broken = make_codes(cache, BrokenSender(), clock)
    e = refusal(broken.send, MOBILE, "REGISTER")
    assert (e.code, e.message) == (
        "SERVICE_UNAVAILABLE",
        "the code could not be sent; try again later",
    )
    sandbox = SandboxSender()
    working = make_codes(cache, sandbox, clock)
    working.send(MOBILE, "REGISTER")  # at once: the failed send did not hold the interval
    working.consume(MOBILE, "REGISTER", sandbox.last_code(MOBILE, "REGISTER"), FIELD)


def test_no_code_and_no_number_ever_reach_the_log(cache, clock, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = SandboxSender()
    codes = make_codes(cache, sandbox, clock)
    codes.send(MOBILE, "REGISTER")
    code = sandbox.last_code(MOBILE, "REGISTER")
    refusal(codes.consume, MOBILE, "REGISTER", wrong(code), FIELD)
    codes.consume(MOBILE, "REGISTER", code, FIELD)
    refusal(make_codes(cache, BrokenSender(), clock).send, OTHER, "REGISTER")
    cache.failing.add("add")
    refusal(codes.send, MOBILE, "RESET_PASSWORD")
    assert any("could not be sent" in r.getMessage() for r in caplog.records)
    formatter = logging.Formatter("%(name)s %(message)s %(args)s")
    for record in caplog.records:
        line = formatter.format(record)  # with any traceback it carries
        assert code not in line and MOBILE not in line and OTHER not in line, line
    message = SentMessage(MOBILE, "REGISTER", code, "text " + code, clock())
    assert code not in repr(message) and MOBILE not in repr(message)


def test_the_sandbox_keeps_the_last_code_and_writes_the_outbox(tmp_path: Path, clock) -> None:
    outbox = tmp_path / "var" / "sms-outbox.jsonl"
    sandbox = SandboxSender(str(outbox))
    codes = make_codes(MemoryCache(clock=clock.monotonic), sandbox, clock)
    codes.send(MOBILE, "REGISTER")
    codes.send(MOBILE, "RESET_PASSWORD")
    lines = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert [(x["mobile"], x["purpose"]) for x in lines] == [
        (MOBILE, "REGISTER"),
        (MOBILE, "RESET_PASSWORD"),
    ]
    first = lines[0]
    assert set(first) == {"sentAt", "mobile", "purpose", "code", "text"}
    assert first["code"] == sandbox.last_code(MOBILE, "REGISTER")
    assert first["code"] in first["text"] and "5 minutes" in first["text"]
    assert dt.datetime.fromisoformat(first["sentAt"]) == clock.now
    assert lines[1]["code"] == sandbox.last_code(MOBILE, "RESET_PASSWORD")


def test_the_sandbox_forgets_the_oldest_numbers_first(monkeypatch, clock) -> None:
    monkeypatch.setattr(SandboxSender, "MAX_KEPT", 2)
    sandbox = SandboxSender()
    for mobile in ("13800000001", "13800000002", "13800000001", "13800000003"):
        sandbox.send(SentMessage(mobile, "REGISTER", "123456", "text", clock()))
    assert sandbox.last_code("13800000002", "REGISTER") is None
    assert sandbox.last_code("13800000001", "REGISTER") == "123456"
    assert sandbox.last_code("13800000003", "REGISTER") == "123456"
