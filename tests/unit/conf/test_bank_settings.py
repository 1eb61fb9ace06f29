"""The [bank] section: keys given as files or PEM text, checked at start-up, and a private key
that never shows in a repr, describe() or an error; BANK refused without what it needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conf import ConfigError, load_settings
from conf.settings import Pem
from service.ocp.signing import generate_keypair

PRIVATE, PUBLIC = generate_keypair()
BANK_A_PUBLIC = generate_keypair()[1]
#: The middle of the private key's Base64: what must never be seen anywhere.
SECRET_PART = PRIVATE.decode().splitlines()[5]


def write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def everything_shown(settings) -> str:
    return repr(settings) + repr(settings.describe())


def test_the_defaults_are_the_bank_simulator_with_its_development_keys() -> None:
    settings = load_settings({})
    bank = settings.bank
    assert settings.payment.gateway == "BANK"
    assert bank.simulator and bank.simulator_dir == "var/bank"
    assert bank.url == "http://127.0.0.1:8070"
    assert bank.platform_private_key is None and bank.bank_public_keys == ()
    assert bank.timestamp_window_seconds == 300
    assert (bank.connect_timeout_seconds, bank.read_timeout_seconds) == (3.0, 10.0)
    assert settings.describe()["bank.platform_private_key"] == ""


def test_keys_from_files_are_read_at_start_and_shown_by_path_only(tmp_path: Path) -> None:
    private = write(tmp_path, "platform.pem", PRIVATE)
    public = write(tmp_path, "bank-a.pub.pem", BANK_A_PUBLIC)
    settings = load_settings(
        {
            "P2P_BANK_PLATFORM_PRIVATE_KEY": private,
            "P2P_BANK_BANK_PUBLIC_KEYS": f"bank-a={public}, bank-b={public}",
        }
    )
    assert settings.bank.platform_private_key == Pem(PRIVATE, private)
    assert dict(settings.bank.bank_public_keys) == {
        "bank-a": Pem(BANK_A_PUBLIC, public),
        "bank-b": Pem(BANK_A_PUBLIC, public),
    }
    view = settings.describe()
    assert view["bank.platform_private_key"] == private
    assert view["bank.bank_public_keys"] == {"bank-a": public, "bank-b": public}
    assert SECRET_PART not in everything_shown(settings)


@pytest.mark.parametrize(
    "text",
    [PRIVATE.decode(), PRIVATE.decode().strip().replace("\n", "\\n")],
    ids=["line breaks", "escaped line breaks"],
)
def test_a_private_key_may_be_given_as_pem_text(text: str) -> None:
    settings = load_settings({"P2P_BANK_PLATFORM_PRIVATE_KEY": text})
    key = settings.bank.platform_private_key
    assert key is not None and key.source == "inline"
    assert serialization.load_pem_private_key(key.data, None).private_numbers() == (
        serialization.load_pem_private_key(PRIVATE, None).private_numbers()
    )
    assert settings.describe()["bank.platform_private_key"] == "inline"
    assert SECRET_PART not in everything_shown(settings)


def test_public_keys_from_an_operator_file_table(tmp_path: Path) -> None:
    public = write(tmp_path, "bank.pub.pem", BANK_A_PUBLIC)
    inline = BANK_A_PUBLIC.decode()
    config = write(
        tmp_path,
        "operator.toml",
        f'[bank]\nbank_public_keys = {{ "bank-2026a" = "{public}",'
        f' "bank-2026b" = """{inline}""" }}\n',
    )
    keys = dict(load_settings({"P2P_CONFIG": config}).bank.bank_public_keys)
    assert keys["bank-2026a"].source == public and keys["bank-2026b"].source == "inline"


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (PUBLIC, "not"),
        (_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "2048 bits"),  # noqa: S505
        (_pem(ec.generate_private_key(ec.SECP256R1())), "RSA"),
        (PRIVATE[:-80] + b"\n-----END PRIVATE KEY-----\n", "not"),
    ],
    ids=["public key", "short key", "not RSA", "truncated"],
)
def test_an_unusable_private_key_file_is_refused_without_its_content(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = write(tmp_path, "platform.pem", content)
    with pytest.raises(ConfigError, match=problem) as refused:
        load_settings({"P2P_BANK_PLATFORM_PRIVATE_KEY": path})
    message = str(refused.value)
    assert message.startswith("bank.platform_private_key: ") and path in message
    assert "MII" not in message and refused.value.__cause__ is None


def test_unusable_inline_key_text_is_never_echoed() -> None:
    garbled = PRIVATE.decode().replace(SECRET_PART, SECRET_PART[::-1])
    with pytest.raises(ConfigError) as refused:
        load_settings({"P2P_BANK_PLATFORM_PRIVATE_KEY": garbled})
    assert "the inline text is not" in str(refused.value)
    assert SECRET_PART[::-1] not in str(refused.value) and "MII" not in str(refused.value)


def test_a_missing_key_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"cannot read the key file '/nonexistent/p\.pem'"):
        load_settings({"P2P_BANK_PLATFORM_PRIVATE_KEY": "/nonexistent/p.pem"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bank-a", "key-id=PEM-or-path pairs"),
        ("bad id!=/x.pem", "bank_public_keys: must be 1-64 characters"),
        ("bank-a=", "key 'bank-a' needs a PEM public key"),
    ],
)
def test_bad_public_key_lists_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"P2P_BANK_BANK_PUBLIC_KEYS": value})


def test_a_private_key_in_the_public_ring_is_refused_without_its_content(tmp_path: Path) -> None:
    path = write(tmp_path, "oops.pem", PRIVATE)
    with pytest.raises(ConfigError, match="public key") as refused:
        load_settings({"P2P_BANK_BANK_PUBLIC_KEYS": f"bank-a={path}"})
    assert SECRET_PART not in str(refused.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("bank.merchant_id", "P2P-DEV", "1-32 characters"),
        ("bank.platform_key_id", "", "1-64 characters"),
        ("bank.url", "ftp://bank", "http://"),
        ("bank.notify_url", "https://u:p@platform/bank/notify", "without credentials"),
        ("bank.timestamp_window_seconds", "10", "from 30 to 3600"),
        ("bank.read_timeout_seconds", "0", "> 0"),
        ("bank.max_connections", "0", "from 1 to 1000"),
        ("bank.query_min_interval_seconds", "7200", "must not exceed"),
        ("bank.doubt_age_seconds", "30", "an integer >= 60"),
        ("bank.reconcile_catch_up_days", "0", "from 1 to 31"),
        ("bank.reconcile_catch_up_days", "32", "from 1 to 31"),
        ("bank.item_attempts", "0", "from 1 to 10"),
        ("bank.item_retry_seconds", "0", "an integer >= 1"),
        ("bank.query_first_after_seconds", "100000", "at least bank.query_first_after_seconds"),
    ],
)
def test_bad_bank_values_are_refused_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings({}, {key: value})
    assert str(refused.value).split(":")[0].startswith("bank.")


def test_the_bank_gateway_needs_its_keys_unless_the_simulator_lends_its_own(
    tmp_path: Path,
) -> None:
    assert load_settings({}, {"payment.gateway": "bank"}).bank.platform_private_key is None
    with pytest.raises(ConfigError, match=r"bank\.platform_private_key: must be set"):
        load_settings({}, {"payment.gateway": "bank", "bank.simulator": "false"})
    settings = load_settings(
        {},
        {
            "payment.gateway": "bank",
            "bank.simulator": "false",
            "bank.platform_private_key": write(tmp_path, "p.pem", PRIVATE),
            "bank.bank_public_keys": {"bank-a": BANK_A_PUBLIC.decode()},
        },
    )
    assert settings.payment.gateway == "BANK"
    with pytest.raises(ConfigError, match=r"bank\.bank_public_keys: must be set"):
        load_settings(
            {},
            {
                "payment.gateway": "BANK",
                "bank.simulator": False,
                "bank.platform_private_key": PRIVATE.decode(),
            },
        )
