"""Reading a request body the same way on both protocols: one media type, UTF-8, bounded."""

import functools
from collections.abc import Mapping
from types import MappingProxyType

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.wrappers import Request

from service import errors
from service.errors import BusinessError

#: Content-Type values up to this long have their reading kept (clients send a handful of
#: values, every call); a longer one is read every time, so no caller can make the worker keep
#: much text.
KEPT_LENGTH = 256
KEPT_VALUES = 64


def media_type(content_type: str) -> tuple[str, Mapping[str, str]]:
    """A Content-Type value's media type, in lower case, and its parameters (read-only), as
    werkzeug reads them."""
    if len(content_type) <= KEPT_LENGTH:
        return _kept(content_type)
    return _read(content_type)


def request_media_type(request: Request) -> tuple[str, Mapping[str, str]]:
    """The request's media type and parameters (its Content-Type, which WSGI puts in
    CONTENT_TYPE)."""
    return media_type(request.environ.get("CONTENT_TYPE", ""))


def _read(content_type: str) -> tuple[str, Mapping[str, str]]:
    mimetype, params = parse_options_header(content_type)
    return mimetype.lower(), MappingProxyType(params)


_kept = functools.lru_cache(maxsize=KEPT_VALUES)(_read)


def read_body(request: Request, mimetype: str, limit: int) -> bytes:
    """The body of a request whose Content-Type is ``mimetype`` in UTF-8 (the default when no
    charset is given), at most ``limit`` bytes; else UNSUPPORTED_MEDIA_TYPE or
    PAYLOAD_TOO_LARGE. An empty body is MALFORMED_REQUEST."""
    sent, params = request_media_type(request)
    if sent != mimetype:
        raise BusinessError(errors.UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {mimetype}")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise BusinessError(errors.UNSUPPORTED_MEDIA_TYPE, "charset must be utf-8")
    request.max_content_length = limit
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise BusinessError(errors.PAYLOAD_TOO_LARGE) from None
    if not body.strip():
        raise BusinessError(errors.MALFORMED_REQUEST, "the request body is empty")
    return body
