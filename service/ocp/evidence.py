"""Evidence of the exchanges with the depository bank, as they happened (dao/ocp/evidence.py).

Every request, answer, notification, query, query answer and acknowledgement is recorded with
its time, HTTP status, signature check and error; the first record of each (order, kind,
attempt) wins. A message is kept as the text it was, except that personal data in it (the
real name, ID, card and mobile numbers an OPEN_ACCOUNT or WITHDRAW request carries) is
masked as responses mask it; the exact bytes of such a message are kept beside it sealed to
the member (AES-256-GCM under ``security.secret_key``, service/pii.py), so a dispute can still
check the signature over them, and a database dump reveals nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dao.ocp import BankEvidenceEntity, BankOrderEntity, EvidenceRepository
from service import pii
from service.ocp import protocol
from service.pii import PersonalData

#: Message fields that are personal data, and how evidence shows them.
PERSONAL_FIELDS: dict[str, Callable[[str], str]] = {
    "realName": pii.mask_name,
    "idNumber": pii.mask_id_number,
    "cardNumber": lambda number: pii.mask_card(number[-4:]),
    "mobile": pii.mask_mobile,
}
#: Longest text kept of one message, in bytes (a TEXT column on MariaDB holds 65,535); a
#: larger answer is no protocol message, and its start is all a person needs to see that.
MAX_BODY_BYTES = 60_000
_ERROR_WIDTH = 200


@dataclass(frozen=True)
class Message:
    """One message as evidence: what was sent or received, and what its receiver made of it."""

    body: bytes | None
    at: datetime
    http_status: int | None = None
    signature: str | None = None  # VALID, INVALID, MISSING, UNKNOWN_KEY; None for ours
    key_id: str | None = None  # the bank key it was signed with (checked); None for ours
    error: str | None = None


def sent(exchange) -> Message:
    """What the platform sent in an exchange (service.ocp.client.Exchange)."""
    return Message(exchange.request, exchange.sent_at)


def received(exchange) -> Message:
    """What came back in an exchange: no body when nothing did (a timeout, a refused
    connection), with the time of the attempt then; the bank key it was signed with."""
    return Message(
        exchange.response,
        exchange.received_at or exchange.sent_at,
        http_status=exchange.http_status,
        signature=exchange.signature,
        key_id=exchange.key_id,
        error=exchange.error,
    )


class Evidence:
    """Writes evidence in the caller's transaction (never opens or commits one)."""

    def __init__(self, tx, clock: Callable[[], datetime], pii_box: PersonalData | None):
        self._repo = EvidenceRepository(tx.session)
        self._clock = clock
        self._pii = pii_box

    def record(self, order: BankOrderEntity, kind: str, attempt_key: str, message: Message) -> bool:
        """Record ``message`` as the order's evidence of ``kind`` for ``attempt_key`` unless
        there is one already (first write wins); whether it was recorded."""
        body, sealed = self._shown(message.body, order.member_id)
        return self._repo.add_once(
            BankEvidenceEntity(
                order_id=order.id,
                kind=kind,
                attempt_key=attempt_key,
                body=body,
                body_sealed=sealed,
                http_status=message.http_status,
                signature=message.signature,
                key_id=message.key_id,
                error=message.error[:_ERROR_WIDTH] if message.error else None,
                occurred_at=message.at,
                recorded_at=self._clock(),
            )
        )

    def of(self, order: BankOrderEntity) -> list[BankEvidenceEntity]:
        return self._repo.of_order(order.id)

    def _shown(self, raw: bytes | None, member_id: int | None) -> tuple[str | None, str | None]:
        """The text to keep of ``raw`` and, when it carried personal data, its sealed bytes
        (only a member's order carries any: ``member_id`` is None for the platform's own)."""
        if raw is None:
            return None, None
        masked = redact(raw)
        if masked is None:
            return _text(raw), None
        sealed = None
        if self._pii is not None:  # without the key no personal data was ever stored to send
            sealed = self._pii.seal(pii.BANK_MESSAGE, raw.decode("utf-8"), member_id)
        return _text(masked), sealed


def redact(raw: bytes) -> bytes | None:
    """``raw`` with its personal fields masked, re-encoded canonically; None when it is not a
    JSON object or carries no personal data (it is then kept as it is)."""
    try:
        message = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(message, dict):
        return None
    personal = {k for k, v in message.items() if k in PERSONAL_FIELDS and isinstance(v, str)}
    if not personal:
        return None
    return protocol.encode(
        {k: PERSONAL_FIELDS[k](v) if k in personal else v for k, v in message.items()}
    )


def _text(raw: bytes) -> str:
    return raw[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
