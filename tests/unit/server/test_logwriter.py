"""server/logwriter.py: a worker's lines, formatted by the thread that logs them (or, handed
over as a Later, by the writer), written by a thread of their own a batch at a time, none lost,
none out of order."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import logwriter
from server.logformat import JsonFormatter, SafeFormatter, current_call
from server.logwriter import LogWriter

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def out(tmp_path) -> Iterator[tuple[int, Path]]:
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        yield fd, path
    finally:
        os.close(fd)


def record(message: str, *args, name: str = "server.test", exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, message, args, exc_info)


def eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def test_every_line_of_every_thread_is_written_once_in_its_order(out) -> None:
    fd, path = out
    writer = LogWriter(fd, interval=0.001)
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.start()

    def log(thread: int) -> None:
        for n in range(2000):
            writer.handle(record("t%d n%d", thread, n))

    threads = [threading.Thread(target=log, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()

    lines = path.read_text().splitlines()
    assert len(lines) == 8000
    for t in range(4):
        assert [line for line in lines if line.startswith(f"t{t} ")] == [
            f"t{t} n{n}" for n in range(2000)
        ]


def test_a_line_reaches_the_file_without_a_stop(out) -> None:
    fd, path = out
    writer = LogWriter(fd)
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.start()
    try:
        writer.handle(record("one"))
        eventually(lambda: path.read_text() == "one\n")
        writer.handle(record("two"))
        eventually(lambda: path.read_text() == "one\ntwo\n")
    finally:
        writer.stop()
    assert path.read_text() == "one\ntwo\n"


def test_logging_takes_no_lock(out) -> None:
    # Handler.handle would wait here for the handler's lock, held by another thread.
    fd, path = out
    writer = LogWriter(fd)
    writer.setFormatter(logging.Formatter("%(message)s"))
    logged = threading.Thread(target=writer.handle, args=(record("while held"),))
    with writer.lock:
        logged.start()
        logged.join(timeout=10)
        assert not logged.is_alive()
    writer.flush()
    assert path.read_text() == "while held\n"


def test_the_line_is_made_in_the_thread_that_logs(out) -> None:
    # What a JSON line takes from the call being served is that thread's, not the writer's.
    fd, path = out
    writer = LogWriter(fd)
    writer.setFormatter(JsonFormatter())
    writer.start()
    token = current_call.set(lambda: {"requestId": "rid-1", "operation": "getLoan"})
    try:
        writer.handle(record("inside the call"))
    finally:
        current_call.reset(token)
    writer.handle(record("after it"))
    writer.stop()
    inside, after = map(json.loads, path.read_text().splitlines())
    assert (inside["requestId"], inside["operation"]) == ("rid-1", "getLoan")
    assert "requestId" not in after


class Logged:
    """A Later: the record is made where the writer asks for it, and says in which thread."""

    levelno = logging.INFO

    def __init__(self, message: str, call: dict | None = None, args: tuple = ()):
        self.message, self.args, self._call, self.made_in = message, args, call or {}, None

    def record(self) -> logging.LogRecord:
        self.made_in = threading.current_thread().name
        return record(self.message, *self.args)

    def call(self) -> dict:
        return self._call


def test_a_later_line_is_made_by_the_writer_in_its_place(out) -> None:
    fd, path = out
    writer = LogWriter(fd, interval=0.001)
    writer.setFormatter(logging.Formatter("%(message)s"))
    later = Logged("later")
    writer.handle(record("before"))
    writer.later(later)
    writer.handle(record("after"))
    assert later.made_in is None  # nothing made by the thread that logged it
    writer.start()
    eventually(lambda: path.read_text() == "before\nlater\nafter\n")
    writer.stop()
    assert later.made_in == "log-writer"


def test_a_later_line_is_formatted_in_the_call_it_was_logged_in(out) -> None:
    fd, path = out
    writer = LogWriter(fd)
    writer.setFormatter(JsonFormatter())
    writer.later(Logged("in its call", {"requestId": "rid-9", "operation": "invest"}))
    token = current_call.set(lambda: {"requestId": "rid-of-the-flushing-thread"})
    try:
        writer.later(Logged("in none"))
        writer.flush()
    finally:
        current_call.reset(token)
    writer.handle(record("after"))
    writer.flush()
    in_call, in_none, after = map(json.loads, path.read_text().splitlines())
    assert (in_call["requestId"], in_call["operation"]) == ("rid-9", "invest")
    assert "requestId" not in in_none and "requestId" not in after


def test_a_later_line_meets_the_handler_s_level_filters_and_limit(out) -> None:
    fd, path = out
    writer = LogWriter(fd, max_lines=2)
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.setLevel(logging.WARNING)
    writer.later(Logged("below the level"))
    writer.setLevel(logging.INFO)
    writer.addFilter(lambda r: r.getMessage() != "filtered")
    for message in ("kept", "filtered", "beyond the limit"):
        writer.later(Logged(message))
    writer.flush()
    assert path.read_text().splitlines() == [
        "kept",
        "log lines dropped, the stream taking them more slowly than they were logged: 1",
    ]


def test_a_later_line_that_cannot_be_formatted_costs_only_itself(out, monkeypatch) -> None:
    fd, path = out
    writer = LogWriter(fd)
    writer.setFormatter(logging.Formatter("%(message)s"))
    told: list[logging.LogRecord] = []
    monkeypatch.setattr(writer, "handleError", told.append)
    writer.later(Logged("a number: %d", args=("not one",)))
    unmade = Logged("never made")
    unmade.record = lambda: 1 / 0  # type: ignore[method-assign]
    writer.later(unmade)
    writer.later(Logged("next"))
    writer.flush()
    assert [r.msg for r in told] == ["a number: %d", "Logged not made"]
    assert path.read_text() == "next\n"


def test_a_traceback_stays_with_its_record_escaped(out) -> None:
    fd, path = out
    writer = LogWriter(fd)
    writer.setFormatter(SafeFormatter("%(message)s"))
    try:
        raise RuntimeError("bad\nINFO forged line")
    except RuntimeError:
        writer.handle(record("failed", exc_info=sys.exc_info()))
    writer.handle(record("next"))
    writer.flush()
    lines = path.read_text().splitlines()
    assert lines[0] == "failed"
    assert lines[1] == "  Traceback (most recent call last):"
    assert lines[-3:-1] == ["  RuntimeError: bad", "  INFO forged line"]  # not a record
    assert lines[-1] == "next"
    assert all(line.startswith("  ") for line in lines[1:-1])


def test_lines_beyond_the_limit_are_dropped_and_counted(out) -> None:
    fd, path = out
    writer = LogWriter(fd, max_lines=3)
    writer.setFormatter(logging.Formatter("%(message)s"))
    for n in range(5):
        writer.handle(record("line %d", n))
    writer.flush()
    writer.handle(record("line 5"))
    writer.flush()
    assert path.read_text().splitlines() == [
        "line 0",
        "line 1",
        "line 2",
        "log lines dropped, the stream taking them more slowly than they were logged: 2",
        "line 5",
    ]


def test_the_dropped_lines_are_told_in_the_log_s_form(out) -> None:
    fd, path = out
    writer = LogWriter(fd, max_lines=1)
    writer.setFormatter(JsonFormatter())
    writer.handle(record("kept"))
    writer.handle(record("dropped"))
    writer.flush()
    kept, told = map(json.loads, path.read_text().splitlines())
    assert kept["message"] == "kept"
    assert (told["level"], told["logger"]) == ("WARNING", "server.logwriter")
    assert told["message"].startswith("log lines dropped") and told["message"].endswith(": 1")


def test_a_stream_that_is_gone_costs_the_caller_nothing() -> None:
    read, write = os.pipe()
    os.close(read)  # writing now fails with EPIPE (Python ignores SIGPIPE)
    writer = LogWriter(write)
    writer.setFormatter(logging.Formatter("%(message)s"))
    try:
        writer.handle(record("nobody reads this"))
        writer.flush()
    finally:
        os.close(write)


def test_text_is_written_in_the_stream_s_encoding(out) -> None:
    fd, path = out
    writer = LogWriter(fd, encoding="ascii", errors="backslashreplace")
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.handle(record("借款 ok"))
    writer.flush()
    assert path.read_bytes() == b"\\u501f\\u6b3e ok\n"


def test_stop_writes_what_is_left_and_stops_once(out) -> None:
    fd, path = out
    writer = LogWriter(fd, interval=3600)  # the writer never wakes by itself in this test
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.start()
    writer.handle(record("left"))
    writer.stop()
    writer.stop()
    assert path.read_text() == "left\n"


def test_a_process_that_exits_without_stopping_writes_its_lines_first(tmp_path) -> None:
    script = (
        "import logging\n"
        "from server import logwriter\n"
        "logwriter.start(logging.Formatter('%(levelname)s %(message)s'), 'INFO')\n"
        "for n in range(500):\n"
        "    logging.getLogger('x').info('line %d', n)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stderr.splitlines() == [f"INFO line {n}" for n in range(500)]


def test_start_makes_the_writer_the_root_logger_s_one_handler() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        writer = logwriter.start(SafeFormatter(), "WARNING")
        try:
            assert root.handlers == [writer]
            assert root.level == logging.WARNING
            assert isinstance(writer.formatter, SafeFormatter)
        finally:
            writer.stop()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
