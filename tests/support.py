"""Test data every tier shares: made-up personal data that passes the platform's checks (a
resident ID number with its GB 11643 check character, a card number passing Luhn). No real
person or card."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass

from service.pii import id_check_character, luhn_valid


@dataclass(frozen=True)
class Identity:
    """A test member's personal data: a name, a valid resident ID number of an adult, a
    valid bank card number. Made up: no real person or card."""

    real_name: str
    id_number: str
    card_number: str


def resident_id_number(born: dt.date, sequence: int, area: str = "110101") -> str:
    """A resident ID number with a correct GB 11643 check character."""
    first17 = f"{area}{born:%Y%m%d}{sequence % 1000:03d}"
    return first17 + id_check_character(first17)


def card_number_for(serial: int, prefix: str = "6222") -> str:
    """A 16-digit card number that passes the Luhn check."""
    body = f"{prefix}{serial % 10**11:011d}"
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


class Identities:
    """Fresh, distinct identities: each call a new ID number and card number."""

    def __init__(self) -> None:
        self._serial = itertools.count(random.randrange(10**6))

    def __call__(self) -> Identity:
        n = next(self._serial)
        born = dt.date(1960, 1, 1) + dt.timedelta(days=n // 1000 % 10_000)
        return Identity("张测试", resident_id_number(born, n), card_number_for(n))
