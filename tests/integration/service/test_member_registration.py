"""Registration and password reset with verification codes, on SQLite and MariaDB: what a code
allows and what spends it, invite codes and referrers, what a reset ends, that a reset tells
nothing about who is registered, and codes shared (and used once) by platforms on one Redis."""

from __future__ import annotations

import functools
import re

import pytest
from sqlalchemy import text

import dao.cache
import service.member.registration
from service.errors import BusinessError
from service.member import (
    ApiSecretRequest,
    LoginRequest,
    MemberService,
    RefreshRequest,
    RegisterRequest,
    ResetPasswordRequest,
    VerificationCodeRequest,
)
from service.member.promotion import INVITE_ALPHABET
from tests.integration.service.support import PASSWORD, last_code, race, send_code, sign_up

MOBILE = "13812345678"
NEW_PASSWORD = "fresh-pass-42"
INVITE_CODE = re.compile(f"[{INVITE_ALPHABET}]{{8}}")


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def member_rows(sql, mobile: str = MOBILE) -> list:
    with sql.connect() as conn:
        return conn.execute(
            text("SELECT id, role, invite_code, referrer_id FROM member WHERE mobile = :m"),
            {"m": mobile},
        ).all()


def kinds(outcomes) -> list[str]:
    return sorted(o if isinstance(o, str) else type(o).__name__ for o in outcomes)


@pytest.fixture
def cache_on_clock(monkeypatch, clock) -> None:
    """Platforms built afterwards keep their in-process cache on the test's clock, so codes
    expire when the clock says so."""
    monkeypatch.setattr(
        dao.cache,
        "MemoryCache",
        functools.partial(dao.cache.MemoryCache, clock=lambda: clock.now.timestamp()),
    )


# -- asking for a code -----------------------------------------------------------------------


def test_a_code_is_sent_for_registration_and_never_returned(platform, members) -> None:
    sent = members.send_verification_code(VerificationCodeRequest(MOBILE, "REGISTER"))
    assert (sent.expires_in, sent.resend_after) == (300, 60)
    code = last_code(platform, MOBILE, "REGISTER")
    assert code is not None and code not in repr(sent)


@pytest.mark.parametrize(
    ("mobile", "purpose", "field"),
    [("1381234567", "REGISTER", "mobile"), (MOBILE, "LOGIN", "purpose"), (MOBILE, "", "purpose")],
)
def test_asking_for_a_code_validates_number_and_purpose(
    platform, members, mobile, purpose, field
) -> None:
    e = error_of(members.send_verification_code, VerificationCodeRequest(mobile, purpose))
    assert e.code == "VALIDATION_FAILED" and e.message.startswith(f"{field}:")
    assert last_code(platform, MOBILE, "REGISTER") is None


def test_a_registered_number_is_sent_no_registration_code(platform, members) -> None:
    sign_up(platform, MOBILE)
    for _ in range(2):  # refused before the throttle: the second answer is the same
        e = error_of(members.send_verification_code, VerificationCodeRequest(MOBILE, "REGISTER"))
        assert e.code == "MOBILE_TAKEN"


# -- registering -----------------------------------------------------------------------------


def test_register_with_the_code_creates_the_member_and_their_account(platform, sql) -> None:
    vo = sign_up(platform, MOBILE, "BORROWER")
    assert (vo.mobile, vo.role) == ("138****5678", "BORROWER")
    [row] = member_rows(sql)
    assert (row.id, row.role, row.referrer_id) == (vo.member_id, "BORROWER", None)
    assert INVITE_CODE.fullmatch(row.invite_code)
    with sql.connect() as conn:
        accounts = conn.execute(
            text("SELECT COUNT(*) FROM account WHERE member_id = :id"), {"id": vo.member_id}
        ).scalar_one()
    assert accounts == 1


def test_a_wrong_code_registers_nobody_and_the_right_one_still_works(
    platform, members, sql
) -> None:
    code = send_code(platform, MOBILE)
    e = error_of(members.register, RegisterRequest(MOBILE, PASSWORD, "INVESTOR", other_code(code)))
    assert (e.code, e.message) == (
        "VERIFICATION_CODE_INVALID",
        "verificationCode: the code is wrong",
    )
    assert member_rows(sql) == []
    members.register(RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code))
    assert len(member_rows(sql)) == 1


def test_five_wrong_codes_void_the_code(platform, members, sql) -> None:
    code = send_code(platform, MOBILE)
    for _ in range(5):
        error_of(members.register, RegisterRequest(MOBILE, PASSWORD, "INVESTOR", other_code(code)))
    e = error_of(members.register, RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code))
    assert e.code == "VERIFICATION_CODE_INVALID" and "too many" in e.message
    assert member_rows(sql) == []


def test_a_used_code_is_spent(platform, members) -> None:
    code = send_code(platform, MOBILE)
    members.register(RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code))
    e = error_of(
        platform.components["verification"].consume, MOBILE, "REGISTER", code, "verificationCode"
    )
    assert e.code == "VERIFICATION_CODE_INVALID"


def test_an_expired_code_is_refused(cache_on_clock, make_platform, clock, sql) -> None:
    platform = make_platform()
    code = send_code(platform, MOBILE)
    clock.advance(seconds=300)
    e = error_of(
        platform.service(MemberService).register,
        RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code),
    )
    assert e.code == "VERIFICATION_CODE_INVALID" and "no valid code" in e.message
    assert member_rows(sql) == []


def test_cheap_refusals_come_before_the_code_and_do_not_spend_it(platform, members, sql) -> None:
    """A weak password, a wrong role, an unknown invite code: the code survives them all."""
    code = send_code(platform, MOBILE)
    refusals = [
        (RegisterRequest(MOBILE, "weak", "INVESTOR", code), "VALIDATION_FAILED"),
        (RegisterRequest(MOBILE, PASSWORD, "OPERATOR", code), "VALIDATION_FAILED"),
        (RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code, "ZZZZZZZZ"), "INVITE_CODE_INVALID"),
    ]
    for _ in range(3):  # more refusals than a code has attempts: none was counted
        for request, expected in refusals:
            assert error_of(members.register, request).code == expected
    members.register(RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code))
    assert len(member_rows(sql)) == 1


def test_a_taken_number_is_refused_before_the_code_is_spent(make_platform, sql) -> None:
    """The number's code was sent before someone else registered it (another platform with a
    cache of its own): MOBILE_TAKEN, and the code is still unspent."""
    mine, theirs = make_platform(), make_platform()
    code = send_code(mine, MOBILE)
    sign_up(theirs, MOBILE)
    e = error_of(
        mine.service(MemberService).register, RegisterRequest(MOBILE, "other1234", "BORROWER", code)
    )
    assert e.code == "MOBILE_TAKEN"
    mine.components["verification"].consume(MOBILE, "REGISTER", code, "verificationCode")
    assert [r.role for r in member_rows(sql)] == ["INVESTOR"]


# -- invite codes ----------------------------------------------------------------------------


def test_an_invite_code_makes_the_inviter_the_referrer(platform, members, sql) -> None:
    inviter = sign_up(platform, "13800000001")
    [row] = member_rows(sql, "13800000001")
    invitee = sign_up(platform, MOBILE, "BORROWER", invite_code=row.invite_code.lower())
    [invited] = member_rows(sql)
    assert (invited.id, invited.referrer_id) == (invitee.member_id, inviter.member_id)
    assert invited.invite_code != row.invite_code


def test_an_unknown_or_an_operators_invite_code_is_invalid(platform, members, sql) -> None:
    operator = members.create_operator("13900000009", PASSWORD)
    # Operators do not invite: none is given one; one backfilled by migration 0007 is refused.
    assert member_rows(sql, "13900000009")[0].invite_code is None
    with sql.begin() as conn:
        conn.execute(
            text("UPDATE member SET invite_code = 'OPERATR2' WHERE id = :id"),
            {"id": operator.member_id},
        )
    code = send_code(platform, MOBILE)
    for invite in ("OPERATR2", "ZZZZZZZZ"):
        e = error_of(members.register, RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code, invite))
        assert e.code == "INVITE_CODE_INVALID"
    assert member_rows(sql) == []


def test_an_invite_code_is_found_in_any_case_but_only_in_its_own_letters(
    platform, members, sql
) -> None:
    """Codes are upper case and entered in any case (the contract says so), but a code with
    an accent or in full-width letters is another code: an accent-blind collation once found
    the inviter for it on MariaDB only."""
    inviter = sign_up(platform, "13800000001")
    with sql.begin() as conn:
        conn.execute(
            text("UPDATE member SET invite_code = 'ABCDEFGH' WHERE id = :id"),
            {"id": inviter.member_id},
        )
    code = send_code(platform, MOBILE)
    for invite in ("ÁBCDEFGH", "ＡＢＣＤＥＦＧＨ"):
        e = error_of(members.register, RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code, invite))
        assert e.code == "INVITE_CODE_INVALID"
    members.register(RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code, " abcdefgh "))
    [invitee] = member_rows(sql)
    assert invitee.referrer_id == inviter.member_id


def test_every_member_gets_a_distinct_invite_code_of_8_characters(platform, sql) -> None:
    for n in range(20):
        sign_up(platform, f"1380000{n:04d}", ("INVESTOR", "BORROWER")[n % 2])
    with sql.connect() as conn:
        codes = conn.execute(text("SELECT invite_code FROM member")).scalars().all()
    assert len(codes) == len(set(codes)) == 20
    assert all(INVITE_CODE.fullmatch(c) for c in codes)


def test_a_drawn_invite_code_that_is_taken_is_drawn_again(
    platform, members, sql, monkeypatch
) -> None:
    """The UNIQUE column refuses the taken code; the registration retries in a new
    transaction with a new code, its verification code already spent, and succeeds."""
    sign_up(platform, "13800000001")
    [taken] = member_rows(sql, "13800000001")
    draws = iter([taken.invite_code, taken.invite_code, "FRESH234"])
    monkeypatch.setattr(service.member.registration, "new_invite_code", lambda: next(draws))
    vo = sign_up(platform, MOBILE)
    [row] = member_rows(sql)
    assert (row.id, row.invite_code) == (vo.member_id, "FRESH234")
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM member")).scalar_one() == 2
        assert (
            conn.execute(
                text("SELECT COUNT(*) FROM account WHERE member_id = :id"), {"id": vo.member_id}
            ).scalar_one()
            == 1
        )


def test_when_every_draw_is_taken_nobody_is_registered(platform, members, sql, monkeypatch):
    sign_up(platform, "13800000001")
    [taken] = member_rows(sql, "13800000001")
    monkeypatch.setattr(service.member.registration, "new_invite_code", lambda: taken.invite_code)
    code = send_code(platform, MOBILE)
    e = error_of(members.register, RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code))
    assert e.code == "SERVICE_UNAVAILABLE"
    assert member_rows(sql) == []


# -- password reset --------------------------------------------------------------------------


def login(members: MemberService, password: str = PASSWORD, mobile: str = MOBILE):
    return members.login(LoginRequest(mobile, password))


def reset(platform, code: str | None = None, password: str = NEW_PASSWORD) -> None:
    code = code or send_code(platform, MOBILE, "RESET_PASSWORD")
    request = ResetPasswordRequest(MOBILE, code, password)
    platform.service(MemberService).reset_password(request)


def test_reset_sets_the_password_and_ends_every_token_and_the_api_secret(
    platform, members, sql
) -> None:
    sign_up(platform, MOBILE)
    sessions = [login(members) for _ in range(2)]
    caller = members.authenticate_token(sessions[0].token)
    members.rotate_api_secret(ApiSecretRequest(PASSWORD), caller)
    reset(platform)
    for s in sessions:
        assert error_of(members.authenticate_token, s.token).code == "UNAUTHENTICATED"
        e = error_of(members.refresh_token, RefreshRequest(s.refresh_token))
        assert e.code == "UNAUTHENTICATED"
    with sql.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash, api_secret_sealed FROM member WHERE mobile = :m"),
            {"m": MOBILE},
        ).one()
    assert stored.api_secret_sealed is None
    assert stored.password_hash.startswith("$argon2id$") and NEW_PASSWORD not in stored
    assert error_of(login, members).code == "LOGIN_FAILED"
    assert login(members, NEW_PASSWORD).member_id == caller.member_id


def test_reset_clears_the_failed_login_count(make_platform) -> None:
    platform = make_platform(**{"security.max_failed_logins": 3})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    for _ in range(2):
        assert error_of(login, members, "wrongpass1").code == "LOGIN_FAILED"
    reset(platform)
    for _ in range(2):  # without the reset, the second would lock the number
        assert error_of(login, members, "wrongpass1").code == "LOGIN_FAILED"
    assert login(members, NEW_PASSWORD).token


def test_reset_ends_a_lockout_of_the_number(make_platform) -> None:
    platform = make_platform(**{"security.max_failed_logins": 2})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    codes = [error_of(login, members, "wrongpass1").code for _ in range(2)]
    assert codes == ["LOGIN_FAILED", "ACCOUNT_LOCKED"]
    reset(platform)
    assert login(members, NEW_PASSWORD).token


def test_reset_checks_the_policy_before_it_spends_the_code(platform, members) -> None:
    sign_up(platform, MOBILE)
    code = send_code(platform, MOBILE, "RESET_PASSWORD")
    for weak in ("short1", "onlyletters") * 3:
        e = error_of(members.reset_password, ResetPasswordRequest(MOBILE, code, weak))
        assert e.code == "VALIDATION_FAILED" and e.message.startswith("newPassword:")
    reset(platform, code)
    assert login(members, NEW_PASSWORD).token


def test_a_wrong_or_used_reset_code_changes_nothing(platform, members) -> None:
    sign_up(platform, MOBILE)
    code = send_code(platform, MOBILE, "RESET_PASSWORD")
    wrong = ResetPasswordRequest(MOBILE, other_code(code), NEW_PASSWORD)
    assert error_of(members.reset_password, wrong).code == "VERIFICATION_CODE_INVALID"
    assert login(members).token
    reset(platform, code)
    again = ResetPasswordRequest(MOBILE, code, "another-pass-7")
    assert error_of(members.reset_password, again).code == "VERIFICATION_CODE_INVALID"
    assert login(members, NEW_PASSWORD).token


def test_reset_tells_nothing_about_whether_a_number_is_registered(platform, members, sql) -> None:
    """An unknown and a disabled number are answered as a registered one: the same reply, the
    same throttle, the same refusal of a guessed code; only nothing is sent."""
    unknown, disabled = "13900000001", "13900000002"
    sign_up(platform, MOBILE)
    sign_up(platform, disabled)
    with sql.begin() as conn:
        conn.execute(
            text("UPDATE member SET status = 'DISABLED' WHERE mobile = :m"), {"m": disabled}
        )

    def ask(mobile: str):
        return members.send_verification_code(VerificationCodeRequest(mobile, "RESET_PASSWORD"))

    replies = {mobile: ask(mobile) for mobile in (MOBILE, unknown, disabled)}
    assert len(set(replies.values())) == 1
    assert last_code(platform, unknown, "RESET_PASSWORD") is None
    assert last_code(platform, disabled, "RESET_PASSWORD") is None
    again = {m: error_of(ask, m) for m in replies}
    assert len({(e.code, e.message) for e in again.values()}) == 1
    assert again[MOBILE].code == "VERIFICATION_CODE_TOO_SOON"
    real = last_code(platform, MOBILE, "RESET_PASSWORD")
    guess = other_code(real)
    refusals = {
        m: error_of(members.reset_password, ResetPasswordRequest(m, guess, NEW_PASSWORD))
        for m in replies
    }
    assert len({(e.code, e.message) for e in refusals.values()}) == 1
    assert refusals[MOBILE].code == "VERIFICATION_CODE_INVALID"


def test_a_member_disabled_after_the_code_was_sent_cannot_reset(platform, members, sql) -> None:
    sign_up(platform, MOBILE)
    code = send_code(platform, MOBILE, "RESET_PASSWORD")
    with sql.begin() as conn:
        conn.execute(text("UPDATE member SET status = 'DISABLED' WHERE mobile = :m"), {"m": MOBILE})
    e = error_of(members.reset_password, ResetPasswordRequest(MOBILE, code, NEW_PASSWORD))
    assert (e.code, e.message) == (
        "VERIFICATION_CODE_INVALID",
        "verificationCode: the code is wrong",
    )
    with sql.begin() as conn:
        conn.execute(text("UPDATE member SET status = 'ACTIVE' WHERE mobile = :m"), {"m": MOBILE})
    assert login(members).token  # the password did not change


# -- concurrency and platforms on one Redis --------------------------------------------------


def test_registrations_racing_with_one_code_register_the_number_once(
    platform, members, sql
) -> None:
    code = send_code(platform, MOBILE)
    request = RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code)
    outcomes = race([(members.register, request)] * 4)
    assert kinds(outcomes).count("MemberVo") == 1, outcomes
    assert set(kinds(outcomes)) <= {"MemberVo", "MOBILE_TAKEN", "VERIFICATION_CODE_INVALID"}
    assert len(member_rows(sql)) == 1


@pytest.mark.redis
def test_a_code_sent_by_one_platform_is_accepted_by_another(
    make_platform, redis_settings, sql
) -> None:
    one, two = make_platform(**redis_settings), make_platform(**redis_settings)
    code = send_code(one, MOBILE)
    vo = two.service(MemberService).register(RegisterRequest(MOBILE, PASSWORD, "INVESTOR", code))
    assert [r.id for r in member_rows(sql)] == [vo.member_id]
    # and so is the resend interval
    ask = VerificationCodeRequest(MOBILE, "RESET_PASSWORD")
    two.service(MemberService).send_verification_code(ask)
    e = error_of(one.service(MemberService).send_verification_code, ask)
    assert e.code == "VERIFICATION_CODE_TOO_SOON"


@pytest.mark.redis
def test_platforms_on_one_redis_accept_a_code_once_at_the_same_moment(
    make_platform, redis_settings, sql
) -> None:
    one, two = make_platform(**redis_settings), make_platform(**redis_settings)
    for n in range(5):
        mobile = f"1370000{n:04d}"
        sign_up(one, mobile)
        code = send_code(one, mobile, "RESET_PASSWORD")
        calls = [
            (p.service(MemberService).reset_password, ResetPasswordRequest(mobile, code, pw))
            for p, pw in ((one, "first-pass-1"), (two, "second-pass-2"))
        ]
        outcomes = race(calls)
        assert kinds(outcomes) == ["NoneType", "VERIFICATION_CODE_INVALID"], outcomes
        winner = "first-pass-1" if outcomes[0] is None else "second-pass-2"
        assert login(two.service(MemberService), winner, mobile).token
        # registration likewise: one code, two platforms, one member
        new = f"1360000{n:04d}"
        code = send_code(two, new)
        request = RegisterRequest(new, PASSWORD, "BORROWER", code)
        outcomes = race([(p.service(MemberService).register, request) for p in (one, two)])
        assert kinds(outcomes).count("MemberVo") == 1, outcomes
        assert len(member_rows(sql, new)) == 1
