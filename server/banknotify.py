"""POST /bank/notify: the depository bank's notifications (docs/depository-protocol.md), outside
the facades.

The signature is verified over the raw bytes before anything is parsed, then the merchant and
the timestamp window (``HttpBankClient.verify_notification``); the notification is then
recorded and applied in one transaction (service/ocp/notifications.py), and only after its
commit is the signed acknowledgement answered. Nothing unsigned is ever accepted.

A refusal is never acknowledged: the bank retries, and the refusal is counted
(``p2p_bank_notifications_total{outcome}``) and logged, never with the body. 401: a missing
signature, an unknown key id (``unknown_key``), a bad signature, a stale timestamp; 400: a
malformed message or another merchant's; 404: an order the platform does not have; 409: an
amount or order type that differs from the order's (``mismatch``), a notifyId reused for other
content (``replayed``). Acknowledged: ``applied``, ``confirmed``, ``conflict`` (a person looks;
see service/ocp/alerts.py) and ``repeat``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from server.metrics import PlatformMetrics
from service.ocp import protocol
from service.ocp.orders import BankOrders, NotificationRefused
from service.ocp.signing import SignatureInvalid

if TYPE_CHECKING:
    from service.ocp.client import HttpBankClient

log = logging.getLogger("server.banknotify")

PATH = "/bank/notify"
#: A notification is a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024


def endpoint(components: dict, metrics: PlatformMetrics) -> BankNotifyEndpoint | None:
    """The endpoint of the platform's bank; None without one (payment.gateway SANDBOX)."""
    bank = components["bank"]
    return None if bank is None else BankNotifyEndpoint(bank, components["bank_client"], metrics)


class BankNotifyEndpoint:
    def __init__(self, bank: BankOrders, client: HttpBankClient, metrics: PlatformMetrics):
        self._bank = bank
        self._client = client
        self._metrics = metrics

    def __call__(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(status=405, headers={"Allow": "POST"})
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return self._refuse("too_large", 413, request)
        body = request.get_data(cache=False)
        if len(body) > MAX_BODY_BYTES:
            return self._refuse("too_large", 413, request)
        try:
            message = self._client.verify_notification(body, request.headers)
        except SignatureInvalid as refused:
            return self._refuse(refused.reason, 401, request)
        except protocol.StaleMessage:
            return self._refuse("stale", 401, request)
        except protocol.MessageInvalid as refused:
            return self._refuse(refused.reason, 400, request, refused.field)
        key_id = protocol.header(request.headers, protocol.KEY_ID_HEADER)
        try:
            ack = self._bank.notify(body, message, key_id)
        except NotificationRefused as refused:
            return self._refuse(refused.outcome, refused.http_status, request, str(refused))
        except protocol.MessageInvalid as refused:
            return self._refuse(refused.reason, 400, request, refused.field)
        except Exception:
            self._metrics.count_bank_notification("error")
            raise  # logged and reported by the application; the bank retries
        self._metrics.count_bank_notification(ack.outcome)
        return Response(ack.body, 200, headers=ack.headers)

    def _refuse(
        self, outcome: str, status: int, request: Request, detail: str | None = None
    ) -> Response:
        """Count and log the refusal (what, never the body) and answer it, unacknowledged."""
        self._metrics.count_bank_notification(outcome)
        log.warning(
            "bank notification refused (%s) from %s%s",
            outcome,
            request.remote_addr,
            f": {detail}" if detail else "",
        )
        body = json.dumps({"result": "REFUSED", "reason": outcome})
        return Response(body, status, mimetype="application/json")
