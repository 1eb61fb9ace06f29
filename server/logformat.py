"""Log lines a caller cannot forge: the formatters of every ``p2p`` command's log.

A record may carry text a caller controls: an address from X-Forwarded-For, a path waitress
quotes, the text of an exception. Its line is written with every control character escaped
(``\\n``, ``\\r``, ``\\x1b``, ``\\u2028``), so one record is one line. A traceback keeps its
lines, for a person to read, but each is indented and escaped alike: no text an exception
quotes can start a line that looks like a record of its own, nor move the cursor.

``logging.format`` chooses the form: ``PLAIN`` (:class:`SafeFormatter`, for people) or
``JSON`` (:class:`JsonFormatter`, one JSON object a line, for a log collector). In JSON the
call a record was logged in (its request id, protocol, facade and operation: see
:data:`current_call`) and the access log's fields are fields of their own; a traceback is the
``exception`` field's text.
"""

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s %(message)s"
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


#: The fields of the call being served in this context (thread), as a function read when a
#: record is formatted (the operation is known only once the call is resolved); set by the
#: dispatcher's access log for the length of a call.
current_call: ContextVar[Callable[[], Mapping[str, Any]] | None] = ContextVar(
    "current_call", default=None
)

#: The attribute of a record (``extra={CALL_FIELDS: {...}}``) holding fields of its own: the
#: access log's outcome, duration, client and member.
CALL_FIELDS = "call_fields"


def _escaped(match: re.Match) -> str:
    c = match.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def escape(text: str) -> str:
    """``text`` on one line: every control character written as its escape."""
    return _CONTROL.sub(_escaped, text)


class SafeFormatter(logging.Formatter):
    """A record's line escaped; the lines of its traceback or stack indented and escaped."""

    def __init__(self, fmt: str = FORMAT):
        super().__init__(fmt)
        self._second = _Second(lambda s: time.strftime(self.default_time_format, time.localtime(s)))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Formatter.formatTime's text, the second's part made once a second rather than for
        # every record (every call logs one).
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return f"{self._second.text(record.created)},{int(record.msecs):03d}"

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        # The record's own line holds no line break now: whatever follows the first one is
        # the traceback or stack (even one another formatter cached on the record).
        line, _, more = super().format(record).partition("\n")
        return "\n  ".join([line, *map(escape, more.split("\n"))]) if more else line


class _Second:
    """The text of a whole second (``make(second)``), kept for as long as records fall in it.
    Threads share it: each reads the pair kept, or replaces it whole."""

    def __init__(self, make: Callable[[int], str]):
        self._make = make
        self._kept: tuple[int, str] = (-1, "")

    def text(self, created: float) -> str:
        second = int(created)
        kept = self._kept
        if kept[0] != second:
            kept = self._kept = (second, self._make(second))
        return kept[1]


def _utc_second(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


#: One encoder for every line: json.dumps with options of its own makes one a call.
_JSON = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))


def _json_escaped(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``timestamp`` (UTC, ISO 8601, milliseconds), ``level``,
    ``logger``, ``process``, ``message``; the call's ``requestId``, ``protocol``, ``facade``
    and ``operation`` when logged in one; the record's own call fields (the access log's
    ``outcome``, ``durationMs``, ``client``, ``member``); ``exception`` and ``stack`` as text.
    Non-ASCII text stays as it is; every control character, and the characters JSON leaves
    raw that some readers take for line breaks (DEL, C1, U+2028, U+2029), are escaped."""

    def __init__(self) -> None:
        super().__init__()
        self._second = _Second(_utc_second)

    def format(self, record: logging.LogRecord) -> str:
        when = f"{self._second.text(record.created)}.{int(record.msecs):03d}Z"
        entry: dict[str, Any] = {
            "timestamp": when,
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        call = current_call.get()
        if call is not None:
            entry.update(call())
        entry.update(getattr(record, CALL_FIELDS, {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        text = _JSON.encode(entry)
        return _CONTROL.sub(_json_escaped, text)


def formatter(form: str) -> logging.Formatter:
    """The formatter ``logging.format`` names: ``PLAIN`` or ``JSON``."""
    return JsonFormatter() if form == "JSON" else SafeFormatter()
