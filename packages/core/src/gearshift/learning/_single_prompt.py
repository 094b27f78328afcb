"""A linear router's predicted quality for one prompt, on the fast path a decision before every call needs.

`LinearPredictor.predict` works on batches in compressed-row form: the hashed n-grams of a prompt are
turned into sorted unique columns, gathered and summed. For one prompt it is cheaper to count the
n-grams into every column at once with one `bincount`, then pick each touched column once (no sort):
a prompt touches a few hundred of the thousands of columns, and a square root or a product over all of
them costs more than the rest of the prediction. The sum is the same up to float rounding (the order
of the additions differs), far below 1e-12.
"""

from __future__ import annotations

import numpy as np

from ..signals._signals import Signals
from ._features import FeatureSpec, signal_vector
from ._predictors import LinearPredictor, Predictor
from ._prompt_shape import shape_vector
from ._text_hashing import _CHAR_SHARE, _U64, _term_hashes, normalize_text

__all__ = ["SinglePromptScorer"]


class SinglePromptScorer:
    """Predicted quality of each model for one prompt, for a linear router over hashed text.

    `fits(spec, predictor)` says whether a router can use it: a `LinearPredictor` over hashed n-grams
    and the content features, without an embedder or task labels.
    """

    def __init__(self, spec: FeatureSpec, predictor: LinearPredictor) -> None:
        self.dims = spec.text_dims
        self.text_weights = np.asarray(predictor.text_weights, dtype=np.float64)
        # One contiguous vector per model: gathering a prompt's columns from each is cheaper than
        # gathering rows of the (columns, models) matrix.
        self.model_text_weights = tuple(np.ascontiguousarray(column) for column in self.text_weights.T)
        self.dense_weights = np.asarray(predictor.dense_weights, dtype=np.float64)
        self.intercept = np.asarray(predictor.intercept, dtype=np.float64)

    @staticmethod
    def fits(spec: FeatureSpec, predictor: Predictor) -> bool:
        """Whether this fast path computes the same predictions as the router's own."""
        return (
            isinstance(predictor, LinearPredictor)
            and spec.text_dims > 0
            and spec.text_dims & (spec.text_dims - 1) == 0
            and spec.content
            and not spec.embed_dims
            and not spec.tasks
        )

    def predict(self, text: str, signals: Signals) -> np.ndarray:
        """Predicted quality per model, shape (models,)."""
        dense = np.concatenate((signal_vector(signals), shape_vector(text)))
        margin = dense @ self.dense_weights + self.intercept
        hashes, chars = _term_hashes(normalize_text(text))
        if hashes.size:
            words = hashes.size - chars
            buckets = (hashes & _U64(self.dims - 1)).astype(np.intp)
            shares = np.full(hashes.size, (1 - _CHAR_SHARE) / words if words else 0.0)
            shares[:chars] = _CHAR_SHARE / chars if chars else 0.0
            totals = np.bincount(buckets, weights=shares, minlength=self.dims)
            # Each touched column once: the one term whose index its column remembers (whichever write won).
            order = np.arange(hashes.size)
            owner = np.empty(self.dims, dtype=np.intp)
            owner[buckets] = order
            columns = buckets[owner[buckets] == order]
            counted = totals[columns]
            # Each column holds sqrt(total), scaled to unit norm: the squared norm is the sum of totals.
            roots = np.sqrt(counted)
            norm = np.sqrt(counted.sum())
            margin += [np.dot(roots, weights[columns]) / norm for weights in self.model_text_weights]
        quality: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * margin))
        return quality
