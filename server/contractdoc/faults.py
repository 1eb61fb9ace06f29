"""The fault codes an operation's document lists, with when a caller meets them.

Operations do not declare their own fault codes yet (the WSDL lets every operation raise any
code of the catalogue). Until they do, an operation lists the codes its documentation names
and those every call can get from the framework. :func:`operation_faults` is the one place
that decides it: when operations declare their codes, it returns those instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facade.contract import MEMBERS
from server.registry import BoundOperation
from service import errors
from service.errors import CATALOGUE, ErrorCode

#: Says, in each operation's document, where its list of codes comes from.
PROVENANCE = (
    "Operations do not declare their own fault codes yet: this lists the codes this "
    "operation's documentation names and those every call can get; the error catalogue at the "
    "end has every code a call may meet."
)

_CODE = re.compile(r"\b[A-Z][A-Z_]*[A-Z]\b")


@dataclass(frozen=True)
class Fault:
    error: ErrorCode
    when: str


def _named(doc: str) -> list[ErrorCode]:
    """The catalogue codes a text names, in the order it names them, once each."""
    found = dict.fromkeys(c for c in _CODE.findall(doc) if c in CATALOGUE)
    return [CATALOGUE[c] for c in found]


def _framework(op: BoundOperation) -> list[Fault]:
    """What the dispatcher and the protocol adapters answer for any call of ``op``."""
    public = op.operation.public
    found = [
        Fault(
            errors.VALIDATION_FAILED,
            "the input breaks the contract: a field missing, unknown or invalid",
        ),
        Fault(errors.MALFORMED_REQUEST, "the request cannot be read (XML, JSON)"),
        Fault(
            errors.UNAUTHENTICATED,
            "credentials were sent and are not valid" if public else "no valid credentials",
        ),
    ]
    if not public and op.roles != MEMBERS:
        found.append(Fault(errors.FORBIDDEN, "the caller's role is not one of the operation's"))
    found += [
        Fault(errors.INTERNAL_ERROR, "an unexpected failure on our side"),
        Fault(errors.SERVICE_UNAVAILABLE, "something the call needs is down for a moment"),
    ]
    return found


def operation_faults(op: BoundOperation) -> list[Fault]:
    """The codes ``op`` can raise: those its documentation names, then the framework's."""
    named = [Fault(e, "named in the documentation above") for e in _named(op.operation.doc)]
    seen = {f.error.code for f in named}
    return named + [f for f in _framework(op) if f.error.code not in seen]
