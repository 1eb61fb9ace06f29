"""Idempotency-Keys of partner calls that write (README "Partner operations and callbacks").

A partner operation that writes needs an Idempotency-Key (REST header ``Idempotency-Key``,
SOAP ``PartnerSignature/idempotencyKey``; PARTNER_IDEMPOTENCY_KEY_MISSING otherwise). The key
is stored per (app, key) in ``partner_request`` with the operation, the digest of the request
(method, path, query and body digest: a retry's new nonce and timestamp do not change it) and
the first answer, in the transaction of the write, so the record exists exactly when the
write does: a call that failed leaves none and may be sent again. A repeat gets the first
answer; the same key with another request is PARTNER_IDEMPOTENCY_KEY_REUSED. A concurrent
duplicate waits on the unique key until the first commits, then retries its transaction.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from dao.partner_member import PartnerMemberRepository, PartnerRequestEntity
from service import errors
from service.errors import BusinessError
from service.partner.auth import PartnerPrincipal
from service.transaction import RetryTransaction

KEY = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
T = TypeVar("T")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not kept in an answer")


def dump(answer: Any) -> str:
    """An answer (a frozen dataclass of plain values) as the JSON kept with its key."""
    return json.dumps(dataclasses.asdict(answer), default=_plain, sort_keys=True)


def restore(cls: Any, data: dict) -> Any:
    """The answer of dataclass ``cls`` that :func:`dump` kept."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _value(hints[f.name], data[f.name]) for f in dataclasses.fields(cls)})


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_value(item, v) for v in value)
    if dataclasses.is_dataclass(hint):
        return restore(hint, value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is Decimal:
        return Decimal(value)
    return value


class PartnerRequests:
    """Claims and records Idempotency-Keys in the caller's transaction."""

    def __init__(self, tx):
        self._rows = PartnerMemberRepository(tx.session)

    def repeat(
        self, app_pk: int, caller: PartnerPrincipal, operation: str, cls: type[T]
    ) -> T | None:
        """The first answer when this is a repeat; None for a new key."""
        key = caller.idempotency_key
        if key is None or not KEY.match(key):
            raise BusinessError(errors.PARTNER_IDEMPOTENCY_KEY_MISSING)
        row = self._rows.request(app_pk, key)
        if row is None:
            return None
        if row.operation != operation or row.request_sha256 != caller.request_sha256:
            raise BusinessError(
                errors.PARTNER_IDEMPOTENCY_KEY_REUSED,
                f"Idempotency-Key {key} was used for another request",
            )
        return restore(cls, json.loads(row.answer))

    def record(
        self, app_pk: int, caller: PartnerPrincipal, operation: str, answer: object, now: datetime
    ) -> None:
        """Keep the key with the answer; the transaction must write both or neither."""
        try:
            self._rows.add(
                PartnerRequestEntity(
                    app_id=app_pk,
                    idempotency_key=caller.idempotency_key,
                    operation=operation,
                    request_sha256=caller.request_sha256,
                    answer=dump(answer),
                    created_at=now,
                )
            )
        except IntegrityError as e:
            raise RetryTransaction("Idempotency-Key claimed concurrently") from e
