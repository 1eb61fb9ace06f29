"""Real-name verification and profiles on SQLite and MariaDB: what is stored (sealed, hashed,
checked with plain SQL), the owner's full view and the operators' masked one, every refusal,
operations without a security key, and verifications racing on MariaDB."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from service import pii
from service.member import BindCardRequest, IdentityRequest, MemberService
from tests.integration.service.support import START, caller, error_of, race, sealer
from tests.support import resident_id_number


def identity_row(sql, member_id: int):
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT real_name_sealed, id_number_hash, id_number_sealed, identity_verified_at,"
                " fund_account_no FROM member WHERE id = :id"
            ),
            {"id": member_id},
        ).one()


def assert_unverified(sql, member_id: int) -> None:
    assert tuple(identity_row(sql, member_id)) == (None, None, None, None, None)


# -- verification ----------------------------------------------------------------------------


def test_verification_stores_the_identity_sealed_and_shows_it_to_the_owner(
    members, make_member, sql, identities
) -> None:
    vo = make_member("INVESTOR", "13812345678", onboarded=False)
    who = identities()
    profile = members.verify_identity(IdentityRequest(who.real_name, who.id_number), caller(vo))
    assert (profile.member_id, profile.mobile, profile.role) == (
        vo.member_id,
        "13812345678",
        "INVESTOR",
    )
    assert (profile.real_name, profile.id_number) == (who.real_name, who.id_number)
    assert profile.identity_verified and profile.identity_verified_at == START
    assert not profile.fund_account_open

    row = identity_row(sql, vo.member_id)
    box = sealer()
    assert row.id_number_hash == box.lookup_hash(pii.ID_NUMBER, who.id_number)
    assert box.open(pii.REAL_NAME, row.real_name_sealed, vo.member_id) == who.real_name
    assert box.open(pii.ID_NUMBER, row.id_number_sealed, vo.member_id) == who.id_number
    assert who.id_number not in row.id_number_sealed and who.real_name not in row.real_name_sealed
    assert row.identity_verified_at is not None


def test_the_id_number_is_stored_upper_cased_and_the_name_in_one_form(
    members, make_member, sql
) -> None:
    vo = make_member("BORROWER", onboarded=False)
    number = next(
        n for s in range(20) if (n := resident_id_number(dt.date(1990, 5, 17), s)).endswith("X")
    )
    profile = members.verify_identity(
        IdentityRequest(" 阿卜杜•热合曼 ", number.lower()), caller(vo)
    )
    assert (profile.real_name, profile.id_number) == ("阿卜杜·热合曼", number)
    assert identity_row(sql, vo.member_id).id_number_hash == sealer().lookup_hash(
        pii.ID_NUMBER, number
    )


def test_a_second_verification_is_identity_already_verified(
    members, make_member, sql, identities
) -> None:
    vo = make_member("INVESTOR", onboarded=False)
    first, second = identities(), identities()
    members.verify_identity(IdentityRequest(first.real_name, first.id_number), caller(vo))
    before = tuple(identity_row(sql, vo.member_id))
    for who in (first, second):
        e = error_of(members.verify_identity, IdentityRequest("李四", who.id_number), caller(vo))
        assert e.code == "IDENTITY_ALREADY_VERIFIED"
    assert tuple(identity_row(sql, vo.member_id)) == before


def test_one_id_number_verifies_one_member_only(members, make_member, sql, identities) -> None:
    one, two = make_member("INVESTOR", onboarded=False), make_member("BORROWER", onboarded=False)
    who = identities()
    members.verify_identity(IdentityRequest(who.real_name, who.id_number), caller(one))
    e = error_of(
        members.verify_identity,
        IdentityRequest("李四", " " + who.id_number.lower() + " "),
        caller(two),
    )
    assert e.code == "ID_NUMBER_TAKEN"
    assert who.id_number not in e.message
    assert_unverified(sql, two.member_id)


@pytest.mark.parametrize(
    ("name", "number", "field", "problem"),
    [
        ("张三", "11010519491231002", "idNumber", "must be an 18-character resident ID number"),
        ("张三", "110105194912310021", "idNumber", "check character does not match (GB 11643)"),
        ("张", "11010519491231002X", "realName", "must be the name on the ID, 2 to 30 letters"),
        ("张三3", "11010519491231002X", "realName", "must be the name on the ID, 2 to 30 letters"),
    ],
)
def test_invalid_identities_are_refused_naming_the_field(
    members, make_member, sql, name, number, field, problem
) -> None:
    vo = make_member("INVESTOR", onboarded=False)
    e = error_of(members.verify_identity, IdentityRequest(name, number), caller(vo))
    assert e.code == "VALIDATION_FAILED"
    assert e.message == f"{field}: {problem}"
    assert_unverified(sql, vo.member_id)


def test_an_impossible_birth_date_is_refused(members, make_member, sql) -> None:
    vo = make_member("INVESTOR", onboarded=False)
    first17 = "11010519900230001"  # 30 February
    request = IdentityRequest("张三", first17 + pii.id_check_character(first17))
    e = error_of(members.verify_identity, request, caller(vo))
    assert (e.code, e.message) == ("VALIDATION_FAILED", "idNumber: holds no valid birth date")
    assert_unverified(sql, vo.member_id)


def test_a_birth_date_in_the_future_is_refused(members, make_member, sql) -> None:
    vo = make_member("INVESTOR", onboarded=False)
    number = resident_id_number(dt.date(2026, 3, 2), 1)
    e = error_of(members.verify_identity, IdentityRequest("张三", number), caller(vo))
    assert (e.code, e.message) == (
        "VALIDATION_FAILED",
        "idNumber: holds a birth date in the future",
    )
    assert_unverified(sql, vo.member_id)


def test_the_holder_must_be_18_on_the_date_in_china(members, make_member, sql, clock) -> None:
    """Born 1 March 2008: 18 from midnight of 1 March 2026 in China, 16:00 UTC on 28 February."""
    vo = make_member("INVESTOR", onboarded=False)
    number = resident_id_number(dt.date(2008, 3, 1), 7)
    clock.now = dt.datetime(2026, 2, 28, 15, 59, 59, tzinfo=dt.UTC)
    e = error_of(members.verify_identity, IdentityRequest("张三", number), caller(vo))
    assert e.code == "UNDERAGE"
    assert_unverified(sql, vo.member_id)
    clock.advance(seconds=1)
    assert members.verify_identity(IdentityRequest("张三", number), caller(vo)).identity_verified


def test_one_born_on_29_february_is_adult_on_1_march(members, make_member, clock) -> None:
    vo = make_member("INVESTOR", onboarded=False)
    number = resident_id_number(dt.date(2008, 2, 29), 3)
    clock.now = dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)  # 20:00 on 28 February in China
    assert error_of(members.verify_identity, IdentityRequest("张三", number), caller(vo)).code == (
        "UNDERAGE"
    )
    clock.advance(hours=4)  # midnight of 1 March in China
    assert members.verify_identity(IdentityRequest("张三", number), caller(vo)).identity_verified


# -- profiles --------------------------------------------------------------------------------


def test_the_profile_before_verification_has_no_identity(members, make_member, sql) -> None:
    vo = make_member("BORROWER", "13812345678", onboarded=False)
    profile = members.get_profile(caller(vo))
    with sql.connect() as conn:
        invite_code = conn.execute(
            text("SELECT invite_code FROM member WHERE id = :id"), {"id": vo.member_id}
        ).scalar_one()
    assert (profile.mobile, profile.role, profile.created_at) == (
        "13812345678",
        "BORROWER",
        vo.created_at,
    )
    assert not profile.identity_verified
    assert (profile.real_name, profile.id_number, profile.identity_verified_at) == (None,) * 3
    assert not profile.fund_account_open
    assert profile.invite_code == invite_code


def test_the_owner_sees_everything_and_the_operator_sees_masks(
    members, make_member, identities
) -> None:
    vo = make_member("INVESTOR", "13812345678", onboarded=False)
    who = identities()
    members.verify_identity(IdentityRequest("欧阳娜娜", who.id_number), caller(vo))
    own = members.get_profile(caller(vo))
    assert (own.mobile, own.real_name, own.id_number) == ("13812345678", "欧阳娜娜", who.id_number)

    seen = members.get_member(vo.member_id)
    assert seen.mobile == "138****5678"
    assert seen.real_name == "欧***"
    assert seen.id_number == who.id_number[0] + "*" * 16 + who.id_number[-1]
    assert (seen.member_id, seen.role, seen.identity_verified) == (vo.member_id, "INVESTOR", True)
    assert seen.identity_verified_at == own.identity_verified_at == START
    assert seen.invite_code == own.invite_code


def test_a_fully_onboarded_profile_says_the_fund_account_is_open(members, make_member) -> None:
    vo = make_member("BORROWER")
    assert members.get_profile(caller(vo)).fund_account_open
    assert members.get_member(vo.member_id).fund_account_open


def test_an_unknown_member_is_member_not_found(members, operator) -> None:
    e = error_of(members.get_member, operator.member_id + 1000)
    assert e.code == "MEMBER_NOT_FOUND"


# -- without a security key ------------------------------------------------------------------


def test_without_a_security_key_personal_data_is_service_unavailable(
    make_platform, make_member, members, identities, sql
) -> None:
    """Members verified while the key was set; then the platform starts without one."""
    verified = make_member("INVESTOR")  # onboarded: an identity, a card, an account
    card_id = members.list_cards(caller(verified)).items[0].card_id
    fresh = make_member("BORROWER", onboarded=False)
    keyless = make_platform(**{"security.secret_key": ""}).service(MemberService)
    who = identities()
    refused = [
        (keyless.verify_identity, IdentityRequest(who.real_name, who.id_number), caller(fresh)),
        (
            keyless.bind_card,
            BindCardRequest(who.card_number, "招商银行", "13900000001"),
            caller(fresh),
        ),
        (keyless.get_profile, caller(verified)),
        (keyless.get_member, verified.member_id),
        (keyless.list_cards, caller(verified)),
        (keyless.open_fund_account, card_id, caller(fresh)),
    ]
    for fn, *args in refused:
        assert error_of(fn, *args).code == "SERVICE_UNAVAILABLE", fn.__name__
    assert_unverified(sql, fresh.member_id)
    # What holds nothing personal still answers.
    assert keyless.get_profile(caller(fresh)).identity_verified is False
    assert keyless.get_fund_account(caller(verified)).status == "OPEN"


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_two_members_verifying_one_id_number_at_once_one_wins(
    members, make_member, sql, identities
) -> None:
    for _ in range(5):
        one = make_member("INVESTOR", onboarded=False)
        two = make_member("BORROWER", onboarded=False)
        who = identities()
        request = IdentityRequest(who.real_name, who.id_number)
        outcomes = race(
            [
                (members.verify_identity, request, caller(one)),
                (members.verify_identity, request, caller(two)),
            ]
        )
        codes = sorted(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
        assert codes == ["ID_NUMBER_TAKEN", "ProfileVo"], outcomes
        with sql.connect() as conn:
            holders = conn.execute(
                text("SELECT id FROM member WHERE id_number_hash = :h"),
                {"h": sealer().lookup_hash(pii.ID_NUMBER, who.id_number)},
            ).all()
        winner = next(o for o in outcomes if not isinstance(o, str))
        assert [h.id for h in holders] == [winner.member_id]


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_one_member_verifying_twice_at_once_is_verified_once(
    members, make_member, sql, identities
) -> None:
    for _ in range(5):
        vo = make_member("INVESTOR", onboarded=False)
        first, second = identities(), identities()
        outcomes = race(
            [
                (members.verify_identity, IdentityRequest("张三", first.id_number), caller(vo)),
                (members.verify_identity, IdentityRequest("李四", second.id_number), caller(vo)),
            ]
        )
        codes = sorted(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
        assert codes == ["IDENTITY_ALREADY_VERIFIED", "ProfileVo"], outcomes
        winner = next(o for o in outcomes if not isinstance(o, str))
        row = identity_row(sql, vo.member_id)
        assert row.id_number_hash == sealer().lookup_hash(pii.ID_NUMBER, winner.id_number)
