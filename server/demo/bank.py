"""The depository bank's side of the walk: a member confirms an order on the bank's page (the
``authorizeUrl`` an answer carries; the development bank accepts any bank password), and the
walk waits for the bank to finish (it notifies the platform a moment later)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from server.demo.wire import DemoFailed, Wire

T = TypeVar("T")
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


def confirm_at_bank(wire: Wire, url: str) -> None:
    """Open the bank's page and confirm, as the member does in a browser."""
    wire.say(f"\n> GET {url}   (the member opens the bank's page)")
    page = wire.raw("GET", url)
    found = _TOKEN.search(page.data.decode("utf-8", "replace"))
    wire.say(f"< {page.status} (a form asking for the bank password)")
    if page.status != 200 or found is None:
        raise DemoFailed(f"the bank's page {url} asks for no confirmation ({page.status})")
    fields = {"token": found.group(1), "password": "any-bank-password", "action": "confirm"}
    wire.say(f"> POST {url}   token=...&password=***&action=confirm")
    answer = wire.raw("POST", url, fields=fields, encode_multipart=False)
    wire.say(f"< {answer.status} (confirmed: the bank processes the order)")
    if answer.status not in (200, 303):
        raise DemoFailed(f"the bank refused the confirmation ({answer.status})")


def until(
    wire: Wire, what: str, read: Callable[[], T], done: Callable[[T], bool], timeout: float = 90
) -> T:
    """Read until ``done`` (quietly, every half second), for at most ``timeout`` seconds."""
    wire.say(f"  ... waiting until {what}")
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"gave up waiting until {what} after {timeout:.0f} s")
        time.sleep(0.5)


def settle(wire: Wire, what: str, path: str, token: str, finished: set[str]) -> Any:
    """Follow a member-authorised order at ``path`` (a fund account, a payment order, an
    investment): confirm on the bank's page once it offers one, then wait until its status is
    one of ``finished``; its last answer, printed."""
    confirmed = False

    def read() -> Any:
        return wire.call("GET", path, token=token, quiet=True)

    def done(answer: Any) -> bool:
        nonlocal confirmed
        if answer["status"] in finished:
            return True
        if answer.get("authorizeUrl") and not confirmed:
            confirm_at_bank(wire, answer["authorizeUrl"])
            confirmed = True
        return False

    until(wire, what, read, done)
    return wire.call("GET", path, token=token)
