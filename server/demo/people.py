"""The walkthrough's people: made-up members whose numbers pass the platform's checks and are
new on every run (so the walk runs again on the same database), and the SMS codes the
development server "sends" them: the lines it appends to ``verification.outbox_file``."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path

from service.pii import id_check_character, luhn_valid

#: The made-up members' password: the walk prints it, as it prints everything it sends.
PASSWORD = "Demo-pass-2026"  # noqa: S105


@dataclass(frozen=True)
class Person:
    """Made up: no real person, ID or card. ``mobile`` 11 digits, ``id_number`` an adult's
    resident ID with its check character, ``card_number`` 16 digits passing Luhn."""

    name: str
    mobile: str
    id_number: str
    card_number: str


def new_person(name: str, rng: random.Random) -> Person:
    mobile = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
    born = dt.date(1970, 1, 1) + dt.timedelta(days=rng.randrange(30 * 365))
    first17 = f"110101{born:%Y%m%d}{rng.randrange(1000):03d}"
    body = f"6222{rng.randrange(10**11):011d}"
    card = next(body + d for d in "0123456789" if luhn_valid(body + d))
    return Person(name, mobile, first17 + id_check_character(first17), card)


class SmsOutbox:
    """The codes in the development server's SMS outbox (one JSON line a message)."""

    def __init__(self, path: str):
        self.path = Path(path)

    def last_code(self, mobile: str, purpose: str) -> str | None:
        if not self.path.exists():
            return None
        found = None
        for line in self.path.read_text(encoding="utf-8").splitlines():
            message = json.loads(line)
            if message.get("mobile") == mobile and message.get("purpose") == purpose:
                found = message["code"]
        return found
