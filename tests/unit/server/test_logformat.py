"""The log formatter of the p2p command: one record, one line; no caller text can forge one."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from server import cli
from server.logformat import SafeFormatter, escape

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
