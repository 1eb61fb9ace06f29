"""Promotion on SQLite and MariaDB: a member's invite code, how many registered with it, and
the page of those members (newest first, numbers masked); nobody sees another's invitees."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from service.errors import BusinessError
from service.security import Principal
from tests.integration.service.support import sign_up


def caller(vo) -> Principal:
    return Principal(member_id=vo.member_id, role=vo.role)


def invite_code_of(sql, member_id: int) -> str:
    with sql.connect() as conn:
        return conn.execute(
            text("SELECT invite_code FROM member WHERE id = :id"), {"id": member_id}
        ).scalar_one()


def test_a_new_member_has_a_code_and_nobody_invited(platform, members, sql) -> None:
    vo = sign_up(platform, "13800000001", "BORROWER")
    promotion = members.get_promotion(caller(vo))
    assert (promotion.invite_code, promotion.invited_count) == (
        invite_code_of(sql, vo.member_id),
        0,
    )
    page = members.list_invitees(caller(vo))
    assert (page.items, page.total, page.page, page.page_size) == ((), 0, 1, 20)


def test_invitees_are_listed_newest_first_masked_and_paged(platform, members, sql) -> None:
    inviter = sign_up(platform, "13800000001")
    code = members.get_promotion(caller(inviter)).invite_code
    invited = []
    for n in range(5):
        invited.append(sign_up(platform, f"1390000{n:04d}", "BORROWER", invite_code=code))
    sign_up(platform, "13700000001")  # registered without a code: nobody's invitee
    with sql.begin() as conn:  # the second invitee has verified their real name
        conn.execute(
            text("UPDATE member SET identity_verified_at = created_at WHERE id = :id"),
            {"id": invited[1].member_id},
        )

    assert members.get_promotion(caller(inviter)).invited_count == 5
    first = members.list_invitees(caller(inviter), 1, 2)
    assert (first.total, first.page, first.page_size) == (5, 1, 2)
    assert [i.mobile for i in first.items] == ["139****0004", "139****0003"]
    last = members.list_invitees(caller(inviter), 3, 2)
    assert [i.mobile for i in last.items] == ["139****0000"]
    everyone = members.list_invitees(caller(inviter), 1, 10).items
    assert [i.mobile for i in everyone] == [f"139****000{n}" for n in range(4, -1, -1)]
    assert [i.registered_at for i in everyone] == [v.created_at for v in reversed(invited)]
    assert [i.identity_verified for i in everyone] == [False, False, False, True, False]
    assert not any("1390000" in repr(i) for i in everyone)  # no full number anywhere


def test_nobody_sees_another_members_invitees(platform, members) -> None:
    alice = sign_up(platform, "13800000001")
    bob = sign_up(platform, "13800000002", "BORROWER")
    alices = members.get_promotion(caller(alice)).invite_code
    bobs = members.get_promotion(caller(bob)).invite_code
    assert alices != bobs
    sign_up(platform, "13900000001", invite_code=alices)
    sign_up(platform, "13900000002", invite_code=bobs)
    sign_up(platform, "13900000003", invite_code=bobs)
    assert [i.mobile for i in members.list_invitees(caller(alice)).items] == ["139****0001"]
    assert [i.mobile for i in members.list_invitees(caller(bob)).items] == [
        "139****0003",
        "139****0002",
    ]
    assert members.get_promotion(caller(alice)).invited_count == 1


def test_operators_do_not_invite(members) -> None:
    operator = members.create_operator("13900000009", "secret123")
    for call in (members.get_promotion, members.list_invitees):
        with pytest.raises(BusinessError) as e:
            call(caller(operator))
        assert e.value.code == "FORBIDDEN"


@pytest.mark.parametrize(("page", "size", "field"), [(0, 10, "page"), (1, 0, "pageSize")])
def test_paging_is_validated(platform, members, page, size, field) -> None:
    vo = sign_up(platform, "13800000001")
    with pytest.raises(BusinessError) as e:
        members.list_invitees(caller(vo), page, size)
    assert e.value.code == "VALIDATION_FAILED" and e.value.message.startswith(f"{field}:")
