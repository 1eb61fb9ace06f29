"""Which language a call is answered in, from its Accept-Language header (RFC 9110 12.5.4).

Each language range's primary subtag names a language (``zh-CN``, ``zh-Hans`` and ``zh-TW``
all ask for Chinese, ``en-GB`` for English); a range's weight is its q-value (1 when it has
none, and a malformed one makes the range count for nothing). A served language weighs what
its highest range gives it, or, named by none, what ``*`` gives; weight 0 refuses it. The
heaviest wins, the earlier in the header on a tie; with nothing acceptable, or no header,
the default (service.language.DEFAULT). Never a 406: an answer in another language beats none.
"""

import functools
import re

from service.language import DEFAULT, LANGUAGES

#: Headers up to this long have their answer kept (clients send a handful of values, every
#: call); a longer one is read every time, so no caller can make the worker keep much text.
KEPT_LENGTH = 128
KEPT_HEADERS = 256

_Q = re.compile(r"q=(0(\.[0-9]{0,3})?|1(\.0{0,3})?)", re.IGNORECASE)


def _ranges(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        if not tag:
            continue
        weight = 1.0
        for param in params:
            if param[:2].lower() == "q=":
                weight = float(param[2:]) if _Q.fullmatch(param) else 0.0
        ranges.append((tag.lower().split("-")[0], weight))
    return ranges


def negotiate(header: str | None) -> str:
    """The served language ``header`` (an Accept-Language value, or None) prefers."""
    if header is None or len(header) <= KEPT_LENGTH:
        return _kept(header)
    return _negotiate(header)


def _negotiate(header: str | None) -> str:
    ranges = _ranges(header or "")
    wildcard = max((w for tag, w in ranges if tag == "*"), default=None)
    best, best_weight, best_at = DEFAULT, 0.0, len(ranges)
    for language in LANGUAGES:
        named = [(w, i) for i, (tag, w) in enumerate(ranges) if tag == language]
        if named:
            weight = max(w for w, _ in named)
            at = min(i for w, i in named if w == weight)
        elif wildcard is not None:
            weight, at = wildcard, len(ranges)
        else:
            continue
        if weight > best_weight or (weight == best_weight and weight > 0 and at < best_at):
            best, best_weight, best_at = language, weight, at
    return best


_kept = functools.lru_cache(maxsize=KEPT_HEADERS)(_negotiate)
