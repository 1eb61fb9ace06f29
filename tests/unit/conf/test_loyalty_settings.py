"""loyalty.* settings: levels cover [0, infinity) in half-open ranges, without overlap or gap,
or the platform does not start; the points table and catalogue are checked whole."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest

from conf import ConfigError, load_settings

SILVER = {"name": "SILVER", "from": "5000.00", "below": "50000.00", "fee_discount": "0.05"}


def levels(*entries) -> dict:
    return {"P2P_ENV": "test", "P2P_LOYALTY_LEVELS": json.dumps(list(entries))}


def test_the_default_levels_are_half_open_and_contiguous():
    rules = load_settings({"P2P_ENV": "test"}).loyalty.levels
    assert rules[0].start == 0
    for lower, upper in itertools.pairwise(rules):
        assert lower.below == upper.start
        assert lower.covers(lower.below - Decimal("0.01"))
        assert not lower.covers(lower.below) and upper.covers(upper.start)
    assert rules[-1].below is None


def test_levels_from_an_environment_variable_as_json():
    settings = load_settings(
        levels({"name": "A", "from": "0", "below": "5000.00"}, {**SILVER, "below": None})
    )
    names = [(r.name, r.start, r.below, r.fee_discount) for r in settings.loyalty.levels]
    assert names == [
        ("A", Decimal("0.00"), Decimal("5000.00"), Decimal("0")),
        ("SILVER", Decimal("5000.00"), None, Decimal("0.05")),
    ]


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        (({"name": "A", "from": "0", "below": "5000.01"}, {**SILVER, "below": None}), "overlap"),
        (({"name": "A", "from": "0", "below": "4999.99"}, {**SILVER, "below": None}), "gap"),
        (({"name": "A", "from": "100", "below": "5000"}, {**SILVER, "below": None}), "start at 0"),
        (({"name": "A", "from": "0", "below": "5000"}, SILVER), "no upper bound"),
        (({"name": "A", "from": "0"}, {**SILVER, "below": None}), "no upper bound but"),
        (({"name": "A", "from": "0", "below": "5000"}, {**SILVER, "name": "A"}), "differ"),
        (({"name": "A", "from": 0.0},), "quoted"),
        (({"name": "A", "from": "0", "fee_discount": "1.5"},), "fraction"),
        ((), "at least one"),
    ],
)
def test_levels_that_overlap_leave_a_gap_or_are_malformed_stop_the_platform(entries, why):
    with pytest.raises(ConfigError, match=rf"loyalty\.levels: .*{why}"):
        load_settings(levels(*entries))


def test_the_points_table_and_catalogue_are_checked():
    with pytest.raises(ConfigError, match=r"loyalty\.checkin_points"):
        load_settings({"P2P_ENV": "test", "P2P_LOYALTY_CHECKIN_POINTS": "[]"})
    with pytest.raises(ConfigError, match=r"loyalty\.catalogue: item codes must differ"):
        item = {"item": "C5", "points": 500, "template": 3}
        load_settings({"P2P_ENV": "test", "P2P_LOYALTY_CATALOGUE": json.dumps([item, item])})
    with pytest.raises(ConfigError, match=r"loyalty\.points_per_yuan"):
        load_settings({"P2P_ENV": "test", "P2P_LOYALTY_POINTS_PER_YUAN": "-1"})
