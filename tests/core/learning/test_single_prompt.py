"""The default policy's one-prompt fast path predicts what the plain computation predicts, on bundled prompts.

The reference here is written the slow, obvious way: every term hashed one by one in Python integers,
columns summed in a dict, the dense product over every column, so a shortcut in the fast path (how
terms are hashed at once, which columns it visits) cannot hide behind a shared helper.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace

import numpy as np
import pytest

from gearshift.learning._default_policy import default_router
from gearshift.learning._default_training import default_training_table
from gearshift.learning._features import (
    SIGNAL_FEATURES,
    FeatureSpec,
    PromptInput,
    build_features,
    prompt_input,
    signal_vector,
)
from gearshift.learning._predictors import LinearPredictor
from gearshift.learning._prompt_shape import (
    _CHOICE,
    _FRACTION,
    _NUMBER,
    _SENTENCE_END,
    shape_values,
    shape_vector,
)
from gearshift.learning._single_prompt import SinglePromptScorer
from gearshift.learning._text_hashing import (
    _CHAR_NGRAMS,
    _CHAR_SALTS,
    _CHAR_SHARE,
    _MIX,
    _PAIR_SALT,
    _PRIME,
    _WORD_BYTE,
    _term_columns,
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


def _reference_predict(
    spec: FeatureSpec, predictor: LinearPredictor, text: str, item: PromptInput
) -> np.ndarray:
    """A linear router's prediction for a prompt without a task label, every block written out."""
    dense: list[float] = []
    if spec.content:
        dense += signal_vector(item.signals).tolist() + _reference_shape(text)
    dense += predictor.task_fill.tolist()  # an unknown label reads the training mean
    margin = np.asarray(dense) @ predictor.dense_weights + predictor.intercept
    if spec.text_dims:
        chars, words = _reference_terms(normalize_text(text))
        totals = np.zeros(spec.text_dims)
        for terms in (chars, words):
            for term in terms:
                share = _CHAR_SHARE if terms is chars else 1 - _CHAR_SHARE
                totals[term % spec.text_dims] += share / len(terms)
        if chars or words:
            margin = margin + (np.sqrt(totals) @ predictor.text_weights) / math.sqrt(totals.sum())
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * margin)))


_TRICKY = ["1.5 and 2,000.25", "a.b 1. 2 .3", "3 / 4", "1/x", "x/2", "\u0663.\u0664", "", " \t\n", "1,2.3?"]
_TRICKY += ["A. x\nB) y", "A. x B) y", "(a) x\r(b) y", "\n a) x\n b) y"]
_TRICKY += ["50 percent of $3 is 1.50", "1.2.3", "4 /\n 5"]
_TRICKY += [
    "  1.5. ",
    "end.\n",
    "a.\u00a0b 2",
    "x!\x1cy?",
    "\u0661\u0662.\u0663 and 4",
    "\u01301.2",
    "1,,2",
    "...",
]
_TRICKY += ["3.\t4?! ", "Why? " * 900 + "12" + "3" * 1100 + ". 4.5!", "\u00e9t\u00e9 2024. " * 300]


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


def test_term_columns_are_the_terms_hashed_one_by_one(bundled_prompts: list[PromptInput]) -> None:
    texts = [item.text for item in bundled_prompts[::4]] + ["", " ", "x", "ab", "abc", "a b", "中文", "?!"]
    for text in map(normalize_text, texts):
        chars, words = _reference_terms(text)
        for bits in (1, 4, 13, 32):
            expected: dict[int, float] = {}
            for terms, share in ((chars, _CHAR_SHARE), (words, 1 - _CHAR_SHARE)):
                for term in terms:
                    column = term % 2**bits
                    expected[column] = expected.get(column, 0.0) + share / len(terms)
            columns, weights, norm = _term_columns(text, bits)
            assert columns.size == len(chars) + len(words)
            found: dict[int, float] = {}
            for column, weight in zip(columns.tolist(), weights.tolist(), strict=True):
                found[column] = found.get(column, 0.0) + weight
            assert found.keys() == expected.keys(), (text, bits)
            for column, total in expected.items():
                assert found[column] == pytest.approx(total, rel=0, abs=1e-13), (text, bits, column)
            assert norm == pytest.approx(sum(expected.values()), rel=0, abs=1e-13)


def test_the_fast_path_predicts_what_the_plain_computation_does(
    bundled_prompts: list[PromptInput],
) -> None:
    router = default_router()
    assert SinglePromptScorer.fits(router.features, router.predictor)
    assert isinstance(router.predictor, LinearPredictor)
    scorer = SinglePromptScorer(router.features, router.predictor)
    assert len(bundled_prompts) >= 300
    texts = [item.text for item in bundled_prompts] + ["", "   ", "?", "x", "中文 " * 3000]
    items = [*bundled_prompts, *(prompt_input(text) for text in texts[len(bundled_prompts) :])]
    for text, item in zip(texts, items, strict=True):
        fast = scorer.predict(text, item.signals)
        reference = _reference_predict(router.features, router.predictor, text, item)
        np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-12)
        # What the default policy reads of it, without the array: the very same float.
        assert scorer.gain(text, item.signals) == float(fast[-1] - fast[0]), text[:40]
        # The router's own batch path rounds the text block to float32; it agrees to that precision.
        batch = router.predict_inputs((PromptInput(text, item.signals, None),))[0]
        np.testing.assert_allclose(fast, batch, rtol=0, atol=1e-5)


def test_normalized_text_is_lowercased_with_digits_folded_and_whitespace_collapsed(
    bundled_prompts: list[PromptInput],
) -> None:
    for text in [item.text for item in bundled_prompts] + _TRICKY:
        clipped = text[:3000] + " " + text[-1000:] if len(text) > 4000 else text
        assert normalize_text(text) == " ".join(re.sub(r"\d", "0", clipped.lower()).split()), text


def test_the_shape_features_are_those_of_one_pass_per_feature(bundled_prompts: list[PromptInput]) -> None:
    for text in [item.text for item in bundled_prompts] + _TRICKY:
        assert shape_vector(text).tolist() == _reference_shape(text), text
        # Read from the normalized text, as a decision on one prompt does: the same values.
        assert shape_values(text, normalize_text(text)) == _reference_shape(text), text


def _variants() -> dict[str, tuple[FeatureSpec, LinearPredictor]]:
    """Other artifacts the default could ship: other text widths, no text, no content, task labels,
    an unused feature block, three models; weights drawn at random around the shipped ones."""
    router = default_router()
    shipped = router.predictor
    assert isinstance(shipped, LinearPredictor)
    rng = np.random.default_rng(16)
    dense, text = shipped.dense_weights, shipped.text_weights
    unused_shape = dense.copy()
    unused_shape[len(SIGNAL_FEATURES) :] = 0.0

    def linear(
        text_weights: np.ndarray, dense_weights: np.ndarray, fill: tuple[float, ...] = ()
    ) -> LinearPredictor:
        models = dense_weights.shape[1]
        return LinearPredictor(text_weights, dense_weights, rng.normal(size=models), np.asarray(fill))

    def spec(dims: int, content: bool, tasks: tuple[str, ...] = ()) -> FeatureSpec:
        return FeatureSpec(text_dims=dims, embedder=None, embed_dims=0, content=content, tasks=tasks)

    three = rng.normal(scale=0.5, size=(dense.shape[0], 3))
    return {
        "dense only": (spec(0, True), linear(np.zeros((0, 2)), dense)),
        "text only, 1,024 columns": (spec(1024, False), linear(text[:1024], np.zeros((0, 2)))),
        "task labels": (
            spec(8192, True, ("gsm8k", "mmlu")),
            linear(text, np.vstack([dense, rng.normal(size=(2, 2))]), (0.25, 0.75)),
        ),
        "shape features unused": (spec(8192, True), linear(text, unused_shape)),
        "three models, 2**16 columns": (
            spec(2**16, True),
            linear(rng.normal(scale=0.3, size=(2**16, 3)), three),
        ),
    }


@pytest.mark.parametrize("name", list(_variants()))
def test_the_fast_path_fits_other_artifacts_and_predicts_what_they_do(
    name: str, bundled_prompts: list[PromptInput]
) -> None:
    spec, predictor = _variants()[name]
    assert SinglePromptScorer.fits(spec, predictor)
    scorer = SinglePromptScorer(spec, predictor)
    for item in [*bundled_prompts[::8], prompt_input(""), prompt_input("x")]:
        fast = scorer.predict(item.text, item.signals)
        reference = _reference_predict(spec, predictor, item.text, item)
        np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-12)
        # The router's own batch path agrees to its float32 text block's precision.
        batch = predictor.predict(spec, build_features(spec, (PromptInput(item.text, item.signals, None),)))
        np.testing.assert_allclose(fast, batch[0], rtol=0, atol=1e-5)


def test_artifacts_the_fast_path_cannot_compute_are_left_to_the_router() -> None:
    router = default_router()
    base = router.features
    assert not SinglePromptScorer.fits(replace(base, text_dims=1000), router.predictor)
    assert not SinglePromptScorer.fits(replace(base, text_dims=1), router.predictor)
    assert not SinglePromptScorer.fits(
        replace(base, text_dims=0, embedder="mine", embed_dims=8), router.predictor
    )


def test_a_text_seen_before_is_predicted_exactly_as_the_first_time(
    bundled_prompts: list[PromptInput],
) -> None:
    """The shares kept per text change no bit of a prediction, whatever else the cache holds: texts
    equal once normalized but not as written, long texts with the same head and tail, other signals."""
    router = default_router()
    assert isinstance(router.predictor, LinearPredictor)
    middle = "word " * 1000
    texts = [item.text for item in bundled_prompts[::10]] + _TRICKY
    texts += ["Hi there", "hi   there", "HI THERE", "A. x\nB) y", "A. x B) y", "1/2", "1 / 2"]
    texts += [f"Head.{middle}tail?", f"Head.{middle}{middle}tail?", f"Head.{middle}Tail?"]
    signals = [item.signals for item in bundled_prompts[:3]]
    kept = SinglePromptScorer(router.features, router.predictor)
    for _ in range(2):
        for text in texts:
            for signal in signals:
                fresh = SinglePromptScorer(router.features, router.predictor).predict(text, signal)
                assert kept.predict(text, signal).tolist() == fresh.tolist(), text[:40]
    assert 0 < len(kept._shares) <= 256
    for variant in _variants().values():
        kept = SinglePromptScorer(*variant)
        for text in texts[-12:] * 2:
            fresh = SinglePromptScorer(*variant).predict(text, signals[0])
            assert kept.predict(text, signals[0]).tolist() == fresh.tolist(), text[:40]
