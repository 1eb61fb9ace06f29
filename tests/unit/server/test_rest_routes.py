"""Every REST path names one resource: a path parameter never takes a segment that another
route spells out, so each path reaches its own operations and Allow lists exactly theirs."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from server.rest import PREFIX, RestEndpoint

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@pytest.fixture(scope="module")
def routes(platform):
    """(the endpoint's routes, as it matches them: its URL map through the matches it keeps,
    {path template: {method: operation}}) of every operation."""
    endpoint = RestEndpoint(platform.facades, dispatcher=None, proxies=None, max_body_bytes=1024)
    templates: dict[str, dict[str, object]] = {}
    for f in platform.facades:
        for op in f.operations:
            methods = templates.setdefault(PREFIX + op.operation.rest.path, {})
            methods[op.operation.rest.method] = op
            if op.operation.rest.method == "GET":
                methods["HEAD"] = op  # werkzeug answers HEAD with the GET route
    return SimpleNamespace(match=endpoint._match), templates


def concrete(template: str) -> str:
    """The template with a valid value for each parameter (1: a whole number, an order no)."""
    return re.sub(r"\{\w+\}", "1", template)


def outcome(adapter, path: str, method: str):
    try:
        return adapter.match(path, method)[0]
    except MethodNotAllowed as e:
        return frozenset(e.valid_methods)
    except NotFound:
        return None


def test_every_path_reaches_its_own_operations_and_allows_exactly_their_methods(routes):
    # /messages/read is POST-only and /messages/{messageId} GET: GET /messages/read must be
    # 405 with Allow: POST, not getMessage("read"); every pair of routes alike.
    adapter, templates = routes
    wrong = []
    for attempt in ("matched", "matched again (kept)"):
        for template, methods in sorted(templates.items()):
            path = concrete(template)
            for method in METHODS:
                got = outcome(adapter, path, method)
                expected = methods.get(method, frozenset(methods))
                if got is not expected and got != expected:
                    wrong.append(f"{attempt}: {method} {path}: {getattr(got, 'name', got)}")
    assert not wrong, "\n".join(wrong)


NOT_IDS = ["١", "１", "٣٢", "-1", "+1", "1.0", " 1", "12345678901234567890"]


@pytest.mark.parametrize("value", NOT_IDS)
def test_a_whole_number_parameter_takes_ascii_digits_only(routes, value):
    adapter, _ = routes
    assert outcome(adapter, f"{PREFIX}/loans/{value}", "GET") is None


def test_the_shadowed_paths_of_the_contract(routes):
    adapter, templates = routes
    read_all = templates[PREFIX + "/messages/read"]["POST"]
    assert outcome(adapter, PREFIX + "/messages/read", "POST") is read_all
    assert outcome(adapter, PREFIX + "/messages/read", "GET") == {"POST"}
    assert outcome(adapter, PREFIX + "/messages/7", "GET").name == "getMessage"
    assert outcome(adapter, PREFIX + "/payments/recharges", "GET") == {"POST"}
    assert outcome(adapter, PREFIX + "/payments/R2026", "GET").name == "getOrder"
    assert outcome(adapter, PREFIX + "/members/current", "GET").name == "getProfile"
    assert outcome(adapter, PREFIX + "/members/password-reset", "GET") == {"POST"}
    assert outcome(adapter, PREFIX + "/loans/expired/cancel", "POST") is None


def test_a_long_path_is_matched_and_not_kept(platform):
    """A path parameter has no length bound: a long path matches as any other, but what it
    matched is not kept, so what an endpoint keeps stays small whatever is asked."""
    endpoint = RestEndpoint(platform.facades, dispatcher=None, proxies=None, max_body_bytes=1024)
    long = PREFIX + "/payments/R" + "7" * 5000
    for _ in range(3):
        op, values = endpoint._match(long, "GET")
        assert (op.name, values) == ("getOrder", {"orderNo": "R" + "7" * 5000})
    assert endpoint._kept.cache_info().currsize == 0
    endpoint._match(PREFIX + "/payments/R2026", "GET")
    assert endpoint._kept.cache_info().currsize == 1
