"""The default policy's one-prompt fast path predicts what the plain computation predicts, on bundled prompts.

The reference here is written the slow, obvious way: every term hashed one by one in Python integers,
columns summed in a dict, the dense product over every column, so a shortcut in the fast path (how
terms are hashed at once, which columns it visits) cannot hide behind a shared helper.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from gearshift.learning._default_policy import default_router
from gearshift.learning._default_training import default_training_table
from gearshift.learning._features import PromptInput, prompt_input, signal_vector
from gearshift.learning._prompt_shape import _CHOICE, _FRACTION, _NUMBER, _SENTENCE_END, shape_vector
from gearshift.learning._single_prompt import SinglePromptScorer
from gearshift.learning._text_hashing import (
    _CHAR_NGRAMS,
    _CHAR_SALTS,
    _CHAR_SHARE,
    _MIX,
    _PAIR_SALT,
    _PRIME,
    _WORD_BYTE,
    _term_hashes,
    normalize_text,
)

_MASK = 2**64 - 1


def _poly(data: bytes) -> int:
    return sum(byte * pow(_PRIME, j, 2**64) for j, byte in enumerate(data)) & _MASK


def _finish(value: int) -> int:
    return ((value * int(_MIX)) & _MASK) >> 32


def _reference_terms(text: str) -> tuple[list[int], list[int]]:
    """Character n-gram hashes and word (and word pair) hashes of a normalized text, one at a time."""
    data = (" " + text + " ").encode("utf-8")
    chars = [
        _finish(_poly(data[i : i + n]) + int(salt))
        for n, salt in zip(_CHAR_NGRAMS, _CHAR_SALTS, strict=True)
        for i in range(len(data) - n + 1)
    ]
    words, start = [], None
    for i, byte in enumerate(data):
        inside = bool(_WORD_BYTE[byte])
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            words.append(_poly(data[start:i]))
            start = None
    pairs = [(a * _PRIME + b + int(_PAIR_SALT)) & _MASK for a, b in itertools.pairwise(words)]
    return chars, [_finish(w) for w in words] + [_finish(p) for p in pairs]


def _reference_shape(text: str) -> list[float]:
    """The shape features, each from its own pass over the (clipped) text."""
    if len(text) > 4000:
        text = text[:3000] + "\n" + text[-1000:]
    numbers = _NUMBER.findall(text)
    counts = [
        len(numbers),
        sum(len(n) for n in numbers),
        max((len(n) for n in numbers), default=0),
        len(_SENTENCE_END.findall(text)),
        text.count(" ") + 1 if text.strip() else 0,
        text.count("?"),
    ]
    flags = [
        "%" in text or "percent" in text,
        "$" in text,
        _FRACTION.search(text) is not None,
        re.search(r"\d\.\d", text) is not None,
        len(_CHOICE.findall(text)) >= 2,
    ]
    return [math.log1p(c) for c in counts] + [float(f) for f in flags]


def _reference_predict(scorer: SinglePromptScorer, text: str, item: PromptInput) -> np.ndarray:
    dense = np.concatenate((signal_vector(item.signals), _reference_shape(text)))
    margin = dense @ scorer.dense_weights + scorer.intercept
    chars, words = _reference_terms(normalize_text(text))
    totals = np.zeros(scorer.dims)
    for terms in (chars, words):
        for term in terms:
            totals[term % scorer.dims] += (_CHAR_SHARE if terms is chars else 1 - _CHAR_SHARE) / len(terms)
    if chars or words:
        margin = margin + (np.sqrt(totals) @ scorer.text_weights) / math.sqrt(totals.sum())
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * margin)))


_TRICKY = ["1.5 and 2,000.25", "a.b 1. 2 .3", "3 / 4", "1/x", "x/2", "\u0663.\u0664", "", " \t\n", "1,2.3?"]
_TRICKY += ["A. x\nB) y", "A. x B) y", "(a) x\r(b) y", "\n a) x\n b) y"]
_TRICKY += ["50 percent of $3 is 1.50", "1.2.3", "4 /\n 5"]


@pytest.fixture(scope="module")
def bundled_prompts() -> list[PromptInput]:
    rows = default_training_table().rows
    # Every 40th row: a few hundred prompts across every bundled table, short and long.
    return [prompt_input(row) for row in rows[::40]]


def test_term_hashes_are_the_terms_hashed_one_by_one(bundled_prompts: list[PromptInput]) -> None:
    for item in bundled_prompts[::4]:
        text = normalize_text(item.text)
        hashes, count = _term_hashes(text)
        chars, words = _reference_terms(text)
        assert count == len(chars)
        assert sorted(hashes[:count].tolist()) == sorted(chars)
        assert hashes[count:].tolist() == words


def test_the_fast_path_predicts_what_the_plain_computation_does(
    bundled_prompts: list[PromptInput],
) -> None:
    router = default_router()
    assert SinglePromptScorer.fits(router.features, router.predictor)
    scorer = SinglePromptScorer(router.features, router.predictor)  # type: ignore[arg-type]
    assert len(bundled_prompts) >= 300
    texts = [item.text for item in bundled_prompts] + ["", "   ", "?", "x", "中文 " * 3000]
    items = [*bundled_prompts, *(prompt_input(text) for text in texts[len(bundled_prompts) :])]
    for text, item in zip(texts, items, strict=True):
        fast = scorer.predict(text, item.signals)
        np.testing.assert_allclose(fast, _reference_predict(scorer, text, item), rtol=0, atol=1e-12)
        # The router's own batch path rounds the text block to float32; it agrees to that precision.
        batch = router.predict_inputs((PromptInput(text, item.signals, None),))[0]
        np.testing.assert_allclose(fast, batch, rtol=0, atol=1e-5)


def test_the_shape_features_are_those_of_one_pass_per_feature(bundled_prompts: list[PromptInput]) -> None:
    for text in [item.text for item in bundled_prompts] + _TRICKY:
        assert shape_vector(text).tolist() == _reference_shape(text), text
