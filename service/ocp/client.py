"""The platform's HTTP client of the depository bank (docs/depository-protocol.md).

Every call returns an ``Exchange``: the exact bytes sent and received, when, and what can be
read from them. No answer is data, not an exception: a timeout, a refused connection, a 5xx,
an unsigned or forged or stale answer all come back as an Exchange whose ``answer`` is None and
whose ``error`` says why, because for the order they all mean the same thing (nothing is known;
ask later). ``answer`` is set only for a body signed by a known bank key, in the timestamp
window, for our merchant id and about what was asked.

Connections go through one urllib3 pool per process with at most ``bank.max_connections`` to
the bank (callers beyond wait for a free one), separate connect and read timeouts, no transport
retries (a retry is the caller's decision, always with the same order number) and no redirects.
Requests carry ID and card numbers: no body is ever logged, and an Exchange's repr shows none.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    EmptyPoolError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)

from service.ocp import protocol
from service.ocp.signing import KeyRing, SignatureInvalid, Signer

log = logging.getLogger(__name__)

_MESSAGE_LIMIT = 1 << 20  # a JSON answer is a few hundred bytes
_FILE_LIMIT = 64 << 20  # a daily file: ~100 bytes a line, hundreds of thousands of lines
_SIGNATURE_STATES = {
    "missing": "MISSING",
    "unknown_key": "UNKNOWN_KEY",
    "bad_signature": "INVALID",
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Exchange:
    """The evidence of one HTTP exchange with the bank and its reading.

    ``signature`` is VALID, INVALID, MISSING or UNKNOWN_KEY for a response (None: none came);
    ``error`` is None for a trusted 200 answer, else a stable code with no personal data:
    pool_exhausted, connect_failed, connect_timeout (nothing was sent), read_timeout,
    connection_lost, transport, too_large (sent, fate unknown), http_<status>, signature,
    unreadable, wrong_merchant, stale, mismatch (an answer about something else).
    ``answer`` is the parsed body only when it can be trusted (signed by a known bank key, in
    the window, for our merchant); for an HTTP error status it is the bank's signed error.
    ``key_id`` is the bank key the response names when it is one the platform knows (the one
    that verified a VALID signature, or failed to), so the evidence shows which key it was;
    None when no response came or it named no known key (an unknown id is not kept)."""

    request: bytes = field(repr=False)
    response: bytes | None = field(repr=False)
    http_status: int | None
    sent_at: dt.datetime
    received_at: dt.datetime | None
    signature: str | None
    error: str | None
    answer: dict | None = field(repr=False)
    key_id: str | None = None


class BankClient(abc.ABC):
    """The depository bank's endpoints, each call one Exchange, and the platform's side of
    the bank's notifications (checking one, acknowledging it)."""

    @abc.abstractmethod
    def submit(self, order: Mapping[str, str]) -> Exchange:
        """Submit ``order`` (orderNo, orderType and the type's fields; notifyUrl and returnUrl
        default to the settings'); the answer, if any, is ACCEPTED or REFUSED."""

    @abc.abstractmethod
    def query(self, order_no: str) -> Exchange:
        """Ask the state of order ``order_no``."""

    @abc.abstractmethod
    def fetch_file(self, date: dt.date, file_type: str) -> Exchange:
        """Fetch the daily file ``file_type`` of business day ``date``; the answer is
        {"date", "fileType", "rows": [{column: text}]}, its header checked against its rows."""

    @abc.abstractmethod
    def verify_notification(self, body: bytes, headers) -> dict:
        """The notification in ``body`` (raw bytes as received) if it can be trusted and is
        well-formed; raises SignatureInvalid, MessageInvalid or StaleMessage otherwise."""

    @abc.abstractmethod
    def acknowledgement(self, notify_id: str) -> tuple[bytes, dict[str, str]]:
        """The signed body and headers acknowledging notification ``notify_id``."""


class HttpBankClient(BankClient):
    """The bank over HTTP, configured by the ``[bank]`` section of ``settings``."""

    def __init__(self, settings, *, clock: Callable[[], dt.datetime] = _utcnow):
        bank = settings.bank
        if bank.platform_private_key is None or not bank.bank_public_keys or not bank.url:
            raise ValueError("bank.url, platform_private_key and bank_public_keys must be set")
        self._merchant_id = bank.merchant_id
        self._notify_url = bank.notify_url
        self._return_url = bank.return_url
        self._window = bank.timestamp_window_seconds
        self._signer = Signer(bank.platform_key_id, bank.platform_private_key.data)
        self._keys = KeyRing({key_id: pem.data for key_id, pem in bank.bank_public_keys})
        self._clock = clock
        self._prefix = urlsplit(bank.url).path.rstrip("/")
        self._pool_timeout = bank.connect_timeout_seconds + bank.read_timeout_seconds
        self._pool = urllib3.connection_from_url(
            bank.url,
            maxsize=bank.max_connections,
            block=True,
            timeout=urllib3.Timeout(
                connect=bank.connect_timeout_seconds, read=bank.read_timeout_seconds
            ),
            retries=False,
        )

    def close(self) -> None:
        self._pool.close()

    # --- the endpoints ------------------------------------------------------------------

    def submit(self, order: Mapping[str, str]) -> Exchange:
        message = dict(order)
        order_no = protocol.check_order_no(message.get("orderNo"))
        message.setdefault("notifyUrl", self._notify_url)
        if self._return_url and message.get("orderType") in protocol.MEMBER_AUTHORISED:
            message.setdefault("returnUrl", self._return_url)
        exchange = self._post("/v1/orders", message)
        exchange = _expect(exchange, order_no, "result", (protocol.ACCEPTED, protocol.REFUSED))
        return _logged(exchange, "submit", order_no)

    def query(self, order_no: str) -> Exchange:
        protocol.check_order_no(order_no)
        exchange = self._post("/v1/orders/query", {"orderNo": order_no})
        exchange = _expect(exchange, order_no, "status", protocol.QUERY_STATUSES)
        return _logged(exchange, "query", order_no)

    def fetch_file(self, date: dt.date, file_type: str) -> Exchange:
        if file_type not in protocol.FILE_TYPES:
            raise ValueError(f"no such file type {file_type!r}")
        query = urlencode(
            {"merchantId": self._merchant_id, "timestamp": protocol.format_time(self._clock())}
        )
        target = f"{self._prefix}/v1/files/{date.isoformat()}/{file_type}?{query}"
        signed = target.encode("ascii")
        headers = protocol.signed_headers(self._signer, signed)
        del headers["Content-Type"]
        exchange = self._send("GET", target, signed, None, headers, _FILE_LIMIT)
        if exchange.http_status != 200 or exchange.signature != "VALID":
            exchange = self._read_message(exchange)
        else:
            try:
                rows = protocol.parse_file(file_type, exchange.response)
                answer = {"date": date.isoformat(), "fileType": file_type, "rows": rows}
                exchange = replace(exchange, answer=answer)
            except protocol.MessageInvalid:
                exchange = replace(exchange, error="unreadable")
        return _logged(exchange, "file", f"{date.isoformat()}/{file_type}")

    # --- notifications ------------------------------------------------------------------

    def verify_notification(self, body: bytes, headers) -> dict:
        message = protocol.read(
            self._keys,
            body,
            headers,
            merchant_id=self._merchant_id,
            now=self._clock(),
            window_seconds=self._window,
        )
        protocol.check_notification(message)
        return message

    def acknowledgement(self, notify_id: str) -> tuple[bytes, dict[str, str]]:
        body = protocol.encode(
            {
                "merchantId": self._merchant_id,
                "timestamp": protocol.format_time(self._clock()),
                "notifyId": notify_id,
                "result": protocol.ACK_OK,
            }
        )
        return body, protocol.signed_headers(self._signer, body)

    # --- one exchange -------------------------------------------------------------------

    def _post(self, path: str, fields: Mapping[str, str]) -> Exchange:
        message = {
            **fields,
            "merchantId": self._merchant_id,
            "timestamp": protocol.format_time(self._clock()),
        }
        body = protocol.encode(message)
        headers = protocol.signed_headers(self._signer, body)
        exchange = self._send("POST", self._prefix + path, body, body, headers, _MESSAGE_LIMIT)
        return self._read_message(exchange)

    def _send(
        self,
        method: str,
        target: str,
        evidence: bytes,
        body: bytes | None,
        headers: Mapping[str, str],
        limit: int,
    ) -> Exchange:
        """Send one request; the Exchange with what came back, or the transport error."""
        sent_at = self._clock()
        failed = Exchange(evidence, None, None, sent_at, None, None, None, None)
        try:
            response = self._pool.urlopen(
                method,
                target,
                body=body,
                headers=dict(headers),
                retries=False,
                redirect=False,
                preload_content=False,
                pool_timeout=self._pool_timeout,
            )
        except EmptyPoolError:
            return replace(failed, error="pool_exhausted")
        except NewConnectionError:
            return replace(failed, error="connect_failed")
        except ConnectTimeoutError:
            return replace(failed, error="connect_timeout")
        except ReadTimeoutError:
            return replace(failed, error="read_timeout")
        except (HTTPError, OSError):
            return replace(failed, error="connection_lost")
        failed = replace(failed, http_status=response.status)
        try:
            data = response.read(limit + 1)
        except ReadTimeoutError:
            return replace(failed, error="read_timeout")
        except (HTTPError, OSError):
            return replace(failed, error="connection_lost")
        finally:
            if response.tell() > limit:  # the rest is not read, so the connection is not reused
                response.close()
            response.release_conn()
        named = protocol.header(response.headers, protocol.KEY_ID_HEADER)
        key_id = named if named in self._keys.key_ids else None
        received = replace(failed, response=data, received_at=self._clock(), key_id=key_id)
        if len(data) > limit:
            return replace(received, error="too_large")
        try:
            protocol.verify(self._keys, data, response.headers)
        except SignatureInvalid as refused:
            status = response.status
            error = "signature" if status == 200 else f"http_{status}"
            return replace(received, signature=_SIGNATURE_STATES[refused.reason], error=error)
        return replace(received, signature="VALID")

    def _read_message(self, exchange: Exchange) -> Exchange:
        """The JSON reading of a signed exchange: answer, or the error that forbids one."""
        if exchange.signature != "VALID":
            return exchange
        error = None if exchange.http_status == 200 else f"http_{exchange.http_status}"
        try:
            answer = protocol.read_verified(
                exchange.response,
                merchant_id=self._merchant_id,
                now=self._clock(),
                window_seconds=self._window,
            )
        except protocol.MessageInvalid as refused:
            error = "wrong_merchant" if refused.reason == "wrong_merchant" else "unreadable"
            return replace(exchange, error=error)
        except protocol.StaleMessage:
            return replace(exchange, error="stale")
        return replace(exchange, error=error, answer=answer)


def _expect(exchange: Exchange, order_no: str, key: str, allowed) -> Exchange:
    """A 200 answer must be about ``order_no`` and say one of ``allowed`` in ``key``."""
    answer = exchange.answer
    if exchange.error is not None or answer is None:
        return exchange
    if answer.get("orderNo") != order_no or answer.get(key) not in allowed:
        return replace(exchange, error="mismatch", answer=None)
    return exchange


def _logged(exchange: Exchange, endpoint: str, subject: str) -> Exchange:
    # The order number or the file's day and type, the error code: never a body.
    if exchange.error is not None:
        log.warning(
            "bank %s %s: %s (HTTP %s, signature %s)",
            endpoint,
            subject,
            exchange.error,
            exchange.http_status,
            exchange.signature,
        )
    return exchange
