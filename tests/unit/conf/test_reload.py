"""Run-time settings: the reloadable keys, the [apollo] section, Apollo's layer over conf/
(conf.apollo.overlay) and the LiveSettings holder's one-reference swap."""

import dataclasses
import logging
import threading
from decimal import Decimal

import pytest

from conf import ConfigError, load_settings
from conf.apollo import changes, overlay
from conf.live import LiveSettings
from conf.settings import build_settings, flat_values, is_reloadable, parse_text

RELOADABLE = {
    "logging.level",
    "loan.min_amount",
    "loan.max_amount",
    "loan.max_raise_days",
    "loan.platform_fee_rate",
    "repayment.penalty_daily_rate",
    "repayment.penalty_to",
    "repayment.early_settlement_interest",
    "repayment.interest_fee_rate",
    "api.default_page_size",
    "api.max_page_size",
    "cache.loan_ttl_seconds",
    "cache.loan_list_ttl_seconds",
}


@pytest.fixture
def base():
    return load_settings({})


def remote(namespace="application", **values):
    """Apollo's view: dotted keys (written with __ for the dot) as text, with a namespace."""
    return {k.replace("__", "."): (v, namespace) for k, v in values.items()}


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger="conf.apollo")
    return caplog


def messages(caplog):
    return "\n".join(r.getMessage() for r in caplog.records)


# --- the table ---------------------------------------------------------------------------


def test_exactly_the_listed_keys_are_reloadable(base):
    assert {k for k in flat_values(base) if is_reloadable(k)} == RELOADABLE
    assert not is_reloadable("no.such_key")


def test_apollo_section_defaults_are_off(base):
    assert base.apollo.meta_url == ""
    assert base.apollo.cluster == "default"
    assert base.apollo.namespaces == ("application",)
    assert base.apollo.cache_dir == "var/apollo"
    assert base.apollo.poll_timeout_seconds == 90.0


def test_apollo_namespaces_from_text_and_their_checks():
    env = {"P2P_APOLLO_NAMESPACES": "application, loan-ops"}
    assert load_settings(env).apollo.namespaces == ("application", "loan-ops")
    for bad in ("", "a b", "../x"):
        with pytest.raises(ConfigError, match=r"^apollo\.namespaces: must be"):
            load_settings({"P2P_APOLLO_NAMESPACES": bad})


def test_a_meta_url_needs_an_app_id():
    with pytest.raises(ConfigError, match=r"^apollo\.app_id: must be set"):
        load_settings({}, {"apollo.meta_url": "http://apollo:8080"})
    with pytest.raises(ConfigError, match=r"^apollo\.meta_url: must be"):
        load_settings({}, {"apollo.meta_url": "ftp://apollo", "apollo.app_id": "p2p"})
    settings = load_settings({}, {"apollo.meta_url": "http://apollo:8080/", "apollo.app_id": "p2p"})
    assert settings.apollo.meta_url == "http://apollo:8080"


def test_parse_text_uses_the_keys_own_parser():
    assert parse_text("loan.platform_fee_rate", "0.0120", source="x") == Decimal("0.0120")
    assert parse_text("api.max_page_size", " 50 ", source="x") == 50
    with pytest.raises(ConfigError, match=r"^loan\.platform_fee_rate: must be .* \(from x\)$"):
        parse_text("loan.platform_fee_rate", "1.5", source="x")
    with pytest.raises(ConfigError, match=r"^loan\.nope: unknown key"):
        parse_text("loan.nope", "1", source="x")


def test_flat_values_and_build_settings_round_trip(base):
    assert build_settings(flat_values(base)) == base
    values = flat_values(base) | {"loan.min_amount": Decimal("9e9")}
    with pytest.raises(ConfigError, match=r"^loan\.min_amount: must not exceed"):
        build_settings(values)


# --- Apollo's layer ----------------------------------------------------------------------


def test_at_start_up_every_key_applies(base):
    new = overlay(
        base, base, remote(server__threads="9", loan__platform_fee_rate="0.02"), startup=True
    )
    assert new.server.threads == 9
    assert new.loan.platform_fee_rate == Decimal("0.02")


def test_at_run_time_only_reloadable_keys_apply(base, log):
    new = overlay(base, base, remote(server__threads="9", loan__platform_fee_rate="0.02"))
    assert new.server.threads == base.server.threads
    assert new.loan.platform_fee_rate == Decimal("0.02")
    assert "server.threads: changed in Apollo, but needs a restart" in messages(log)


def test_a_non_reloadable_key_read_at_start_up_stays_without_a_warning(base, log):
    started = overlay(base, base, remote(server__threads="9"), startup=True)
    new = overlay(base, started, remote(server__threads="9", api__max_page_size="50"))
    assert new.server.threads == 9
    assert new.api.max_page_size == 50
    assert "restart" not in messages(log)


def test_a_bad_value_keeps_the_running_value_and_is_logged(base, log):
    running = overlay(base, base, remote(loan__platform_fee_rate="0.02"))
    new = overlay(base, running, remote(loan__platform_fee_rate="lots", api__max_page_size="50"))
    assert new.loan.platform_fee_rate == Decimal("0.02")
    assert new.api.max_page_size == 50
    text = messages(log)
    assert "loan.platform_fee_rate: must be" in text
    assert "'lots'" in text
    assert "Apollo namespace application" in text


def test_unknown_keys_and_the_apollo_section_are_ignored(base, log):
    new = overlay(
        base, base, remote(loan__nope="1", other="x", apollo__meta_url="http://evil"), startup=True
    )
    assert new is base
    text = messages(log)
    assert "loan.nope: unknown key" in text
    assert "apollo.meta_url: cannot be set from Apollo" in text


def test_pinned_keys_keep_the_command_line_value(base):
    pinned_base = load_settings({}, {"loan.platform_fee_rate": "0.0050"})
    new = overlay(
        pinned_base,
        pinned_base,
        remote(loan__platform_fee_rate="0.03"),
        pinned=frozenset({"loan.platform_fee_rate"}),
        startup=True,
    )
    assert new.loan.platform_fee_rate == Decimal("0.0050")


def test_a_release_failing_a_cross_key_check_changes_nothing(base, log):
    running = overlay(base, base, remote(api__max_page_size="50"))
    new = overlay(base, running, remote(api__max_page_size="50", loan__min_amount="1e9"))
    assert new is running
    assert "loan.min_amount: must not exceed loan.max_amount" in messages(log)


def test_a_key_gone_from_apollo_falls_back_to_the_lower_layers(base):
    running = overlay(base, base, remote(api__default_page_size="7"))
    assert running.api.default_page_size == 7
    assert overlay(base, running, {}).api.default_page_size == base.api.default_page_size


def test_nothing_new_returns_the_same_snapshot(base):
    assert overlay(base, base, remote(api__max_page_size=str(base.api.max_page_size))) is base


def test_changes_hide_secrets(base):
    new = dataclasses.replace(
        base, database=dataclasses.replace(base.database, url="mysql+mysqldb://u:pw@h/db")
    )
    assert changes(base, new) == {
        "database.url": ("sqlite:///var/p2p.db", "mysql+mysqldb://u:***@h/db")
    }


# --- LiveSettings ------------------------------------------------------------------------


def test_live_settings_read_the_current_snapshot(base):
    live = LiveSettings(base, pinned={"database.url": "x"})
    assert live.current() is base and live.base is base
    assert live.loan is base.loan
    assert live.describe() == base.describe()
    assert live.pinned == frozenset({"database.url"})
    new = overlay(base, base, remote(api__max_page_size="50"))
    old, current = live.replace(lambda _: new)
    assert (old, current) == (base, new)
    assert live.api.max_page_size == 50
    assert live.base is base
    with pytest.raises(AttributeError):
        live.no_such_section  # noqa: B018


def test_swaps_are_whole(base):
    """Writers alternating pairs that would break min <= max if applied one key at a time;
    readers never see such a snapshot."""
    pairs = [remote(loan__min_amount="100", loan__max_amount="1000")]
    pairs.append(remote(loan__min_amount="5000", loan__max_amount="90000"))
    live, done, broken = LiveSettings(base), threading.Event(), []

    def reader():
        while not done.is_set():
            loan = live.current().loan
            if loan.min_amount > loan.max_amount:
                broken.append(loan)

    def writer(k):
        for n in range(300):
            values = pairs[(n + k) % 2]
            live.replace(lambda current, v=values: overlay(base, current, v))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert broken == []
