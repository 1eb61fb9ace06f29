"""Members for the benchmarks, set up through the services as members set themselves up: a
REGISTER code read from the platform's sandbox SMS sender, registration, then real-name
verification, a bound card and a fund account (what investing, borrowing and recharging need).

Personal data is made up from a serial number: a resident ID number with a correct GB 11643
check character and a card number passing the Luhn check, distinct for distinct serials.
"""

from __future__ import annotations

import datetime as dt

from service.member import (
    BindCardRequest,
    IdentityRequest,
    MemberService,
    RegisterRequest,
    VerificationCodeRequest,
)
from service.pii import id_check_character, luhn_valid
from service.security import Principal


def id_number(serial: int) -> str:
    """An adult's resident ID number: a birth date and a sequence number from `serial`."""
    born = dt.date(1970, 1, 1) + dt.timedelta(days=serial // 1000 % 10_000)
    first17 = f"110101{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + id_check_character(first17)


def card_number(serial: int) -> str:
    """A 16-digit card number: 6222, 11 digits of `serial`, the Luhn check digit."""
    body = f"6222{serial % 10**11:011d}"
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def sign_up(platform, mobile: str, password: str, role: str, serial: int) -> Principal:
    """A registered, verified investor or borrower with a bound card and an open fund
    account; `serial` makes their ID and card numbers (distinct serials, distinct numbers)."""
    members = platform.service(MemberService)
    members.send_verification_code(VerificationCodeRequest(mobile, "REGISTER"))
    code = platform.components["verification"].sender.last_code(mobile, "REGISTER")
    vo = members.register(RegisterRequest(mobile, password, role, code))
    who = Principal(member_id=vo.member_id, role=role)
    members.verify_identity(IdentityRequest("张测试", id_number(serial)), who)
    card = members.bind_card(BindCardRequest(card_number(serial), "中国工商银行", mobile), who)
    members.open_fund_account(card.card_id, who)
    return who
