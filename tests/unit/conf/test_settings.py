"""Settings: defaults, the six layers in order, and refusal of anything unusable."""

import dataclasses
import ipaddress
import re
from decimal import Decimal
from pathlib import Path

import pytest

import conf
from conf import ConfigError, Settings, load_settings
from service.ocp.signing import generate_keypair


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "operator.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- defaults ---------------------------------------------------------------------------


def test_defaults_load_with_documented_values_and_types():
    settings = load_settings({})

    assert isinstance(settings, Settings)
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.trusted_proxies == ()
    assert settings.server.connection_limit == 100
    assert settings.server.channel_timeout == 60
    assert settings.server.request_timeout == 30.0
    assert settings.database.url == "sqlite:///var/p2p.db"
    assert settings.database.pool_timeout == 10.0
    assert settings.database.echo is False
    assert settings.cache.url == ""
    assert settings.security.argon2_time_cost == 28
    assert settings.security.argon2_memory_kib == 7168
    assert settings.security.argon2_concurrency == 1
    assert settings.loan.min_amount == Decimal("100.00")
    assert settings.loan.max_amount == Decimal("50000000.00")
    assert type(settings.loan.min_amount) is Decimal
    assert settings.api.default_page_size == 20
    assert settings.logging.level == "INFO"
    assert settings.transaction.max_retries == 3


def test_every_key_in_default_toml_has_a_comment_line_above_it():
    lines = (Path(conf.__file__).parent / "default.toml").read_text().splitlines()
    keys = [i for i, line in enumerate(lines) if re.match(r"[a-z_0-9]+ = ", line)]

    assert len(keys) == len(load_settings({}).describe())
    for i in keys:
        assert lines[i - 1].startswith("# "), f"no comment above {lines[i]!r}"


def test_settings_are_frozen():
    settings = load_settings({})

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]


def test_none_environ_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("P2P_SERVER_THREADS", "7")
    monkeypatch.delenv("P2P_ENV", raising=False)
    monkeypatch.delenv("P2P_CONFIG", raising=False)
    monkeypatch.delenv("PORT", raising=False)

    assert load_settings().server.threads == 7


# --- layers -----------------------------------------------------------------------------

# (layers applied, security.argon2_time_cost, server.port); each layer sets both keys except
# P2P_ENV=test (argon2 only) and PORT (port only).
LAYERS = [
    (0, 28, 8080),  # default.toml
    (1, 1, 8080),  # conf/test.toml
    (2, 5, 8001),  # P2P_CONFIG
    (3, 7, 8002),  # P2P_<SECTION>_<KEY>
    (4, 7, 8003),  # PORT
    (5, 9, 8004),  # overrides
]


@pytest.mark.parametrize(("upto", "time_cost", "port"), LAYERS)
def test_each_layer_overrides_the_one_before(tmp_path, upto, time_cost, port):
    environ: dict[str, str] = {}
    overrides: dict[str, object] = {}
    if upto >= 1:
        environ["P2P_ENV"] = "test"
    if upto >= 2:
        environ["P2P_CONFIG"] = write(
            tmp_path, "[security]\nargon2_time_cost = 5\n[server]\nport = 8001\n"
        )
    if upto >= 3:
        environ["P2P_SECURITY_ARGON2_TIME_COST"] = "7"
        environ["P2P_SERVER_PORT"] = "8002"
    if upto >= 4:
        environ["PORT"] = "8003"
    if upto >= 5:
        overrides = {"security.argon2_time_cost": 9, "server.port": 8004}

    settings = load_settings(environ, overrides)

    assert settings.security.argon2_time_cost == time_cost
    assert settings.server.port == port


def test_p2p_env_test_picks_fast_hashing_and_keeps_other_defaults():
    settings = load_settings({"P2P_ENV": "test"})

    assert settings.security.argon2_time_cost == 1
    assert settings.security.argon2_memory_kib == 8192
    assert settings.security.argon2_parallelism == 1
    assert settings.security.token_ttl_seconds == 7200
    assert settings.database.url == "sqlite:///var/p2p.db"


def test_production_sample_describes_the_production_layout(tmp_path):
    with pytest.raises(ConfigError, match=r"bank\.platform_private_key: must be set"):
        load_settings({"P2P_ENV": "production"})  # never the simulator's keys
    private, public = generate_keypair()
    (tmp_path / "platform.pem").write_bytes(private)
    (tmp_path / "bank.pub.pem").write_bytes(public)
    operator = {  # what the operator sets outside the sample
        "P2P_BANK_PLATFORM_PRIVATE_KEY": str(tmp_path / "platform.pem"),
        "P2P_BANK_BANK_PUBLIC_KEYS": f"bank-2026a={tmp_path / 'bank.pub.pem'}",
    }
    settings = load_settings({"P2P_ENV": "production", **operator})

    assert settings.database.url == "mysql+mysqldb://p2p:CHANGE_ME@127.0.0.1:3306/p2p"
    assert settings.cache.url == "redis://127.0.0.1:6379/0"
    assert settings.server.public_url == ""  # the balancer's address, from its headers
    assert settings.server.trusted_proxies == (ipaddress.ip_network("127.0.0.1"),)
    assert (settings.server.connection_limit, settings.server.channel_timeout) == (50, 15)
    # Jobs queue in a Redis database of their own; supervisord runs the workers and beat.
    assert settings.jobs.broker_url == "redis://127.0.0.1:6379/1"
    assert settings.jobs.embedded_worker is False
    # The depository bank for real: no simulator, and the query on doubt on beat.
    assert (settings.payment.gateway, settings.bank.simulator) == ("BANK", False)
    assert "bank.query_due" in settings.jobs.schedule
    assert settings.sentry.environment == "production"


def test_the_production_layouts_variables_are_not_settings():
    layout = {"P2P_LAYOUT_WORKERS": "4", "P2P_LAYOUT_BALANCER": "0.0.0.0:80"}
    assert load_settings(layout) == load_settings({})


def test_sentry_files_errors_under_p2p_env_unless_a_layer_names_another(tmp_path):
    assert load_settings({}).sentry.environment == "development"
    assert load_settings({"P2P_ENV": "test"}).sentry.environment == "test"
    operator = write(tmp_path, '[sentry]\nenvironment = "staging"\n')
    named = load_settings({"P2P_ENV": "test", "P2P_CONFIG": operator})
    assert named.sentry.environment == "staging"
    variable = {"P2P_ENV": "test", "P2P_SENTRY_ENVIRONMENT": "perf"}
    assert load_settings(variable).sentry.environment == "perf"


def test_missing_environment_file_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"staging\.toml"):
        load_settings({"P2P_ENV": "staging"})


def test_environment_name_cannot_reach_outside_conf():
    with pytest.raises(ConfigError, match="P2P_ENV"):
        load_settings({"P2P_ENV": "../setup"})


def test_missing_operator_file_is_an_error_naming_it(tmp_path):
    missing = str(tmp_path / "nowhere.toml")

    with pytest.raises(ConfigError, match=r"nowhere\.toml"):
        load_settings({"P2P_CONFIG": missing})


def test_malformed_operator_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"operator\.toml"):
        load_settings({"P2P_CONFIG": write(tmp_path, "[server\nport = 1\n")})


def test_environment_strings_are_parsed_to_each_type():
    settings = load_settings(
        {
            "P2P_DATABASE_ECHO": "yes",
            "P2P_DATABASE_POOL_TIMEOUT": "2.5",
            "P2P_LOAN_MIN_AMOUNT": "50.5",
            "P2P_LOGGING_LEVEL": "debug",
            "P2P_CACHE_KEY_PREFIX": "",
        }
    )

    assert settings.database.echo is True
    assert settings.database.pool_timeout == 2.5
    assert settings.loan.min_amount == Decimal("50.50")
    assert settings.logging.level == "DEBUG"
    assert settings.cache.key_prefix == ""


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("0", False), ("No", False)])
def test_environment_booleans_accept_1_0_yes_no(text, expected):
    assert load_settings({"P2P_DATABASE_ECHO": text}).database.echo is expected


def test_file_booleans_must_be_toml_booleans(tmp_path):
    with pytest.raises(ConfigError, match=r"^database\.echo: must be true or false"):
        load_settings({"P2P_CONFIG": write(tmp_path, '[database]\necho = "yes"\n')})


def test_string_overrides_are_parsed_like_the_command_line():
    settings = load_settings({}, {"server.port": "9001", "database.echo": "true"})

    assert settings.server.port == 9001
    assert settings.database.echo is True


# --- PORT -------------------------------------------------------------------------------


def test_port_variable_overrides_server_port():
    assert load_settings({"PORT": "9000"}).server.port == 9000


def test_empty_port_variable_is_ignored():
    assert load_settings({"PORT": ""}).server.port == 8080


def test_bad_port_variable_names_the_key_and_the_variable():
    with pytest.raises(ConfigError, match=r"^server\.port: .*'70000'.*PORT"):
        load_settings({"PORT": "70000"})


# --- refusals ---------------------------------------------------------------------------


def test_bad_value_message_names_key_problem_and_value():
    with pytest.raises(ConfigError) as caught:
        load_settings({"P2P_DATABASE_POOL_SIZE": "abc"})

    assert str(caught.value).startswith("database.pool_size: must be an integer >= 1, got 'abc'")
    assert "P2P_DATABASE_POOL_SIZE" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("server.port", 0),
        ("server.port", 65536),
        ("server.port", True),
        ("server.threads", 0),
        ("server.max_body_bytes", 1023),
        ("server.connection_limit", 9),
        ("server.connection_limit", 10_001),
        ("server.channel_timeout", 0),
        ("server.channel_timeout", 1.5),
        ("server.request_timeout", 0),
        ("server.host", ""),
        ("server.public_url", "ftp://example.com"),
        ("server.public_url", "https://example.com/?x=1"),
        ("server.public_url", "https://user:pw@example.com"),
        ("server.public_url", "/relative"),
        ("database.url", "postgresql://db/p2p"),
        ("database.url", "mysql+mysqldb:///p2p"),
        ("database.pool_size", 2.5),
        ("database.max_overflow", -1),
        ("database.pool_timeout", 0),
        ("database.pool_timeout", float("nan")),
        ("cache.url", "memcached://127.0.0.1"),
        ("cache.url", "redis://127.0.0.1:port/0"),
        ("security.token_ttl_seconds", 59),
        ("security.token_ttl_seconds", 2_592_001),
        ("security.argon2_parallelism", 0),
        ("security.argon2_concurrency", 0),
        ("security.argon2_concurrency", 65),
        ("loan.min_amount", "0"),
        ("loan.min_amount", "1.001"),
        ("loan.min_amount", "lots"),
        ("loan.max_raise_days", 366),
        ("api.max_page_size", 0),
        ("logging.level", "TRACE"),
        ("transaction.max_retries", 11),
        ("transaction.max_retries", 1.0),
    ],
)
def test_bad_value_in_overrides_is_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: must "):
        load_settings({}, {key: value})


def test_bad_value_in_a_file_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "[transaction]\nmax_retries = 99\n")

    with pytest.raises(ConfigError, match=r"^transaction\.max_retries: .*99.*operator\.toml"):
        load_settings({"P2P_CONFIG": path})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nprot = 8080\n", r"^server\.prot: unknown key"),
        ("[sever]\nport = 8080\n", r"^sever\.port: unknown section 'sever'"),
        ("port = 8080\n", r"^port: unknown section"),
        ("server = 8080\n", r"^server: must be a table"),
        ("[server.tls]\ncert = 'x'\n", r"^server\.tls: unknown key"),
    ],
)
def test_unknown_or_misplaced_names_in_a_file_are_refused(tmp_path, toml, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"P2P_CONFIG": write(tmp_path, toml)})


def test_unknown_key_in_overrides_is_refused():
    with pytest.raises(ConfigError, match=r"^database\.pool: unknown key"):
        load_settings({}, {"database.pool": 3})


def test_unknown_section_in_overrides_is_refused():
    with pytest.raises(ConfigError, match=r"^db\.url: unknown section"):
        load_settings({}, {"db.url": "sqlite://"})


def test_p2p_variable_matching_no_key_is_refused():
    with pytest.raises(ConfigError, match=r"^server\.prot: unknown key .*P2P_SERVER_PROT"):
        load_settings({"P2P_SERVER_PROT": "8080"})


def test_p2p_variable_matching_no_section_is_refused():
    with pytest.raises(ConfigError, match=r"^sever\.port: unknown section .*P2P_SEVER_PORT"):
        load_settings({"P2P_SEVER_PORT": "8080"})


def test_test_harness_variables_are_not_settings():
    settings = load_settings({"P2P_TEST_DATABASE_URL": "mysql+mysqldb://x@h/db", "PATH": "/bin"})

    assert settings.database.url == "sqlite:///var/p2p.db"


# --- money ------------------------------------------------------------------------------


def test_float_money_in_a_file_is_refused_and_asks_for_quotes(tmp_path):
    path = write(tmp_path, "[loan]\nmin_amount = 100.10\n")

    with pytest.raises(ConfigError, match=r"^loan\.min_amount: must be a quoted decimal"):
        load_settings({"P2P_CONFIG": path})


def test_quoted_money_is_an_exact_decimal(tmp_path):
    path = write(tmp_path, '[loan]\nmin_amount = "0.10"\nmax_amount = "1000"\n')

    settings = load_settings({"P2P_CONFIG": path})

    assert settings.loan.min_amount == Decimal("0.10")
    assert str(settings.loan.max_amount) == "1000.00"


def test_min_amount_above_max_amount_is_refused():
    with pytest.raises(ConfigError, match=r"^loan\.min_amount: must not exceed loan\.max_amount"):
        load_settings({"P2P_LOAN_MIN_AMOUNT": "600.00", "P2P_LOAN_MAX_AMOUNT": "500.00"})


def test_default_page_size_above_max_is_refused():
    with pytest.raises(ConfigError, match=r"^api\.default_page_size: "):
        load_settings({}, {"api.default_page_size": 101})


def test_argon2_memory_below_eight_per_lane_is_refused():
    with pytest.raises(ConfigError, match=r"^security\.argon2_memory_kib: "):
        load_settings({}, {"security.argon2_memory_kib": 8, "security.argon2_parallelism": 2})


# --- server -----------------------------------------------------------------------------


def test_trusted_proxies_parse_addresses_and_networks_from_a_file(tmp_path):
    path = write(tmp_path, '[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]\n')

    proxies = load_settings({"P2P_CONFIG": path}).server.trusted_proxies

    assert proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert ipaddress.ip_address("10.1.2.3") in proxies[1]


def test_trusted_proxies_from_the_environment_are_comma_separated():
    environ = {"P2P_SERVER_TRUSTED_PROXIES": "192.168.1.10, 172.16.0.0/12"}

    proxies = load_settings(environ).server.trusted_proxies

    assert proxies == (ipaddress.ip_network("192.168.1.10"), ipaddress.ip_network("172.16.0.0/12"))


@pytest.mark.parametrize("bad", ["10.0.0.300", "10.0.0.1/8", "proxy.local", ""])
def test_bad_trusted_proxy_is_refused(bad):
    with pytest.raises(ConfigError, match=r"^server\.trusted_proxies: .*" + re.escape(repr(bad))):
        load_settings({}, {"server.trusted_proxies": [bad]})


def test_public_url_loses_its_trailing_slash():
    settings = load_settings({"P2P_SERVER_PUBLIC_URL": "https://api.example.com/p2p/"})

    assert settings.server.public_url == "https://api.example.com/p2p"


# --- describe ---------------------------------------------------------------------------


def test_describe_is_flat_and_hides_url_passwords():
    settings = load_settings(
        {
            "P2P_DATABASE_URL": "mysql+mysqldb://p2p:s3cret@db.internal:3306/p2p",
            "P2P_CACHE_URL": "redis://:r3dis@cache.internal:6379/0",
            "P2P_SERVER_TRUSTED_PROXIES": "10.0.0.0/8",
        }
    )

    view = settings.describe()

    assert view["database.url"] == "mysql+mysqldb://p2p:***@db.internal:3306/p2p"
    assert view["cache.url"] == "redis://:***@cache.internal:6379/0"
    assert view["server.trusted_proxies"] == ["10.0.0.0/8"]
    assert view["loan.min_amount"] == "100.00"
    assert "s3cret" not in repr(view) and "r3dis" not in repr(view)
    assert set(view) >= {"server.port", "transaction.max_retries", "logging.level"}


def test_describe_leaves_urls_without_password_alone():
    view = load_settings({"P2P_CACHE_URL": "rediss://cache.internal:6380/1"}).describe()

    assert view["cache.url"] == "rediss://cache.internal:6380/1"
    assert view["database.url"] == "sqlite:///var/p2p.db"


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("https://0123abcdkey@o42.ingest.sentry.io/7", "https://***@o42.ingest.sentry.io/7"),
        ("http://0123abcdkey:legacysecret@127.0.0.1:9000/1", "http://***@127.0.0.1:9000/1"),
        ("", ""),
    ],
)
def test_describe_hides_the_sentry_dsn_key_in_its_user_part(dsn, shown):
    view = load_settings({"P2P_SENTRY_DSN": dsn}).describe()

    assert view["sentry.dsn"] == shown
    assert "0123abcdkey" not in repr(view) and "legacysecret" not in repr(view)


def test_refused_url_does_not_echo_its_password():
    with pytest.raises(ConfigError) as caught:
        load_settings({"P2P_DATABASE_URL": "postgresql://p2p:s3cret@db/p2p"})

    assert str(caught.value).startswith("database.url: ")
    assert "s3cret" not in str(caught.value)
    assert "p2p:***@db" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.01, "quoted decimal"),
        ("1", "fraction >= 0 and < 1"),
        ("-0.01", "fraction >= 0 and < 1"),
        ("0.00001", "at most 4 decimals"),
    ],
)
def test_a_fee_rate_is_an_exact_fraction(value, message) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        load_settings({}, {"loan.platform_fee_rate": value})
    assert str(e.value).startswith("loan.platform_fee_rate:")


def test_money_core_settings_load_exactly() -> None:
    s = load_settings(
        {}, {"repayment.penalty_daily_rate": "0.00033333", "repayment.penalty_to": "platform"}
    )
    assert s.repayment.penalty_daily_rate == Decimal("0.00033333")
    assert s.repayment.penalty_to == "PLATFORM"
    assert s.loan.platform_fee_rate == Decimal("0.0100")
    assert s.repayment.interest_fee_rate == Decimal("0.0000")  # no fee on interest by default


@pytest.mark.parametrize("value", ["0.12345", "1", "-0.1", "ten"])
def test_the_interest_fee_rate_is_an_exact_fraction_below_one(value) -> None:
    with pytest.raises(ConfigError, match="fraction") as e:
        load_settings({}, {"repayment.interest_fee_rate": value})
    assert str(e.value).startswith("repayment.interest_fee_rate:")
    rate = load_settings({}, {"repayment.interest_fee_rate": "0.1000"}).repayment
    assert rate.interest_fee_rate == Decimal("0.1000")


# --- jobs ------------------------------------------------------------------------------------


def test_the_default_schedule_runs_the_former_cron_jobs_the_outbox_sweeper_and_the_bank():
    jobs = load_settings({}).jobs

    assert jobs.broker_url == ""  # the embedded broker: no server to install
    assert jobs.embedded_worker is True
    assert jobs.timezone == "Asia/Shanghai"
    assert jobs.schedule == {
        "loan.close_expired": 600,
        "loan.mark_overdue": "5 * * * *",
        "outbox.sweep": 30,
        "bank.query_due": 30,
        "bank.reconcile": "30 4 * * *",
        "loyalty.evaluate_levels": "15 1 * * *",
        "loyalty.mature_experience": "20 * * * *",
        "loyalty.monthly_coupons": "30 0 1 * *",
        "marketing.pay_due": 300,
        "partner.purge": "40 3 * * *",
    }


def test_a_schedule_in_a_file_is_a_table_replacing_the_default(tmp_path):
    path = write(
        tmp_path, '[jobs]\nschedule = { "outbox.sweep" = 5, "loan.mark_overdue" = "5  0 * * *" }\n'
    )

    jobs = load_settings({"P2P_CONFIG": path}).jobs

    assert jobs.schedule == {"outbox.sweep": 5, "loan.mark_overdue": "5 0 * * *"}


def test_a_schedule_from_the_environment_is_name_equals_spec_separated_by_semicolons():
    jobs = load_settings(
        {"P2P_JOBS_SCHEDULE": "outbox.sweep=10; loan.mark_overdue=0,30 8 * * 1-5"}
    ).jobs

    assert jobs.schedule == {"outbox.sweep": 10, "loan.mark_overdue": "0,30 8 * * 1-5"}
    assert load_settings({"P2P_JOBS_SCHEDULE": ""}).jobs.schedule == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"outbox.sweep": 0}, "outbox.sweep: must be seconds"),
        ({"outbox.sweep": 1.5}, "outbox.sweep: must be seconds"),
        ({"outbox.sweep": True}, "outbox.sweep: must be seconds"),
        ({"outbox.sweep": "60 * * * *"}, "crontab string"),
        ({"outbox.sweep": "5 24 * * *"}, "crontab string"),
        ({"outbox.sweep": "* * 0 * *"}, "crontab string"),
        ({"outbox.sweep": "* * * * 7"}, "crontab string"),
        ({"outbox.sweep": "* * * *"}, "crontab string"),
        ({"outbox.sweep": "*/0 * * * *"}, "crontab string"),
        ({"outbox.sweep": "10-5 * * * *"}, "crontab string"),
        ({"outbox.sweep": "@daily"}, "crontab string"),
        ({"sweep": 5}, "must name jobs such as"),
        ({"Outbox.Sweep": 5}, "must name jobs such as"),
        ("outbox.sweep", "name=seconds-or-crontab"),
        (["outbox.sweep"], "must be a table"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_job(value, message):
    with pytest.raises(ConfigError, match=rf"^jobs\.schedule: .*{re.escape(message)}"):
        load_settings({}, {"jobs.schedule": value})


def test_the_time_zone_must_be_a_known_one():
    assert load_settings({}, {"jobs.timezone": "UTC"}).jobs.timezone == "UTC"
    with pytest.raises(ConfigError, match=r"^jobs\.timezone: must be a time zone name"):
        load_settings({}, {"jobs.timezone": "Asia/Beijing"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"jobs.visibility_timeout_seconds": 600},  # the longest retry wait is 600
        {
            "jobs.visibility_timeout_seconds": 900,
            "jobs.retry_backoff_max_seconds": 300,
            "jobs.max_eta_seconds": 900,
        },
    ],
)
def test_the_visibility_timeout_must_exceed_every_wait_a_worker_holds_a_job_for(overrides):
    with pytest.raises(ConfigError, match=r"^jobs\.visibility_timeout_seconds: must exceed"):
        load_settings({}, overrides)


def test_the_first_retry_wait_cannot_exceed_the_longest():
    with pytest.raises(ConfigError, match=r"^jobs\.retry_backoff_seconds: must not exceed"):
        load_settings({}, {"jobs.retry_backoff_seconds": 700})


def test_describe_hides_the_broker_password():
    view = load_settings({}, {"jobs.broker_url": "redis://:s3cret@10.0.0.5:6379/1"}).describe()

    assert view["jobs.broker_url"] == "redis://:***@10.0.0.5:6379/1"


def test_the_callback_schedule_is_read_from_a_list_or_a_variable() -> None:
    partner = load_settings({}).partner
    assert partner.callback_retry_seconds == (15, 60, 300, 1800, 7200, 21600)
    assert (partner.callback_connect_timeout_seconds, partner.callback_read_timeout_seconds) == (
        5.0,
        10.0,
    )
    variable = {"P2P_PARTNER_CALLBACK_RETRY_SECONDS": "1, 2,2"}
    assert load_settings(variable).partner.callback_retry_seconds == (1, 2, 2)


def test_the_partner_api_keeps_keys_a_month_and_callbacks_three() -> None:
    partner = load_settings({}).partner
    assert (partner.idempotency_key_days, partner.callback_retention_days) == (30, 90)
    with pytest.raises(ConfigError, match=r"partner\.callback_retention_days"):
        load_settings({}, {"partner.callback_retention_days": 0})


@pytest.mark.parametrize(
    "value", ["", "0", "15,10", "a,b", [], [15, 0], [1.5], [True], list(range(1, 22))]
)
def test_a_callback_schedule_that_is_not_rising_whole_seconds_is_refused(value) -> None:
    with pytest.raises(ConfigError, match=r"partner\.callback_retry_seconds: must be 1 to 20"):
        load_settings({}, {"partner.callback_retry_seconds": value})
