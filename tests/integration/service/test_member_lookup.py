"""register's answer carries the new member's invite code; operators find a member by mobile
number, personal data masked (SQLite and MariaDB)."""

from __future__ import annotations

import logging

import pytest

from service.errors import BusinessError
from service.security import Principal


def test_register_answers_the_invite_code_the_promotion_shows(make_member, members) -> None:
    vo = make_member("INVESTOR", onboarded=False)
    assert vo.invite_code is not None and len(vo.invite_code) == 8
    promotion = members.get_promotion(Principal(member_id=vo.member_id, role="INVESTOR"))
    assert promotion.invite_code == vo.invite_code
    assert make_member("OPERATOR").invite_code is None  # operators invite nobody


def test_an_operator_finds_a_member_by_mobile_masked(make_member, members, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    vo = make_member("BORROWER", "13712345678")
    found = members.find_member_by_mobile("13712345678")
    assert found == members.get_member(vo.member_id)
    assert (found.member_id, found.mobile) == (vo.member_id, "137****5678")
    assert found.real_name is not None and "*" in found.real_name
    with pytest.raises(BusinessError) as e:
        members.find_member_by_mobile("13712345679")
    assert e.value.code == "MEMBER_NOT_FOUND"
    assert "1371234567" not in e.value.message
    assert "1371234567" not in caplog.text
