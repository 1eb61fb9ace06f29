"""A member message's text exists in every language served (service/language.py)."""

import pytest

from service.language import DEFAULT, EN, LANGUAGES, Texts


def test_english_is_the_default_and_served_first() -> None:
    assert DEFAULT == EN == LANGUAGES[0]


@pytest.mark.parametrize(("en", "zh"), [("", "投资成功"), ("Investment made", " "), ("", "")])
def test_a_text_needs_both_languages(en: str, zh: str) -> None:
    with pytest.raises(ValueError, match="both its English and its Chinese"):
        Texts(en, zh)


def test_a_text_keeps_both() -> None:
    text = Texts("Investment made", "投资成功")
    assert (text.en, text.zh) == ("Investment made", "投资成功")
