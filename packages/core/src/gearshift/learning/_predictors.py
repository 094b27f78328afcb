"""Quality predictors: from a prompt's features to each model's expected score. Inference only, NumPy only.

Two kinds, and their blend:

- `LinearPredictor`: one logistic regression per model over the hashed text, the content features and
  the task one-hot. A dot product over the prompt's few hundred non-zero columns: microseconds.
- `KnnPredictor`: the similarity-weighted mean score of each model on the k most similar training
  prompts (cosine over the text vectors), shrunk toward the model's mean score when neighbours are few
  or far. Similar prompts tend to be hard or easy for the same models.
- `BlendPredictor`: a weighted mean of the two.

Predictions are on the score scale of the outcome table: expected quality in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._features import FeatureSpec, PromptFeatures

__all__ = ["BlendPredictor", "KnnPredictor", "LinearPredictor", "Predictor", "dense_inputs", "knn_keys"]


def dense_inputs(spec: FeatureSpec, features: PromptFeatures, task_fill: np.ndarray) -> np.ndarray:
    """The dense block, with the task columns of rows whose label is unknown set to the training mean.

    A prompt without a known label then gets the average task effect rather than none at all.
    """
    dense = features.dense
    if spec.tasks and not features.task_known.all():
        dense = dense.copy()
        dense[~features.task_known, -len(spec.tasks) :] = task_fill
    return dense


@dataclass(frozen=True, slots=True)
class LinearPredictor:
    """Per model: sigmoid(intercept + text weights . text features + dense weights . dense features).

    `text_weights` has shape (spec.text_dims, models) (zero rows when an embedder replaces the text
    block), `dense_weights` (spec.dense_width, models), `intercept` (models,), `task_fill` the mean of
    the task one-hot in training (len(spec.tasks),).
    """

    text_weights: np.ndarray
    dense_weights: np.ndarray
    intercept: np.ndarray
    task_fill: np.ndarray

    kind = "linear"

    def predict(self, spec: FeatureSpec, features: PromptFeatures) -> np.ndarray:
        """Predicted score of each model for each prompt, shape (n, models)."""
        n = features.rows
        out = dense_inputs(spec, features, self.task_fill) @ self.dense_weights
        out += self.intercept
        if features.indices.size:
            contributions = self.text_weights[features.indices] * features.values[:, None]
            if n == 1:
                out[0] += contributions.sum(axis=0)
            else:
                rows = np.repeat(np.arange(n), np.diff(features.indptr))
                for model in range(out.shape[1]):
                    out[:, model] += np.bincount(rows, weights=contributions[:, model], minlength=n)
        # The logistic link, written to stay finite for any margin.
        quality: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * out))
        return quality


def knn_keys(spec: FeatureSpec, features: PromptFeatures, dims: int) -> np.ndarray:
    """Unit vectors the k-nearest-neighbour search compares, shape (n, dims), float32.

    With hashed text, the sparse text block is folded into `dims` columns (a divisor of `text_dims`,
    so folding equals hashing into fewer buckets); with an embedder, its vectors are used as they are.
    """
    n = features.rows
    if spec.embed_dims:
        keys: np.ndarray = np.asarray(features.dense[:, : spec.embed_dims], dtype=np.float32).copy()
    else:
        keys = np.zeros((n, dims), dtype=np.float32)
        rows = np.repeat(np.arange(n), np.diff(features.indptr))
        np.add.at(keys, (rows, features.indices % dims), features.values)
    norms = np.linalg.norm(keys, axis=1, keepdims=True)
    np.divide(keys, norms, out=keys, where=norms > 0)
    return keys


@dataclass(frozen=True, slots=True)
class KnnPredictor:
    """Similarity-weighted mean scores of the `k` nearest training prompts, shrunk toward `prior`.

    `keys` are the training prompts' unit vectors (n_train, dims); `scores` their recorded scores
    (n_train, models), a model's mean where a row has no outcome for it; `prior` each model's mean
    score; `shrink` how many neighbours' worth of weight the prior carries.
    """

    keys: np.ndarray
    scores: np.ndarray
    prior: np.ndarray
    k: int
    shrink: float

    kind = "knn"

    def predict(self, spec: FeatureSpec, features: PromptFeatures) -> np.ndarray:
        """Predicted score of each model for each prompt, shape (n, models)."""
        queries = knn_keys(spec, features, int(self.keys.shape[1]))
        return self.predict_keys(queries)

    def predict_keys(self, queries: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
        """Predictions for prompts given by their keys; `exclude_self` skips each query's own row.

        `exclude_self` is for queries that are the training rows themselves, in order (leave-one-out).
        """
        n, k = queries.shape[0], min(self.k, self.keys.shape[0] - (1 if exclude_self else 0))
        out = np.empty((n, self.scores.shape[1]), dtype=np.float64)
        # Blocks bound the memory of the similarity matrix when many prompts are predicted at once.
        block = 512
        for start in range(0, n, block):
            sims = queries[start : start + block] @ self.keys.T
            if exclude_self:
                sims[np.arange(sims.shape[0]), np.arange(start, start + sims.shape[0])] = -np.inf
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((len(sims), 0), int)
            weights = np.clip(np.take_along_axis(sims, nearest, axis=1), 0.0, None).astype(np.float64)
            total = np.einsum("ij,ijm->im", weights, self.scores[nearest].astype(np.float64))
            out[start : start + sims.shape[0]] = (total + self.shrink * self.prior) / (
                weights.sum(axis=1, keepdims=True) + self.shrink
            )
        return out


@dataclass(frozen=True, slots=True)
class BlendPredictor:
    """`weight` x the linear prediction + (1 - `weight`) x the neighbours' prediction."""

    linear: LinearPredictor
    knn: KnnPredictor
    weight: float

    kind = "blend"

    def predict(self, spec: FeatureSpec, features: PromptFeatures) -> np.ndarray:
        """Predicted score of each model for each prompt, shape (n, models)."""
        return self.weight * self.linear.predict(spec, features) + (1 - self.weight) * self.knn.predict(
            spec, features
        )


Predictor = LinearPredictor | KnnPredictor | BlendPredictor
"""Any of the quality predictors a `LearnedRouter` holds."""
