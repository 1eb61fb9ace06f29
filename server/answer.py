"""A call's successful answer as the endpoints write it: a body already made, a status and
the few headers the platform names itself, handed to the WSGI server as they are.

werkzeug's Response is general: it checks and copies its headers when it is made and again
when it is sent, and works out which headers the status and the request allow. For an answer
whose every header the platform writes, that was a tenth of a cached read's CPU
(bench/README.md). An Answer keeps the part of Response's interface the platform uses
(``status_code``, ``headers``' ``update`` and ``setdefault``, ``get_data``,
``make_sequence``, the WSGI call), so the pages, the documents and the errors stay werkzeug
Responses.
"""

from collections.abc import Iterable

from werkzeug.http import HTTP_STATUS_CODES


class Answer:
    """``body`` with ``status_code`` and ``headers``: each name as the platform spells it
    (one value each: no answer repeats a header). Content-Length is the body's; an answer to
    HEAD has no body, and a 204 neither body nor Content-Length, as werkzeug answers them."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, body: bytes, status_code: int, headers: dict[str, str]):
        self.body = body
        self.status_code = status_code
        self.headers = headers

    def get_data(self) -> bytes:
        return self.body

    def make_sequence(self) -> None:
        """Nothing to do: the body is made (a Response makes an iterated body here)."""

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        headers = list(self.headers.items())
        status = self.status_code
        if status != 204:
            headers.append(("Content-Length", str(len(self.body))))
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
        if status == 204 or environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [self.body]
