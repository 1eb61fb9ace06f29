"""The simulator's HTTP face: the protocol's endpoints, the member's confirmation page and the
admin endpoints (faults on demand, the bank's books, closing the business day early) for tests
and for a newcomer to look at.

Admin endpoints answer only loopback clients, or, when an admin token is set, only requests
bearing it (``Authorization: Bearer <token>``) from anywhere.
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import ipaddress
import json
import time

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from banksim.bank import Bank, Reply
from banksim.faults import make_fault

_MAX_BODY = 64 << 10

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bank simulator</title></head>
<body><h1>{title}</h1>{body}</body></html>
"""


class BankApp:
    """The WSGI application of one simulated bank."""

    def __init__(self, bank: Bank, *, admin_token: str = ""):
        self._bank = bank
        self._admin_token = admin_token
        self._routes = Map(
            [
                Rule("/v1/orders", methods=["POST"], endpoint="submit"),
                Rule("/v1/orders/query", methods=["POST"], endpoint="query"),
                Rule("/v1/files/<day>/<file_type>", methods=["GET"], endpoint="file"),
                Rule("/authorize/<order_no>", methods=["GET", "POST"], endpoint="authorize"),
                Rule("/admin/faults", methods=["GET", "POST", "DELETE"], endpoint="faults"),
                Rule("/admin/accounts", methods=["GET"], endpoint="accounts"),
                Rule("/admin/orders", methods=["GET"], endpoint="orders"),
                Rule("/admin/close-day", methods=["POST"], endpoint="close_day"),
                Rule("/health", methods=["GET"], endpoint="health"),
            ]
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = _MAX_BODY
        try:
            endpoint, values = self._routes.bind_to_environ(environ).match()
            response = getattr(self, "_" + endpoint)(request, **values)
        except HTTPException as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)

    # --- the protocol -------------------------------------------------------------------

    def _submit(self, request: Request) -> Response:
        return _answer(self._bank.submit(request.get_data(cache=False), request.headers))

    def _query(self, request: Request) -> Response:
        return _answer(self._bank.query(request.get_data(cache=False), request.headers))

    def _file(self, request: Request, day: str, file_type: str) -> Response:
        environ = request.environ
        target = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        # PEP 3333 strings carry the request's bytes as latin-1.
        signed = target.encode("latin-1")
        return _answer(self._bank.daily_file(signed, request.headers, day, file_type))

    # --- the member's page --------------------------------------------------------------

    def _authorize(self, request: Request, order_no: str) -> Response:
        if request.method == "GET":
            row = self._bank.authorizing(order_no, request.args.get("token", ""))
            if row is None:
                raise NotFound("No order waits for a confirmation here.")
            what = f"{row['order_type']} {row['amount']}"
            form = (
                f"<p>Order {html.escape(order_no)}: {html.escape(what)}</p>"
                '<form method="post">'
                f'<input type="hidden" name="token" value="{html.escape(row["authorize_token"])}">'
                '<label>Bank password <input type="password" name="password"></label> '
                '<button name="action" value="confirm">Confirm</button> '
                '<button name="action" value="cancel">Cancel</button></form>'
            )
            return _page("Confirm with your bank password", form)
        confirm = request.form.get("action") != "cancel"
        if confirm and not request.form.get("password"):
            return _page("Enter your bank password", "<p>Go back and enter it.</p>", 400)
        row = self._bank.authorize(order_no, request.form.get("token", ""), confirm=confirm)
        if row is None:
            raise NotFound("No order waits for a confirmation here.")
        if row["return_url"]:
            return Response(status=303, headers={"Location": row["return_url"]})
        done = "Confirmed: the bank is processing it." if confirm else "Cancelled."
        return _page(done, f"<p>Order {html.escape(order_no)}.</p>")

    # --- admin --------------------------------------------------------------------------

    def _faults(self, request: Request) -> Response:
        self._admin_only(request)
        if request.method == "POST":
            try:
                spec = json.loads(request.get_data(cache=False))
                if not isinstance(spec, dict):
                    raise ValueError("the body must be a JSON object")
                fault = make_fault(
                    spec.get("orderType"),
                    spec.get("fault"),
                    spec.get("count", 1),
                    spec.get("seconds"),
                )
            except ValueError as exc:
                return _json({"error": str(exc)}, 400)
            self._bank.faults.arm(fault)
        elif request.method == "DELETE":
            self._bank.faults.clear()
        return _json({"faults": self._bank.faults.listed()})

    def _accounts(self, request: Request) -> Response:
        self._admin_only(request)
        return _json({"accounts": self._bank.accounts()})

    def _orders(self, request: Request) -> Response:
        self._admin_only(request)
        return _json({"orders": self._bank.orders(request.args.get("orderNo"))})

    def _close_day(self, request: Request) -> Response:
        self._admin_only(request)
        try:
            spec = json.loads(request.get_data(cache=False))
            if not isinstance(spec, dict) or not isinstance(spec.get("date"), str):
                raise ValueError('the body must be {"date": "YYYY-MM-DD"}')
            day = dt.date.fromisoformat(spec["date"])
            closed_at = self._bank.close_day(day)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"date": str(day), "closedAt": closed_at})

    def _health(self, request: Request) -> Response:
        return Response("ok\n", mimetype="text/plain")

    def _admin_only(self, request: Request) -> None:
        if self._admin_token:
            given = request.headers.get("Authorization", "").encode()
            allowed = hmac.compare_digest(given, f"Bearer {self._admin_token}".encode())
        else:
            try:
                allowed = ipaddress.ip_address(request.remote_addr or "").is_loopback
            except ValueError:
                allowed = False
        if not allowed:
            raise NotFound()


def _answer(reply: Reply) -> Response:
    if reply.hang_seconds:
        time.sleep(reply.hang_seconds)
    return Response(reply.body, status=reply.status, headers=dict(reply.headers))


def _json(document: object, status: int = 200) -> Response:
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        status=status,
        mimetype="application/json",
    )


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(
        _PAGE.format(title=html.escape(title), body=body), status=status, mimetype="text/html"
    )
