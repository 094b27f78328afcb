"""The baselines every router is measured against: random, always-cheapest, always-strongest, oracle,
and a prompt-length heuristic.

Each is a `RouterCurve` on an `OutcomeMatrix`. None of them learns from the outcomes except the
oracle, which reads them: it is the bound no router can pass, not a router one can run.

- **random** sends each request to the strong model with probability p, else to the cheapest. Its
  expected curve is exactly the straight line between the two (RouteLLM's random baseline), so its
  APGR is 0.5 and its CPT(x%) is x%; the points are that line at p = 0, 0.1, ..., 1.
- **always-cheapest** and **always-strongest** are single points: the first model and the strong one
  (the best single model: of two, the costlier unless it scores no better).
- **oracle** routes each request to the cheapest model that achieves the row's best score; its curve is
  the tradeoff sweep over the true scores and costs (`sweep_tradeoff`), from that point down to the
  cheapest model. Its point at tradeoff 0 is the oracle point of the plots.
- **chance** for a swept policy is what a coin gets with the same tiers at the same shares: at each of
  the policy's points the same share of requests goes to each model, chosen at random. Of two models
  that is the random line (APGR 0.5); with cheap models that score well between the cheapest and the
  best it lies above that line, and a policy ranks prompts better than a coin only above it.
- **length** takes longer prompts to stronger models: the difficulty is a prompt's length percentile
  in the table, cut into equal bands, one per model; the knob shifts the bands (`sweep_difficulty`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..datasets import OutcomeRow
from ..signals._tokens import estimate_tokens
from ._metrics import RouterCurve
from ._sweep import OutcomeMatrix, sweep_difficulty, sweep_tradeoff

__all__ = [
    "always_cheapest",
    "always_strongest",
    "chance",
    "length_percentiles",
    "oracle",
    "prompt_length",
    "prompt_lengths",
    "random_router",
]

_RANDOM_STEPS = 10


def _fixed(matrix: OutcomeMatrix, name: str, model: int) -> RouterCurve:
    cost, quality, share = matrix.point(np.full(matrix.rows, model))
    return RouterCurve(name, np.array([cost]), np.array([quality]), np.array([share]), operating=0)


def always_cheapest(matrix: OutcomeMatrix) -> RouterCurve:
    """Every request to the cheapest model (the weakest, when costs are unknown)."""
    return _fixed(matrix, "always-cheapest", 0)


def always_strongest(matrix: OutcomeMatrix) -> RouterCurve:
    """Every request to the strong model: the best single model (of two, the costlier unless it scores
    no better)."""
    return _fixed(matrix, "always-strongest", matrix.strong)


def random_router(matrix: OutcomeMatrix) -> RouterCurve:
    """The expected curve of sending each request to the strong model with probability p, else the cheapest.

    Expectation is linear, so at every p the point is exactly `(1 - p) * cheapest + p * strong`.
    """
    weak_cost, weak_quality, _ = matrix.point(np.zeros(matrix.rows, dtype=np.intp))
    strong_cost, strong_quality, _ = matrix.point(np.full(matrix.rows, matrix.strong, dtype=np.intp))
    p = np.linspace(0.0, 1.0, _RANDOM_STEPS + 1)
    return RouterCurve(
        "random",
        weak_cost + p * (strong_cost - weak_cost),
        weak_quality + p * (strong_quality - weak_quality),
        p,
        tradeoffs=1.0 - p,
        operating=None,
    )


def chance(matrix: OutcomeMatrix, curve: RouterCurve) -> RouterCurve | None:
    """The expected curve of `curve`'s router with its ranking replaced by a coin: at each point the same
    share of requests goes to each model, but which requests is random.

    A random request sent to a model scores and costs that model's means in expectation, so each point is
    exactly the share-weighted mean of the models' (cost, quality) points. The curve holds them and the
    end points every router's metrics include (every request on the strong model, and on the cheapest),
    joined by cost as the metrics join them, keeping only its vertices: a point on the segment between
    its neighbours, found exactly on request counts, adds no area, only rounding (of two models every
    point is, and the chance APGR is 0.5 exactly). None when the curve does not record its model shares
    (`RouterCurve.model_shares`).
    """
    if curve.model_shares is None:
        return None
    models = len(matrix.models)
    if curve.model_shares.shape[1] != models:
        raise ValueError(
            f"{curve.name} has shares of {curve.model_shares.shape[1]} models, the table {models}"
        )
    n = matrix.rows
    ends = np.zeros((2, models), dtype=np.int64)
    ends[0, matrix.strong], ends[1, 0] = n, n
    counts = np.concatenate(([ends[0]], np.rint(curve.model_shares * n).astype(np.int64), [ends[1]]))
    costs = matrix.mean_costs
    shares = counts / n
    strong = shares[:, matrix.strong]
    cost = strong if costs is None else shares @ costs
    quality = shares @ matrix.mean_scores
    # In the order the metrics join the points (by cost, then quality), as `_metrics._points` sorts.
    order = np.lexsort((quality, cost))
    keep = order[_vertices(counts[order])]
    return RouterCurve("chance", cost[keep], quality[keep], strong[keep], model_shares=shares[keep])


def _vertices(counts: NDArray[np.int64]) -> NDArray[np.intp]:
    """The indexes of a path's vertices through request counts: each point once, and none that lies on
    the straight way from the previous point to the next (exact, in whole numbers)."""
    distinct = np.flatnonzero(np.append(True, np.any(counts[1:] != counts[:-1], axis=1)))
    path = counts[distinct]
    into, out = path[1:-1] - path[:-2], path[2:] - path[1:-1]
    # `out` is a positive multiple of `into` when out * |into|^2 == into * (into . out) and into . out > 0.
    norm = np.einsum("ij,ij->i", into, into)[:, None]
    dot = np.einsum("ij,ij->i", into, out)[:, None]
    straight = np.all(out * norm == into * dot, axis=1) & (dot[:, 0] > 0)
    return distinct[np.concatenate(([True], ~straight, [True]))] if path.shape[0] > 1 else distinct


def oracle(matrix: OutcomeMatrix) -> RouterCurve:
    """The best any router could do: the true scores, swept against the true costs.

    At tradeoff 0 each row goes to the cheapest model with the row's best score (the oracle point, the
    curve's operating point); as the tradeoff grows rows give up score for cost where it costs least.
    """
    return sweep_tradeoff(matrix, "oracle", matrix.scores, matrix.penalties(), operating=0.0)


def length_percentiles(lengths: ArrayLike) -> NDArray[np.float64]:
    """Each prompt's length as the share of prompts strictly shorter, in [0, 1); equal lengths tie."""
    values = np.asarray(lengths, dtype=np.float64)
    ordered = np.sort(values)
    return np.searchsorted(ordered, values, side="left") / max(values.size, 1)


def prompt_lengths(rows: Sequence[OutcomeRow]) -> NDArray[np.float64]:
    """Estimated tokens of each row's prompt."""
    return np.array([estimate_tokens(row.prompt_text) for row in rows], dtype=np.float64)


def prompt_length(matrix: OutcomeMatrix, lengths: ArrayLike) -> RouterCurve:
    """Longer prompts to stronger models: length percentiles cut into equal bands, swept.

    With m models the cut points are 1/m, ..., (m-1)/m, so at the operating point (no shift) each model
    gets an equal share of the prompts, the longest to the last model.
    """
    m = len(matrix.models)
    cuts = [i / m for i in range(1, m)]
    return sweep_difficulty(matrix, "length", length_percentiles(lengths), cuts, operating=0.0)
