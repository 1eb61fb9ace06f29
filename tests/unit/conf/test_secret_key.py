"""security.secret_key and security.wsse_max_skew_seconds: checked at load, never shown."""

from __future__ import annotations

import base64

import pytest

from conf import load_settings
from conf.settings import ConfigError

KEY = base64.b64encode(bytes(range(32))).decode()


def test_unset_by_default_and_set_in_the_test_environment() -> None:
    assert load_settings({}).security.secret_key == ""
    assert load_settings({}).security.wsse_max_skew_seconds == 300
    assert len(base64.b64decode(load_settings({"P2P_ENV": "test"}).security.secret_key)) == 32


def test_a_key_from_the_environment_is_hidden_by_describe() -> None:
    settings = load_settings({"P2P_SECURITY_SECRET_KEY": f" {KEY} "})
    assert settings.security.secret_key == KEY
    assert settings.describe()["security.secret_key"] == "***"
    assert load_settings({}).describe()["security.secret_key"] == ""


@pytest.mark.parametrize(
    "bad", [base64.b64encode(bytes(31)).decode(), base64.b64encode(bytes(33)).decode(), "*" * 44]
)
def test_a_key_of_the_wrong_size_or_alphabet_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({"P2P_SECURITY_SECRET_KEY": bad})
    assert str(e.value).startswith("security.secret_key: must be the Base64 of exactly 32 bytes")
    assert bad not in str(e.value)


@pytest.mark.parametrize("skew", ["29", "3601", "x"])
def test_the_skew_is_bounded(skew: str) -> None:
    with pytest.raises(ConfigError, match=r"security\.wsse_max_skew_seconds"):
        load_settings({"P2P_SECURITY_WSSE_MAX_SKEW_SECONDS": skew})
