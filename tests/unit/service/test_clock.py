"""The development clock's command-line values, and where it may not move."""

from __future__ import annotations

import datetime as dt

import pytest

from conf import ConfigError, load_settings
from service.clock import fixed_clock, parse_duration, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("40d", dt.timedelta(days=40)),
        ("12h", dt.timedelta(hours=12)),
        ("90m", dt.timedelta(minutes=90)),
        ("30s", dt.timedelta(seconds=30)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
    ],
)
def test_durations(text, expected) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "40", "d", "40 days", "1.5d", "40d junk", "4w", "-1d"])
def test_what_is_not_a_duration(text) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_instants_carry_their_zone() -> None:
    at = dt.datetime(2027, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert parse_instant("2027-01-05T10:00:00Z") == at
    assert parse_instant("2027-01-05T18:00:00+08:00") == at
    assert parse_instant("2027-01-05") == dt.datetime(2027, 1, 5, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="zone"):
        parse_instant("2027-01-05T10:00:00")


def test_a_fixed_clock_answers_its_moment_in_utc() -> None:
    clock = fixed_clock(dt.datetime(2027, 1, 5, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    assert clock() == clock() == dt.datetime(2027, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert clock().tzinfo == dt.UTC


def test_production_refuses_an_adjustable_clock() -> None:
    env = {"P2P_ENV": "production", "P2P_DATABASE_URL": "sqlite://"}
    with pytest.raises(ConfigError, match=r"clock\.adjustable"):
        load_settings(env, {"clock.adjustable": "true", "payment.gateway": "SANDBOX"})
    assert not load_settings(env, {"payment.gateway": "SANDBOX"}).clock.adjustable
    assert load_settings({}, {}).clock.adjustable  # development: the default
