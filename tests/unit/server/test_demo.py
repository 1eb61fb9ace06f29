"""The walkthrough's parts that need no server: its made-up members pass the platform's own
checks, it reads codes from the development SMS outbox, and its SOAP walk says what to
install when zeep is missing."""

from __future__ import annotations

import datetime as dt
import json
import random
import sys

import pytest

from server.demo.people import PASSWORD, SmsOutbox, new_person
from server.demo.soap import soap_walk
from server.demo.wire import DemoFailed, Wire
from service.member.base import check_mobile, check_password
from service.pii import card_number, check_adult, real_name, resident_id


@pytest.mark.parametrize("seed", range(200))
def test_made_up_members_pass_the_platform_s_checks(seed) -> None:
    person = new_person("Investor 李投资", random.Random(seed))
    check_mobile(person.mobile)
    check_adult(resident_id(person.id_number).birth_date, dt.date(2026, 12, 3))
    assert card_number(person.card_number) == person.card_number
    real_name(person.name.split()[-1])
    check_password(PASSWORD)


def test_the_outbox_gives_the_last_code_of_a_number_and_purpose(tmp_path) -> None:
    outbox = tmp_path / "sms.jsonl"
    sms = SmsOutbox(str(outbox))
    assert sms.last_code("13800000001", "REGISTER") is None  # no file yet
    lines = [
        {"mobile": "13800000001", "purpose": "REGISTER", "code": "111111"},
        {"mobile": "13800000002", "purpose": "REGISTER", "code": "222222"},
        {"mobile": "13800000001", "purpose": "RESET_PASSWORD", "code": "333333"},
        {"mobile": "13800000001", "purpose": "REGISTER", "code": "444444"},
    ]
    outbox.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert sms.last_code("13800000001", "REGISTER") == "444444"
    assert sms.last_code("13800000002", "REGISTER") == "222222"
    assert sms.last_code("13800000003", "REGISTER") is None


def test_the_soap_walk_says_zeep_is_in_the_test_extra(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "zeep", None)  # as if not installed
    said: list[str] = []
    with pytest.raises(DemoFailed, match="test extra"):
        soap_walk(Wire("http://127.0.0.1:9", said.append), SmsOutbox(str(tmp_path / "none")))
    assert said == []  # nothing was called
