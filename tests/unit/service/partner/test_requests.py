"""The first answer kept with an Idempotency-Key is given back as it was: every field, its
type (times, amounts, nested attempts, absent values), and nothing but plain values kept."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import pytest

from service.partner.auth import SignedRequest
from service.partner.callbacks import CallbackAttemptVo, CallbackEventsVo, PartnerCallbackVo
from service.partner.requests import dump, restore

T = dt.datetime(2026, 12, 3, 10, 15, 0, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "answer",
    [
        PartnerCallbackVo(
            7,
            "e" * 32,
            "LISTING_FULL",
            "PENDING",
            1,
            T,
            T + dt.timedelta(seconds=15),
            None,
            3,
            (CallbackAttemptVo(1, T, None, "TIMEOUT"), CallbackAttemptVo(2, T, 500, "HTTP_ERROR")),
        ),
        CallbackEventsVo("pa1", None, ("LISTING_FULL", "MEMBER_REGISTERED")),
        CallbackEventsVo("pa1", "https://partner.example/cb", ()),
    ],
)
def test_an_answer_comes_back_as_it_was_kept(answer) -> None:
    assert restore(type(answer), json.loads(dump(answer))) == answer


def test_amounts_keep_their_digits() -> None:
    @dataclass(frozen=True)
    class Amount:
        value: Decimal

    assert restore(Amount, json.loads(dump(Amount(Decimal("100.10"))))).value.as_tuple() == (
        Decimal("100.10").as_tuple()
    )


def _signed(nonce: str, timestamp: str, body: str, query: bytes = b"") -> SignedRequest:
    return SignedRequest("pa1", "k1", timestamp, nonce, "sig", "POST", b"/p", query, body)


def test_a_retry_with_a_new_nonce_and_timestamp_is_the_same_request() -> None:
    first = _signed("n" * 16, "1796300000", "a" * 64)
    assert first.request_sha256() == _signed("m" * 16, "1796300999", "a" * 64).request_sha256()
    assert first.request_sha256() != _signed("n" * 16, "1796300000", "b" * 64).request_sha256()
    assert (
        first.request_sha256() != _signed("n" * 16, "1796300000", "a" * 64, b"x=1").request_sha256()
    )
