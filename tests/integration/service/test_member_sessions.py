"""MemberService on SQLite and MariaDB: the login lockout, refresh-token rotation with reuse
detection, and changing the password (which revokes every token of the member)."""

from __future__ import annotations

import time

import pytest

from service.errors import BusinessError
from service.member import (
    ApiSecretRequest,
    ChangePasswordRequest,
    LoginRequest,
    MemberService,
    RefreshRequest,
)
from tests.integration.service.support import PASSWORD, sign_up

MOBILE = "13812345678"


def login(members: MemberService, mobile: str = MOBILE, password: str = PASSWORD):
    return members.login(LoginRequest(mobile, password))


def code_of(fn, *args) -> str:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value.code


def fail(members: MemberService, times: int, mobile: str = MOBILE) -> list[str]:
    return [code_of(login, members, mobile, "wrongpass1") for _ in range(times)]


# -- lockout ---------------------------------------------------------------------------------


def test_the_account_locks_after_max_failed_logins(make_platform) -> None:
    platform = make_platform(**{"security.max_failed_logins": 3})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    assert fail(members, 3) == ["LOGIN_FAILED", "LOGIN_FAILED", "ACCOUNT_LOCKED"]
    # Locked: even the right password is refused, before it is checked.
    assert code_of(login, members) == "ACCOUNT_LOCKED"
    assert code_of(members.authenticate_password, MOBILE, PASSWORD) == "ACCOUNT_LOCKED"


def test_unknown_mobile_numbers_lock_alike(make_platform) -> None:
    platform = make_platform(**{"security.max_failed_logins": 2})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    assert fail(members, 3, "13900000001") == fail(members, 3, MOBILE)


def test_the_lock_ends_after_lockout_seconds(make_platform) -> None:
    platform = make_platform(**{"security.max_failed_logins": 2, "security.lockout_seconds": 1})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    assert fail(members, 2)[-1] == "ACCOUNT_LOCKED"
    assert code_of(login, members) == "ACCOUNT_LOCKED"
    time.sleep(1.1)
    assert login(members).token
    # and the count started afresh
    assert fail(members, 1) == ["LOGIN_FAILED"]


def test_a_successful_login_clears_the_count(make_platform) -> None:
    platform = make_platform(**{"security.max_failed_logins": 3})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    fail(members, 2)
    login(members)
    assert fail(members, 2) == ["LOGIN_FAILED", "LOGIN_FAILED"]
    assert login(members).token


def test_ws_security_and_the_password_asked_again_count_toward_the_lock(make_platform) -> None:
    platform = make_platform(**{"security.max_failed_logins": 3})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    caller = members.authenticate_token(login(members).token)
    assert code_of(members.authenticate_password, MOBILE, "wrongpass1") == "UNAUTHENTICATED"
    bad = ApiSecretRequest("wrongpass1")
    assert code_of(members.rotate_api_secret, bad, caller) == "LOGIN_FAILED"
    change = ChangePasswordRequest("wrongpass1", "newpass123")
    assert code_of(members.change_password, change, caller) == "ACCOUNT_LOCKED"
    good = ApiSecretRequest(PASSWORD)
    assert code_of(members.rotate_api_secret, good, caller) == "ACCOUNT_LOCKED"
    assert code_of(login, members) == "ACCOUNT_LOCKED"


@pytest.mark.parametrize("look_alike", [MOBILE + " ", MOBILE + "  ", "１３８１２３４５６７８"])
def test_a_look_alike_number_neither_signs_in_nor_escapes_the_lock(
    make_platform, look_alike
) -> None:
    """The lock counts per number as sent; the member is found byte-exactly. A case-blind,
    space-padding collation once found the member for a padded or full-width number, whose
    count is another: each such spelling was a fresh set of guesses at a locked account."""
    platform = make_platform(**{"security.max_failed_logins": 2})
    members = platform.service(MemberService)
    sign_up(platform, MOBILE)
    assert fail(members, 2)[-1] == "ACCOUNT_LOCKED"
    assert code_of(login, members, look_alike) == "LOGIN_FAILED"
    assert code_of(login, members) == "ACCOUNT_LOCKED"


def test_login_fails_closed_when_the_cache_is_down(make_platform) -> None:
    """No count, no guess: with Redis unreachable a password is not even checked."""
    sign_up(make_platform(), MOBILE)  # signing up needs the cache too (the code)
    members = make_platform(**{"cache.url": "redis://127.0.0.1:1/0"}).service(MemberService)
    assert code_of(login, members) == "SERVICE_UNAVAILABLE"
    assert code_of(members.authenticate_password, MOBILE, PASSWORD) == "SERVICE_UNAVAILABLE"


# -- refresh ---------------------------------------------------------------------------------


def test_login_returns_a_refresh_token_that_rotates(members, make_member) -> None:
    vo = make_member("INVESTOR", MOBILE, onboarded=False)
    first = login(members)
    assert first.refresh_token and first.refresh_token != first.token
    assert first.refresh_expires_in == 604800
    second = members.refresh_token(RefreshRequest(first.refresh_token))
    assert (second.member_id, second.role) == (vo.member_id, "INVESTOR")
    assert {second.token, second.refresh_token}.isdisjoint({first.token, first.refresh_token})
    assert members.authenticate_token(second.token).member_id == vo.member_id
    # the pair traded in is dead: its access token and its refresh token
    assert code_of(members.authenticate_token, first.token) == "UNAUTHENTICATED"
    third = members.refresh_token(RefreshRequest(second.refresh_token))
    assert members.authenticate_token(third.token).member_id == vo.member_id


def test_a_reused_refresh_token_revokes_its_whole_family(members, make_member) -> None:
    make_member("INVESTOR", MOBILE, onboarded=False)
    other_session = login(members)
    first = login(members)
    second = members.refresh_token(RefreshRequest(first.refresh_token))
    # the stolen first refresh token comes back: the family (second's pair) is revoked
    assert code_of(members.refresh_token, RefreshRequest(first.refresh_token)) == (
        "UNAUTHENTICATED"
    )
    assert code_of(members.authenticate_token, second.token) == "UNAUTHENTICATED"
    assert code_of(members.refresh_token, RefreshRequest(second.refresh_token)) == (
        "UNAUTHENTICATED"
    )
    # another login of the member is another family, untouched
    assert members.authenticate_token(other_session.token).member_id == other_session.member_id
    members.refresh_token(RefreshRequest(other_session.refresh_token))


def test_unknown_refresh_tokens_and_logged_out_sessions_do_not_refresh(
    members, make_member
) -> None:
    make_member("INVESTOR", MOBILE, onboarded=False)
    assert code_of(members.refresh_token, RefreshRequest("nope")) == "UNAUTHENTICATED"
    session = login(members)
    members.logout(members.authenticate_token(session.token))
    assert code_of(members.refresh_token, RefreshRequest(session.refresh_token)) == (
        "UNAUTHENTICATED"
    )


# -- change password -------------------------------------------------------------------------


def test_change_password_revokes_every_token_of_the_member(members, make_member) -> None:
    make_member("INVESTOR", MOBILE, onboarded=False)
    other = make_member("INVESTOR", "13812340000", onboarded=False)
    sessions = [login(members) for _ in range(3)]
    refreshed = members.refresh_token(RefreshRequest(sessions[2].refresh_token))
    theirs = login(members, "13812340000")
    caller = members.authenticate_token(sessions[0].token)
    members.change_password(ChangePasswordRequest(PASSWORD, "newpass123"), caller)
    for s in [*sessions, refreshed]:
        assert code_of(members.authenticate_token, s.token) == "UNAUTHENTICATED"
        assert code_of(members.refresh_token, RefreshRequest(s.refresh_token)) == (
            "UNAUTHENTICATED"
        )
    assert members.authenticate_token(theirs.token).member_id == other.member_id
    assert code_of(login, members) == "LOGIN_FAILED"
    assert login(members, MOBILE, "newpass123").token


def test_change_password_checks_the_old_one_and_the_policy(members, make_member) -> None:
    make_member("INVESTOR", MOBILE, onboarded=False)
    session = login(members)
    caller = members.authenticate_token(session.token)
    change = members.change_password
    assert code_of(change, ChangePasswordRequest("wrongpass1", "newpass123"), caller) == (
        "LOGIN_FAILED"
    )
    for weak in ("short1", "onlyletters", PASSWORD):
        with pytest.raises(BusinessError) as e:
            change(ChangePasswordRequest(PASSWORD, weak), caller)
        assert e.value.code == "VALIDATION_FAILED"
        assert e.value.message.startswith(("password:", "newPassword:"))
    assert members.authenticate_token(session.token)  # nothing was changed or revoked
    assert login(members).token


# -- two platforms on one Redis ---------------------------------------------------------------


@pytest.mark.redis
def test_platforms_on_one_redis_share_lockout_refresh_and_revocation(
    make_platform, redis_settings
) -> None:
    settings = {**redis_settings, "security.max_failed_logins": 2}
    first = make_platform(**settings)
    one = first.service(MemberService)
    two = make_platform(**settings).service(MemberService)
    sign_up(first, MOBILE)
    session = login(one)
    refreshed = two.refresh_token(RefreshRequest(session.refresh_token))
    assert code_of(one.refresh_token, RefreshRequest(session.refresh_token)) == "UNAUTHENTICATED"
    assert code_of(two.authenticate_token, refreshed.token) == "UNAUTHENTICATED"  # family gone
    assert fail(one, 1) == ["LOGIN_FAILED"]
    assert fail(two, 1) == ["ACCOUNT_LOCKED"]
    assert code_of(login, one) == "ACCOUNT_LOCKED"
