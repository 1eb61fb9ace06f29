"""Text as callers see it: what counts as blank, and how a value is shown in a message.

Blank is what XML calls white space: space, tab, CR and LF. The contract's patterns name
exactly these four (facade/types.py, NOT_BLANK), because XSD, ECMA-262 and Python agree on no
wider class; the service trims and tests with the same four, so a value the contract accepts
is never refused as blank here, nor the other way round. (``str.strip()`` would also take
no-break and ideographic spaces, which the contract cannot name.)
"""

import re
from decimal import Decimal

BLANK = " \t\n\r"
_BLANK_RUN = re.compile(f"[{BLANK}]+")


def is_blank(text: str) -> bool:
    return not text.strip(BLANK)


def trim(text: str) -> str:
    """`text` without blanks at either end."""
    return text.strip(BLANK)


def collapse(text: str) -> str:
    """`text` trimmed, every run of blanks inside made one space."""
    return _BLANK_RUN.sub(" ", trim(text))


def shown(value: object) -> str:
    """A value as a message to a caller shows it: a Decimal in plain notation (1000.00, never
    1E+3 or Decimal('1000.00')), anything else as ``str``. (A Decimal beyond any amount, of
    more than 100 digits written out, keeps its exponent rather than filling the message.)"""
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) < 100:
        return format(value, "f")
    return str(value)
