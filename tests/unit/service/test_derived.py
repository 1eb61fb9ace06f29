"""Derived: what is made from a value object, made once per object and key, and dropped with
the object."""

import gc
from dataclasses import dataclass
from decimal import Decimal

from service.derived import Derived


@dataclass(frozen=True)
class Money:
    amount: Decimal


@dataclass
class Mutable:
    amount: Decimal


class Maker:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value) -> str:
        self.calls += 1
        return f"{value.amount}#{self.calls}"


def test_made_once_per_object_and_key() -> None:
    derived, make, one = Derived(), Maker(), Money(Decimal("1.00"))
    assert derived.get(one, "json", lambda: make(one)) == "1.00#1"
    assert derived.get(one, "json", lambda: make(one)) == "1.00#1"
    assert derived.get(one, "xml", lambda: make(one)) == "1.00#2"
    assert make.calls == 2


def test_an_equal_object_is_another_value() -> None:
    """1.0 == 1.00, but they are written apart: identity, never equality, finds a value."""
    derived, make = Derived(), Maker()
    shorter, longer = Money(Decimal("1.0")), Money(Decimal("1.00"))
    assert shorter == longer
    assert derived.get(shorter, "json", lambda: make(shorter)) == "1.0#1"
    assert derived.get(longer, "json", lambda: make(longer)) == "1.00#2"


def test_what_was_made_goes_with_its_object() -> None:
    derived = Derived()
    one = Money(Decimal("1.00"))
    derived.get(one, "json", lambda: "made")
    assert len(derived) == 1
    del one
    gc.collect()
    assert len(derived) == 0


def test_nothing_is_kept_for_what_may_change() -> None:
    derived, make = Derived(), Maker()
    mutable, items = Mutable(Decimal("1.00")), (Money(Decimal("2.00")),)
    assert derived.get(mutable, "json", lambda: make(mutable)) == "1.00#1"
    mutable.amount = Decimal("3.00")
    assert derived.get(mutable, "json", lambda: make(mutable)) == "3.00#2"
    assert derived.get(items, "json", lambda: "made") == "made"
    assert len(derived) == 0


def test_the_latest_is_kept_while_its_parts_are_the_same_objects() -> None:
    derived, page = Derived(), Money(Decimal("20"))
    one, two = Money(Decimal("1.00")), Money(Decimal("2.00"))
    first = derived.latest(page, "items", (one, two), lambda: [one, two])
    assert derived.latest(page, "items", (one, two), lambda: ["made again"]) is first
    changed = Money(Decimal("1.00"))  # equal to `one`, another object: another part
    second = derived.latest(page, "items", (changed, two), lambda: [changed, two])
    assert second is not first and second[0] is changed
    assert derived.latest(page, "items", (changed, two), lambda: ["made again"]) is second
    assert len(derived) == 1  # one kept for the page, whatever its parts were before
    assert derived.latest(page, "items", (one,), lambda: ["fewer"]) == ["fewer"]
    del page
    gc.collect()
    assert len(derived) == 0
