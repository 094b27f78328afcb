"""Reading the final answer out of a model's text: a number, a choice letter, a JSON value, or text.

Gates compare answers by what they conclude, not by how they got there: "#### 18" and "so she makes
$18.00" both conclude 18. `final_answer` finds the conclusion, `same_answer` compares two of them. The
functions are pure and cheap; the heuristic gate, the self-consistency gate and the learned answer
judge's features share them.

An answer is *marked* when the text says where its conclusion is: GSM8K's `#### 18`, LaTeX's
`\\boxed{18}`, or a phrase such as "the answer is 18" / "Final answer: B". Marked answers are what
graders of math and multiple-choice tasks look for; an unmarked one is read from the text's shape
(a bare number, a bare letter, a JSON document), else kept as normalized text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

__all__ = [
    "FinalAnswer",
    "final_answer",
    "marked_answer",
    "parse_json_answer",
    "same_answer",
    "token_similarity",
]

AnswerKind = Literal["json", "number", "choice", "text"]

# Markers, most specific first; the *last* occurrence in the text wins, since models restate the
# question's numbers before they conclude.
_MARKERS = (
    re.compile(r"####\s*([^\n]+)"),
    re.compile(r"\\boxed\{([^{}\n]*)\}"),
    re.compile(
        r"\b(?:final answer|the (?:correct |final )?answer|answer)\s*(?:is|:|=)\s*:?\s*([^\n]+)",
        re.IGNORECASE,
    ),
)
_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\$?\s?\.\d+")
# "(B) Jupiter", "B.", "B": a letter alone or closed by punctuation, so "I think..." is not choice I.
_CHOICE = re.compile(r"^(?:\(([A-J])\)|([A-J])(?:[.):,]|$))")
_BARE_CHOICE = re.compile(r"^\s*\(?([A-Ja-j])\)?\.?\s*$")
_BARE_NUMBER = re.compile(r"^\s*(-?\$?\s?\d[\d,]*(?:\.\d+)?%?)\s*\.?\s*$")
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    """The conclusion of an answer: its kind, a canonical value to compare, and whether it was marked.

    `value` is a canonical string for numbers (`"18"` for "$18.00"), letters (`"B"`) and text
    (lowercased words), and the parsed value for JSON.
    """

    kind: AnswerKind
    value: object
    marked: bool = False


def _canonical_number(text: str) -> str | None:
    cleaned = text.replace("$", "").replace(",", "").replace(" ", "").rstrip("%").rstrip(".")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    # normalize() turns 18.00 into 18 but 100 into 1E+2; quantize integers back to plain digits.
    normal = number.normalize()
    return str(normal.quantize(Decimal(1))) if normal == normal.to_integral_value() else str(normal)


def _read(conclusion: str, *, marked: bool) -> FinalAnswer:
    """A marked conclusion ("18 eggs", "(B) Jupiter") as a number, a letter or text."""
    text = conclusion.strip().strip("*").strip()
    choice = _CHOICE.match(text)
    if choice:
        return FinalAnswer("choice", choice.group(1) or choice.group(2), marked)
    number = _NUMBER.search(text)
    if number:
        canonical = _canonical_number(number.group(0))
        if canonical is not None:
            return FinalAnswer("number", canonical, marked)
    return FinalAnswer("text", " ".join(_WORDS.findall(text.lower())), marked)


def parse_json_answer(text: str) -> tuple[bool, object]:
    """(True, value) when the text is one JSON document (a surrounding code fence is allowed), else
    (False, None). Models often wrap JSON in ```json fences even when asked for bare JSON."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        return True, json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return False, None


def marked_answer(text: str) -> FinalAnswer | None:
    """The answer the text marks as its conclusion (`#### 18`, `\\boxed{18}`, "the answer is B"), or None."""
    for marker in _MARKERS:
        found = list(marker.finditer(text))
        if found:
            return _read(found[-1].group(1), marked=True)
    return None


def final_answer(text: str) -> FinalAnswer | None:
    """The answer's conclusion: marked, else a bare number or letter, else a JSON document, else the
    whole text as normalized words. None for an empty text."""
    if not text.strip():
        return None
    marked = marked_answer(text)
    if marked is not None:
        return marked
    bare = _BARE_CHOICE.match(text)
    if bare:
        return FinalAnswer("choice", bare.group(1).upper())
    if _BARE_NUMBER.match(text):
        canonical = _canonical_number(text.strip())
        if canonical is not None:
            return FinalAnswer("number", canonical)
    stripped = text.strip()
    if stripped[:1] in "{[" or stripped.startswith("```"):
        ok, value = parse_json_answer(stripped)
        if ok:
            return FinalAnswer("json", value)
    return FinalAnswer("text", " ".join(_WORDS.findall(text.lower())))


def _last_number(text: str) -> str | None:
    for match in reversed(list(_NUMBER.finditer(text))):
        canonical = _canonical_number(match.group(0))
        if canonical is not None:
            return canonical
    return None


def token_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' lowercased word sets, in [0, 1] (1 for two empty texts)."""
    left, right = set(_WORDS.findall(a.lower())), set(_WORDS.findall(b.lower()))
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def same_answer(a: str, b: str, *, min_similarity: float = 0.5) -> bool:
    """Whether two answers reach the same conclusion.

    Numbers, letters and JSON values must be equal. When one side marks a number and the other does
    not, the other's last number stands in for its conclusion (a model that forgot `####` may still
    agree). Anything else is compared by `token_similarity` against `min_similarity`.
    """
    first, second = final_answer(a), final_answer(b)
    if first is None or second is None:
        return first is None and second is None
    if first.kind == second.kind and first.kind != "text":
        return first.value == second.value
    for one, other_text in ((first, b), (second, a)):
        if one.kind == "number" and one.marked:
            return _last_number(other_text) == one.value
    if first.kind == "text" and second.kind == "text":
        return token_similarity(str(first.value), str(second.value)) >= min_similarity
    return False
