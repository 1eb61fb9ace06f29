"""The walkthrough's REST client: every exchange printed, method, path, body, status and
answer, as a reader follows them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3

PREFIX = "/api/v1"


class DemoFailed(Exception):
    """The walk cannot go on: the server answered something the step did not expect."""


def pretty(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


class Wire:
    """REST calls against ``base_url``; ``say`` prints (the command's stdout)."""

    def __init__(self, base_url: str, say: Callable[[str], None] = print):
        self.base_url = base_url.rstrip("/")
        self.say = say
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=60), retries=False)

    def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 201),
        quiet: bool = False,
    ) -> Any:
        """``method`` ``/api/v1`` + ``path``; the decoded answer. DemoFailed unless the status
        is one of ``expect``; an error answer expected is returned as its body."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if not quiet:
            who = f"   (Authorization: Bearer {token[:8]}...)" if token else ""
            self.say(f"\n> {method} {PREFIX}{path}{who}")
            if body is not None:
                self.say(pretty(body))
        r = self.raw(method, self.base_url + PREFIX + path, body=data, headers=headers)
        answer = json.loads(r.data) if r.data else None
        if not quiet or r.status not in expect:
            self.say(f"< {r.status}" + (f"\n{pretty(answer)}" if answer is not None else ""))
        if r.status not in expect:
            raise DemoFailed(f"{method} {PREFIX}{path} answered {r.status}, expected {expect}")
        return answer

    def raw(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        try:
            return self._http.request(method, url, redirect=False, **kwargs)
        except urllib3.exceptions.HTTPError as e:
            raise DemoFailed(f"{url}: {e}") from None

    def note(self, text: str) -> None:
        self.say(f"\n# {text}")

    def section(self, title: str) -> None:
        self.say(f"\n\n=== {title} " + "=" * max(3, 70 - len(title)))
