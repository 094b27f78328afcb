"""`evaluate`: every policy and baseline on one outcome table, as curves and metrics.

Learned policies are trained either on a separate table (`train=`) or by K-fold cross-validation:
each fold's router is trained on the other K-1 folds and predicts the held-out one, and the out-of-fold
predictions of all folds make one curve over the whole table, so every prompt is scored by a router
that never saw it. The scorer and the baselines need no training and run on the table directly.

The metrics' cost axis (documented in `_metrics`): for two models the strong-call share, RouteLLM's;
for more models with costs, mean dollars per request from the cheapest model's cost to the best single
model's. AIQ (RouterBench) needs costs and uses the range from the cheapest to the costliest model.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._progress import WorkCounter
from ..datasets import OutcomeRow, OutcomeTable
from ..policies import SignalScorer
from ..signals._tokens import estimate_tokens
from ._baselines import (
    always_cheapest,
    always_strongest,
    chance,
    oracle,
    prompt_length,
    prompt_lengths,
    random_router,
)
from ._learned import LearnedRun, run_learned, run_saved
from ._metrics import RouterCurve, aiq, apgr, cpt
from ._names import BASELINES, LEARNED_METHODS, POLICIES
from ._sweep import EvaluationError, OutcomeMatrix, band_choices, scorer_difficulty, sweep_scorer

if TYPE_CHECKING:
    from ..learning import LearnedRouter

__all__ = ["EvalReport", "Latency", "PolicyResult", "evaluate"]

_LATENCY_SAMPLES = 200
_QUALITY_KEPT = 0.95


@dataclass(frozen=True, slots=True)
class Latency:
    """Time one routing decision takes, per request, in microseconds, over `samples` requests."""

    median_us: float
    p99_us: float
    samples: int


@dataclass(frozen=True, eq=False)
class PolicyResult:
    """One policy's curve and metrics on the evaluated table.

    `apgr`, `cpt50` and `cpt80` (percent) are None for a policy without a knob (one point), or when
    undefined; `aiq` is None without costs. `quality`, `cost` and `strong_share` are at the operating
    point the policy runs at by default (None for random, which has none). `cost_for_95` is the least
    cost on the policy's hull that reaches 95% of the best single model's quality, as a share of that
    model's cost; `above_models` says whether the hull lies on or above every single model's point.
    `chance_apgr` is, for a policy that ranks prompts into tiers (every policy, and of the baselines
    `length`), the APGR of a coin with the same tiers at the same shares (`chance`): of two models
    0.5; of more, the bar its APGR must clear to rank prompts better than at random. None for the
    other baselines.
    """

    name: str
    curve: RouterCurve
    baseline: bool
    apgr: float | None
    cpt50: float | None
    cpt80: float | None
    aiq: float | None
    quality: float | None
    cost: float | None
    strong_share: float | None
    latency: Latency | None
    cost_for_95: float | None
    above_models: bool | None
    chance_apgr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view; the curve as [[cost, quality], ...] in sweep order."""
        return {
            "apgr": self.apgr,
            "chance_apgr": self.chance_apgr,
            "cpt50": self.cpt50,
            "cpt80": self.cpt80,
            "aiq": self.aiq,
            "quality": self.quality,
            "cost": self.cost,
            "strong_share": self.strong_share,
            "latency_us": None
            if self.latency is None
            else {"median": self.latency.median_us, "p99": self.latency.p99_us},
            "cost_for_95": self.cost_for_95,
            "above_models": self.above_models,
            "baseline": self.baseline,
            "curve": [[c, q] for c, q in self.curve.points],
        }


@dataclass(frozen=True, eq=False)
class EvalReport:
    """What `evaluate` measured: the table's models and every policy's result, baselines first.

    `costs_known` says whether the cost axis is dollars (mean per request) or the strong-call share.
    `models` maps each model, cheapest first, to its (cost, quality) when it serves every request.
    `folds` is the number of cross-validation folds, or None when nothing was cross-validated (a
    training table was given, or no learned policy was evaluated).
    `notes` say what the figures measure: which models the quality gap spans and on which cost axis,
    and, when the default policy was evaluated, which estimate and tiers it used.
    """

    rows: int
    models: dict[str, tuple[float, float]]
    strong: str
    costs_known: bool
    folds: int | None
    train_rows: int | None
    policies: dict[str, PolicyResult]
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def cost_unit(self) -> str:
        """What the cost numbers are: `usd` (mean per request) or `strong_share`."""
        return "usd" if self.costs_known else "strong_share"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `gearshift eval --json` prints."""
        return {
            "policies": {name: result.to_dict() for name, result in self.policies.items()},
            "models": {m: {"cost": c, "quality": q} for m, (c, q) in self.models.items()},
            "strong_model": self.strong,
            "cost_unit": self.cost_unit,
            "rows": self.rows,
            "folds": self.folds,
            "train_rows": self.train_rows,
            "seconds": self.seconds,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class _Axes:
    """How the metrics read a curve on this table."""

    pgr_on_shares: bool
    pgr_range: tuple[float, float]
    weak_quality: float
    strong_quality: float
    aiq_range: tuple[float, float] | None


def _axes(matrix: OutcomeMatrix) -> _Axes:
    quality = matrix.mean_scores
    costs = matrix.mean_costs
    best = matrix.best
    aiq_range = None
    if costs is not None and costs.max() > costs[0]:
        aiq_range = (float(costs[0]), float(costs.max()))
    if len(matrix.models) == 2 or costs is None:
        return _Axes(True, (0.0, 1.0), float(quality[0]), float(quality[matrix.strong]), aiq_range)
    return _Axes(
        False, (float(costs[0]), float(costs[best])), float(quality[0]), float(quality[best]), aiq_range
    )


def _latency(decide: Callable[[OutcomeRow], object], rows: Sequence[OutcomeRow]) -> Latency:
    sample = list(rows[:_LATENCY_SAMPLES])
    for row in sample[:5]:
        decide(row)  # warm caches and lazy imports before timing
    timings = []
    clock = time.perf_counter_ns
    # As timeit does: a collection that happens to fall in one call is not that decision's cost.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for row in sample:
            start = clock()
            decide(row)
            timings.append(clock() - start)
    finally:
        if collecting:
            gc.enable()
    micro = np.asarray(timings, dtype=np.float64) / 1000.0
    return Latency(float(np.median(micro)), float(np.percentile(micro, 99)), len(sample))


def _result(
    matrix: OutcomeMatrix,
    axes: _Axes,
    curve: RouterCurve,
    *,
    baseline: bool,
    latency: Latency | None,
    operating: tuple[float, float, float] | None = None,
    swept: bool = False,
) -> PolicyResult:
    if operating is None and curve.operating is not None:
        i = curve.operating
        operating = (float(curve.costs[i]), float(curve.qualities[i]), float(curve.strong_shares[i]))
    apgr_value = cpt50 = cpt80 = aiq_value = None
    if len(curve) > 1:
        x = curve.strong_shares if axes.pgr_on_shares else curve.costs
        gap = {"weak_quality": axes.weak_quality, "strong_quality": axes.strong_quality}
        if axes.pgr_range[1] > axes.pgr_range[0]:
            apgr_value = _apgr(axes, curve)
            cpt50 = cpt(x, curve.qualities, target=0.5, cost_range=axes.pgr_range, **gap)
            cpt80 = cpt(x, curve.qualities, target=0.8, cost_range=axes.pgr_range, **gap)
        if axes.aiq_range is not None:
            aiq_value = aiq(curve.costs, curve.qualities, cost_range=axes.aiq_range)
    cost_for_95 = above = None
    if matrix.costs is not None:
        costs, quality = matrix.mean_costs, matrix.mean_scores
        assert costs is not None
        best = matrix.best
        needed = curve.cost_at_quality(_QUALITY_KEPT * float(quality[best]))
        if needed is not None and costs[best] > 0:
            cost_for_95 = needed / float(costs[best])
        reached = [curve.quality_at_cost(float(c)) for c in costs]
        above = all(r is not None and r >= q - 1e-12 for r, q in zip(reached, quality, strict=True))
    return PolicyResult(
        name=curve.name,
        curve=curve,
        baseline=baseline,
        apgr=apgr_value,
        cpt50=cpt50,
        cpt80=cpt80,
        aiq=aiq_value,
        quality=None if operating is None else operating[1],
        cost=None if operating is None else operating[0],
        strong_share=None if operating is None else operating[2],
        latency=latency,
        cost_for_95=cost_for_95,
        above_models=above,
        chance_apgr=_chance_apgr(matrix, axes, curve) if swept else None,
    )


def _chance_apgr(matrix: OutcomeMatrix, axes: _Axes, curve: RouterCurve) -> float | None:
    """The APGR of a coin with the curve's tiers at its shares (`chance`), or None without its shares."""
    coin = chance(matrix, curve)
    return None if coin is None else _apgr(axes, coin)


def _apgr(axes: _Axes, curve: RouterCurve) -> float | None:
    """The curve's APGR on the table's axes; None for one point or no cost range."""
    if len(curve) < 2 or not axes.pgr_range[1] > axes.pgr_range[0]:
        return None
    x = curve.strong_shares if axes.pgr_on_shares else curve.costs
    return apgr(
        x,
        curve.qualities,
        weak_quality=axes.weak_quality,
        strong_quality=axes.strong_quality,
        cost_range=axes.pgr_range,
    )


def _axis_note(matrix: OutcomeMatrix, axes: _Axes) -> str:
    """Which models the metrics' quality gap spans, and against what cost."""
    cheapest, strong = matrix.models[0], matrix.models[matrix.strong]
    first = "cheapest" if matrix.costs is not None else "weakest"
    if axes.strong_quality == axes.weak_quality:
        return (
            f"APGR and CPT: none, as no model scores better on average than {cheapest} ({first}, "
            f"{axes.weak_quality:.3f}): there is no quality gap for a router to recover"
        )
    gap = f"APGR and CPT: the quality gap from {cheapest} ({first}) to {strong}"
    if len(matrix.models) == 2:
        other = "costlier" if matrix.costs is not None else "stronger"
        return f"{gap} (the {other}), against the share of requests sent to {strong}"
    if axes.pgr_on_shares:
        middle = ", ".join(matrix.models[1 : matrix.strong])
        return (
            f"{gap} (the best single model), against the share of requests sent to {strong}: without "
            f"recorded costs the {len(matrix.models)} models are ordered weakest first and a request sent to "
            f"{middle or 'a model in between'} costs nothing on this axis, so APGR can exceed a two-model one"
        )
    return (
        f"{gap} (the best single model), against the mean cost per request from {cheapest}'s to {strong}'s; "
        f"the other models count by what they cost and score"
    )


def _saved_note(name: str, router: LearnedRouter) -> str:
    """What a saved router's figures are: which router, trained on what, at which operating point."""
    training = router.training
    source = f" of {training.source}" if training.source else ""
    return (
        f"{name}: a saved {training.method} router trained on {training.rows:,} rows{source}, scored as "
        f"shipped (no training here); its quality, cost and strong share are at its own operating point, "
        f"{router.operating_point.target}"
    )


def _chance_note(matrix: OutcomeMatrix, results: dict[str, PolicyResult]) -> str | None:
    """What the chance APGR beside a tiered policy's APGR means, or None when no policy has one."""
    shown = {name: r.chance_apgr for name, r in results.items() if r.chance_apgr is not None}
    if not shown:
        return None
    figures = ", ".join(f"{name} {value:.3f}" for name, value in shown.items())
    if len(matrix.models) == 2:
        return f"chance APGR ({figures}): what a coin gets at each policy's shares of the two models, 0.5"
    return (
        f"chance APGR ({figures}): what a coin gets with each policy's own tiers, sending at each of its "
        "operating points the same share of prompts to each model, chosen at random. APGR's 0.5 is the "
        "straight line from the cheapest to the best model; models that score well for their cost lie above "
        "it, so a policy ranks prompts better than a coin only where its APGR is above its chance APGR, "
        "not above 0.5"
    )


def _left_out_note(table: OutcomeTable, matrix: OutcomeMatrix) -> str | None:
    """Which of the table's models the evaluation leaves out (no outcome on some rows), or None."""
    missing = {m: sum(m not in row.outcomes for row in table) for m in table.models if m not in matrix.models}
    if not missing:
        return None
    named = ", ".join(f"{m} (no outcome on {n:,} of the {len(table):,} rows)" for m, n in missing.items())
    return (
        f"left out {named}: every policy and baseline is compared on the models that have an outcome on "
        "every row"
    )


def _missing_cost_note(table: OutcomeTable, matrix: OutcomeMatrix) -> str | None:
    """Why a table that records some costs is measured on the strong-call share, or None."""
    if matrix.costs is not None:
        return None
    gaps = [(row.id, [m for m in matrix.models if row.outcomes[m].cost_usd is None]) for row in table]
    short = [(row_id, models) for row_id, models in gaps if models]
    if len(short) == len(table) and all(len(models) == len(matrix.models) for _, models in short):
        return None  # no cost anywhere: the axis note says so
    if short:
        row_id, models = short[0]
        why = (
            f"cost_usd is missing on {len(short):,} of the {len(table):,} rows (first: row '{row_id}', "
            f"model {models[0]})"
        )
    else:
        why = "every cost_usd is 0"
    return (
        f"{why}, so the cost axis is the share of requests sent to {matrix.models[matrix.strong]}, not "
        "dollars, and there is no AIQ"
    )


def _check_policies(policies: Sequence[str]) -> tuple[str, ...]:
    unknown = [p for p in policies if p not in POLICIES and p not in BASELINES]
    if unknown:
        raise EvaluationError(
            f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)} "
            f"(the baselines {', '.join(BASELINES)} are always evaluated)"
        )
    return tuple(dict.fromkeys(p for p in policies if p not in BASELINES))


def _baseline_results(
    table: OutcomeTable, matrix: OutcomeMatrix, axes: _Axes, seed: int
) -> dict[str, PolicyResult]:
    rows = table.rows
    lengths = prompt_lengths(rows)
    median_length = float(np.median(lengths))
    rng = random.Random(seed)
    strong = matrix.strong
    cheapest_id, strong_id = matrix.models[0], matrix.models[strong]

    def coin(row: OutcomeRow) -> str:
        return strong_id if rng.random() < 0.5 else cheapest_id

    def by_length(row: OutcomeRow) -> bool:
        return estimate_tokens(row.prompt_text) >= median_length

    return {
        "random": _result(matrix, axes, random_router(matrix), baseline=True, latency=_latency(coin, rows)),
        "always-cheapest": _result(
            matrix,
            axes,
            always_cheapest(matrix),
            baseline=True,
            latency=_latency(lambda r: cheapest_id, rows),
        ),
        "always-strongest": _result(
            matrix, axes, always_strongest(matrix), baseline=True, latency=_latency(lambda r: strong_id, rows)
        ),
        # The oracle reads the outcomes: it bounds routers, it is not one, so it has no latency.
        "oracle": _result(matrix, axes, oracle(matrix), baseline=True, latency=None),
        "length": _result(
            matrix,
            axes,
            prompt_length(matrix, lengths),
            baseline=True,
            latency=_latency(by_length, rows),
            swept=True,
        ),
    }


def _scorer_result(
    table: OutcomeTable, matrix: OutcomeMatrix, axes: _Axes, scorer: SignalScorer
) -> PolicyResult:
    cuts = scorer.config.cut_points(len(matrix.models))

    def decide(row: OutcomeRow) -> int:
        return int(band_choices([scorer_difficulty(scorer, row)], cuts)[0])

    curve = sweep_scorer(matrix, table.rows, scorer)
    return _result(
        matrix,
        axes,
        curve,
        baseline=False,
        latency=_latency(decide, table.rows),
        swept=True,
    )


def _learned_result(matrix: OutcomeMatrix, axes: _Axes, run: LearnedRun) -> PolicyResult:
    return _result(
        matrix,
        axes,
        run.curve,
        baseline=False,
        latency=_latency(run.decide, run.sample_rows),
        operating=matrix.point(run.operating_choices),
        swept=True,
    )


def evaluate(
    table: OutcomeTable,
    *,
    policies: Sequence[str] = ("learned", "scorer"),
    folds: int = 5,
    train: OutcomeTable | None = None,
    seed: int = 0,
    scorer: SignalScorer | None = None,
    routers: Mapping[str, LearnedRouter] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Evaluate `policies` and every baseline on `table`.

    Only models with an outcome on every row are compared (the others are named in the notes and left
    out of training too). `policies` are names from `POLICIES`: `learned` (the router `train_router`
    picks), `knn` and `linear` (that method), `scorer` (the zero-training `SignalScorer`, default
    settings unless `scorer` is given), `default` (the policy used when none is configured, its
    estimate trained without any bundled table that shares prompts with `table`) and `length`. Learned
    policies train on `train` when it is given, else by `folds`-fold cross-validation on `table` (folds
    and training shuffled with `seed`). `routers` maps a name (e.g. the file it was read from) to a
    saved router, scored as shipped: no training, its own operating point; its models must be the
    table's evaluated ones. `on_progress(done, total)` is called as each unit of work ends
    (the baselines, each other policy, each saved router, each fold of a learned one).
    """
    started = time.perf_counter()
    wanted = _check_policies(policies)
    saved = dict(routers or {})
    taken = [name for name in saved if name in (*wanted, *BASELINES)]
    if taken:
        raise EvaluationError(f"router {taken[0]!r} has the name of a policy; give it another name")
    matrix = OutcomeMatrix.from_table(table)
    learned = [name for name in wanted if name in LEARNED_METHODS]
    if train is not None and not learned:
        # Saved routers are scored as shipped and the other policies train nothing: a training table
        # would be read and change no figure, while its user takes them as trained on it.
        raise EvaluationError(
            f"a training table trains only the learned policies ({', '.join(LEARNED_METHODS)}), and none "
            "is evaluated here (saved routers are scored as shipped): leave it out, or evaluate a "
            "learned policy"
        )
    # Only learned policies without a training table are cross-validated: `folds` means nothing else,
    # and a 4-row table scored by saved routers alone had to be given `folds=2`.
    cross_validated = bool(learned) and train is None
    bad_folds = isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= matrix.rows
    if cross_validated and bad_folds:
        raise EvaluationError(
            f"folds must be between 2 and the number of rows ({matrix.rows}), got {folds!r}"
        )
    left_out = _left_out_note(table, matrix)
    if left_out:
        # Learned policies train on the evaluated models only, so they cannot choose one left out.
        table = table.with_models(matrix.models)
        train = train.with_models(matrix.models) if train is not None else None
    axes = _axes(matrix)
    splits = 1 if train is not None else folds
    units = 1 + len(saved) + sum(splits if name in LEARNED_METHODS else 1 for name in wanted)
    work = WorkCounter(units, on_progress)
    step = work.step

    results = _baseline_results(table, matrix, axes, seed)
    notes = [_axis_note(matrix, axes), *(n for n in (left_out, _missing_cost_note(table, matrix)) if n)]
    step()
    for name in wanted:
        if name == "scorer":
            results[name] = _scorer_result(table, matrix, axes, scorer or SignalScorer())
            step()
        elif name == "default":
            from ._default_eval import run_default

            default = run_default(table, matrix)
            notes.append(default.note)
            latency = _latency(default.decide, default.sample_rows)
            results[name] = _result(matrix, axes, default.curve, baseline=False, latency=latency, swept=True)
            step()
        elif name in LEARNED_METHODS:
            run = run_learned(name, table, matrix, train=train, folds=folds, seed=seed, on_fold=step)
            results[name] = _learned_result(matrix, axes, run)
    for name, router in saved.items():
        results[name] = _learned_result(matrix, axes, run_saved(name, router, table, matrix))
        notes.append(_saved_note(name, router))
        step()
    chance_note = _chance_note(matrix, results)
    if chance_note:
        notes.append(chance_note)
    costs = matrix.mean_costs
    models = {
        model: (
            float(costs[i]) if costs is not None else float(i == matrix.strong),
            float(matrix.mean_scores[i]),
        )
        for i, model in enumerate(matrix.models)
    }
    return EvalReport(
        rows=matrix.rows,
        models=models,
        strong=matrix.models[matrix.strong],
        costs_known=matrix.costs is not None,
        folds=folds if cross_validated else None,
        train_rows=len(train) if train is not None else None,
        policies=results,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )
