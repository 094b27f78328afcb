"""The shape of a prompt's text: how many numbers, sentences and words, and what kind of numbers.

How hard a word problem is shows less in its words than in its structure: how many quantities it
juggles, how many steps (sentences) it takes, whether it involves percentages, fractions, money or
decimals. These few counts complement the hashed n-grams, which see each term but not how many there
are. Bounded cost: the text is clipped like the n-grams' (`normalize_text` limits).
"""

from __future__ import annotations

import math
import re

import numpy as np

from ._text_hashing import _HEAD, _TAIL

__all__ = ["SHAPE_FEATURES", "shape_values", "shape_vector"]

SHAPE_FEATURES: tuple[str, ...] = (
    "log_numbers",
    "log_number_digits",
    "log_longest_number",
    "log_sentences",
    "log_words",
    "log_questions",
    "has_percent",
    "has_money",
    "has_fraction",
    "has_decimal",
    "has_choices",
)
"""Names of the shape features, in the order `shape_vector` gives them."""

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
# `_NUMBER` on a text whose digits are all "0": the same matches, found from a literal first character.
_FOLDED_NUMBER = re.compile(r"00*(?:[.,]0+)*")
_FRACTION = re.compile(r"\d\s*/\s*\d")
# Multiple-choice options on their own lines ("A. ...", "(b) ..."), as in MMLU-style prompts.
_CHOICE = re.compile(r"(?m)^\s*\(?[A-Ea-e][.)]\s")


def shape_vector(text: str) -> np.ndarray:
    """The shape features of `text`, in the order of `SHAPE_FEATURES` (counts as log(1 + count))."""
    return np.array(shape_values(text), dtype=np.float64)


def shape_values(text: str, normalized: str | None = None) -> list[float]:
    """`shape_vector` as a list of floats: a decision on one prompt adds them up without an array.

    `normalized` is `normalize_text(text)` when the caller has it: the numbers and sentence ends are
    then read from it, where they are the same but found faster (see `_folded_counts`).
    """
    if len(text) > _HEAD + _TAIL:
        text = text[:_HEAD] + "\n" + text[-_TAIL:]
    if normalized is None:
        numbers = _NUMBER.findall(text)
        sentences = len(_SENTENCE_END.findall(text))
    else:
        numbers, sentences = _folded_counts(normalized)
    lengths = [len(n) for n in numbers]
    # Cheap tests first: a fraction needs a slash and a digit, and a text without a number has no digit.
    # A number holds a "." only between digits, and every digit, dot, digit run lies in one number, so
    # the numbers found say whether there is a decimal without another pass over the text.
    fraction = bool(numbers) and "/" in text and _FRACTION.search(text) is not None
    return [
        math.log1p(len(numbers)),
        math.log1p(sum(lengths)),
        math.log1p(max(lengths, default=0)),
        math.log1p(sentences),
        math.log1p(text.count(" ") + 1 if text and not text.isspace() else 0),
        math.log1p(text.count("?")),
        float("%" in text or "percent" in text),
        float("$" in text),
        float(fraction),
        float(any("." in n for n in numbers)),
        # An option starts a line, so a text of one line holds one at most.
        float("\n" in text and len(_CHOICE.findall(text)) >= 2),
    ]


def _folded_counts(normalized: str) -> tuple[list[str], int]:
    """The numbers (as their folded text) and the sentence ends of a text, read from `normalize_text`'s
    version of it, which clips it at the same places as here.

    There every digit is a "0" and every run of whitespace one space, with none at either end. A number
    neither holds nor borders whitespace and lowercasing changes no digit, dot or comma, so the numbers
    are the same length and hold the same dots, and a search that starts on a literal "0" skips the
    rest of the text quickly. A sentence end is a ".", "!" or "?" followed by whitespace or the end,
    which there is one followed by a space or the end.
    """
    numbers = _FOLDED_NUMBER.findall(normalized)
    ends = normalized.count(". ") + normalized.count("! ") + normalized.count("? ")
    return numbers, ends + (normalized[-1:] in (".", "!", "?"))
