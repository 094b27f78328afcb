"""A linear router's predicted quality for one prompt, on the fast path a decision before every call needs.

`LinearPredictor.predict` works on batches: features in arrays, the text block in compressed-row form.
On one prompt NumPy's cost per call, not per element, is what adds up, so this path makes few calls:

- the dense block is a few dozen floats, added up in plain Python with the weights read out once when
  the artifact loads; a block whose weights are all zero (a feature set the artifact does not use) is
  not computed at all;
- the text block's terms come straight out as (column, weight) pairs (`_term_columns`), and are summed
  without finding the distinct columns: with `T[c]` a column's total weight, the text score
  `sum over columns of sqrt(T[c]) * w[c]` equals `sum over terms of weight / sqrt(T[column]) * w[column]`
  (a column's terms add up to `T[c] / sqrt(T[c])`), which takes one `bincount` and a handful of calls.

The sums are the same up to float rounding (the order of the additions differs), far below 1e-12.

What the text alone decides (the shape block's and the text block's share of each model's margin) is
kept per text for the next call: an agent's steps re-read the same user text step after step, so
only the first step of a run hashes it. The key is the text as far as it is read (all of it, or the
head and tail a long text is clipped to), so an equal key always means equal shares; a hit adds the
same floats in the same order as a miss, and predicts the very same numbers.
"""

from __future__ import annotations

import math
from operator import mul

import numpy as np

from ..signals._signals import Signals
from ._features import SIGNAL_FEATURES, FeatureSpec, signal_values
from ._predictors import LinearPredictor, Predictor
from ._prompt_shape import SHAPE_FEATURES, shape_values
from ._text_hashing import _HEAD, _TAIL, _term_columns, normalize_text

__all__ = ["SinglePromptScorer"]

_MAX_BITS = 32
"""A column is read from the high half of a 64-bit hash, so at most 2**32 columns."""
_MAX_TEXTS = 256
"""Texts whose shares are kept; past this many the cache starts over rather than grow (about 1 MB at
most: a key holds at most the 4,000 characters read)."""

_Shares = tuple[list[float] | None, list[float] | None]
"""Per model, the shape block's sum and the text block's term of the margin (None: not added)."""


def _quality(margin: float) -> float:
    """A model's predicted quality from its margin: the logistic function, written with tanh."""
    return 0.5 * (1.0 + math.tanh(0.5 * margin))


def _per_model(weights: np.ndarray) -> tuple[tuple[float, ...], ...] | None:
    """The rows of a (features, models) block as one tuple of floats per model; None when all are 0."""
    if not weights.any():
        return None
    return tuple(tuple(float(w) for w in column) for column in weights.T)


class SinglePromptScorer:
    """Predicted quality of each model for one prompt without a task label, for a linear router.

    `fits(spec, predictor)` says whether a router can use it: a `LinearPredictor` over hashed n-grams
    (or no text block) and the content features (or none), without an embedder. A task-label block
    holds its training mean, as on the router's own path for a prompt without a label.
    """

    def __init__(self, spec: FeatureSpec, predictor: LinearPredictor) -> None:
        self.dims = spec.text_dims
        self.bits = spec.text_dims.bit_length() - 1 if spec.text_dims else 0
        # (columns, models), row-major: a column's weights for every model share a cache line.
        self._text_weights = np.ascontiguousarray(predictor.text_weights, dtype=np.float64)
        dense = np.asarray(predictor.dense_weights, dtype=np.float64)
        intercept = np.asarray(predictor.intercept, dtype=np.float64)
        if spec.tasks:
            # Without a label, the task columns hold their training mean: the same offset on every prompt.
            intercept = intercept + predictor.task_fill @ dense[dense.shape[0] - len(spec.tasks) :]
        self._intercepts = tuple(float(b) for b in intercept)
        signal_end = len(SIGNAL_FEATURES)
        shape_end = signal_end + len(SHAPE_FEATURES)
        content = dense[:shape_end] if spec.content else dense[:0]
        self._signal_weights = _per_model(content[:signal_end])
        self._shape_weights = _per_model(content[signal_end:shape_end])
        self._shares: dict[str | tuple[str, str], _Shares] = {}

    @staticmethod
    def fits(spec: FeatureSpec, predictor: Predictor) -> bool:
        """Whether this fast path computes the same predictions as the router's own."""
        dims = spec.text_dims
        return (
            isinstance(predictor, LinearPredictor)
            and dims & (dims - 1) == 0
            and dims != 1
            and dims <= 2**_MAX_BITS
            and not spec.embed_dims
        )

    def predict(self, text: str, signals: Signals) -> np.ndarray:
        """Predicted quality per model, shape (models,)."""
        return np.array([_quality(margin) for margin in self._margins(text, signals)])

    def gain(self, text: str, signals: Signals) -> float:
        """`predict(text, signals)`'s last model's quality minus its first's, as a float (the same value):
        all the default policy reads of a prediction, on every decision, where building the array cost
        more than the rest of the prediction's arithmetic."""
        margins = self._margins(text, signals)
        return _quality(margins[-1]) - _quality(margins[0])

    def _margins(self, text: str, signals: Signals) -> list[float]:
        """Each model's margin (its quality's logit) for `text` with `signals`."""
        margins = list(self._intercepts)
        if self._signal_weights is not None:
            values = signal_values(signals)
            margins = [
                m + sum(map(mul, values, w)) for m, w in zip(margins, self._signal_weights, strict=True)
            ]
        # Only the head and tail of a long text are read (`normalize_text`, `shape_values`).
        key = text if len(text) <= _HEAD + _TAIL else (text[:_HEAD], text[-_TAIL:])
        shares = self._shares.get(key)
        if shares is None:
            shares = self._text_shares(text)
            if len(self._shares) >= _MAX_TEXTS:
                self._shares.clear()
            self._shares[key] = shares
        shape, terms = shares
        if shape is not None:
            margins = [m + s for m, s in zip(margins, shape, strict=True)]
        if terms is not None:
            margins = [m + t for m, t in zip(margins, terms, strict=True)]
        return margins

    def _text_shares(self, text: str) -> _Shares:
        """What `text` adds to each model's margin: the shape block's sum, then the text block's term."""
        normalized = normalize_text(text) if self.bits or self._shape_weights is not None else ""
        shape = None
        if self._shape_weights is not None:
            values = shape_values(text, normalized)
            shape = [sum(map(mul, values, w)) for w in self._shape_weights]
        terms = None
        if self.bits:
            columns, weights, norm = _term_columns(normalized, self.bits)
            if columns.size:
                totals = np.bincount(columns, weights=weights)
                scores = np.dot(weights / np.sqrt(totals[columns]), self._text_weights.take(columns, axis=0))
                # Each column holds sqrt(total) scaled to unit norm; the squared norm is the sum of totals.
                scale = 1.0 / math.sqrt(norm)
                terms = [s * scale for s in scores.tolist()]
        return shape, terms
