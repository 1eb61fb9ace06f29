"""server/sentry.py: the scrubbing of events, the reporters' interface, and who reports what.

What the SDK really sends is checked in tests/integration/test_sentry.py, against a local
endpoint; here the scrubber and the funnel's use of a reporter are checked on their own.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import pytest
import sentry_sdk
from werkzeug.test import Client

from server import pages
from server.app import Application
from server.dispatcher import Dispatcher, Invocation, standard_chain
from server.sentry import (
    FILTERED,
    ErrorReporter,
    NullReporter,
    SentryReporter,
    error_reporter,
    scrub_event,
    scrub_text,
)
from service import errors
from service.errors import CATALOGUE, BusinessError

MOBILE = "13912345678"
CARD = "6222020200112233445"
ID_NUMBER = "11010519491231002X"


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        (f"member {MOBILE} failed", [MOBILE]),
        ("member 139-1234-5678 / 139 1234 5678", ["1234"]),
        (f"member{MOBILE}: no account", [MOBILE]),
        (f"card {CARD}, card 6222 0202 0011 2233 445", ["6222", "2233"]),
        (f"id {ID_NUMBER}. id 110105194912310021", ["110105", "1002"]),
        ("{'password': 'Pa55 word', 'token': 'tok-1'}", ["Pa55", "tok-1"]),
        ('{"newPassword":"Pa55word","apiKey":"k-1"}', ["Pa55word", "k-1"]),
        ("login password=hunter22&mobile=x", ["hunter22"]),
        ("Authorization: Bearer eyJhbGciOi.abc-def", ["eyJhbGciOi"]),
        ("Authorization: Basic dXNlcjpwYXNz", ["dXNlcjpwYXNz"]),
        ("mysql+mysqldb://p2p:s3cret@db:3306/p2p", ["p2p:s3cret", "s3cret"]),
        ("DSN https://0123abcdkey@o1.ingest.sentry.io/7", ["0123abcdkey"]),
        (
            '<s:Header><wsse:Security xmlns:wsse="x"><wsse:UsernameToken>'
            "<wsse:Username>alice</wsse:Username><wsse:Password>pw12345678</wsse:Password>"
            "</wsse:UsernameToken></wsse:Security></s:Header>",
            ["alice", "pw12345678", "UsernameToken"],
        ),
        ('<w:Password Type="#PasswordText">pw12345678</w:Password>', ["pw12345678"]),
        ("<c:AuthToken><c:token>tok-123</c:token></c:AuthToken>", ["tok-123"]),
    ],
)
def test_scrub_text_removes_credentials_and_personal_numbers(text, secrets) -> None:
    clean = scrub_text(text)
    assert FILTERED in clean
    for secret in secrets:
        assert secret not in clean, clean


@pytest.mark.parametrize(
    "text",
    [
        "amount 1000.00 at 2026-03-01 08:30:00 for listing 42, page 3 of 100",
        "request soap-call-1 in LoanFacade.getLoan",
        "IntegrityError: UNIQUE constraint failed: member.mobile",
    ],
)
def test_scrub_text_leaves_ordinary_text_alone(text) -> None:
    assert scrub_text(text) == text


def test_scrub_event_scrubs_every_part_but_the_sdks_own_ids() -> None:
    event = {
        "event_id": "0123456789012345678901234567890a",
        "timestamp": "2026-11-26T20:31:04.460494Z",
        "contexts": {
            "trace": {"trace_id": "12345678901234567890123456789012"},
            "runtime": {"name": "CPython", "version": "3.11.7"},
        },
        "tags": {"request_id": "12345678901234abcdef012345678901", "protocol": "rest"},
        "message": f"member {MOBILE}",
        "logentry": {"message": "login %s", "params": [MOBILE]},
        "extra": {"password": "Pa55word", "idNumber": ID_NUMBER, "note": f"card {CARD}"},
        "request": {
            "url": "http://127.0.0.1/api/v1/members",
            "headers": {"Authorization": "Bearer tok-1", "X-Auth-Token": "tok-2", "Accept": "*/*"},
            "cookies": {"session": "s-1"},
            "data": {"mobile": MOBILE, "nickname": "alice"},
        },
        "breadcrumbs": {"values": [{"message": f"sms to {MOBILE}", "data": {"token": "t-3"}}]},
        "exception": {
            "values": [
                {
                    "type": "RuntimeError",
                    "value": f"failed for {MOBILE}",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "register",
                                "lineno": 10,
                                "vars": {"password": "'Pa55word'", "card": repr(CARD)},
                                "context_line": f'    mobile = "{MOBILE}"',
                            }
                        ]
                    },
                }
            ]
        },
    }

    clean = scrub_event(event, {})

    text = repr(clean)
    for secret in (MOBILE, CARD, ID_NUMBER, "Pa55word", "tok-1", "tok-2", "t-3", "s-1", "alice"):
        assert secret not in text, secret
    assert clean["event_id"] == event["event_id"]
    assert clean["timestamp"] == event["timestamp"]
    assert clean["contexts"] == event["contexts"]
    assert clean["tags"] == event["tags"]  # a server-made request id, not a card number
    assert clean["request"]["headers"]["Accept"] == "*/*"
    assert clean["request"]["url"] == event["request"]["url"]
    assert "data" not in clean["request"] and "cookies" not in clean["request"]
    assert clean["exception"]["values"][0]["type"] == "RuntimeError"
    assert clean["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] == 10
    assert event["message"] == f"member {MOBILE}"  # the SDK's own event is not modified


def test_a_caller_chosen_request_id_is_scrubbed_like_any_text() -> None:
    clean = scrub_event({"tags": {"request_id": MOBILE, "facade": "LoanFacade"}}, {})
    assert clean["tags"] == {"request_id": FILTERED, "facade": "LoanFacade"}


def test_both_reporters_keep_the_interface() -> None:
    wanted = inspect.signature(ErrorReporter.report)
    for reporter in (NullReporter, SentryReporter):
        assert inspect.signature(reporter.report) == wanted, reporter


def test_without_a_dsn_the_sdk_is_left_alone(monkeypatch) -> None:
    def init(*args, **kwargs):
        raise AssertionError("sentry_sdk.init called without a DSN")

    monkeypatch.setattr(sentry_sdk, "init", init)

    @dataclass
    class Off:
        dsn: str = ""
        environment: str = "test"
        release: str = ""

    assert isinstance(error_reporter(Off()), NullReporter)


def test_a_failing_sdk_never_reaches_the_caller(monkeypatch, caplog) -> None:
    def broken():
        raise OSError("SDK broken")

    monkeypatch.setattr(sentry_sdk, "new_scope", broken)
    SentryReporter().report(RuntimeError("x"), {"request_id": "r"})
    assert "could not report" in caplog.text


# -- who reports what -------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[BaseException, dict]] = []

    def report(self, exc: BaseException, tags) -> None:
        self.reports.append((exc, dict(tags)))


@dataclass
class FailingOperation:
    fail: BaseException
    roles: frozenset[str] | None = None
    partner_scope: str | None = None
    facade_name: str = "LoanFacade"
    name: str = "getLoan"
    fault_codes: frozenset[str] = frozenset(CATALOGUE)

    def invoke(self, args, principal, language):
        raise self.fail


def call(fail: BaseException, reporter: Recorder, resolved: bool = True) -> BusinessError:
    def resolve(inv: Invocation):
        if not resolved:
            raise fail
        inv.operation = FailingOperation(fail)
        return dict

    inv = Invocation(protocol="soap", request_id="rid-9", client_addr="10.0.0.1", resolve=resolve)
    with pytest.raises(BusinessError) as e:
        Dispatcher(standard_chain(authenticator=None, reporter=reporter)).dispatch(inv)
    return e.value


def test_the_funnel_reports_an_unexpected_exception_once_with_the_call_tags() -> None:
    recorder = Recorder()
    boom = RuntimeError("boom")
    assert call(boom, recorder).code == "INTERNAL_ERROR"
    assert recorder.reports == [
        (
            boom,
            {
                "request_id": "rid-9",
                "protocol": "soap",
                "facade": "LoanFacade",
                "operation": "getLoan",
            },
        )
    ]


def test_an_error_before_the_operation_is_known_is_reported_with_dashes() -> None:
    recorder = Recorder()
    call(KeyError("k"), recorder, resolved=False)
    [(_, tags)] = recorder.reports
    assert (tags["facade"], tags["operation"], tags["request_id"]) == ("-", "-", "rid-9")


@pytest.mark.parametrize(
    "business",
    [
        BusinessError(errors.LOAN_NOT_FOUND, "listing 9 does not exist"),
        BusinessError(errors.INTERNAL_ERROR),
    ],
)
def test_the_funnel_never_reports_a_business_error(business) -> None:
    recorder = Recorder()
    assert call(business, recorder) is business
    assert recorder.reports == []


def test_an_error_outside_the_chain_is_reported_by_the_app(platform, monkeypatch, caplog) -> None:
    def broken_health(*args, **kwargs):
        raise RuntimeError("health page broken")

    monkeypatch.setattr(pages, "health", broken_health)
    recorder = Recorder()
    response = Client(Application(platform, recorder)).get(
        "/health", headers={"X-Request-Id": "health-1"}
    )
    assert response.status_code == 500
    assert response.get_json()["code"] == "INTERNAL_ERROR"
    [(exc, tags)] = recorder.reports
    assert str(exc) == "health page broken"
    assert tags["request_id"] == "health-1" and tags["protocol"] == "-"
    assert any(r.levelno == logging.ERROR for r in caplog.records)
