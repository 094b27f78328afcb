"""Router metrics over cost-quality curves: PGR, APGR, CPT (RouteLLM), the convex hull and AIQ (RouterBench).

A router with a knob (a threshold, a tradeoff) is a set of operating points, each a (cost, quality)
pair measured on the same prompts. The cost axis is

- for two models, the **strong-call share** in [0, 1] (RouteLLM, Ong et al. 2024, "RouteLLM: Learning
  to Route LLMs with Preference Data", section 5.1);
- for N models, **mean dollars per request**: `pgr_curve`, `apgr` and `cpt` then take `cost_range =
  (cost of the cheapest model, cost of the best single model)`, so "weak" is the cheapest model and
  "strong" the best single model, and the range between their costs plays the part of the share.
  When every request costs the same on one model, that normalized cost *is* the strong-call share.

Operating points are joined by straight lines: mixing two operating points at random in proportion
p : 1-p gives, in expectation, the point that far along the segment, so every point on the line is a
router one can run (RouteLLM interpolates its thresholds the same way, with `np.interp`).

Undefined values are None: PGR when the strong and weak quality are equal, CPT when the curve never
reaches the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "RouterCurve",
    "aiq",
    "apgr",
    "convex_hull_nondecreasing",
    "cpt",
    "curve_integral",
    "pgr_curve",
]

FloatArray = NDArray[np.float64]

_TOLERANCE = 1e-9


def _points(costs: ArrayLike, qualities: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Costs and qualities as float arrays of one length, sorted by cost, then by quality."""
    x = np.asarray(costs, dtype=np.float64).reshape(-1)
    y = np.asarray(qualities, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"costs and qualities differ in length: {x.size} and {y.size}")
    if x.size == 0:
        raise ValueError("a curve needs at least one operating point")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("costs and qualities must be finite numbers")
    order = np.lexsort((y, x))
    return x[order], y[order]


def _check_range(cost_range: tuple[float, float]) -> tuple[float, float]:
    low, high = float(cost_range[0]), float(cost_range[1])
    if not high > low:
        raise ValueError(f"cost_range must be (low, high) with high > low, got {cost_range!r}")
    return low, high


def curve_integral(costs: ArrayLike, values: ArrayLike, *, low: float, high: float) -> float:
    """The area under the polyline through the points (sorted by cost) over [low, high], exactly.

    Outside the points' cost span the polyline is not extended: only the part of [low, high] the
    points cover counts. Points sharing a cost make a vertical step, which has no area.
    """
    x, y = _points(costs, values)
    if x.size < 2:
        return 0.0
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    width = x1 - x0
    a, b = np.clip(x0, low, high), np.clip(x1, low, high)
    keep = (width > 0) & (b > a)
    if not keep.any():
        return 0.0
    x0, y0, a, b = x0[keep], y0[keep], a[keep], b[keep]
    slope = (y1[keep] - y0) / width[keep]
    ya, yb = y0 + slope * (a - x0), y0 + slope * (b - x0)
    return float(np.sum((ya + yb) * (b - a)) / 2)


def _with_ends(
    costs: ArrayLike,
    qualities: ArrayLike,
    weak_quality: float,
    strong_quality: float,
    cost_range: tuple[float, float],
) -> tuple[FloatArray, FloatArray]:
    # The two end points belong to every router's curve: at the low end it sends everything to the
    # weak (cheapest) model, at the high end everything to the strong (best) one.
    low, high = cost_range
    x = np.concatenate(([low], np.asarray(costs, dtype=np.float64).reshape(-1), [high]))
    y = np.concatenate(
        ([weak_quality], np.asarray(qualities, dtype=np.float64).reshape(-1), [strong_quality])
    )
    return _points(x, y)


def pgr_curve(
    costs: ArrayLike,
    qualities: ArrayLike,
    *,
    weak_quality: float,
    strong_quality: float,
    cost_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[FloatArray, FloatArray] | None:
    """The performance gap recovered at each operating point, end points included, sorted by cost.

    RouteLLM (Ong et al. 2024, eq. 4): PGR = (q - q_weak) / (q_strong - q_weak), here at each swept
    operating point plus the two end points `(cost_range[0], q_weak)` and `(cost_range[1], q_strong)`.
    Returns `(costs, pgr)`, or None when `strong_quality == weak_quality` (no gap to recover).
    """
    cost_range = _check_range(cost_range)
    gap = strong_quality - weak_quality
    if gap == 0:
        return None
    x, y = _with_ends(costs, qualities, weak_quality, strong_quality, cost_range)
    return x, (y - weak_quality) / gap


def apgr(
    costs: ArrayLike,
    qualities: ArrayLike,
    *,
    weak_quality: float,
    strong_quality: float,
    cost_range: tuple[float, float] = (0.0, 1.0),
) -> float | None:
    """Average performance gap recovered: the area under the PGR curve over the cost range, normalized.

    RouteLLM (Ong et al. 2024, eq. 5): APGR = integral of PGR(c) dc over the strong-call share c in
    [0, 1]. RouteLLM samples thresholds that spread the calls evenly and takes the trapezoid; here the
    trapezoid runs over every swept operating point, end points (share 0 and 1) always included, so a
    random router (the straight line between the end points) scores exactly 0.5. With a cost range
    other than [0, 1], the cost axis is first mapped onto [0, 1] by it. None when there is no gap.
    """
    low, high = _check_range(cost_range)
    curve = pgr_curve(
        costs, qualities, weak_quality=weak_quality, strong_quality=strong_quality, cost_range=(low, high)
    )
    if curve is None:
        return None
    x, pgr = curve
    return curve_integral(x, pgr, low=low, high=high) / (high - low)


def cpt(
    costs: ArrayLike,
    qualities: ArrayLike,
    *,
    weak_quality: float,
    strong_quality: float,
    target: float,
    cost_range: tuple[float, float] = (0.0, 1.0),
) -> float | None:
    """Call-performance threshold: the least cost, in percent of the range, at which PGR reaches `target`.

    RouteLLM (Ong et al. 2024, section 5.1): CPT(x%) is the minimum strong-call share at which PGR >=
    x%. `target` is the fraction (0.5 for CPT(50%)); the result is a percentage, 100 * (c - low) /
    (high - low), found along the polyline through the operating points and both end points. None when
    there is no gap or the curve never gets there.
    """
    low, high = _check_range(cost_range)
    curve = pgr_curve(
        costs, qualities, weak_quality=weak_quality, strong_quality=strong_quality, cost_range=(low, high)
    )
    if curve is None:
        return None
    x, pgr = curve
    # Tiny float noise (0.4999999 for a half) must not push the answer to the next segment.
    goal = target - 1e-12
    reached = np.flatnonzero(pgr >= goal)
    if reached.size == 0:
        return None
    first = int(reached[0])
    at = float(x[first])
    if first > 0 and x[first] > x[first - 1]:
        # The segment into the first point at or above the target crosses it: interpolate.
        x0, y0, y1 = float(x[first - 1]), float(pgr[first - 1]), float(pgr[first])
        at = x0 + (target - y0) / (y1 - y0) * (float(x[first]) - x0)
        at = min(max(at, x0), float(x[first]))
    return 100.0 * (at - low) / (high - low)


def convex_hull_nondecreasing(costs: ArrayLike, qualities: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The non-decreasing upper convex hull of a router's operating points, sorted by cost.

    RouterBench (Hu et al. 2024, "RouterBench: A Benchmark for Multi-LLM Routing System", section
    4.1): any two operating points can be mixed at random, so a router reaches every point on the
    segments between its points; and a router can always spend less than its budget, so quality never
    has to fall as the budget grows. The hull is the upper convex hull (Andrew's monotone chain) cut at
    its highest quality: points past it, costlier and no better, are dropped. Of points with equal cost
    only the best counts.
    """
    x, y = _points(costs, qualities)
    # After sorting by (cost, quality) the last of each equal-cost run is its best point.
    last_of_run = np.append(x[1:] != x[:-1], True)
    x, y = x[last_of_run], y[last_of_run]
    hull: list[int] = []
    for index in range(x.size):
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            # Drop `a` when it lies on or below the line from `o` to the new point (cross product >= 0).
            cross = (x[a] - x[o]) * (y[index] - y[o]) - (y[a] - y[o]) * (x[index] - x[o])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(index)
    hx, hy = x[hull], y[hull]
    top = int(np.argmax(hy))  # the first (cheapest) point of highest quality
    return hx[: top + 1], hy[: top + 1]


def aiq(costs: ArrayLike, qualities: ArrayLike, *, cost_range: tuple[float, float]) -> float:
    """Average improvement in quality: the area under the router's hull divided by the cost range.

    RouterBench (Hu et al. 2024, eq. 3): AIQ = 1 / (c_max - c_min) * integral of the non-decreasing
    convex hull over cost. gearshift normalizes cost by `cost_range` = (mean $ per request of the
    cheapest single model, that of the most expensive single model), so AIQ is a mean quality over the
    budgets between them and compares routers on the same table. Past its costliest hull point the hull
    stays level (the router can spend less than the budget); below its cheapest point there is no
    router, so that stretch adds nothing.
    """
    low, high = _check_range(cost_range)
    hx, hy = convex_hull_nondecreasing(costs, qualities)
    # Extend level to the top of the range so the spend-less-than-the-budget stretch counts.
    end = max(high, float(hx[-1]))
    x, y = np.append(hx, end), np.append(hy, hy[-1])
    return curve_integral(x, y, low=low, high=high) / (high - low)


@dataclass(frozen=True, eq=False)
class RouterCurve:
    """A router's swept operating points on one table: cost and quality per point, in sweep order.

    `costs` are mean dollars per request (or strong-call shares when the table records no costs),
    `qualities` mean scores, `strong_shares` the share of requests sent to the strongest (last) model,
    and `tradeoffs` the knob value of each point (empty for a router without a knob). `operating` is
    the index of the point the router would run at by default, or None. `model_shares`, when known,
    holds at each point the share of requests sent to each model (one column per model of the table).
    """

    name: str
    costs: FloatArray
    qualities: FloatArray
    strong_shares: FloatArray
    tradeoffs: FloatArray = field(default_factory=lambda: np.zeros(0))
    operating: int | None = None
    model_shares: FloatArray | None = None

    def __post_init__(self) -> None:
        for name in ("costs", "qualities", "strong_shares", "tradeoffs"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64).reshape(-1))
        n = self.costs.size
        if n == 0 or self.qualities.size != n or self.strong_shares.size != n:
            raise ValueError("a RouterCurve needs costs, qualities and strong_shares of one non-zero length")
        if self.tradeoffs.size not in (0, n):
            raise ValueError("tradeoffs must be empty or as long as the costs")
        if self.model_shares is not None:
            shares = np.asarray(self.model_shares, dtype=np.float64)
            if shares.ndim != 2 or shares.shape[0] != n:
                raise ValueError(f"model_shares must have one row per point ({n}), got shape {shares.shape}")
            object.__setattr__(self, "model_shares", shares)
        if self.operating is not None and not 0 <= self.operating < n:
            raise ValueError(f"operating point {self.operating} is not one of the {n} points")

    def __len__(self) -> int:
        return int(self.costs.size)

    @property
    def points(self) -> list[tuple[float, float]]:
        """The (cost, quality) pairs, in sweep order."""
        return [(float(c), float(q)) for c, q in zip(self.costs, self.qualities, strict=True)]

    def operating_point(self) -> tuple[float, float] | None:
        """(cost, quality) at the default operating point, or None when the router has none."""
        if self.operating is None:
            return None
        return float(self.costs[self.operating]), float(self.qualities[self.operating])

    def quality_at_cost(self, budget: float) -> float | None:
        """The best quality the router's hull reaches at a mean cost of at most `budget`, or None below it."""
        hx, hy = convex_hull_nondecreasing(self.costs, self.qualities)
        # Costs summed over a sweep carry rounding: a budget a hair under the first point still reaches it.
        if budget < hx[0] - _TOLERANCE * max(abs(float(hx[0])), abs(budget)):
            return None
        return float(np.interp(budget, hx, hy))

    def cost_at_quality(self, floor: float) -> float | None:
        """The least mean cost at which the router's hull reaches quality `floor`, or None if never."""
        hx, hy = convex_hull_nondecreasing(self.costs, self.qualities)
        if floor > hy[-1]:
            return None
        if floor <= hy[0]:
            return float(hx[0])
        # The hull rises strictly after its first point, so quality -> cost is a function there.
        return float(np.interp(floor, hy, hx))
