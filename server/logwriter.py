"""A worker's log lines written by a thread of their own, a batch at a time.

Every call logs its access log line. Written as it is logged (the standard StreamHandler), a
line costs its thread the handler's lock and a write to the pipe or file behind standard
error, which gives up the interpreter's lock: with several threads serving at once, they
queued for both, and a line cost a busy worker far more than making it (bench/README.md).
``p2p serve`` logs through :class:`LogWriter` instead:

- the thread that logs formats its record, as before (what a JSON line takes from the call
  being served, ``current_call``, is that thread's), and appends the line to a deque: no
  lock, no system call;
- a writer thread takes every line there is, in order, each ``interval`` seconds, and writes
  them to standard error together.

The line every call logs, the access log's, is not even made by the thread that serves the
call: it hands the writer what the line says (:meth:`LogWriter.later`, a :class:`Later`), and
the writer makes the record and formats it in its turn, in its batch. A busy worker's call
costs 9-61 us of CPU less so, about 27 in the median (bench/README.md), though making the line
takes 6 us when timed alone; most likely the rest was the other serving threads' wait for the
interpreter's lock while the line was made.

A line reaches the stream within ``interval`` (0.05 s) of being logged. A worker that stops,
or exits in any other way short of being killed, writes what is left first
(:meth:`LogWriter.stop`, also run at exit); one killed without warning (SIGKILL, the kernel's
OOM killer) loses the lines of its last ``interval``. Should the stream take lines more slowly
than they are logged, at most ``max_lines`` wait; what is logged beyond them is dropped, and
counted in a line of its own once the writer catches up.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from server.logformat import current_call

INTERVAL_SECONDS = 0.05
MAX_LINES = 100_000


class Later(Protocol):
    """A record the writer makes and formats (:meth:`LogWriter.later`): what it says is taken
    when it is logged, every value one that does not change, so the record made later says
    exactly what it would have said then."""

    @property
    def levelno(self) -> int:
        """The record's level."""
        ...

    def record(self) -> logging.LogRecord:
        """The record, its time the time it was logged."""
        ...

    def call(self) -> Mapping[str, Any]:
        """The fields of the call it was logged in (``current_call`` then): what a JSON line
        takes from it."""
        ...


class LogWriter(logging.Handler):
    """A handler whose lines a thread of its own writes to the file descriptor ``fd``
    (standard error's) every ``interval`` seconds, once started."""

    def __init__(
        self,
        fd: int | None = None,
        *,
        interval: float = INTERVAL_SECONDS,
        max_lines: int = MAX_LINES,
        encoding: str | None = None,
        errors: str | None = None,
    ):
        super().__init__()
        err = sys.stderr
        self._fd = err.fileno() if fd is None else fd
        self._encoding = encoding or getattr(err, "encoding", None) or "utf-8"
        self._errors = errors or getattr(err, "errors", None) or "backslashreplace"
        self._interval = interval
        self._max = max_lines
        # deque.append and popleft are atomic: the logging threads and the writer share it
        # without a lock. A line, or what the writer makes one of (later()).
        self._lines: collections.deque[str | Later] = collections.deque()
        self._dropped = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle would take the handler's lock around emit: nothing here needs it.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self._max:
            self._dropped += 1  # an estimate when threads race here; only ever reported
            return
        self._lines.append(line)

    def later(self, item: Later) -> None:
        """Log ``item``, its record made and formatted by the writer thread (or whichever
        flushes) in its place among the lines: for a line logged on every call, which then
        costs the thread serving it an append. The handler's level and filters apply to it as
        to any record; nothing of the logger it names is consulted (the caller has asked it
        whether it logs that level)."""
        if item.levelno < self.level:
            return
        if len(self._lines) >= self._max:
            self._dropped += 1
            return
        self._lines.append(item)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Write every line logged so far and stop the writer thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        atexit.unregister(self.stop)
        self._stopping.set()
        thread.join()
        self.flush()

    def flush(self) -> None:
        """Write the lines waiting, now, in the calling thread (the writer's, or one that
        stops it)."""
        lines: list[str] = []
        pop = self._lines.popleft
        try:
            while True:
                item = pop()
                line = item if isinstance(item, str) else self._made(item)
                if line is not None:
                    lines.append(line)
        except IndexError:
            pass
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            lines.append(self.format(_dropped(dropped)))  # a line like any other (JSON too)
        if lines:
            self._write(("\n".join(lines) + "\n").encode(self._encoding, self._errors))

    def _made(self, item: Later) -> str | None:
        """The line of ``item``'s record, formatted as it would have been where it was logged
        (``current_call`` its own); None when a filter drops it or it cannot be made or
        formatted (told as the logging module tells a handler's errors: the writer and the
        other lines go on)."""
        try:
            record = item.record()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": f"{type(item).__name__} not made"}))
            return None
        if not self.filter(record):
            return None
        token = current_call.set(item.call)
        try:
            return self.format(record)
        except Exception:
            self.handleError(record)
            return None
        finally:
            current_call.reset(token)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            pass  # nowhere left to say so: the stream is gone

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.flush()


def _dropped(count: int) -> logging.LogRecord:
    return logging.LogRecord(
        __name__,
        logging.WARNING,
        __file__,
        0,
        "log lines dropped, the stream taking them more slowly than they were logged: %d",
        (count,),
        None,
    )


def start(formatter: logging.Formatter, level: int | str) -> LogWriter:
    """The root logger's handlers replaced by a started :class:`LogWriter` of ``formatter``'s
    lines to standard error."""
    writer = LogWriter()
    writer.setFormatter(formatter)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(writer)
    root.setLevel(level)
    writer.start()
    return writer
