"""Rule conditions on the prompt's text: keywords, substrings, regular expressions and language.

They read the last user message (its first `TEXT_LIMIT` characters). Regular expressions run on the
`regex` engine with a timeout, so a pattern that backtracks without end costs at most `REGEX_TIMEOUT`
per decision and counts as no match instead of hanging the router. The language is detected with
`py3langid` (an optional dependency: `pip install 'gearshift[language]'`), loaded when a rule first
asks for a language, not at import.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigError
from ._protocol import RouteInput

__all__ = ["REGEX_TIMEOUT", "TEXT_LIMIT", "Check", "compile_pattern", "detect_language", "text_checks"]

REGEX_TIMEOUT = 0.05
"""Seconds one regular-expression search may take before it counts as no match."""

TEXT_LIMIT = 20_000
"""Characters of the last user message the text conditions read."""


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


def _last_user_text(route: RouteInput) -> str:
    for message in reversed(route.request.messages):
        if message.role == "user":
            return message.text[:TEXT_LIMIT]
    return ""


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


def detect_language(text: str) -> str:
    """The ISO 639-1 code of the language `text` is most likely in."""
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
        words = "|".join(re.escape(" ".join(k.split())).replace(r"\ ", r"\s+") for k in keywords)
        keyword = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)
        shown = " or ".join(f"'{k}'" for k in keywords)
        checks.append(
            Check(f"prompt has keyword {shown}", lambda r: keyword.search(_last_user_text(r)) is not None)
        )
    if contains:
        needles = tuple(c.casefold() for c in contains)
        shown = " or ".join(f"'{c}'" for c in contains)
        checks.append(
            Check(
                f"prompt contains {shown}", lambda r: any(n in _last_user_text(r).casefold() for n in needles)
            )
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
