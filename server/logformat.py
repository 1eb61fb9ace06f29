"""Log lines a caller cannot forge: the formatter of every ``p2p`` command's log.

A record may carry text a caller controls: an address from X-Forwarded-For, a path waitress
quotes, the text of an exception. Its line is written with every control character escaped
(``\\n``, ``\\r``, ``\\x1b``, ``\\u2028``), so one record is one line. A traceback keeps its
lines, for a person to read, but each is indented and escaped alike: no text an exception
quotes can start a line that looks like a record of its own, nor move the cursor.
"""

import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s %(message)s"
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


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

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        # The record's own line holds no line break now: whatever follows the first one is
        # the traceback or stack (even one another formatter cached on the record).
        line, _, more = super().format(record).partition("\n")
        return "\n  ".join([line, *map(escape, more.split("\n"))]) if more else line
