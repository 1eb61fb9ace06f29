"""server/body.py: a request's media type read once per Content-Type value, as werkzeug reads it."""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from server import body
from server.body import KEPT_LENGTH, media_type, request_media_type

VALUES = [
    "text/xml",
    "Text/XML; Charset=UTF-8",
    'application/soap+xml; charset=utf-8; action="urn:p2p/LoanFacade/getLoan"',
    "application/soap+xml;action=urn:a;action=urn:b",
    "application/json",
    'multipart/related; type="application/xop+xml"; boundary=x',
    "",
    "; charset=utf-8",
    "text/xml; charset",
]


@pytest.mark.parametrize("value", VALUES)
def test_it_reads_a_content_type_as_werkzeug_does(value) -> None:
    request = Request(EnvironBuilder(method="POST", headers={"Content-Type": value}).get_environ())
    mimetype, params = media_type(value)
    assert (mimetype, dict(params)) == (request.mimetype, request.mimetype_params)
    assert request_media_type(request) == (mimetype, params)


def test_short_values_are_kept_and_long_ones_read_every_time() -> None:
    body._kept.cache_clear()
    short = "text/xml; charset=utf-8"
    first = media_type(short)
    assert media_type(short) is first
    assert body._kept.cache_info().hits == 1

    long = "text/xml; x=" + "a" * KEPT_LENGTH
    assert media_type(long) == media_type(long)
    assert media_type(long) is not media_type(long)
    assert body._kept.cache_info().currsize == 1


def test_the_kept_parameters_cannot_be_changed_by_a_caller() -> None:
    _, params = media_type("text/xml; charset=utf-8")
    with pytest.raises(TypeError):
        params["charset"] = "latin-1"  # type: ignore[index]
    assert media_type("text/xml; charset=utf-8")[1]["charset"] == "utf-8"
