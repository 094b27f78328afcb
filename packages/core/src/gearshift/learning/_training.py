"""`train_router`: a `LearnedRouter` from an outcome table, its method picked by internal cross-validation.

Every candidate (logistic regressions per model, nearest neighbours with several k, and blends of
the best of each) predicts each training row from a model fitted without that row's fold. The
candidates are scored on what routing is for: the area under the cost-quality sweep of their
out-of-fold predictions, normalized so that random routing scores 0.5 and a perfect router about 1
(for two models this is RouteLLM's APGR). The best is refitted on the whole table, and its out-of-fold
sweep becomes the calibration curve, so the default operating point is set on predictions the router
did not fit. Nothing here ever sees data outside the table it is given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from .._progress import WorkCounter
from ..datasets import OutcomeTable, OutcomeTableError
from ._calibration import OperatingPoint, curve_of, expected_scores, on_scale_of, pick_operating_point
from ._choice import choose_by_tradeoff, relative_costs, strongest_breakpoints, tradeoff_grid
from ._features import (
    CONTENT_FEATURES,
    Embedder,
    FeatureSpec,
    PromptFeatures,
    PromptLike,
    build_features,
    prompt_inputs,
)
from ._fitting import (
    KNN_DIMS,
    Design,
    FitData,
    fill_missing,
    fit_knn,
    fit_logistic,
    fit_shared_logistic,
    knn_out_of_fold,
)
from ._predictors import BlendPredictor, Predictor, knn_keys
from ._pseudo_labels import PseudoRows, pseudo_rows, sampled
from ._router_model import LearnedRouter, TrainingSummary
from ._text_hashing import DEFAULT_TEXT_DIMS
from ._topics import TOPIC_COUNTS, TOPIC_STRENGTH, TopicDesign, table_text, topic_projection, unlabeled_text

__all__ = [
    "DEFAULT_QUALITY_SHARE",
    "METHODS",
    "MIN_TRAINING_ROWS",
    "Method",
    "shared_fit_for",
    "sweep_score",
    "train_router",
]

Method = Literal["auto", "linear", "topics", "knn", "blend"]
METHODS: tuple[str, ...] = ("auto", "linear", "topics", "knn", "blend")
"""The methods `train_router` accepts; `auto` picks the best of the others by internal cross-validation."""

ROUTER_TEXT_DIMS = 2 * DEFAULT_TEXT_DIMS
"""Width of the hashed text block of a trained router: 8,192 columns, 64 KB of weights per model.

Wider than `text_features`' default because a router has room for it: on the bundled MMLU data it
ranked prompts a little better than 4,096 columns (5-fold CV) at the same training time."""

DEFAULT_QUALITY_SHARE = 0.95
"""The default operating point keeps this share of the best single model's quality, at the least cost."""

_BLEND_WEIGHTS = (0.25, 0.5, 0.75)
_SIMPLER_MARGIN = 0.01
"""`auto` keeps the linear model unless a neighbour-based candidate beats it by this much in internal CV.

A neighbour search reads every training prompt on each decision (milliseconds on a large table,
against microseconds for the linear model), so it has to pay for itself in routing quality."""
_LEAD_RESAMPLES = 100
_LEAD_ERRORS = 2.0
"""... and by this many standard errors of its lead, estimated by resampling the rows: on a few hundred
rows (a shadow log) internal CV scores are mostly noise, and a neighbour model picked on noise routed
worse on unseen traffic (`tests/benchmarks/shadow_replay.py`: 0.75 of the full-table router's APGR,
against 0.78 for the linear model, seeds 0-4)."""
MIN_TRAINING_ROWS = 10
"""The fewest rows `train_router` trains on."""
_MIN_CV_ROWS = 30
_LARGE_TABLE = 5_000
_LINEAR_KINDS = ("linear", "topics")


def sweep_score(predicted: np.ndarray, scores: np.ndarray, rel_costs: np.ndarray) -> float:
    """The normalized area under the sweep of the trade-off rule over `predicted`, judged by `scores`.

    The x axis is the mean relative cost of the chosen models (cheapest model to the most expensive),
    the y axis the mean recorded score, normalized by the cheapest and the most expensive model's
    scores: random routing scores 0.5; for two models this is APGR.
    """
    n, _m = predicted.shape
    rows = np.arange(n)
    xs, ys = [rel_costs[0], rel_costs[-1]], [scores[:, 0].mean(), scores[:, -1].mean()]
    for tradeoff in tradeoff_grid(predicted, rel_costs, points=101):
        chosen = choose_by_tradeoff(predicted, rel_costs, float(tradeoff))
        xs.append(float(rel_costs[chosen].mean()))
        ys.append(float(scores[rows, chosen].mean()))
    x, y = np.asarray(xs), np.asarray(ys)
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    span = float(rel_costs[-1] - rel_costs[0])
    area = float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2) / span if span > 0 else float(y.max())
    low, high = float(scores[:, 0].mean()), float(scores[:, -1].mean())
    return (area - low) / (high - low) if abs(high - low) > 1e-9 else area


def _model_order(
    table: OutcomeTable, costs: Mapping[str, float] | None
) -> tuple[tuple[str, ...], tuple[float, ...], bool]:
    models = table.models
    if costs is not None:
        missing = [m for m in models if m not in costs]
        if missing:
            raise OutcomeTableError(f"costs names no cost for model '{missing[0]}'")
        means = {m: float(costs[m]) for m in models}
    else:
        means = {}
        for model in models:
            recorded = [r.outcomes[model].cost_usd for r in table if model in r.outcomes]
            known = [c for c in recorded if c is not None]
            if known:
                means[model] = math.fsum(known) / len(known)
    if len(means) == len(models) and any(v > 0 for v in means.values()):
        ordered = tuple(sorted(models, key=lambda m: means[m]))  # stable: equal costs keep table order
        return ordered, tuple(means[m] for m in ordered), True
    return models, (0.0,) * len(models), False


def _folds(n: int, k: int, seed: int) -> np.ndarray:
    fold = np.arange(n) % k
    np.random.default_rng(seed).shuffle(fold)
    return fold


_STRENGTHS = (0.3,)
"""Inverse L2 strengths (scikit-learn's C) of the logistic regressions internal cross-validation compares.

One value keeps training on 14k prompts under a minute; 0.3 was the best of 0.1 to 3 on the bundled
data's cross-validation and is a moderate setting for the standardized, unit-norm features.
"""


SHARED_FIT = 0.8
"""How much of each model's logistic weights is one fit shared by all the models on a table under
`SHARED_FIT_ROWS` rows (`fit_shared_logistic`, `shared_fit_for`); 0 would fit each model alone.

What makes a prompt hard is mostly the same for a weak and a strong model; what routing needs is the
difference between them, and a few hundred rows (a 5% shadow log) show it on few prompts. Fitted
alone, each model's regression puts its own noise into that difference; shrunk toward a shared fit,
the difference is fitted only where the rows show it (`tests/benchmarks/shadow_trainer_variants.py
--variants auto,auto-independent`)."""

SHARED_FIT_ROWS = 500
"""`shared_fit_for` shares no weights from this many rows on: on GSM8K's 1,307 rows (5-fold CV, about
1,050 training rows a fold, `tests/benchmarks/learned_router.py`) shared fits routed worse (APGR 0.659
against 0.671) in 2.5 times the training time."""


def shared_fit_for(rows: int, models: int) -> float:
    """The `shared_fit` `gearshift train` passes `train_router` for a table of `rows` rows and `models`
    models: `SHARED_FIT` for two models below `SHARED_FIT_ROWS` rows (a shadow log's few hundred pairs),
    else 0 (each model fitted alone). Over three tiers, where each model's hard prompts differ, a
    shared fit pulled the middle model toward the cheap one and sent the prompts only the middle one
    answered to the cheap one (`tests/core/test_shadow_tiers.py`)."""
    return SHARED_FIT if models == 2 and rows < SHARED_FIT_ROWS else 0.0


def _fit_linear(
    design: Design,
    scores: np.ndarray,
    rows: np.ndarray,
    settings: Mapping[str, float],
    start: tuple[np.ndarray, np.ndarray] | None = None,
    row_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A linear or topic candidate's logistic regressions on `rows`: fitted together, shrunk toward a
    shared fit, when its settings name a `shared` weight."""
    shared = settings.get("shared", 0.0)
    if shared:
        return fit_shared_logistic(design, scores, rows, settings["C"], shared, start, row_weights)
    return fit_logistic(design, scores, rows, settings["C"], start, row_weights)


def _knn_settings(rows: int) -> list[tuple[int, float]]:
    """(k, shrink) pairs internal cross-validation compares; k grows with the table, up to a point."""
    ks = sorted({max(3, min(k, rows // 4)) for k in (25, 100)})
    return [(k, k / 4) for k in ks]


@dataclass(frozen=True, eq=False)
class _Candidate:
    method: str
    settings: dict[str, float]
    predicted: np.ndarray
    start: tuple[np.ndarray, np.ndarray] | None = None


def _out_of_fold(
    data: FitData, design: Design, fold: np.ndarray, settings: Mapping[str, float], work: WorkCounter
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Each row's prediction by logistic regressions fitted without its fold, and the folds' mean fit."""
    predicted = np.empty(data.filled.shape)
    fits = []
    for f in range(int(fold.max()) + 1):
        test, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        weights, intercept = _fit_linear(design, data.scores, train, settings)
        predicted[test] = _sigmoid(design.x[test] @ weights + intercept)
        fits.append((weights, intercept))
        work.step()
    # The folds' mean fit starts the final fit on every row close to where it will end.
    return predicted, (np.mean([w for w, _ in fits], axis=0), np.mean([b for _, b in fits], axis=0))


def _candidates(
    data: FitData,
    design: Design,
    method: str,
    fold: np.ndarray,
    work: WorkCounter,
    topics: Mapping[int, TopicDesign],
    shared: float,
) -> dict[str, _Candidate]:
    """Out-of-fold predictions of every candidate `method` asks for (`auto` and `blend`: all, and the
    topic models of `topics`, which `train_router` builds only where they may compete); the linear and
    topic models' fits share `shared` of their weights across the models (`SHARED_FIT`)."""
    tied = {"shared": shared} if shared else {}
    wanted = ("linear", "knn") if method in ("auto", "blend") else (method,)
    found: dict[str, _Candidate] = {}
    if "linear" in wanted:
        for strength in _STRENGTHS:
            chosen = {"C": strength, **tied}
            predicted, start = _out_of_fold(data, design, fold, chosen, work)
            found[f"linear(C={strength:g})"] = _Candidate("linear", chosen, predicted, start)
    if method in ("auto", "topics"):
        for count, topic in topics.items():
            chosen = {"C": TOPIC_STRENGTH, "topics": float(count), **tied}
            predicted, start = _out_of_fold(data, topic.design, fold, chosen, work)
            found[f"topics(k={count})"] = _Candidate("topics", chosen, predicted, start)
    if "knn" in wanted:
        keys = knn_keys(data.spec, data.features, KNN_DIMS)
        settings = _knn_settings(len(fold))
        for (k, shrink), predicted in zip(
            settings, knn_out_of_fold(keys, data.filled, fold, settings), strict=False
        ):
            found[f"knn(k={k})"] = _Candidate("knn", {"k": float(k), "shrink": shrink}, predicted)
        work.step()
    return found


def _sigmoid(margin: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * margin)))


def _choose(
    data: FitData,
    design: Design,
    method: str,
    fold: np.ndarray,
    rel: np.ndarray,
    work: WorkCounter,
    seed: int = 0,
    topics: Mapping[int, TopicDesign] | None = None,
    shared: float = 0.0,
) -> tuple[_Candidate, dict[str, float]]:
    """The best candidate by internal cross-validation, and every candidate's score."""
    found = _candidates(data, design, method, fold, work, topics or {}, shared)
    scores = {label: sweep_score(c.predicted, data.filled, rel) for label, c in found.items()}
    if method in ("auto", "blend"):
        linear = max((label for label in found if found[label].method == "linear"), key=scores.__getitem__)
        knn = max((label for label in found if found[label].method == "knn"), key=scores.__getitem__)
        for weight in _BLEND_WEIGHTS:
            predicted = weight * found[linear].predicted + (1 - weight) * found[knn].predicted
            settings = {**found[linear].settings, **found[knn].settings, "weight": weight}
            label = f"blend(weight={weight:g})"
            found[label] = _Candidate("blend", settings, predicted, found[linear].start)
            scores[label] = sweep_score(predicted, data.filled, rel)
    pool = [label for label in found if method == "auto" or found[label].method == method]
    best = max(pool, key=scores.__getitem__)
    if method == "auto" and found[best].method not in _LINEAR_KINDS:
        linear = max(
            (label for label in pool if found[label].method in _LINEAR_KINDS), key=scores.__getitem__
        )
        lead = scores[best] - scores[linear]
        if lead < _SIMPLER_MARGIN or lead < _LEAD_ERRORS * _lead_error(
            found[best].predicted, found[linear].predicted, data.filled, rel, seed
        ):
            best = linear
    return found[best], scores


def _lead_error(
    better: np.ndarray, linear: np.ndarray, scores: np.ndarray, rel: np.ndarray, seed: int
) -> float:
    """Standard error of `better`'s sweep-score lead over `linear`, from rows resampled with replacement."""
    rng = np.random.default_rng(seed)
    n = len(scores)
    leads = []
    for _ in range(_LEAD_RESAMPLES):
        rows = rng.integers(0, n, n)
        leads.append(
            sweep_score(better[rows], scores[rows], rel) - sweep_score(linear[rows], scores[rows], rel)
        )
    return float(np.std(leads))


def _fit(
    data: FitData,
    design: Design,
    method: str,
    settings: Mapping[str, float],
    start: tuple[np.ndarray, np.ndarray] | None = None,
    topics: Mapping[int, TopicDesign] | None = None,
    pseudo: PseudoRows | None = None,
) -> Predictor:
    """The chosen predictor, refitted on every row (a linear fit starting from `start`); a linear or
    topic model's fit also on the `pseudo` rows, given them."""
    if method in _LINEAR_KINDS and pseudo is not None:
        text = table_text(data.spec, data.features)
        fitted, text, scores, row_weights = pseudo.extend(design, text, data.scores)
        every_row = np.arange(len(scores))
        if method == "topics":
            assert topics is not None
            topic = TopicDesign(fitted, text, topics[int(settings["topics"])].projection)
            weights, intercept = _fit_linear(topic.design, scores, every_row, settings, start, row_weights)
            return design.predictor(data.spec, topic.unfold(weights), intercept)
        weights, intercept = _fit_linear(fitted, scores, every_row, settings, start, row_weights)
        return design.predictor(data.spec, weights, intercept)
    if method == "topics":
        assert topics is not None
        topic = topics[int(settings["topics"])]
        every_row = np.arange(len(data.scores))
        weights, intercept = _fit_linear(topic.design, data.scores, every_row, settings, start)
        return design.predictor(data.spec, topic.unfold(weights), intercept)
    linear = knn = None
    if method in ("linear", "blend"):
        every_row = np.arange(len(data.scores))
        weights, intercept = _fit_linear(design, data.scores, every_row, settings, start)
        linear = design.predictor(data.spec, weights, intercept)
    if method in ("knn", "blend"):
        knn = fit_knn(data, int(settings["k"]), settings["shrink"])
    if linear is not None and knn is not None:
        return BlendPredictor(linear, knn, settings["weight"])
    predictor = linear if linear is not None else knn
    assert predictor is not None
    return predictor


def train_router(
    table: OutcomeTable,
    *,
    method: str = "auto",
    embedder: Embedder | None = None,
    seed: int = 0,
    costs: Mapping[str, float] | None = None,
    folds: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    unused_features: Sequence[str] = (),
    unlabeled: Sequence[PromptLike] = (),
    shared_fit: float = 0.0,
    pseudo_weight: float = 0.0,
) -> LearnedRouter:
    """Train a router on `table`: any number of models, with or without recorded costs.

    `method` is `linear` (a logistic regression per model over hashed text n-grams, the core's
    signals, the text's shape and the task label), `topics` (the same, its text read through 8 or 16
    latent topics of the prompts: see `unlabeled`), `knn` (nearest neighbours), `blend`, or `auto` (the
    best of all by `folds`-fold internal cross-validation on `table` alone, `seed` fixing the split;
    3 folds, or 2 from 5,000 rows on, where half the table is plenty to compare methods;
    it keeps the linear model unless a neighbour-based one is clearly better). `embedder` replaces the
    hashed text with your own vectors. `costs` gives each model's cost per request in USD instead of
    the table's mean recorded cost. The router's default operating point is the cheapest one expected to
    keep 95% of the best single model's mean quality; pick another with `calibrate` or
    `LearnedRouter.operating_point_for`. Needs scikit-learn (`pip install 'gearshift[train]'`).
    `on_progress(done, total)` is called as each fit ends (every fold of every candidate, then the
    final fit). `unused_features` names content features (from `CONTENT_FEATURES`) the router must not
    read: they are zero in training, so their weights are zero and the artifact's format is unchanged.
    `unlabeled` are prompts without outcomes (say, every prompt of a decision log, of which a shadow
    labels a few percent): the topics are found over them and the table's prompts together. Given
    them, topic models compete under `auto` on tables under 5,000 rows, where the full hashed block has
    too few labels to fit; the result is a linear router like any other. Without them, `auto` compares
    the candidates it always did. `shared_fit` (0 to below 1) is how much of their weights the models'
    linear and topic fits share (`fit_shared_logistic`); 0 fits each model alone. `shared_fit_for`
    gives what `gearshift train` uses: `SHARED_FIT` on a shadow-log-sized table, else 0. Where topic
    models compete and a linear or topic model is kept, a `pseudo_weight` above 0 (`PSEUDO_WEIGHT`, 3,
    is the weight measured) lets its final fit also learn from up to 2,000 of the `unlabeled` prompts,
    each labeled by its nearest rows of `table` (`_pseudo_labels`), together counting `pseudo_weight`
    times the table's rows. The default, 0, fits on the table alone: with them the held-out APGR moved
    within the seeds' noise (`tests/benchmarks/shadow_operating_point.py`). Given `unlabeled`, the
    calibration curve's trade-offs are moved to the final fit's own scale over the table's prompts and
    up to 2,000 of those (`on_scale_of`), the traffic it will route, so it sends the strong share it
    promises there: the curve was swept over out-of-fold fits, which spread their gains otherwise.
    """
    started = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if len(table) < MIN_TRAINING_ROWS:
        raise OutcomeTableError(
            f"training needs at least {MIN_TRAINING_ROWS} rows, the table has {len(table)}"
        )
    models, mean_costs, costs_known = _model_order(table, costs)
    if len(models) < 2:
        raise OutcomeTableError(f"routing needs at least two models; the table has {len(models)}")
    inputs = prompt_inputs(table.rows)
    probe = np.asarray(embedder([inputs[0].text]), dtype=np.float64) if embedder is not None else None
    if probe is not None and (probe.ndim != 2 or probe.shape[0] != 1):
        raise ValueError(
            f"the embedder must return shape (len(texts), d); for one text it gave {probe.shape}"
        )
    embed_dims = int(probe.shape[1]) if probe is not None else 0
    spec = FeatureSpec(
        text_dims=0 if embedder is not None else ROUTER_TEXT_DIMS,
        embedder=getattr(embedder, "__name__", type(embedder).__name__) if embedder is not None else None,
        embed_dims=embed_dims,
        content=True,
        tasks=table.tasks if len(table.tasks) > 1 else (),
    )
    scores = np.array([[r.outcomes[m].score if m in r.outcomes else np.nan for m in models] for r in table])
    features = _without(build_features(spec, inputs, embedder), spec, unused_features)
    data = FitData(spec, features, scores, fill_missing(scores))
    design = Design.of(data)
    rel = relative_costs(mean_costs if costs_known else (0.0,) * len(models))
    if folds is None:
        folds = 3 if len(table) < _LARGE_TABLE else 2
    k = min(folds, len(table)) if len(table) >= _MIN_CV_ROWS else 0
    topics = _topic_designs(method, spec, data, design, unlabeled, seed) if k >= 2 else {}
    if method == "topics" and not topics:
        method = "linear"  # too few prompts (or rows) to find topics in
    linear_fits = len(_STRENGTHS) * k if method in ("auto", "blend", "linear") else 0
    linear_fits += len(topics) * k
    neighbours = method in ("auto", "blend", "knn")
    work = WorkCounter((linear_fits + neighbours if k >= 2 else 0) + 1, on_progress)
    if not 0.0 <= shared_fit < 1.0:
        raise ValueError(f"shared_fit must be at least 0 and below 1, got {shared_fit!r}")
    shared = float(shared_fit)
    if not 0.0 <= pseudo_weight < math.inf:
        raise ValueError(f"pseudo_weight must be a finite number at least 0, got {pseudo_weight!r}")
    if k >= 2:
        fold = _folds(len(table), k, seed)
        best, cv_scores = _choose(data, design, method, fold, rel, work, seed, topics, shared)
        name, setting, out_of_fold, start = best.method, best.settings, best.predicted, best.start
    else:
        # Too few rows to hold any out: fit middle settings and calibrate on the fitted rows.
        name = "knn" if method == "knn" else "linear"  # a topic model too: too few prompts for topics
        setting = {"C": _STRENGTHS[0], "k": float(max(1, len(table) // 3)), "shrink": 1.0}
        setting.update({"shared": shared} if shared else {})
        out_of_fold, cv_scores, start = None, {}, None
    pseudo = pseudo_rows(data, design, unlabeled, pseudo_weight) if topics and name in _LINEAR_KINDS else None
    predictor = _fit(data, design, name, setting, start, topics, pseudo)
    work.step()
    router = LearnedRouter(
        models,
        mean_costs,
        costs_known,
        spec,
        predictor,
        OperatingPoint(0.0, "tradeoff=0"),
        None,
        TrainingSummary(len(table), table.tasks, name, {}, k, 0.0),
        embedder,
    )
    predicted = out_of_fold if out_of_fold is not None else predictor.predict(spec, data.features)
    curve = curve_of(router, table, predicted)
    if unlabeled:
        # The curve was swept over out-of-fold fits (or the table alone); the final fit, which learned
        # from more rows (and maybe pseudo-labels), spreads its gains otherwise, so each share is set at
        # its own trade-off over the log's prompts, the traffic it will route.
        traffic = router.predict([*table.rows, *sampled(unlabeled)])
        curve = on_scale_of(curve, strongest_breakpoints(traffic, router.relative_costs))
    # Each model's quality over every row, a missing outcome at its predicted value (as the curve's).
    best_single = float(np.nanmax(np.nanmean(expected_scores(scores, predicted), axis=0)))
    point = pick_operating_point(curve, quality_floor=min(1.0, DEFAULT_QUALITY_SHARE * best_single))
    point = OperatingPoint(
        point.tradeoff,
        f"{point.target} ({DEFAULT_QUALITY_SHARE:.0%} of the best single model's quality)",
        point.strong_share,
        point.quality,
        point.cost_per_request,
        point.met,
    )
    summary = TrainingSummary(
        rows=len(table),
        tasks=table.tasks,
        method=name,
        scores=cv_scores,
        folds=k,
        seconds=round(time.perf_counter() - started, 3),
        details={key: value for key, value in setting.items() if key in _USED[name]},
    )
    return replace(router, operating_point=point, curve=curve, training=summary)


def _without(features: PromptFeatures, spec: FeatureSpec, unused: Sequence[str]) -> PromptFeatures:
    """`features` with the named content features set to zero in every row."""
    unknown = [name for name in unused if name not in CONTENT_FEATURES]
    if unknown:
        raise ValueError(
            f"no content feature named {unknown[0]!r}; choose from {', '.join(CONTENT_FEATURES)}"
        )
    if unused and not spec.content:
        raise ValueError("unused_features needs the content features, which these features leave out")
    for name in unused:
        features.dense[:, spec.embed_dims + CONTENT_FEATURES.index(name)] = 0.0
    return features


_USED = {
    "linear": ("C", "shared"),
    "topics": ("C", "topics", "shared"),
    "knn": ("k", "shrink"),
    "blend": ("C", "k", "shrink", "weight", "shared"),
}


def _topic_designs(
    method: str,
    spec: FeatureSpec,
    data: FitData,
    design: Design,
    unlabeled: Sequence[PromptLike],
    seed: int,
) -> dict[int, TopicDesign]:
    """The topic models' designs, by number of topics, where they compete: `method` `topics`, or
    `auto` given `unlabeled` prompts for a table under `_LARGE_TABLE` rows (a shadow log: labels few
    enough for the full hashed block to overfit, and the prompts of every call to find topics in);
    none when the text is an embedder's or the prompts are too few."""
    small = method == "auto" and bool(unlabeled) and data.features.rows < _LARGE_TABLE
    if not spec.text_dims or not (method == "topics" or small):
        return {}
    import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

    text = table_text(spec, data.features)
    corpus = (
        sparse.vstack([text, unlabeled_text(unlabeled, spec.text_dims)], format="csr") if unlabeled else text
    )
    designs = {}
    for count in TOPIC_COUNTS:
        projection = topic_projection(corpus, count, seed)
        if projection is not None:
            designs[count] = TopicDesign(design, text, projection)
    return designs
