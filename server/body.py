"""Reading a request body the same way on both protocols: one media type, UTF-8, bounded."""

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from service import errors
from service.errors import BusinessError


def read_body(request: Request, mimetype: str, limit: int) -> bytes:
    """The body of a request whose Content-Type is ``mimetype`` in UTF-8 (the default when no
    charset is given), at most ``limit`` bytes; else UNSUPPORTED_MEDIA_TYPE or
    PAYLOAD_TOO_LARGE. An empty body is MALFORMED_REQUEST."""
    if request.mimetype != mimetype:
        raise BusinessError(errors.UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {mimetype}")
    charset = request.mimetype_params.get("charset", "utf-8").lower()
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
