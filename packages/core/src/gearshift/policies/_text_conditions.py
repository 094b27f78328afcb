"""Rule conditions on the prompt's text: keywords, substrings, regular expressions and language.

They read the last user message, all of it: a read limit would invent an end of the text, where `$`
matches and a word cut in two reads as a whole one. Keywords and substrings compare case-folded text
(`fold_case`: ß is ss, é is é however it was typed, and the Turkish dotted and dotless i are both
i). Regular expressions run on the `regex` engine (full case folding) with a timeout, so a pattern
that backtracks without end costs at most `REGEX_TIMEOUT` per search and counts as no match instead
of hanging the router. The language is detected with `py3langid` (an optional dependency:
`pip install 'gearshift[language]'`), loaded when a rule first asks for a language, not at import,
from the first `LANGUAGE_TEXT_LIMIT` characters; a message with fewer than `MIN_LANGUAGE_LETTERS`
letters has no language a rule can match ("ok" would read as Afrikaans, "Merci" as Polish).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigError
from ._protocol import RouteInput

__all__ = [
    "LANGUAGE_TEXT_LIMIT",
    "MIN_LANGUAGE_LETTERS",
    "REGEX_TIMEOUT",
    "Check",
    "compile_pattern",
    "detect_language",
    "fold_case",
    "text_checks",
]

REGEX_TIMEOUT = 0.05
"""Seconds one regular-expression search may take before it counts as no match."""

LANGUAGE_TEXT_LIMIT = 20_000
"""Characters of the last user message the language is detected from."""

MIN_LANGUAGE_LETTERS = 10
"""Letters a message needs before its language is told; below that no language condition holds."""

_TURKISH_I = str.maketrans({"\u0131": "i", "\u0307": None})  # dotless ı; the dot İ folds to i + U+0307


@dataclass(frozen=True, slots=True)
class Check:
    """One condition of a rule: how the reasons word it, and the test."""

    text: str
    holds: Callable[[RouteInput], bool]


def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled by the `regex` engine, case-insensitive; a `ValueError` says what is wrong."""
    import regex  # type: ignore[import-untyped,unused-ignore]

    try:
        return regex.compile(pattern, regex.IGNORECASE | regex.VERSION1)
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def fold_case(text: str) -> str:
    """`text` case-folded for matching in any language: decomposed, `str.casefold`ed (ß is ss) and
    composed again (é typed as e + a combining accent is é), then the Turkish dotless ı and the dot
    that İ folds to dropped, so I, ı, i and İ all read as i."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
    return folded.translate(_TURKISH_I)


def _last_user_text(route: RouteInput) -> str:
    for message in reversed(route.request.messages):
        if message.role == "user":
            return message.text
    return ""


@functools.lru_cache(maxsize=4)
def _folded(text: str) -> str:
    return fold_case(text)  # one folding per message, however many rules read it


def _folded_user_text(route: RouteInput) -> str:
    return _folded(_last_user_text(route))


@functools.cache
def _identifier() -> Callable[[str], tuple[str, float]]:
    try:
        from py3langid.langid import classify  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ConfigError(
            "a rule's `language` condition needs py3langid: pip install 'gearshift[language]'",
            key="routing.rules.when.language",
        ) from None
    classify("warm up")  # loads the model (about a second) now, not on a request
    return classify  # type: ignore[no-any-return]


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the language `text` is most likely in; None when it has fewer than
    `MIN_LANGUAGE_LETTERS` letters, too few to tell."""
    text = text[:LANGUAGE_TEXT_LIMIT]
    if sum(char.isalpha() for char in text) < MIN_LANGUAGE_LETTERS:
        return None
    code, _score = _identifier()(text)
    return str(code)


def text_checks(
    keywords: Sequence[str] | None,
    contains: Sequence[str] | None,
    patterns: Sequence[str] | None,
    languages: Sequence[str] | None,
) -> list[Check]:
    """The checks for a rule's text conditions (none set: no checks)."""
    checks: list[Check] = []
    if keywords:
        words = "|".join(re.escape(" ".join(fold_case(k).split())).replace(r"\ ", r"\s+") for k in keywords)
        keyword = re.compile(rf"(?<!\w)(?:{words})(?!\w)")
        shown = " or ".join(f"'{k}'" for k in keywords)
        checks.append(
            Check(f"prompt has keyword {shown}", lambda r: keyword.search(_folded_user_text(r)) is not None)
        )
    if contains:
        needles = tuple(fold_case(c) for c in contains)
        shown = " or ".join(f"'{c}'" for c in contains)
        checks.append(
            Check(f"prompt contains {shown}", lambda r: any(n in _folded_user_text(r) for n in needles))
        )
    if patterns:
        compiled = tuple(compile_pattern(p) for p in patterns)
        shown = " or ".join(f"/{p}/" for p in patterns)
        checks.append(Check(f"prompt matches {shown}", lambda r: _any_match(compiled, _last_user_text(r))))
    if languages:
        _identifier()  # fail at configuration time, not on the first request, when it is missing
        wanted = frozenset(languages)
        shown = " or ".join(languages)
        checks.append(
            Check(f"prompt language is {shown}", lambda r: detect_language(_last_user_text(r)) in wanted)
        )
    return checks


def _any_match(compiled: Sequence[Any], text: str) -> bool:
    for pattern in compiled:
        try:
            if pattern.search(text, timeout=REGEX_TIMEOUT) is not None:
                return True
        except TimeoutError:
            continue
    return False
