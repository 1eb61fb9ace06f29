"""MemberService on SQLite and MariaDB: registration, login, logout, tokens, password storage."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from service.errors import BusinessError
from service.member import LoginRequest, MemberService, RegisterRequest
from tests.integration.service.support import PASSWORD, send_code, sign_up


def login(members: MemberService, mobile: str, password: str = PASSWORD):
    return members.login(LoginRequest(mobile, password))


def code_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


def test_register_stores_the_member_and_masks_the_mobile(platform, sql) -> None:
    vo = sign_up(platform, "13812345678", "BORROWER")
    assert vo.mobile == "138****5678"
    assert vo.role == "BORROWER"
    assert vo.created_at.utcoffset() is not None
    with sql.connect() as conn:
        row = conn.execute(
            text("SELECT id, mobile, role, status FROM member WHERE mobile = '13812345678'")
        ).one()
    assert tuple(row) == (vo.member_id, "13812345678", "BORROWER", "ACTIVE")


def test_the_stored_password_is_an_argon2id_hash(platform, sql) -> None:
    sign_up(platform, "13812345678")
    with sql.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM member WHERE mobile = '13812345678'")
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


@pytest.mark.parametrize(
    ("mobile", "password", "role", "field"),
    [
        ("12812345678", PASSWORD, "INVESTOR", "mobile"),
        ("1381234567", PASSWORD, "INVESTOR", "mobile"),
        ("13812345678", "short1", "INVESTOR", "password"),
        ("13812345678", "onlyletters", "INVESTOR", "password"),
        ("13812345678", "12345678", "INVESTOR", "password"),
        ("13812345678", PASSWORD, "OPERATOR", "role"),
    ],
)
def test_register_validation_names_the_field(
    platform, members, sql, mobile, password, role, field
) -> None:
    code = send_code(platform, "13812345678")
    e = code_of(members.register, RegisterRequest(mobile, password, role, code))
    assert e.code == "VALIDATION_FAILED"
    assert e.message.startswith(f"{field}:")
    with sql.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM member")).scalar_one() == 0


def test_a_duplicate_mobile_is_mobile_taken(members, make_member, sql) -> None:
    make_member("INVESTOR", "13812345678", onboarded=False)
    e = code_of(members.register, RegisterRequest("13812345678", "other1234", "BORROWER", "0"))
    assert e.code == "MOBILE_TAKEN"
    with sql.connect() as conn:
        rows = conn.execute(text("SELECT role FROM member WHERE mobile = '13812345678'")).all()
    assert [r.role for r in rows] == ["INVESTOR"]


def test_login_then_the_token_authenticates(members, make_member) -> None:
    vo = make_member("BORROWER", "13812345678", onboarded=False)
    token = login(members, "13812345678")
    assert token.member_id == vo.member_id
    assert token.role == "BORROWER"
    assert token.expires_in > 0
    principal = members.authenticate_token(token.token)
    assert (principal.member_id, principal.role) == (vo.member_id, "BORROWER")


def stored_hash(sql, mobile: str) -> str:
    with sql.connect() as conn:
        return conn.execute(
            text("SELECT password_hash FROM member WHERE mobile = :m"), {"m": mobile}
        ).scalar_one()


def store_hash(sql, mobile: str, password_hash: str) -> None:
    with sql.begin() as conn:
        conn.execute(
            text("UPDATE member SET password_hash = :h WHERE mobile = :m"),
            {"h": password_hash, "m": mobile},
        )


@pytest.mark.parametrize("how", ["login", "ws-security"])
def test_a_hash_of_other_parameters_is_made_again_by_the_next_login(
    platform, members, make_member, sql, how
) -> None:
    make_member("INVESTOR", "13812345678", onboarded=False)
    today = stored_hash(sql, "13812345678")
    # As stored before the settings changed: other memory, passes and lanes.
    before = PasswordHasher(time_cost=2, memory_cost=16, parallelism=2).hash(PASSWORD)
    store_hash(sql, "13812345678", before)

    if how == "login":
        login(members, "13812345678")
    else:
        members.authenticate_password("13812345678", PASSWORD)

    after = stored_hash(sql, "13812345678")
    assert after != before
    assert after.split("$")[:4] == today.split("$")[:4]  # $argon2id$v=19$m=...,t=...,p=...
    assert PasswordHasher().verify(after, PASSWORD)
    login(members, "13812345678")  # the new hash proves the password, and is kept
    assert stored_hash(sql, "13812345678") == after


def test_a_rehash_never_undoes_a_password_changed_meanwhile(platform, make_member, sql) -> None:
    vo = make_member("INVESTOR", "13812345678", onboarded=False)
    members = platform.service(MemberService)
    before = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    changed = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash("NewPassw0rd")
    store_hash(sql, "13812345678", before)
    # The login checked `before`; the member changes the password before the login stores
    # its new hash.
    store_hash(sql, "13812345678", changed)
    members._rehash(vo.member_id, before, PASSWORD)
    assert stored_hash(sql, "13812345678") == changed


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_logins_at_once_each_get_their_answer_and_old_hashes_are_stored_again(
    members, make_member, sql
) -> None:
    """Eight threads, one worker's Passwords (one hash at a time): the two members' own logins
    (twice each, at once), wrong passwords and unknown numbers; each login gets its own answer,
    and each member's hash from other parameters is stored again under today's."""
    mobiles = ["13812345601", "13812345602"]
    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    for mobile in mobiles:
        make_member("INVESTOR", mobile, onboarded=False)
        store_hash(sql, mobile, old)
    attempts = [(m, PASSWORD) for m in mobiles for _ in range(2)]
    attempts += [(mobiles[0], "wrongpass1"), (mobiles[1], "wrongpass2")]
    attempts += [("13900000001", PASSWORD), ("13900000002", PASSWORD)]
    barrier = threading.Barrier(len(attempts))
    answers: dict[int, object] = {}

    def attempt(i: int, mobile: str, password: str) -> None:
        barrier.wait()
        try:
            answers[i] = login(members, mobile, password).member_id
        except BusinessError as e:
            answers[i] = e.code
        except Exception as e:  # anything else is a failure of the test
            answers[i] = e

    threads = [threading.Thread(target=attempt, args=(i, *a)) for i, a in enumerate(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    ids = {m: members.authenticate_password(m, PASSWORD).member_id for m in mobiles}
    expected = {
        i: ids.get(m, "LOGIN_FAILED") if p == PASSWORD else "LOGIN_FAILED"
        for i, (m, p) in enumerate(attempts)
    }
    assert answers == expected
    for mobile in mobiles:
        stored = stored_hash(sql, mobile)
        assert stored != old
        assert not members._passwords.needs_rehash(stored)
        assert PasswordHasher().verify(stored, PASSWORD)


def test_wrong_password_and_unknown_mobile_both_fail_alike(members, make_member) -> None:
    make_member("INVESTOR", "13812345678", onboarded=False)
    wrong = code_of(login, members, "13812345678", "wrongpass1")
    unknown = code_of(login, members, "13900000000", PASSWORD)
    assert wrong.code == unknown.code == "LOGIN_FAILED"
    assert wrong.message == unknown.message


def test_a_disabled_member_cannot_log_in(members, make_member, sql) -> None:
    make_member("INVESTOR", "13812345678", onboarded=False)
    with sql.begin() as conn:
        conn.execute(text("UPDATE member SET status = 'DISABLED' WHERE mobile = '13812345678'"))
    assert code_of(login, members, "13812345678").code == "LOGIN_FAILED"


def test_logout_revokes_the_token(members, make_member) -> None:
    make_member("INVESTOR", "13812345678", onboarded=False)
    first = login(members, "13812345678")
    second = login(members, "13812345678")
    members.logout(members.authenticate_token(first.token))
    e = code_of(members.authenticate_token, first.token)
    assert e.code == "UNAUTHENTICATED"
    assert members.authenticate_token(second.token).member_id == second.member_id


def test_password_authentication_for_ws_security(members, make_member) -> None:
    vo = make_member("BORROWER", "13812345678", onboarded=False)
    assert members.authenticate_password("13812345678", PASSWORD).member_id == vo.member_id
    e = code_of(members.authenticate_password, "13812345678", "wrongpass1")
    assert e.code == "UNAUTHENTICATED"


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_concurrent_registration_of_one_mobile_lets_exactly_one_win(make_platform, sql) -> None:
    """Two platforms with caches of their own each send the number a code, so both
    registrations get past their code and race in the database: the UNIQUE mobile decides."""
    platforms = [make_platform(), make_platform()]
    for round_ in range(5):
        mobile = f"1370000{round_:04d}"
        requests = [
            RegisterRequest(mobile, PASSWORD, role, send_code(p, mobile))
            for p, role in zip(platforms, ("INVESTOR", "BORROWER"), strict=True)
        ]
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def register(
            members: MemberService, request: RegisterRequest, barrier=barrier, outcomes=outcomes
        ) -> None:
            barrier.wait()
            try:
                outcomes.append(members.register(request))
            except BusinessError as e:
                outcomes.append(e.code)
            except Exception as e:  # anything else is a failure of the test
                outcomes.append(e)

        threads = [
            threading.Thread(target=register, args=(p.service(MemberService), r))
            for p, r in zip(platforms, requests, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        codes = sorted(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
        assert codes == ["MOBILE_TAKEN", "MemberVo"], outcomes
        with sql.connect() as conn:
            count = conn.execute(
                text("SELECT COUNT(*) FROM member WHERE mobile = :m"), {"m": mobile}
            ).scalar_one()
        assert count == 1


@pytest.mark.redis
def test_tokens_are_shared_by_platforms_on_one_redis(make_platform, redis_settings) -> None:
    first = make_platform(**redis_settings)
    one = first.service(MemberService)
    two = make_platform(**redis_settings).service(MemberService)
    vo = sign_up(first, "13812345678")
    token = login(one, "13812345678").token
    principal = two.authenticate_token(token)
    assert principal.member_id == vo.member_id
    two.logout(principal)
    assert code_of(one.authenticate_token, token).code == "UNAUTHENTICATED"
    assert code_of(two.authenticate_token, token).code == "UNAUTHENTICATED"


def test_platforms_with_in_process_caches_do_not_share_tokens(make_platform) -> None:
    """The contrast that makes the Redis test meaningful: memory caches are per process."""
    first = make_platform()
    one = first.service(MemberService)
    two = make_platform().service(MemberService)
    sign_up(first, "13812345678")
    token = login(one, "13812345678").token
    assert code_of(two.authenticate_token, token).code == "UNAUTHENTICATED"
