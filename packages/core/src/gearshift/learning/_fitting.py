"""Fitting quality predictors on an outcome table: logistic regressions and nearest-neighbour tables.

Training only: scikit-learn (`pip install 'gearshift[train]'`) fits the logistic regressions. What it
returns are plain NumPy arrays (`_predictors`), so routing needs NumPy alone. A logistic link suits
quality scores in [0, 1] better than a straight line: on the bundled MMLU data it ranks prompts
better than ridge regression on the same features (measured in 5-fold cross-validation), and its
predictions are probabilities of a good answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ConfigError
from ._features import FeatureSpec, PromptFeatures
from ._predictors import KnnPredictor, LinearPredictor, knn_keys

__all__ = [
    "DENSE_SCALE",
    "KNN_DIMS",
    "Design",
    "FitData",
    "fill_missing",
    "fit_knn",
    "fit_logistic",
    "fit_shared_logistic",
    "knn_out_of_fold",
]

KNN_DIMS = 256
"""Width of the neighbour search's text vectors: small enough to keep every training prompt in the file."""

DENSE_SCALE = 0.3
"""Size of a standardized dense feature against the unit-norm text block, before the ridge penalty.

The text block spreads a norm of 1 over hundreds of columns; a standardized dense feature has a
spread of 1 on its own. Scaling it down makes the shared L2 penalty weigh it about as much as a few
dozen n-grams.
"""


@dataclass(frozen=True, eq=False)
class FitData:
    """A table's features and outcomes, ready to fit on.

    `scores` is (n, models) with NaN where a row has no outcome for a model; `filled` the same with
    each NaN replaced by that model's mean score (what neighbours average).
    """

    spec: FeatureSpec
    features: PromptFeatures
    scores: np.ndarray
    filled: np.ndarray


def fill_missing(scores: np.ndarray) -> np.ndarray:
    """`scores` with each NaN replaced by its model's mean recorded score (0.5 when none is recorded)."""
    means = np.array(
        [np.nanmean(column) if np.isfinite(column).any() else 0.5 for column in scores.T], dtype=np.float64
    )
    return np.where(np.isnan(scores), means, scores)


def _sklearn_logistic() -> Any:
    try:
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ConfigError(
            "training a learned router needs scikit-learn; install it with: pip install 'gearshift[train]'"
        ) from None
    return LogisticRegression


@dataclass(frozen=True, eq=False)
class Design:
    """The design matrix [hashed text | standardized dense block x DENSE_SCALE] as a SciPy CSR matrix.

    `mean` and `scale` undo the standardization: a dense feature's column is `(value - mean) * scale`.
    `task_fill` is the mean task one-hot, what a prompt without a known label is given.
    """

    x: Any
    mean: np.ndarray
    scale: np.ndarray
    task_fill: np.ndarray

    @classmethod
    def of(cls, data: FitData) -> Design:
        """The design matrix of `data`; the standardization is the table's own."""
        _sklearn_logistic()  # name the missing extra before SciPy's import fails
        import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

        spec, f = data.spec, data.features
        dense = f.dense
        mean, std = dense.mean(axis=0), dense.std(axis=0)
        scale = DENSE_SCALE / np.where(std > 1e-12, std, 1.0)
        text = sparse.csr_matrix(
            (f.values.astype(np.float64), f.indices, f.indptr), shape=(f.rows, spec.text_dims)
        )
        x = sparse.hstack([text, sparse.csr_matrix((dense - mean) * scale)], format="csr")
        tasks = len(spec.tasks)
        return cls(x, mean, scale, mean[spec.dense_width - tasks :] if tasks else np.zeros(0))

    def predictor(self, spec: FeatureSpec, weights: np.ndarray, intercept: np.ndarray) -> LinearPredictor:
        """The `LinearPredictor` of logistic weights (d, models) over this design, on raw features."""
        text, dense = weights[: spec.text_dims], weights[spec.text_dims :]
        raw_dense = dense * self.scale[:, None]
        return LinearPredictor(
            text.astype(np.float32),
            raw_dense,
            intercept - self.mean @ raw_dense,
            np.asarray(self.task_fill, dtype=np.float64),
        )


def fit_logistic(
    design: Design,
    scores: np.ndarray,
    rows: np.ndarray,
    strength: float,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    row_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per model, an L2-regularized logistic regression of its scores on the design's `rows`.

    Scores in [0, 1] that are not all 0 or 1 are fitted as soft labels: each row counts as a success
    with weight `score` and a failure with weight `1 - score`. Rows without an outcome for a model
    (NaN) are left out of its fit. `strength` is the inverse regularization (scikit-learn's C).
    `start` (weights, intercepts), e.g. the mean of cross-validation fits, is where the solver starts:
    the same optimum, reached in fewer steps. `row_weights` (one per design row, default 1) is how much
    each row counts. Returns weights (d, models) and intercepts (models,).
    """
    logistic = _sklearn_logistic()
    import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

    d, m = design.x.shape[1], scores.shape[1]
    counted = np.ones(design.x.shape[0]) if row_weights is None else np.asarray(row_weights, np.float64)
    weights, intercepts = np.zeros((d, m)), np.zeros(m)
    for model in range(m):
        y = scores[rows, model]
        keep = rows[~np.isnan(y)]
        y = y[~np.isnan(y)]
        mean = float(y.mean()) if y.size else 0.5
        if y.size == 0 or np.all(y == y[0]):
            # One class only: a constant prediction of the mean, kept a little off 0 and 1.
            p = min(max(mean, 1e-3), 1 - 1e-3)
            intercepts[model] = np.log(p / (1 - p))
            continue
        x = design.x[keep]
        if np.all((y == 0) | (y == 1)) and row_weights is None:
            labels, sample_weight = y, None
        else:
            x = sparse.vstack([x, x], format="csr")
            labels = np.concatenate([np.ones(y.size), np.zeros(y.size)])
            sample_weight = np.concatenate([y, 1 - y]) * np.tile(counted[keep], 2)
        fitted = logistic(C=strength, max_iter=500, tol=1e-4, warm_start=start is not None)
        if start is not None:
            fitted.coef_ = start[0][:, model][None, :].copy()
            fitted.intercept_ = np.array([start[1][model]])
        fitted.fit(x, labels, sample_weight=sample_weight)
        weights[:, model] = fitted.coef_[0]
        intercepts[model] = fitted.intercept_[0]
    return weights, intercepts


_OFFSET = 1.0
"""A model's offset column in a shared fit (its base rate against the first model's) holds this constant:
penalized like one feature, so the solver stays fast (10, penalized 1/100th as much, took 36 times the
independent fits' time); each model's intercept is then set where its unpenalized value would be."""


def fit_shared_logistic(
    design: Design,
    scores: np.ndarray,
    rows: np.ndarray,
    strength: float,
    shared: float,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    row_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`fit_logistic`, with every model's regression fitted at once and shrunk toward one shared fit.

    Model m's weights are `shared x u + sqrt(1 - shared**2) x v_m`, one L2 penalty on u and on every
    v_m: the models' fits share the structure of what makes a prompt hard (which the weak and the strong
    model mostly agree on), and only their differences, which decide routing, are fitted from the few
    rows that show them. `shared` = 0 is `fit_logistic`'s independent fits; each model's weights have
    the same prior spread for every `shared`. `start` (per-model weights and intercepts) is where the
    solver starts, split into its mean (u) and the models' departures from it (v_m). `row_weights` (one
    per design row, default 1) is how much each row counts. Returns weights (d, models) and intercepts
    (models,).
    """
    logistic = _sklearn_logistic()
    import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

    d, m = design.x.shape[1], scores.shape[1]
    counted = np.ones(design.x.shape[0]) if row_weights is None else np.asarray(row_weights, np.float64)
    specific = float(np.sqrt(1.0 - shared**2))
    blocks, labels, sample_weights = [], [], []
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for model in range(m):
        y = scores[rows, model]
        keep = rows[~np.isnan(y)]
        y = y[~np.isnan(y)]
        x = design.x[keep]
        empty = sparse.csr_matrix((keep.size, d))
        offsets = np.zeros((keep.size, m - 1))
        if model:
            offsets[:, model - 1] = _OFFSET
        block = sparse.hstack(
            [
                shared * x,
                *(specific * x if j == model else empty for j in range(m)),
                sparse.csr_matrix(offsets),
            ],
            format="csr",
        )
        # Every row twice: a success weighted by its score, a failure by the rest (0/1 scores drop one).
        blocks += [block, block]
        labels += [np.ones(y.size), np.zeros(y.size)]
        sample_weights += [y * counted[keep], (1.0 - y) * counted[keep]]
        kept.append((keep, y))
    weight = np.concatenate(sample_weights)
    label = np.concatenate(labels)
    if not (weight[label == 1].sum() > 0 and weight[label == 0].sum() > 0):
        # One class only: constant predictions.
        return fit_logistic(design, scores, rows, strength, row_weights=row_weights)
    used = weight > 0
    x = sparse.vstack(blocks, format="csr")[used]
    fitted = logistic(C=strength, max_iter=500, tol=1e-4, warm_start=start is not None)
    if start is not None:
        mean = start[0].mean(axis=1)
        departures = [(start[0][:, j] - mean) / specific for j in range(m)]
        offsets_start = (start[1][1:] - start[1][0]) / _OFFSET
        fitted.coef_ = np.concatenate([mean / shared, *departures, offsets_start])[None, :]
        fitted.intercept_ = np.array([start[1][0]])
    fitted.fit(x, label[used], sample_weight=weight[used])
    coef = fitted.coef_[0]
    common = shared * coef[:d]
    weights = np.stack([common + specific * coef[d * (1 + j) : d * (2 + j)] for j in range(m)], axis=1)
    intercepts = fitted.intercept_[0] + _OFFSET * np.concatenate([[0.0], coef[d * (1 + m) :]])
    for model, (keep, y) in enumerate(kept):
        if y.size:
            margin = design.x[keep] @ weights[:, model]
            intercepts[model] = _matched_intercept(margin, y, intercepts[model], counted[keep])
    return weights, intercepts


def _matched_intercept(margin: np.ndarray, y: np.ndarray, start: float, counted: np.ndarray) -> float:
    """The intercept at which the mean of sigmoid(margin + intercept) is the mean of `y`, both weighted
    by `counted`: where an unpenalized intercept ends, so the penalized offsets do not pull the models'
    base rates together."""
    share = counted / counted.sum()
    target = float(np.clip(share @ y, 1e-3, 1 - 1e-3))
    intercept = start
    for _ in range(50):
        p = 0.5 * (1.0 + np.tanh(0.5 * (margin + intercept)))
        slope = float(share @ (p * (1 - p)))
        step = (float(share @ p) - target) / max(slope, 1e-6)
        intercept -= float(np.clip(step, -2.0, 2.0))
        if abs(step) < 1e-8:
            break
    return intercept


def fit_knn(data: FitData, k: int, shrink: float, keys: np.ndarray | None = None) -> KnnPredictor:
    """The neighbour table: every training prompt's key and scores, each model's mean as the prior."""
    if keys is None:
        keys = knn_keys(data.spec, data.features, KNN_DIMS)
    prior = data.filled.mean(axis=0)
    # Keys are stored in half precision; use the rounded values now so predictions match a reload.
    return KnnPredictor(
        keys.astype(np.float16).astype(np.float32), data.filled.astype(np.float32), prior, k, shrink
    )


def knn_out_of_fold(
    keys: np.ndarray, filled: np.ndarray, fold: np.ndarray, settings: Sequence[tuple[int, float]]
) -> list[np.ndarray]:
    """Out-of-fold neighbour predictions for several (k, shrink), from one similarity pass per fold."""
    n, m = filled.shape
    out = [np.empty((n, m)) for _ in settings]
    for f in np.unique(fold):
        test, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        prior, train_keys, train_scores = filled[train].mean(axis=0), keys[train], filled[train]
        kmax = min(max(k for k, _ in settings), train.size)
        for start in range(0, test.size, 512):
            block = test[start : start + 512]
            sims = keys[block] @ train_keys.T
            top = np.argpartition(-sims, kmax - 1, axis=1)[:, :kmax]
            top_sims = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-top_sims, axis=1)
            top = np.take_along_axis(top, order, axis=1)
            weights = np.clip(np.take_along_axis(top_sims, order, axis=1), 0.0, None).astype(np.float64)
            neighbour_scores = train_scores[top]
            for index, (k, shrink) in enumerate(settings):
                w = weights[:, : min(k, kmax)]
                total = np.einsum("ij,ijm->im", w, neighbour_scores[:, : w.shape[1]])
                out[index][block] = (total + shrink * prior) / (w.sum(axis=1, keepdims=True) + shrink)
    return out
