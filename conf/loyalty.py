"""The loyalty settings' structured values: member levels, the check-in points table and the
points catalogue, each parsed and checked whole, so a platform with overlapping levels or a
gap between them never starts.

A level covers a half-open range of the amount a member invested, ``[from, below)``; the
first starts at 0, each next one starts exactly where the one before ends (an overlap or a gap
is refused), and only the last has no ``below``. In TOML::

    levels = [
      { name = "REGULAR", from = "0.00", below = "5000.00" },
      { name = "SILVER", from = "5000.00", below = "50000.00", fee_discount = "0.05" },
      { name = "GOLD", from = "50000.00", fee_discount = "0.10", monthly_coupons = [12] },
    ]

As text (an environment variable, the configuration centre) the same list as JSON.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,15}")
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class LevelRule:
    """One member level: the range of invested amounts it covers and its benefits."""

    name: str
    start: Decimal  # inclusive
    below: Decimal | None  # exclusive; None for the top level
    #: The share of the platform's fee on interest waived for the level (0.10 is 10%).
    fee_discount: Decimal
    #: Coupon templates a member of the level is given each month (marketing's template ids).
    monthly_coupons: tuple[int, ...]

    def covers(self, amount: Decimal) -> bool:
        return self.start <= amount and (self.below is None or amount < self.below)


@dataclass(frozen=True)
class CatalogueItem:
    """Something points buy: ``points`` for one coupon of marketing's template ``template``
    (its id)."""

    item: str
    points: int
    template: int


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _items(raw: object, text: bool, what: str) -> list:
    if text and isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"must be a JSON list of {what}, got {raw!r}") from None
    if not isinstance(raw, list):
        raise ValueError(f"must be a list of {what}, got {raw!r}")
    return raw


def _amount(raw: object, key: str) -> Decimal:
    if isinstance(raw, (float, bool)):
        raise ValueError(f'{key}: must be a quoted amount such as "5000.00", got {raw!r}')
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError):
        raise ValueError(f"{key}: must be an amount, got {raw!r}") from None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"{key}: must be an amount >= 0 with at most 2 decimals, got {raw!r}")
    return value.quantize(_CENT)


def _discount(raw: object, key: str) -> Decimal:
    if isinstance(raw, (float, bool)):
        raise ValueError(f'{key}: must be a quoted fraction such as "0.05", got {raw!r}')
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError):
        raise ValueError(f"{key}: must be a fraction, got {raw!r}") from None
    if not value.is_finite() or not 0 <= value <= 1 or value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValueError(f"{key}: must be a fraction from 0 to 1, 4 decimals at most, got {raw!r}")
    return value


def parse_levels(raw: object, text: bool) -> tuple[LevelRule, ...]:
    """The levels, lowest first, covering [0, infinity) without overlap or gap."""
    levels: list[LevelRule] = []
    for i, entry in enumerate(_items(raw, text, "levels")):
        where = f"level {i + 1}"
        if not isinstance(entry, dict) or not {"name", "from"} <= entry.keys():
            raise ValueError(f"{where}: must be a table with name and from, got {entry!r}")
        unknown = entry.keys() - {"name", "from", "below", "fee_discount", "monthly_coupons"}
        if unknown:
            raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        name = entry["name"]
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{where}: name must be A-Z, 0-9 and _, 16 at most, got {name!r}")
        coupons = entry.get("monthly_coupons", [])
        if not isinstance(coupons, list) or not all(_is_id(c) for c in coupons):
            raise ValueError(f"{where}: monthly_coupons must be a list of template ids")
        below = entry.get("below")
        levels.append(
            LevelRule(
                name=name,
                start=_amount(entry["from"], f"{where}.from"),
                below=None if below is None else _amount(below, f"{where}.below"),
                fee_discount=_discount(entry.get("fee_discount", "0"), f"{where}.fee_discount"),
                monthly_coupons=tuple(coupons),
            )
        )
    if not levels:
        raise ValueError("must name at least one level")
    if len({level.name for level in levels}) != len(levels):
        raise ValueError("level names must differ")
    if levels[0].start != 0:
        raise ValueError(f"the first level must start at 0, got {levels[0].start}")
    for level, following in itertools.pairwise(levels):
        if level.below is None:
            raise ValueError(f"{level.name} has no upper bound but {following.name} follows it")
        if level.below <= level.start:
            raise ValueError(f"{level.name}: below must exceed from")
        if following.start < level.below:
            raise ValueError(f"{level.name} and {following.name} overlap at {following.start}")
        if following.start > level.below:
            raise ValueError(
                f"gap between {level.name} and {following.name}: [{level.below}, "
                f"{following.start}) is in no level"
            )
    if levels[-1].below is not None:
        raise ValueError(f"the last level ({levels[-1].name}) must have no upper bound")
    return tuple(levels)


def parse_points_table(raw: object, text: bool) -> tuple[int, ...]:
    """Points for the 1st, 2nd, ... day of a check-in streak; the last applies from then on."""
    items = _items(raw, text, "points")
    if not items or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 100_000 for p in items
    ):
        raise ValueError(f"must be a non-empty list of whole points from 0 to 100000, got {raw!r}")
    return tuple(items)


def parse_catalogue(raw: object, text: bool) -> tuple[CatalogueItem, ...]:
    """What points buy: items with a unique code, a price in points (>= 1) and a template."""
    catalogue: list[CatalogueItem] = []
    for i, entry in enumerate(_items(raw, text, "items")):
        if not isinstance(entry, dict) or entry.keys() != {"item", "points", "template"}:
            raise ValueError(f"item {i + 1}: must be a table of item, points and template")
        code, points, template = entry["item"], entry["points"], entry["template"]
        if not isinstance(code, str) or not _CODE.fullmatch(code) or not _is_id(template):
            raise ValueError(f"item {i + 1}: item must be a code and template a template id")
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise ValueError(f"item {i + 1}: points must be a whole number >= 1")
        catalogue.append(CatalogueItem(code, points, template))
    if len({c.item for c in catalogue}) != len(catalogue):
        raise ValueError("item codes must differ")
    return tuple(catalogue)


def parse_amount(raw: object, text: bool) -> Decimal:
    """An amount >= 0 (0 turns the rule off) with at most 2 decimals; never through float."""
    return _amount(raw, "value")


def parse_points_per_yuan(raw: object, text: bool) -> Decimal:
    """Points earned per yuan invested, >= 0 with at most 4 decimals (0 earns none)."""
    if isinstance(raw, (float, bool)):
        raise ValueError(f'must be a quoted decimal such as "1", got {raw!r}')
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError):
        raise ValueError(f"must be a decimal >= 0, got {raw!r}") from None
    if not value.is_finite() or not 0 <= value <= 1000 or value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValueError(f"must be a decimal from 0 to 1000, 4 decimals at most, got {raw!r}")
    return value
