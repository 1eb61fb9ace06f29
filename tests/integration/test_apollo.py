"""The Apollo client against a local server speaking Apollo's HTTP API.

FakeApollo answers ``GET /configs/{appId}/{cluster}/{namespace}?releaseKey=`` (200 with the
namespace, 304 when the release key is the caller's, 404 for an unknown namespace) and holds
``GET /notifications/v2`` as a real long poll: it answers 200 with the new notification ids as
soon as a namespace the caller names is released, or 304 after `hold` seconds.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conf import load_settings
from conf.apollo import ApolloClient
from conf.live import LiveSettings
from dao import migrate
from server.app import Platform, create_platform
from service.errors import BusinessError
from service.member import MemberService
from service.p2p import LoanRequest, LoanService
from service.payment import PaymentService
from service.security import Principal
from tests.integration.service.support import onboard, sign_up

APP = "p2p-platform"
WAIT = 20.0  # longest wait, in seconds, for a published change to arrive (not a speed goal)


class FakeApollo:
    """Apollo's config service, in memory, on a loopback port."""

    def __init__(self, port: int = 0, hold: float = 0.5) -> None:
        self.hold = hold
        self._changed = threading.Condition()
        self._namespaces: dict[str, dict] = {}
        self._releases = 0
        self._stopping = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.answer(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def publish(self, configurations: dict[str, str], namespace: str = "application") -> None:
        """Release `namespace` with exactly `configurations` (as Apollo's portal does)."""
        with self._changed:
            self._releases += 1
            self._namespaces[namespace] = {
                "configurations": dict(configurations),
                "releaseKey": f"20260301-{self._releases}",
                "notificationId": self._releases,
            }
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # -- the API -----------------------------------------------------------------------
    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        if parts[0] == "configs" and len(parts) == 4:
            self._configs(handler, parts[1], parts[2], parts[3], query.get("releaseKey", ""))
        elif url.path == "/notifications/v2":
            self._notifications(handler, query)
        else:
            self._send(handler, 404)

    def _configs(self, handler, app: str, cluster: str, namespace: str, release: str) -> None:
        with self._changed:
            ns = self._namespaces.get(namespace)
        if app != APP or ns is None:
            self._send(handler, 404)
        elif ns["releaseKey"] == release:
            self._send(handler, 304)
        else:
            body = {
                "appId": app,
                "cluster": cluster,
                "namespaceName": namespace,
                "configurations": ns["configurations"],
                "releaseKey": ns["releaseKey"],
            }
            self._send(handler, 200, body)

    def _notifications(self, handler, query: dict[str, str]) -> None:
        if query.get("appId") != APP or "cluster" not in query:
            self._send(handler, 400)
            return
        asked = {
            n["namespaceName"]: n["notificationId"] for n in json.loads(query["notifications"])
        }

        def released() -> list[dict]:
            return [
                {"namespaceName": name, "notificationId": ns["notificationId"], "messages": {}}
                for name, ns in self._namespaces.items()
                if name in asked and ns["notificationId"] != asked[name]
            ]

        with self._changed:
            self._changed.wait_for(lambda: released() or self._stopping, timeout=self.hold)
            news = released()
        if news:
            self._send(handler, 200, news)
        else:
            self._send(handler, 304)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        if body is not None:
            handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        time.sleep(0.02)


@pytest.fixture
def apollo() -> Iterator[FakeApollo]:
    fake = FakeApollo()
    yield fake
    fake.stop()


@pytest.fixture
def root_level() -> Iterator[None]:
    """Put the root logger's level back after a test that lets Apollo change it."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def apollo_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="conf.apollo")
    return caplog


def logged(caplog: pytest.LogCaptureFixture, *words: str) -> bool:
    return any(all(w in r.getMessage() for w in words) for r in caplog.records)


def live_settings(meta_url: str, cache: Path, pinned: dict | None = None, **more) -> LiveSettings:
    overrides = {
        "database.url": f"sqlite:///{cache.parent / 'p2p.db'}",
        "apollo.meta_url": meta_url,
        "apollo.app_id": APP,
        "apollo.cache_dir": str(cache),
        "apollo.poll_timeout_seconds": "10",
        **(pinned or {}),
        **more,
    }
    return LiveSettings(load_settings({"P2P_ENV": "test"}, overrides), pinned=pinned or {})


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[Callable[..., tuple[LiveSettings, ApolloClient]]]:
    """Factory: a started ApolloClient on fresh LiveSettings (retrying quickly)."""
    started: list[ApolloClient] = []

    def factory(meta_url: str, pinned: dict | None = None) -> tuple[LiveSettings, ApolloClient]:
        live = live_settings(meta_url, tmp_path / "apollo", pinned)
        client = ApolloClient(live, fetch_timeout=2.0, retry_seconds=(0.05, 0.2))
        client.start()
        started.append(client)
        return live, client

    yield factory
    for client in started:
        client.stop()


# --- start-up ---------------------------------------------------------------------------


def test_start_up_reads_every_key_and_keeps_a_local_copy(apollo, tmp_path) -> None:
    apollo.publish(
        {
            "loan.platform_fee_rate": "0.0120",
            "loan.max_amount": "2000000.00",
            "server.threads": "7",  # not reloadable, but read at start-up like any key
        }
    )
    platform = create_platform(live_settings(apollo.url, tmp_path / "apollo"))
    try:
        settings = platform.settings.current()
        assert settings.loan.platform_fee_rate == Decimal("0.0120")
        assert settings.loan.max_amount == Decimal("2000000.00")
        assert settings.server.threads == 7
        assert settings.loan.min_amount == Decimal("100.00")  # from conf/default.toml
        assert platform.apollo is not None and platform.apollo.running
        copy = json.loads((tmp_path / "apollo" / f"{APP}+default+application.json").read_text())
        assert copy["configurations"]["loan.platform_fee_rate"] == "0.0120"
        assert copy["releaseKey"] == "20260301-1"
        assert not [p for p in (tmp_path / "apollo").iterdir() if p.name.startswith(".")]
    finally:
        platform.close()
    assert not platform.apollo.running


def test_no_meta_url_means_no_client(tmp_path) -> None:
    platform = create_platform(live_settings("", tmp_path / "apollo"))
    try:
        assert platform.apollo is None
    finally:
        platform.close()


def test_apollo_down_at_start_up_starts_from_the_local_copy(
    apollo, client_for, tmp_path, apollo_log
) -> None:
    apollo.publish({"loan.platform_fee_rate": "0.0150", "server.threads": "6"})
    _, client = client_for(apollo.url)
    client.stop()
    apollo.stop()

    dead = f"http://127.0.0.1:{free_port()}"
    platform = create_platform(live_settings(dead, tmp_path / "apollo"))
    try:
        assert platform.settings.loan.platform_fee_rate == Decimal("0.0150")
        assert platform.settings.server.threads == 6
    finally:
        platform.close()
    assert logged(apollo_log, "unreachable at start-up", "local copy", "application")


def test_apollo_down_at_start_up_without_a_local_copy_starts_from_conf(
    client_for, apollo_log
) -> None:
    port = free_port()
    live, _ = client_for(f"http://127.0.0.1:{port}")

    assert live.current() == live.base  # conf/ and the environment only
    assert logged(apollo_log, "unreachable at start-up", "no local copy", "application")

    # When Apollo answers again, the poller catches up on its own (reloadable keys).
    fake = FakeApollo(port=port)
    try:
        fake.publish({"loan.platform_fee_rate": "0.0110"})
        wait_until(
            lambda: live.loan.platform_fee_rate == Decimal("0.0110"), "the catch-up after Apollo"
        )
    finally:
        fake.stop()


# --- run time ---------------------------------------------------------------------------


@pytest.fixture
def platform_on_db(apollo, tmp_path) -> Iterator[Platform]:
    url = f"sqlite:///{tmp_path / 'p2p.db'}"
    migrate.upgrade(url)
    live = live_settings(apollo.url, tmp_path / "apollo", pinned={"database.url": url})
    platform = create_platform(live)
    yield platform
    platform.close()


def loan_request(borrower_id: int, amount: str) -> LoanRequest:
    return LoanRequest(
        title="周转借款",
        description="经营周转",
        borrower_id=borrower_id,
        amount=Decimal(amount),
        annual_rate=Decimal("12.5"),
        term_months=12,
        repayment_method="EQUAL_INSTALLMENT",
        min_invest=Decimal("100.00"),
        max_invest_per_investor=None,
        raise_days=7,
    )


def test_a_published_change_reaches_running_services_without_a_restart(
    apollo, platform_on_db, apollo_log, identities
) -> None:
    apollo.publish({"loan.max_amount": "50000.00"})
    platform = platform_on_db
    wait_until(lambda: platform.settings.loan.max_amount == Decimal("50000.00"), "first value")
    members, loans = platform.service(MemberService), platform.service(LoanService)
    payments = platform.service(PaymentService)
    operator = members.create_operator("13900000001", "secret123")
    borrower = sign_up(platform, "13900000002", "BORROWER")
    onboard(members, borrower.member_id, "BORROWER", "13900000002", identities())
    caller = Principal(member_id=operator.member_id, role="OPERATOR")
    investor = Principal(member_id=borrower.member_id, role="BORROWER")
    loans.publish_loan(loan_request(borrower.member_id, "30000.00"), caller)
    payments.recharge(Decimal("30000.00"), "r-1", investor)

    apollo.publish({"loan.max_amount": "20000.00"})
    wait_until(lambda: platform.settings.loan.max_amount == Decimal("20000.00"), "the change")

    with pytest.raises(BusinessError) as refused:
        loans.publish_loan(loan_request(borrower.member_id, "30000.00"), caller)
    assert refused.value.code == "VALIDATION_FAILED"
    assert "20000.00" in refused.value.message
    with pytest.raises(BusinessError):
        payments.recharge(Decimal("30000.00"), "r-2", investor)
    assert loans.publish_loan(loan_request(borrower.member_id, "20000.00"), caller).amount == (
        Decimal("20000.00")
    )
    assert logged(apollo_log, "loan.max_amount", "20000.00", "from Apollo")


def test_a_key_that_is_not_reloadable_is_not_applied_and_is_logged(
    apollo, client_for, apollo_log
) -> None:
    apollo.publish({"api.max_page_size": "100"})
    live, _ = client_for(apollo.url)
    threads = live.server.threads

    apollo.publish({"api.max_page_size": "50", "server.threads": str(threads + 5)})
    wait_until(lambda: live.api.max_page_size == 50, "the reloadable key")

    assert live.server.threads == threads
    assert logged(apollo_log, "server.threads", "needs a restart")


def test_a_bad_value_is_ignored_and_logged_with_its_key(apollo, client_for, apollo_log) -> None:
    apollo.publish({"loan.platform_fee_rate": "0.0120"})
    live, client = client_for(apollo.url)

    apollo.publish({"loan.platform_fee_rate": "twelve", "api.default_page_size": "25"})
    wait_until(lambda: live.api.default_page_size == 25, "the good key of the release")

    assert live.loan.platform_fee_rate == Decimal("0.0120")  # the last good value stays
    assert logged(apollo_log, "loan.platform_fee_rate", "twelve", "namespace application")

    # Values that pass one by one but fail a cross-key check: nothing of the release applies.
    apollo.publish({"loan.min_amount": "900.00", "loan.max_amount": "800.00"})
    wait_until(lambda: logged(apollo_log, "loan.min_amount", "must not exceed"), "refusal log")
    assert live.loan.min_amount <= live.loan.max_amount
    assert live.loan.max_amount == live.base.loan.max_amount
    assert client.running  # nothing above stopped the poller


def test_a_command_line_override_wins_over_apollo(apollo, client_for, apollo_log) -> None:
    apollo.publish({"loan.platform_fee_rate": "0.0300", "api.max_page_size": "90"})
    live, _ = client_for(apollo.url, pinned={"loan.platform_fee_rate": "0.0050"})

    assert live.loan.platform_fee_rate == Decimal("0.0050")
    assert live.api.max_page_size == 90
    apollo.publish({"loan.platform_fee_rate": "0.0400", "api.max_page_size": "80"})
    wait_until(lambda: live.api.max_page_size == 80, "the release")
    assert live.loan.platform_fee_rate == Decimal("0.0050")


def test_a_deleted_key_falls_back_to_conf(apollo, client_for) -> None:
    apollo.publish({"api.max_page_size": "70", "api.default_page_size": "7"})
    live, _ = client_for(apollo.url)
    assert live.api.default_page_size == 7

    apollo.publish({"api.max_page_size": "60"})
    wait_until(lambda: live.api.max_page_size == 60, "the release")
    assert live.api.default_page_size == live.base.api.default_page_size


def test_the_log_level_applies_to_the_root_logger(apollo, client_for, root_level) -> None:
    apollo.publish({"logging.level": "INFO"})
    live, _ = client_for(apollo.url)

    apollo.publish({"logging.level": "ERROR"})
    wait_until(lambda: live.logging.level == "ERROR", "the new level")
    assert logging.getLogger().level == logging.ERROR


def test_the_first_namespace_wins(apollo, tmp_path) -> None:
    apollo.publish({"api.max_page_size": "40"}, namespace="loan-ops")
    apollo.publish({"api.max_page_size": "30", "api.default_page_size": "3"})
    live = LiveSettings(
        load_settings(
            {"P2P_ENV": "test"},
            {
                "apollo.meta_url": apollo.url,
                "apollo.app_id": APP,
                "apollo.cache_dir": str(tmp_path / "apollo"),
                "apollo.namespaces": "loan-ops, application",
            },
        )
    )
    client = ApolloClient(live, fetch_timeout=2.0)
    client.start()
    try:
        assert live.api.max_page_size == 40
        assert live.api.default_page_size == 3
        apollo.publish({"api.max_page_size": "45"}, namespace="loan-ops")
        wait_until(lambda: live.api.max_page_size == 45, "the second namespace's release")
    finally:
        client.stop()


def test_readers_never_see_half_an_update(apollo, client_for) -> None:
    """min_amount/max_amount pairs alternate so that either key changing alone would give
    min > max; a reader looping over snapshots must never see that."""
    pairs = [("100.00", "1000.00"), ("5000.00", "90000.00")]
    apollo.publish(dict(zip(("loan.min_amount", "loan.max_amount"), pairs[0], strict=True)))
    live, _ = client_for(apollo.url)
    seen, broken, done = [0], [], threading.Event()

    def reader() -> None:
        while not done.is_set():
            whole = live.current()
            section = live.loan
            for loan in (whole.loan, section):
                if loan.min_amount > loan.max_amount:
                    broken.append((loan.min_amount, loan.max_amount))
            seen[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(30):
            low, high = pairs[(n + 1) % 2]
            apollo.publish({"loan.min_amount": low, "loan.max_amount": high})
            wait_until(lambda h=high: live.loan.max_amount == Decimal(h), f"update {n}")
    finally:
        done.set()
        for t in threads:
            t.join()
    assert broken == []
    assert seen[0] > 0
