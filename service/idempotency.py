"""Request numbers: every money-moving call carries one; a repeat returns the first outcome.

A request number is the caller's opaque key, compared exactly as sent on every engine (the
columns holding it are dao.types.Identifier): no trimming, case or accent folding, so
'order-abc', 'ORDER-ABC', 'ordér-abc' and 'order-abc ' are four requests. Only a number that
is empty or all blank is refused.

``claim`` runs inside the caller's transaction. The record is written in the same transaction
as the money movement, so the two commit or roll back together: a request that failed leaves
no record and may be sent again. A concurrent duplicate waits on the unique key until the first
commits, then retries the whole transaction and finds the record.
"""

import hashlib
import json
import re
from collections.abc import Collection, Sequence
from decimal import Decimal

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from dao.idempotency import RequestRecordRepository
from service import errors
from service.errors import BusinessError, invalid
from service.transaction import RetryTransaction

MAX_REQUEST_NO = 64
#: A request number is compared byte for byte, so it may neither be blank nor begin or end
#: with a blank (service/text.py); the contract declares the same (facade.types.RequestNo).
REQUEST_NO_PATTERN = r"[^ \t\n\r]([^\t\n\r]*[^ \t\n\r])?"


class Claim:
    """A claimed request number; ``repeat`` is True when an earlier call already did the work,
    whose outcome ``ref_id`` names (``done`` records it for a first call)."""

    __slots__ = ("_record_id", "_records", "ref_id", "repeat")

    def __init__(
        self, records: RequestRecordRepository, record_id: int, ref_id: int | None, repeat: bool
    ) -> None:
        self._records = records
        self._record_id = record_id
        self.ref_id = ref_id
        self.repeat = repeat

    def done(self, ref_type: str, ref_id: int) -> None:
        """The outcome (an investment, an order, ...) into the record, in the same
        transaction."""
        self._records.set_ref(self._record_id, ref_type, ref_id)
        self.ref_id = ref_id


def _canonical(value) -> str:
    """Equal amounts fingerprint alike: 100, 100.0 and 100.00 are the same request."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def check_request_no(request_no: str) -> None:
    """VALIDATION_FAILED unless `request_no` is 1 to 64 characters, the first and the last
    not blank. A number is used as it came, never trimmed, so "a " is refused rather than
    taken for "a"."""
    if len(request_no) > MAX_REQUEST_NO or not re.fullmatch(REQUEST_NO_PATTERN, request_no):
        raise invalid(
            "requestNo",
            f"must have 1 to {MAX_REQUEST_NO} characters, the first and last not blank",
        )


def fingerprint(**content) -> str:
    text = json.dumps(content, sort_keys=True, default=_canonical, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def repeated(record: Row, request_no: str, operation: str, **content) -> int | None:
    """The outcome's ref_id of the claimed ``record`` a request repeats: REQUEST_NO_REUSED
    unless it was claimed for the same ``operation`` and ``content``."""
    if record.operation != operation or record.fingerprint != fingerprint(**content):
        raise BusinessError(
            errors.REQUEST_NO_REUSED, f"requestNo {request_no} was used for a different request"
        )
    return record.ref_id


class Idempotency:
    def __init__(self, tx):
        self._tx = tx
        self._records = RequestRecordRepository(tx.session)

    def claim(self, scope: str, request_no: str, operation: str, **content) -> Claim:
        """Claim ``request_no`` for ``operation`` with ``content``; a repeat with the same
        operation and content is a repeat, with other content REQUEST_NO_REUSED."""
        check_request_no(request_no)
        existing = self._records.find(scope, request_no)
        if existing is not None:
            ref_id = repeated(existing, request_no, operation, **content)
            return Claim(self._records, existing.id, ref_id, repeat=True)
        try:
            record_id = self._records.insert(scope, request_no, operation, fingerprint(**content))
        except IntegrityError as e:
            raise RetryTransaction("request number claimed concurrently") from e
        return Claim(self._records, record_id, None, repeat=False)

    def claimed(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Row]:
        """(scope, request number) -> its record, of those of ``keys`` claimed already (for
        ``repeated``), in one query; for requests made together (service/p2p/hotlisting.py)."""
        return self._records.find_many(keys)

    def record_done(
        self, operation: str, done: Sequence[tuple[str, str, dict, tuple[str, int]]]
    ) -> None:
        """Claim request numbers none of which ``claimed`` found, with their outcomes: a
        (scope, request number, content, (ref_type, ref_id)) each, in one INSERT. A number
        claimed meanwhile by another transaction is RetryTransaction, as ``claim``'s."""
        rows = [
            {
                "scope": scope,
                "request_no": request_no,
                "operation": operation,
                "fingerprint": fingerprint(**content),
                "ref_type": ref[0],
                "ref_id": ref[1],
            }
            for scope, request_no, content, ref in done
        ]
        try:
            self._records.insert_done(rows)
        except IntegrityError as e:
            raise RetryTransaction("request number claimed concurrently") from e
