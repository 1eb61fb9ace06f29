"""The log formatters of the p2p command: one record, one line (plain, or a JSON object); no
caller text can forge one; in JSON a call's records carry its fields."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator

import pytest

from server import cli
from server.logformat import JsonFormatter, SafeFormatter, escape
from service.p2p import LoanService

FORGED = "2026-01-01 00:00:00,000 INFO 1 server.access forged OK"
HEAD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def record(msg: str, *args, exc_info=None, stack_info: str | None = None) -> logging.LogRecord:
    r = logging.LogRecord("server.test", logging.ERROR, __file__, 1, msg, args, exc_info)
    r.stack_info = stack_info
    return r


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x00\x1b[2J\x7f", "\\x00\\x1b[2J\\x7f"),
        ("\x85\u2028\u2029", "\\x85\\u2028\\u2029"),  # NEL and the Unicode line breaks
        ("plain ascii, 中文, é and a \\n typed as two characters", None),
    ],
)
def test_escape(text: str, escaped: str | None) -> None:
    assert escape(text) == (text if escaped is None else escaped)


def test_a_message_and_its_arguments_stay_on_one_line() -> None:
    line = SafeFormatter().format(record("client %s said %s", "1.2.3.4\n" + FORGED, "a\rb"))
    assert "\n" not in line and "\r" not in line
    assert line.endswith("client 1.2.3.4\\n" + FORGED + " said a\\rb")


def test_a_traceback_keeps_its_lines_indented_and_cannot_start_a_record() -> None:
    try:
        raise RuntimeError("bad input\n" + FORGED + "\x1b[1A")
    except RuntimeError:
        text = SafeFormatter().format(
            record("unexpected error in %s", "X.y", exc_info=sys.exc_info())
        )
    first, *rest = text.split("\n")
    assert HEAD.match(first) and first.endswith("unexpected error in X.y")
    assert rest[0] == "  Traceback (most recent call last):"
    assert any(line.startswith('    File "') for line in rest)
    assert "  RuntimeError: bad input" in rest
    assert "  " + FORGED + "\\x1b[1A" in rest  # the exception's own text: indented, escaped
    assert not any(HEAD.match(line) for line in rest)


def test_a_stack_is_indented_too() -> None:
    text = SafeFormatter().format(
        record("here", stack_info="Stack (most recent call last):\n" + FORGED)
    )
    assert text.split("\n")[1:] == ["  Stack (most recent call last):", "  " + FORGED]


def test_the_p2p_command_logs_through_it(monkeypatch) -> None:
    configured: dict = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: configured.update(kwargs))
    monkeypatch.setattr(cli, "cmd_check_ledger", lambda args, settings: 0)
    assert cli.main(["check-ledger", "--set", "database.url=sqlite://"]) == 0
    assert [type(h.formatter) for h in configured["handlers"]] == [SafeFormatter]


# -- JSON ------------------------------------------------------------------------------------


def test_a_json_record_is_one_object_on_one_line() -> None:
    r = record("client %s said %s", "1.2.3.4\n" + FORGED, "中文\x85\u2028\x7f\x1b[2J")
    r.levelname, r.process = "WARNING", 42
    line = JsonFormatter().format(r)
    assert len(line.splitlines()) == 1  # str.splitlines breaks at \x85 and \u2028 too
    assert "\\u0085\\u2028\\u007f\\u001b[2J" in line and "中文" in line
    entry = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.pop("timestamp"))
    assert entry == {
        "level": "WARNING",
        "logger": "server.test",
        "process": 42,
        "message": "client 1.2.3.4\n" + FORGED + " said 中文\x85\u2028\x7f\x1b[2J",
    }


def test_a_json_record_carries_its_traceback_as_a_field() -> None:
    try:
        raise RuntimeError("bad input\n" + FORGED)
    except RuntimeError:
        line = JsonFormatter().format(record("unexpected", exc_info=sys.exc_info()))
    assert "\n" not in line
    exception = json.loads(line)["exception"]
    assert exception.startswith("Traceback (most recent call last):\n")
    assert exception.endswith("RuntimeError: bad input\n" + FORGED)


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict]]]:
    """Reads every record the root logger took so far in the test, as the JSON log wrote it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_call_s_records_carry_its_fields(make_client, monkeypatch, json_log) -> None:
    def boom(self, loan_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(LoanService, "get_loan", boom)
    client = make_client()
    peer = {"REMOTE_ADDR": "192.0.2.7"}
    failed = client.get(
        "/api/v1/loans/7", headers={"X-Request-Id": "rid-json-1"}, environ_base=peer
    )
    missing = client.get("/api/v1/loans", query_string={"pageSize": "x"}, environ_base=peer)
    assert (failed.status_code, missing.status_code) == (500, 400)
    entries = json_log()
    call = {"requestId": "rid-json-1", "protocol": "rest", "facade": "LoanFacade"}
    [error] = [e for e in entries if e["logger"] == "server.dispatcher"]
    assert error | call == error and error["operation"] == "getLoan"
    assert error["level"] == "ERROR" and "RuntimeError: boom" in error["exception"]
    access = [e for e in entries if e["logger"] == "server.access"]
    assert [a | {"durationMs": 0} for a in access] == [
        {
            "timestamp": access[0]["timestamp"],
            "level": "INFO",
            "logger": "server.access",
            "process": os.getpid(),
            "message": access[0]["message"],
            **call,
            "operation": "getLoan",
            "outcome": "INTERNAL_ERROR",
            "durationMs": 0,
            "client": "192.0.2.7",
            "member": "-",
        },
        {
            "timestamp": access[1]["timestamp"],
            "level": "INFO",
            "logger": "server.access",
            "process": os.getpid(),
            "message": access[1]["message"],
            "requestId": missing.headers["X-Request-Id"],
            "protocol": "rest",
            "facade": "LoanFacade",
            "operation": "listLoans",
            "outcome": "VALIDATION_FAILED",
            "durationMs": 0,
            "client": "192.0.2.7",
            "member": "-",
        },
    ]
    assert all(isinstance(a["durationMs"], float) and a["durationMs"] >= 0 for a in access)
    # Outside a call a record has none of a call's fields.
    logging.getLogger("server.test").warning("after the calls")
    assert "requestId" not in json_log()[-1]


def test_the_p2p_command_logs_json_when_configured(monkeypatch) -> None:
    configured: dict = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: configured.update(kwargs))
    monkeypatch.setattr(cli, "cmd_check_ledger", lambda args, settings: 0)
    sets = ["--set", "database.url=sqlite://", "--set", "logging.format=json"]
    assert cli.main(["check-ledger", *sets]) == 0
    assert [type(h.formatter) for h in configured["handlers"]] == [JsonFormatter]


def at(created: float) -> logging.LogRecord:
    """A record made at ``created`` (seconds since the epoch)."""
    r = record("at a time")
    r.created = created
    r.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord makes it
    return r


#: Instants within one second, across the next, across a day and a year: each formatter keeps
#: the text of the last second it wrote, so these must never be given a stale one.
INSTANTS = [
    1_795_000_000.0004,
    1_795_000_000.5004,
    1_795_000_000.9994,
    1_795_000_001.0004,
    1_795_000_000.2504,  # back to an earlier second (threads log out of order)
    1_795_046_399.9994,
    1_795_046_400.0004,
    1_798_761_599.9994,  # 2026-12-31T23:59:59.999Z
    1_798_761_600.0004,
]


def test_plain_time_is_the_standard_formatter_s() -> None:
    formatter = SafeFormatter()
    for created in INSTANTS:
        r = at(created)
        assert formatter.formatTime(r) == logging.Formatter.formatTime(formatter, r)
    assert formatter.formatTime(at(INSTANTS[0]), "%H") == logging.Formatter.formatTime(
        formatter, at(INSTANTS[0]), "%H"
    )


def test_json_timestamp_is_utc_to_the_millisecond() -> None:
    formatter = JsonFormatter()
    for created in INSTANTS:
        stamp = json.loads(formatter.format(at(created)))["timestamp"]
        expected = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
        assert stamp == expected.replace("+00:00", "Z")
    assert json.loads(formatter.format(at(1_798_761_600.0004)))["timestamp"] == (
        "2027-01-01T00:00:00.000Z"
    )
