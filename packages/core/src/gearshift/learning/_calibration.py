"""Calibration: the trade-off that meets a target share of strong calls, a quality floor or a cost cap.

As RouteLLM does, the threshold is set on data rather than guessed: route a table with the router's
predictions, sweep the trade-off, and keep the point that meets the target. The sweep is kept as a
`CalibrationCurve` (share of calls to the most expensive model, mean quality and mean cost per
request at each trade-off), so an artifact carries it and a config can ask for another target later
without the data.

A target share is met exactly (to one prompt) from the per-prompt breakpoints; quality floors and cost
caps are met on the curve's points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .._errors import ConfigError
from ..datasets import OutcomeRow, OutcomeTable
from ._choice import choose_by_tradeoff, strongest_breakpoints, tradeoff_grid

__all__ = [
    "CalibrationCurve",
    "OperatingPoint",
    "QualityRouter",
    "calibrate",
    "curve_of",
    "expected_scores",
    "on_scale_of",
    "pick_operating_point",
]


class QualityRouter(Protocol):
    """What calibration needs of a router: its models and costs, and its quality predictions
    (`LearnedRouter` is one; calibration never needs to know more of it)."""

    @property
    def models(self) -> tuple[str, ...]:
        """The router's models, cheapest first."""
        ...

    @property
    def costs(self) -> tuple[float, ...]:
        """Each model's mean cost per request, in USD."""
        ...

    @property
    def costs_known(self) -> bool:
        """Whether `costs` were recorded (else they are all 0.0)."""
        ...

    @property
    def relative_costs(self) -> np.ndarray:
        """Costs scaled so the most expensive model is 1."""
        ...

    def predict(self, prompts: Sequence[OutcomeRow], *, task: str | None = None) -> np.ndarray:
        """Predicted quality of each model on each prompt, shape (len(prompts), len(models))."""
        ...


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The trade-off a router routes with, and what it was expected to give where it was calibrated.

    `target` says how it was set (e.g. `target_strong_share=0.3`, `tradeoff=0.1`). `strong_share` is
    the share of calls sent to the most expensive model; `quality` the mean score and
    `cost_per_request` the mean cost in USD on the calibration table (None when not measured there).
    `met` is False when no trade-off reaches the target and the nearest one was kept.
    """

    tradeoff: float
    target: str
    strong_share: float | None = None
    quality: float | None = None
    cost_per_request: float | None = None
    met: bool = True

    def describe(self) -> str:
        """One line for people: the target, the trade-off and the expected figures."""
        parts = [f"{self.target} -> tradeoff {self.tradeoff:.4g}"]
        if self.strong_share is not None:
            parts.append(f"strong share {self.strong_share:.1%}")
        if self.quality is not None:
            parts.append(f"quality {self.quality:.4f}")
        if self.cost_per_request is not None:
            parts.append(f"cost/request ${self.cost_per_request:.6f}")
        if not self.met:
            parts.append("(target not reachable; nearest point kept)")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class CalibrationCurve:
    """The router's sweep on a table: per trade-off (ascending), the strong share, quality and cost.

    `breakpoints` are quantiles (0%, 0.5%, ..., 100%) of the per-prompt trade-offs below which the most
    expensive model is chosen; they give the trade-off of any target share. `quality` and `cost` hold
    NaN where the table did not record them.
    """

    tradeoffs: np.ndarray
    strong_share: np.ndarray
    quality: np.ndarray
    cost: np.ndarray
    breakpoints: np.ndarray
    rows: int


def _outcome_matrices(router: QualityRouter, table: OutcomeTable) -> tuple[np.ndarray, np.ndarray]:
    """Scores and costs of the router's models on every row (NaN score where a row lacks a model).

    A missing cost is the model's mean cost, so that tables with partial costs still give a curve.
    """
    n, m = len(table), len(router.models)
    scores = np.full((n, m), np.nan)
    costs = np.tile(np.asarray(router.costs, dtype=np.float64), (n, 1))
    for i, row in enumerate(table):
        for j, model in enumerate(router.models):
            outcome = row.outcomes.get(model)
            if outcome is not None:
                scores[i, j] = outcome.score
                if outcome.cost_usd is not None:
                    costs[i, j] = outcome.cost_usd
    return scores, costs


def expected_scores(scores: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """`scores` (n, models) with each missing outcome (NaN) replaced by the predicted quality there.

    A table from a decision log lacks outcomes where no shadow asked a model. Averaging only the
    recorded ones judges a model by the calls it was scored on: a middle tier scored only on the calls
    the live policy sent it looks better everywhere than it is. The router's own prediction for the
    missing cell (out-of-fold where training has it) keeps every row in the mean. A table with no
    outcome at all stays all NaN: there is nothing to calibrate quality on.
    """
    missing = np.isnan(scores)
    if not missing.any() or missing.all():
        return scores
    return np.where(missing, np.asarray(predicted, dtype=np.float64), scores)


def curve_of(
    router: QualityRouter, table: OutcomeTable, predicted: np.ndarray | None = None
) -> CalibrationCurve:
    """The router's sweep over `table`; `predicted` replaces `router.predict(table)` (e.g. out-of-fold).

    Quality is the mean over every row: a row without the chosen model's outcome counts at its
    predicted quality (`expected_scores`); NaN only when the table records no outcome at all.
    """
    if predicted is None:
        predicted = router.predict(table.rows)
    rel = router.relative_costs
    recorded, costs = _outcome_matrices(router, table)
    scores = expected_scores(recorded, predicted)
    grid = tradeoff_grid(predicted, rel)
    rows = np.arange(len(table))
    share, quality, cost = (np.empty(grid.size) for _ in range(3))
    for index, tradeoff in enumerate(grid):
        chosen = choose_by_tradeoff(predicted, rel, float(tradeoff))
        share[index] = np.mean(chosen == len(router.models) - 1)
        got = scores[rows, chosen]
        quality[index] = np.nanmean(got) if np.isfinite(got).any() else np.nan
        cost[index] = costs[rows, chosen].mean() if router.costs_known else np.nan
    breaks = strongest_breakpoints(predicted, rel)
    return CalibrationCurve(
        grid, share, quality, cost, np.quantile(breaks, np.linspace(0, 1, 201)), len(table)
    )


def on_scale_of(curve: CalibrationCurve, breaks: np.ndarray) -> CalibrationCurve:
    """`curve` with its trade-offs (and breakpoints) moved to the scale of another fit's per-prompt
    breakpoints `breaks` (`strongest_breakpoints` of its predictions over the traffic it will route):
    each point keeps its strong share, quality and cost, at the trade-off at which that fit sends
    that share of the traffic to the most expensive model.

    Out-of-fold predictions rank prompts as the final fit does, but another fit (one that learned from
    more rows than its folds) can spread its predicted gains wider or narrower: a trade-off read off the
    out-of-fold sweep then sends the final fit another strong share than the curve promises.
    """
    tradeoffs = np.array([_share_tradeoff(breaks, float(share)) for share in curve.strong_share])
    # Ascending as the curve's own; equal shares (the sweep's flat ends) give equal trade-offs.
    tradeoffs = np.maximum.accumulate(tradeoffs)
    quantiles = np.quantile(breaks, np.linspace(0, 1, curve.breakpoints.size))
    return CalibrationCurve(tradeoffs, curve.strong_share, curve.quality, curve.cost, quantiles, curve.rows)


def _share_tradeoff(breaks: np.ndarray, share: float) -> float:
    """A trade-off at which the share of `breaks` above it is `share` (to one prompt)."""
    ordered = np.sort(breaks)[::-1]
    n = ordered.size
    k = min(max(round(share * n), 0), n)
    # Strictly between the k-th and (k+1)-th largest breakpoint, so that exactly k lie above it.
    upper = ordered[k - 1] if k > 0 else np.inf
    lower = ordered[k] if k < n else -np.inf
    if np.isinf(upper) and np.isinf(lower):
        return 0.0
    if np.isinf(upper):
        return float(lower) + 1.0
    if np.isinf(lower):
        return float(upper) - 1.0
    return float((upper + lower) / 2)


def _check_one(**targets: float | None) -> tuple[str, float]:
    given = [(name, value) for name, value in targets.items() if value is not None]
    if len(given) != 1:
        names = ", ".join(targets)
        raise ConfigError(f"give exactly one of {names}; got {len(given)}")
    name, value = given[0]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}", key=name)
    if name in ("target_strong_share", "quality_floor") and not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1], got {value}", key=name)
    if name == "max_cost_per_request" and value < 0:
        raise ConfigError(f"{name} must be a non-negative number of dollars, got {value}", key=name)
    return name, float(value)


def _at(curve: CalibrationCurve, index: int, tradeoff: float, target: str, met: bool) -> OperatingPoint:
    def value(array: np.ndarray) -> float | None:
        return float(array[index]) if math.isfinite(float(array[index])) else None

    return OperatingPoint(
        tradeoff, target, float(curve.strong_share[index]), value(curve.quality), value(curve.cost), met
    )


def _nearest_index(curve: CalibrationCurve, tradeoff: float) -> int:
    """The curve point whose trade-off is the largest not above `tradeoff` (the first when none is)."""
    return max(int(np.searchsorted(curve.tradeoffs, tradeoff, side="right")) - 1, 0)


def pick_operating_point(
    curve: CalibrationCurve,
    *,
    target_strong_share: float | None = None,
    quality_floor: float | None = None,
    max_cost_per_request: float | None = None,
    tradeoff: float | None = None,
) -> OperatingPoint:
    """The operating point on `curve` for exactly one target.

    - `target_strong_share`: the share of calls to the most expensive model (0 to 1).
    - `quality_floor`: the cheapest point whose mean quality is at least this.
    - `max_cost_per_request`: the best-quality point whose mean cost (USD) is at most this.
    - `tradeoff`: this trade-off as it is; the curve only supplies the expected figures.
    """
    name, value = _check_one(
        target_strong_share=target_strong_share,
        quality_floor=quality_floor,
        max_cost_per_request=max_cost_per_request,
        tradeoff=tradeoff,
    )
    target = f"{name}={value:g}"
    if name == "tradeoff":
        return _at(curve, _nearest_index(curve, value), value, target, True)
    if name == "target_strong_share":
        chosen = _share_tradeoff(curve.breakpoints, value)
        point = _at(curve, _nearest_index(curve, chosen), chosen, target, True)
        # The quantile grid's share, not the curve point's: it is the one calibrated to `value`.
        share = float(np.mean(curve.breakpoints > chosen))
        return OperatingPoint(chosen, target, share, point.quality, point.cost_per_request, True)
    figures = curve.quality if name == "quality_floor" else curve.cost
    if not np.isfinite(figures).any():
        missing = "scores" if name == "quality_floor" else "costs"
        raise ConfigError(f"{name} needs recorded {missing}; the calibration data has none", key=name)
    if name == "quality_floor":
        ok = np.flatnonzero(curve.quality >= value - 1e-12)
        # The largest trade-off that still clears the floor is the cheapest such point.
        index = int(ok[-1]) if ok.size else int(np.nanargmax(curve.quality))
    else:
        ok = np.flatnonzero(curve.cost <= value + 1e-15)
        index = int(ok[np.nanargmax(curve.quality[ok])]) if ok.size else int(np.nanargmin(curve.cost))
    return _at(curve, index, float(curve.tradeoffs[index]), target, bool(ok.size))


def calibrate(
    router: QualityRouter,
    table: OutcomeTable,
    *,
    target_strong_share: float | None = None,
    quality_floor: float | None = None,
    max_cost_per_request: float | None = None,
    predicted: np.ndarray | None = None,
) -> OperatingPoint:
    """The operating point that meets one target when `router` routes `table`. Pure: nothing is changed.

    A target share is met to within one prompt of the table; quality floors and cost caps are met on
    the sweep's points (mean score and mean recorded cost per request of the routed table). Pass
    out-of-fold `predicted` qualities (n, models) to calibrate on predictions the router did not fit.
    Store the result with `router.with_operating_point(point)`.
    """
    curve = curve_of(router, table, predicted)
    if target_strong_share is not None and quality_floor is None and max_cost_per_request is None:
        _check_one(target_strong_share=target_strong_share)
        preds = router.predict(table.rows) if predicted is None else predicted
        breaks = strongest_breakpoints(preds, router.relative_costs)
        tradeoff = _share_tradeoff(breaks, target_strong_share)
        point = _at(
            curve,
            _nearest_index(curve, tradeoff),
            tradeoff,
            f"target_strong_share={target_strong_share:g}",
            True,
        )
        return OperatingPoint(
            tradeoff,
            point.target,
            float(np.mean(breaks > tradeoff)),
            point.quality,
            point.cost_per_request,
            True,
        )
    return pick_operating_point(
        curve,
        target_strong_share=target_strong_share,
        quality_floor=quality_floor,
        max_cost_per_request=max_cost_per_request,
    )
