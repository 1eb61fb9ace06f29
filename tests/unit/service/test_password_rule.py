"""The password rule: 8 to 64 characters with an ASCII letter and an ASCII digit."""

import pytest

from service.errors import BusinessError
from service.member.base import check_password


@pytest.mark.parametrize("password", ["abcdefg1", "1234567a", "Passw0rd" * 8])
def test_passwords_that_follow_the_rule(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize(
    "password",
    ["abcdefgh", "12345678", "abcdefg١", "abcdefg１", "abcdefg٣", "short1", "a1" * 33],
)
def test_passwords_that_do_not(password: str) -> None:
    with pytest.raises(BusinessError) as e:
        check_password(password, "newPassword")
    assert e.value.code == "VALIDATION_FAILED"
    assert e.value.message.startswith("newPassword: ")
