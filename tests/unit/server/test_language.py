"""Accept-Language to the language an answer is in (server/language.py)."""

import pytest

from server.language import negotiate


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("zh", "zh"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-TW", "zh"),
        ("ZH-hans-cn", "zh"),
        ("en-GB", "en"),
        ("en, zh", "en"),  # a tie: the earlier
        ("zh, en", "zh"),
        ("en;q=0.5, zh-Hans-CN", "zh"),  # q-values, not the order, first
        ("en-US;q=0.3, zh;q=0.2", "en"),
        ("zh-TW;q=0.1, zh-CN;q=0.9, en;q=0.5", "zh"),  # a language weighs its best range
        ("fr, zh;q=0.1", "zh"),  # the one served that is acceptable at all
        ("fr, de", "en"),  # none served: the default
        ("*", "en"),
        ("*;q=0.5, zh;q=0.4", "en"),  # any, English first, outweighs Chinese
        ("zh;q=0, *", "en"),  # Chinese refused
        ("en;q=0, *;q=0.1", "zh"),
        ("en;q=0, zh;q=0", "en"),  # nothing acceptable: the default, never a 406
        ("zh;q=abc, en;q=0.1", "en"),  # a malformed weight counts for nothing
        ("zh;q=1.5, en;q=0.1", "en"),
        ("zh;Q=0.9, en;q=0.8", "zh"),
        (" , ;q=1, zh ; q=0.7 ", "zh"),
    ],
)
def test_the_heaviest_served_language_wins(header, language) -> None:
    assert negotiate(header) == language


def test_a_long_header_is_read_alike_and_not_kept() -> None:
    from server import language

    long = "en;q=0.1, " + ", ".join(f"x{i};q=0.2" for i in range(40)) + ", zh;q=0.9"
    assert len(long) > language.KEPT_LENGTH
    before = language._kept.cache_info().currsize
    assert negotiate(long) == "zh"
    assert negotiate(long.replace("zh;q=0.9", "zh;q=0")) == "en"
    assert language._kept.cache_info().currsize == before  # nothing kept for it
