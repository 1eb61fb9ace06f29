"""HTTP headers that answers carry on both protocols, from what the contract and the services
declare: no caching of a response that holds a secret, and how long to wait before a retry."""

from server.registry import BoundOperation
from service.errors import BusinessError

#: For a response carrying a secret or a token (an operation declared ``sensitive``): no
#: browser or proxy cache may keep it; Pragma for HTTP/1.0 caches.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def success_headers(op: BoundOperation) -> dict[str, str]:
    """The headers of `op`'s successful answer beyond X-Request-Id."""
    return dict(NO_STORE) if op.operation.sensitive else {}


def error_headers(error: BusinessError) -> dict[str, str]:
    """Retry-After, in whole seconds, when the service told how long to wait."""
    return {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
