"""The languages members are told things in: Chinese and English.

Error messages (service/errors.py) and member messages (service/message.py) exist in both;
which one a caller reads is chosen per call (server/language.py reads Accept-Language).
English is the default: the language the contracts are written in.
"""

from dataclasses import dataclass

ZH = "zh"
EN = "en"
#: Every language served, the default first.
LANGUAGES = (EN, ZH)
DEFAULT = EN


@dataclass(frozen=True)
class Texts:
    """One text in every language served."""

    en: str
    zh: str

    def __post_init__(self) -> None:
        if not (self.en.strip() and self.zh.strip()):
            raise ValueError("a text needs both its English and its Chinese")
