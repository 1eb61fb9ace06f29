"""The error catalogue speaks one style, in both languages, and so do the details raised with
its codes (service/errors.py says the rule)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from service import errors
from service.errors import CATALOGUE, ErrorCode
from service.language import EN, LANGUAGES, ZH

ROOT = Path(__file__).resolve().parents[3]
HAN = re.compile(r"[\u4e00-\u9fff]")
#: Every directory whose code raises errors a caller sees.
SOURCES = ("server", "service", "dao", "conf", "banksim")


def english_problems(text: str) -> list[str]:
    """How ``text`` breaks the English rule: one sentence, a capital first, one final
    period, what to do after a semicolon, no exclamation or question, at most 100
    characters."""
    found = []
    if not text[:1].isupper():
        found.append("does not begin with a capital")
    if not text.endswith(".") or text.endswith(".."):
        found.append("does not end with one period")
    if re.search(r"[.!?]\s", text) or "!" in text or "?" in text:
        found.append("is more than one sentence, or exclaims or asks")
    if text.count(";") > 1:
        found.append("has more than one semicolon")
    if text != text.strip() or "  " in text or HAN.search(text):
        found.append("has stray spaces or Chinese")
    if len(text) > 100:
        found.append("is longer than 100 characters")
    return found


def chinese_problems(text: str) -> list[str]:
    """How ``text`` breaks the Chinese rule: one sentence in Chinese, ending with 。 and with
    no other 。, Chinese punctuation (no ASCII , ; : ! ?), at most 80 characters."""
    found = []
    if not HAN.search(text):
        found.append("is not Chinese")
    if not text.endswith("。") or text.count("。") != 1:
        found.append("does not end with one 。")
    if re.search(r"[,;:!?]", text):
        found.append("has ASCII punctuation")
    if text != text.strip() or "  " in text:
        found.append("has stray spaces")
    if len(text) > 80:
        found.append("is longer than 80 characters")
    return found


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_code_has_both_texts_in_the_one_style(code: str) -> None:
    error = CATALOGUE[code]
    assert {language: bool(error.text(language)) for language in LANGUAGES} == {
        EN: True,
        ZH: True,
    }
    assert english_problems(error.message) == [], error.message
    assert chinese_problems(error.zh) == [], error.zh
    # What to do comes after the semicolon in both languages, or in neither.
    assert (";" in error.message) == ("；" in error.zh), code


def test_the_catalogue_lists_every_code_declared_in_the_module() -> None:
    declared = [v for v in vars(errors).values() if isinstance(v, ErrorCode)]
    assert sorted(e.code for e in declared) == sorted(CATALOGUE)
    assert all(CATALOGUE[e.code] is e for e in declared)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no such listing.", "does not begin with a capital"),
        ("No such listing", "does not end with one period"),
        ("No such listing. Check the id.", "is more than one sentence, or exclaims or asks"),
        ("No such listing!", "is more than one sentence, or exclaims or asks"),
        ("Wrong; do this; or that.", "has more than one semicolon"),
    ],
)
def test_the_english_rule_catches_each_slip(text: str, problem: str) -> None:
    assert problem in english_problems(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("No such listing.", "is not Chinese"),
        ("没有这个标的", "does not end with one 。"),
        ("没有这个标的。请检查。", "does not end with one 。"),
        ("没有这个标的; 请检查。", "has ASCII punctuation"),
    ],
)
def test_the_chinese_rule_catches_each_slip(text: str, problem: str) -> None:
    assert problem in chinese_problems(text)


# -- details -------------------------------------------------------------------------------


def detail_problems(text: str) -> list[str]:
    """How a detail breaks its rule: it begins in lower case unless its first word is a name
    (``Content-Type``, ``SOAP``: a capital after the first letter), and it is one line with
    no final period (the message is the sentence; the detail says what exactly)."""
    found = []
    first = text.split(" ")[0]
    if first[:1].isupper() and not any(c.isupper() for c in first[1:]):
        found.append("begins with a capital")
    if text.endswith("."):
        found.append("ends with a period")
    if "\n" in text or text != text.strip():
        found.append("is not one trimmed line")
    return found


def _literal(node: ast.expr) -> str | None:
    """A string literal, or an f-string with each placeholder written ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def raised_details() -> list[tuple[str, str]]:
    """(where, text) of every detail written in the code: ``BusinessError(code, detail)``
    and ``invalid(field, problem)``."""
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if not isinstance(node, ast.Call) or len(node.args) < 2:
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in ("BusinessError", "invalid"):
                    text = _literal(node.args[1])
                    if text is not None:
                        found.append((f"{path.relative_to(ROOT)}:{node.lineno}", text))
    return found


def test_every_detail_raised_keeps_the_detail_style() -> None:
    details = raised_details()
    assert len(details) > 100  # the scan finds the code's details
    broken = [(where, text, detail_problems(text)) for where, text in details]
    assert [b for b in broken if b[2]] == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Listing 9 does not exist", "begins with a capital"),
        ("listing 9 does not exist.", "ends with a period"),
        ("two\nlines", "is not one trimmed line"),
    ],
)
def test_the_detail_rule_catches_each_slip(text: str, problem: str) -> None:
    assert problem in detail_problems(text)


def test_a_name_may_begin_a_detail() -> None:
    assert detail_problems("Content-Type must be {}") == []
    assert detail_problems("SOAP with attachments is not supported") == []
