"""Personal data: resident ID and bank card numbers checked, masked for display, and stored so
that a database dump reveals neither.

Stored form: a keyed hash to find a value and keep it unique (HMAC-SHA256 under a key derived
from ``security.secret_key`` for that kind of value, so equal numbers give equal hashes but
nobody without the key can test a guess), and the value sealed with AES-256-GCM
(service/secretbox.py) and bound to its member, to show it to that member or hand it to the
depository. Responses show masks (``mask_*``) except to the data's owner; logs never see it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from service import errors
from service.errors import BusinessError, invalid
from service.secretbox import SecretBox

ADULT_AGE = 18
#: Birth dates on resident IDs are dates in China (UTC+8 all year, no daylight saving): a
#: member comes of age at midnight there, not at midnight UTC eight hours later.
CHINA_TIME = timezone(timedelta(hours=8), "CST")

#: The kinds of personal data, each sealed and hashed under keys of its own (a value sealed
#: as one kind never opens as another). Everything that seals or opens one names it here.
REAL_NAME = "real-name"
ID_NUMBER = "id-number"
CARD_NUMBER = "card-number"
CARD_MOBILE = "card-mobile"
#: A message to the depository that carried any of the above, kept whole as evidence.
BANK_MESSAGE = "bank-message"

# GB 11643-1999: 6-digit area code, birth date YYYYMMDD, 3-digit sequence, check character.
# ASCII digits only ([0-9], not \d): another script's digits would give the same number a
# second lookup hash, and so a second verification or binding.
_RESIDENT_ID = re.compile(r"[1-9][0-9]{5}([0-9]{4})([0-9]{2})([0-9]{2})[0-9]{3}[0-9X]\Z")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_CARD = re.compile(r"[0-9]{16,19}\Z")
# A name as printed on a resident ID: Chinese characters (CJK unified ideographs, extensions
# A and B for rare given names) joined by the middle dot of transliterated names (阿卜杜·热合曼),
# or Latin letters in words separated by a space, hyphen or apostrophe; 2 to 30 characters.
_HAN = "\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df"
_NAME = re.compile(rf"(?:[{_HAN}]+(?:·[{_HAN}]+)*|[A-Za-z]+(?:[ '-][A-Za-z]+)*)\Z")
# The dots people type for the middle dot: bullet, katakana middle dot, dot operator, full
# stop and fullwidth full stop all mean U+00B7, which the ID itself prints.
_DOTS = str.maketrans(dict.fromkeys("•・∙．.", "·"))


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date


def resident_id(raw: str, field: str = "idNumber") -> ResidentId:
    """The 18-character resident ID number, upper-cased, with its birth date; VALIDATION_FAILED
    naming `field` when its format, birth date or check character is wrong."""
    number = raw.strip().upper()
    match = _RESIDENT_ID.match(number)
    if not match:
        raise invalid(field, "must be an 18-character resident ID number")
    year, month, day = (int(part) for part in match.groups())
    try:
        born = date(year, month, day)
    except ValueError:
        raise invalid(field, "holds no valid birth date") from None
    if year < 1900:
        raise invalid(field, "holds no valid birth date")
    if id_check_character(number[:17]) != number[17]:
        raise invalid(field, "check character does not match (GB 11643)")
    return ResidentId(number, born)


def id_check_character(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits (ISO 7064 MOD 11-2)."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def age_on(born: date, today: date) -> int:
    """Whole years from `born` to `today`; one born on 29 February has a birthday on 1 March
    in common years."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def china_today(now: datetime) -> date:
    """The date in China at the (timezone-aware) instant `now`, to compare birth dates with."""
    return now.astimezone(CHINA_TIME).date()


def check_adult(born: date, today: date) -> None:
    """VALIDATION_FAILED for a birth date after `today`, UNDERAGE before the 18th birthday."""
    if born > today:
        raise invalid("idNumber", "holds a birth date in the future")
    if age_on(born, today) < ADULT_AGE:
        raise BusinessError(errors.UNDERAGE)


def real_name(raw: str) -> str:
    """The name with runs of spaces made one and the middle dot's look-alikes made U+00B7, so
    one name is stored one way; VALIDATION_FAILED unless it fits the rule above."""
    name = " ".join(raw.split())
    if re.search(f"[{_HAN}]", name):
        name = re.sub(r"\s*·\s*", "·", name.translate(_DOTS))
    if not 2 <= len(name) <= 30 or not _NAME.match(name):
        raise invalid("realName", "must be the name on the ID, 2 to 30 letters")
    return name


def card_number(raw: str) -> str:
    """A bank card number, spaces removed; VALIDATION_FAILED unless 16-19 digits passing Luhn."""
    number = re.sub(r"[\s-]", "", raw)
    if not _CARD.match(number):
        raise invalid("cardNumber", "must have 16 to 19 digits")
    if not luhn_valid(number):
        raise invalid("cardNumber", "is not a valid card number (Luhn check)")
    return number


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def mask_mobile(mobile: str) -> str:
    """138****5678: enough for the owner to recognise, useless to anyone else."""
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) >= 8 else "****"


def mask_id_number(number: str) -> str:
    """The first and last character only: 1****************X (no area, no birth date)."""
    return number[0] + "*" * (len(number) - 2) + number[-1]


def mask_card(last4: str) -> str:
    return "**** **** **** " + last4


def mask_name(name: str) -> str:
    """The first character only, the rest starred: 张* for 张三, J********* for John Smith."""
    return name[0] + "*" * max(1, len(name) - 1) if name else name


class PersonalData:
    """Seals, opens and hashes one kind of personal data under ``security.secret_key``."""

    def __init__(self, master_key: bytes):
        self._master = master_key
        self._boxes: dict[str, SecretBox] = {}
        self._hash_keys: dict[str, bytes] = {}

    @classmethod
    def from_setting(cls, secret_key: str) -> PersonalData | None:
        """None when the key is unset: personal data cannot be stored then."""
        return cls(base64.b64decode(secret_key)) if secret_key else None

    def seal(self, kind: str, value: str, member_id: int) -> str:
        return self._box(kind).seal(value, f"member:{member_id}")

    def open(self, kind: str, stored: str, member_id: int) -> str:
        return self._box(kind).open(stored, f"member:{member_id}")

    def lookup_hash(self, kind: str, value: str) -> str:
        """Hex HMAC-SHA256 of `value` under the lookup key of `kind`."""
        key = self._hash_keys.get(kind)
        if key is None:
            derived = hmac.new(self._master, b"p2p lookup v1 " + kind.encode(), hashlib.sha256)
            key = self._hash_keys.setdefault(kind, derived.digest())
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def _box(self, kind: str) -> SecretBox:
        box = self._boxes.get(kind)
        if box is None:
            box = self._boxes.setdefault(kind, SecretBox(self._master, "pii " + kind))
        return box


def available(box: PersonalData | None) -> PersonalData:
    """`box`; SERVICE_UNAVAILABLE when it is None (security.secret_key unset), for personal
    data can then be neither stored as it must be nor read."""
    if box is None:
        raise BusinessError(
            errors.SERVICE_UNAVAILABLE, "personal data is unavailable: no security key"
        )
    return box
