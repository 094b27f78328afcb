"""Sweeping a router's knob: from per-row predictions to every operating point it can reach, exactly.

A router with a knob makes, for each prompt, a choice that changes at a few knob values only. Rather
than try the knob on a grid (which misses points and costs a pass over the table per value), the
sweep finds every value at which some row's choice changes, orders those events, and accumulates
their effect on quality and cost: one sort for the whole curve, and no point left out.

Two knobs are swept:

- `sweep_tradeoff`: the learned router's and the oracle's. A row goes to the model with the best
  `value - tradeoff * penalty` (ties to the lower penalty, then to the cheaper model). Each model is a
  line over the tradeoff; the row's choice walks down the upper envelope of its lines, from the best
  value at tradeoff 0 to the lowest penalty, and each kink is an event.
- `sweep_difficulty`: the scorer's and the prompt-length heuristic's. A row has a difficulty score and
  the models are cut into bands by ascending cut points; the knob is subtracted from the difficulty, so
  raising it moves every row down one band each time its shifted score crosses a cut point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._context import StepContext
from .._errors import GearshiftError
from .._messages import ChatRequest
from ..datasets import OutcomeRow, OutcomeTable
from ..policies import SignalScorer
from ..signals._signals import extract_signals
from ._metrics import RouterCurve

__all__ = [
    "EvaluationError",
    "OutcomeMatrix",
    "band_choices",
    "curve_from_events",
    "scorer_difficulty",
    "sweep_difficulty",
    "sweep_scorer",
    "sweep_tradeoff",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_KNOB_TOLERANCE = 1e-12


class EvaluationError(GearshiftError, ValueError):
    """An evaluation that cannot run: too few models, bad folds, mismatched predictions, no matplotlib."""


@dataclass(frozen=True, eq=False)
class OutcomeMatrix:
    """An outcome table as arrays: scores and costs per row and model, the models cheapest first.

    `costs` is None unless every outcome of the evaluated models records `cost_usd` and some cost is
    above zero (as training reads costs). Without costs the
    models are ordered weakest first (by mean score). `strong` is the index of the model whose share of
    requests is the cost axis of PGR: the best single model (the cheapest of equals), which of two models
    is the costlier one unless it scores no better.
    """

    models: tuple[str, ...]
    scores: FloatArray
    costs: FloatArray | None
    strong: int

    @classmethod
    def from_table(cls, table: OutcomeTable) -> OutcomeMatrix:
        """The matrix of `table`'s models that have an outcome in every row (at least two)."""
        models = [m for m in table.models if all(m in row.outcomes for row in table)]
        if len(models) < 2:
            raise EvaluationError(
                f"routing needs at least two models with an outcome on every row; this table has "
                f"{len(models)} ({', '.join(models) or 'none'}) of {len(table.models)} models"
            )
        scores = np.array([[row.outcomes[m].score for m in models] for row in table], dtype=np.float64)
        raw = [[row.outcomes[m].cost_usd for m in models] for row in table]
        known = all(c is not None for line in raw for c in line)
        costs = np.array(raw, dtype=np.float64) if known else None
        if costs is not None and not costs.any():
            costs = None  # every model free: a dollar axis from $0 to $0 measures nothing
        # Sort cheapest first; without costs, weakest first. Stable, so ties keep the table's order.
        key = costs.mean(axis=0) if costs is not None else scores.mean(axis=0)
        order = np.argsort(key, kind="stable")
        scores = scores[:, order]
        costs = costs[:, order] if costs is not None else None
        ordered = tuple(models[i] for i in order)
        means = scores.mean(axis=0)
        # The best single model; among equals the cheapest (the first in this order). Of two models that
        # is the costlier unless it scores no better, when there is no gap for a router to recover.
        strong = int(np.flatnonzero(means == means.max())[0])
        return cls(ordered, scores, costs, strong)

    @property
    def rows(self) -> int:
        """Number of prompts."""
        return int(self.scores.shape[0])

    @property
    def mean_scores(self) -> FloatArray:
        """Each model's quality when it serves every request."""
        return np.asarray(self.scores.mean(axis=0), dtype=np.float64)

    @property
    def mean_costs(self) -> FloatArray | None:
        """Each model's mean dollars per request, or None when costs are unknown."""
        return None if self.costs is None else np.asarray(self.costs.mean(axis=0), dtype=np.float64)

    @property
    def best(self) -> int:
        """Index of the best single model (highest mean score; the cheapest of equals)."""
        means = self.mean_scores
        return int(np.flatnonzero(means == means.max())[0])

    def penalties(self) -> FloatArray:
        """Per-row, per-model cost of choosing a model: dollars, or the model's rank without costs."""
        if self.costs is not None:
            return self.costs
        return np.broadcast_to(np.arange(len(self.models), dtype=np.float64), self.scores.shape)

    def point(self, choices: ArrayLike) -> tuple[float, float, float]:
        """(cost, quality, strong share) of routing row i to model `choices[i]`.

        Cost is mean dollars per request when costs are known, else the strong-call share.
        """
        picked = np.asarray(choices, dtype=np.intp)
        index = np.arange(self.rows)
        quality = float(self.scores[index, picked].mean())
        share = float(np.mean(picked == self.strong))
        cost = share if self.costs is None else float(self.costs[index, picked].mean())
        return cost, quality, share


def curve_from_events(
    matrix: OutcomeMatrix,
    name: str,
    initial: IntArray,
    knobs: FloatArray,
    rows: IntArray,
    targets: IntArray,
    *,
    start: float,
    operating: float | None = None,
    closed_left: bool = True,
) -> RouterCurve:
    """The curve of a router whose choices start at `initial` and change by events.

    Event e moves row `rows[e]` to model `targets[e]` at knob value `knobs[e]`; a row's events must be
    given in knob order. Events at the same knob value make one point. The first point is the initial
    choice at knob `start`. `operating` is the knob value the router runs at by default. A point holds
    from its knob value up to the next one's: including its own value when `closed_left` (the tradeoff
    sweep, whose ties go to the cheaper model), else from just past it (the difficulty sweep, where a
    score equal to a cut point still belongs to the band above).
    """
    index = np.arange(matrix.rows)
    penalty_axis = matrix.costs
    order = np.argsort(knobs, kind="stable")
    knobs, rows, targets = knobs[order], rows[order], targets[order]
    # Each event's source model is the row's choice before it: the previous event's target, or the
    # initial choice for a row's first event.
    sources = np.empty_like(targets)
    current = initial.astype(np.intp).copy()
    if rows.size:
        first = np.ones(rows.size, dtype=bool)
        by_row = np.lexsort((np.arange(rows.size), rows))
        same = rows[by_row][1:] == rows[by_row][:-1]
        first[by_row[1:][same]] = False
        previous = np.empty(rows.size, dtype=np.intp)
        previous[by_row[1:]] = np.where(same, by_row[:-1], -1)
        sources[first] = current[rows[first]]
        sources[~first] = targets[previous[~first]]
    quality_delta = matrix.scores[rows, targets] - matrix.scores[rows, sources]
    share_delta = (targets == matrix.strong).astype(np.float64) - (sources == matrix.strong)
    n = matrix.rows
    quality = np.concatenate(([matrix.scores[index, current].sum()], quality_delta)).cumsum() / n
    share = np.concatenate(([np.sum(current == matrix.strong)], share_delta)).cumsum() / n
    # Requests per model after each event: whole numbers, so the shares carry no rounding.
    moves = np.zeros((rows.size + 1, len(matrix.models)), dtype=np.int64)
    moves[0] = np.bincount(current, minlength=len(matrix.models))
    step = np.arange(1, rows.size + 1)
    moves[step, targets] += 1
    moves[step, sources] -= 1
    counts = moves.cumsum(axis=0)
    if penalty_axis is not None:
        cost_delta = penalty_axis[rows, targets] - penalty_axis[rows, sources]
        cost = np.concatenate(([penalty_axis[index, current].sum()], cost_delta)).cumsum() / n
    else:
        cost = share
    # One point per distinct knob value: the state after its last event. Values a rounding error apart
    # (the same kink computed from two rows' predictions) are one value.
    gap = _KNOB_TOLERANCE * np.maximum(1.0, np.abs(knobs[1:]))
    last = np.append(knobs[1:] - knobs[:-1] > gap, True) if knobs.size else np.zeros(0, dtype=bool)
    keep = np.concatenate(([True], last))
    points_knob = np.concatenate(([start], knobs))[keep]
    at = None
    if operating is not None:
        side: Literal["left", "right"] = "right" if closed_left else "left"
        at = max(int(np.searchsorted(points_knob, operating, side=side)) - 1, 0)
    return RouterCurve(
        name,
        cost[keep],
        quality[keep],
        share[keep],
        tradeoffs=points_knob,
        operating=at,
        model_shares=counts[keep] / n,
    )


def sweep_tradeoff(
    matrix: OutcomeMatrix,
    name: str,
    values: ArrayLike,
    penalties: ArrayLike,
    *,
    operating: float | None = 0.0,
) -> RouterCurve:
    """Every operating point of "each row to the model with the best `value - tradeoff * penalty`".

    `values` are the predicted (or, for the oracle, true) qualities, shape (rows, models) in the
    matrix's model order; `penalties` the cost of each choice, one per model or per row and model. At
    tradeoff 0 each row takes its best value (ties to the lower penalty, then the earlier model); as
    the tradeoff grows the row walks down the upper envelope of its lines `value - t * penalty`, and
    each kink is one event. Exact: every distinct choice vector over t >= 0 is a point of the curve.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.shape != matrix.scores.shape:
        raise EvaluationError(f"predictions have shape {v.shape}, the table {matrix.scores.shape}")
    p = np.broadcast_to(np.asarray(penalties, dtype=np.float64), v.shape)
    n, m = v.shape
    best = v.max(axis=1, keepdims=True)
    # Among the rows' best values, the lowest penalty; argmin keeps the earliest model of equals.
    current = np.argmin(np.where(v == best, p, np.inf), axis=1).astype(np.intp)
    initial = current.copy()
    at = np.zeros(n)
    knobs: list[FloatArray] = []
    rows: list[IntArray] = []
    targets: list[IntArray] = []
    active = np.ones(n, dtype=bool)
    for _ in range(m - 1):
        live = np.flatnonzero(active)
        if live.size == 0:
            break
        vj = v[live, current[live]][:, None]
        pj = p[live, current[live]][:, None]
        cheaper = p[live] < pj
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = np.where(cheaper, (vj - v[live]) / (pj - p[live]), np.inf)
        crossing = np.maximum(crossing, at[live][:, None])
        first = crossing.min(axis=1)
        found = np.isfinite(first)
        active[live[~found]] = False
        live, crossing, first = live[found], crossing[found], first[found]
        if live.size == 0:
            break
        # Of lines meeting at the same kink the lowest penalty stays on top beyond it.
        tied = crossing == first[:, None]
        nxt = np.argmin(np.where(tied, p[live], np.inf), axis=1).astype(np.intp)
        knobs.append(first)
        rows.append(live)
        targets.append(nxt)
        current[live], at[live] = nxt, first
    return curve_from_events(
        matrix,
        name,
        initial,
        np.concatenate(knobs) if knobs else np.zeros(0),
        np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp),
        np.concatenate(targets) if targets else np.zeros(0, dtype=np.intp),
        start=0.0,
        operating=operating,
    )


def band_choices(difficulty: ArrayLike, cuts: Sequence[float], shift: float = 0.0) -> IntArray:
    """The model index (band) of each row: how many cut points its shifted difficulty reaches.

    As the scorer does, a difficulty equal to a cut point belongs to the band above it.
    """
    d = np.asarray(difficulty, dtype=np.float64) - shift
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), d, side="right").astype(np.intp)


def sweep_difficulty(
    matrix: OutcomeMatrix,
    name: str,
    difficulty: ArrayLike,
    cuts: Sequence[float],
    *,
    operating: float | None = 0.0,
) -> RouterCurve:
    """Every operating point of cutting `difficulty` into bands at `cuts`, shifted by the knob.

    The knob t is subtracted from each difficulty: t very low sends every row to the last model, t very
    high every row to the first; each time `difficulty - t` falls below a cut point the row moves down
    one model. With two models this is the sweep over every threshold; with one, the curve is its one
    point. The curve's operating point is t = `operating` (0: the cut points as given).
    """
    d = np.asarray(difficulty, dtype=np.float64).reshape(-1)
    c = np.asarray(cuts, dtype=np.float64)
    m = len(matrix.models)
    if d.size != matrix.rows:
        raise EvaluationError(f"{d.size} difficulty scores for a table of {matrix.rows} rows")
    if c.size != m - 1 or np.any(np.diff(c) <= 0):
        raise EvaluationError(f"{m} models need {m - 1} ascending cut points, got {c.tolist()}")
    # A row at band k+1 falls to band k once d - t < cut_k: just past t = d - cut_k.
    # Below every event, so the first point (every row on the last model) has a knob of its own. One
    # model has no cut point and no event: its curve is that model's single point.
    start = float(np.min(d) - (np.max(c) if c.size else 0.0)) - 1.0
    events = (d[:, None] - c[None, ::-1]).reshape(-1)
    rows = np.repeat(np.arange(matrix.rows), m - 1)
    targets = np.tile(np.arange(m - 2, -1, -1), matrix.rows).astype(np.intp)
    initial = np.full(matrix.rows, m - 1, dtype=np.intp)
    return curve_from_events(
        matrix, name, initial, events, rows, targets, start=start, operating=operating, closed_left=False
    )


def scorer_difficulty(scorer: SignalScorer, row: OutcomeRow) -> float:
    """The scorer's difficulty for a row's prompt, sent as a plain request with no agent context."""
    request = ChatRequest(messages=row.as_messages())
    return scorer.difficulty(extract_signals(request, StepContext()))


def sweep_scorer(
    matrix: OutcomeMatrix, rows: Sequence[OutcomeRow], scorer: SignalScorer | None = None
) -> RouterCurve:
    """The `SignalScorer` as a router over the matrix's models, one tier per model, cheapest first.

    Its knob shifts the difficulty against the scorer's own cut points for that many tiers; the
    operating point (no shift) is what the scorer decides with its configuration.
    """
    scorer = scorer if scorer is not None else SignalScorer()
    difficulty = np.array([scorer_difficulty(scorer, row) for row in rows], dtype=np.float64)
    cuts = scorer.config.cut_points(len(matrix.models))
    return sweep_difficulty(matrix, "scorer", difficulty, cuts, operating=0.0)
