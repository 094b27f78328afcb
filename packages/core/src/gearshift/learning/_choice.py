"""From predicted qualities to a model per prompt: the trade-off rule, the floor rule, and their sweep.

Models are ordered cheapest first and carry relative costs in [0, 1] (the most expensive model is 1).
The trade-off rule picks, per prompt, the model with the highest `predicted quality - tradeoff x
relative cost`; ties go to the cheaper model. For two models this is RouteLLM's threshold rule: the
strong model is chosen when its predicted gain over the weak one exceeds `tradeoff x (1 - weak cost)`.

Every function here is pure and vectorized over prompts.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "choose_by_floor",
    "choose_by_tradeoff",
    "relative_costs",
    "strongest_breakpoints",
    "tradeoff_grid",
]


def relative_costs(costs: tuple[float, ...]) -> np.ndarray:
    """Costs scaled so the most expensive model is 1; the rank order (0 ... 1) when costs are unknown."""
    values = np.asarray(costs, dtype=np.float64)
    if values.size and np.all(values > 0):
        scaled: np.ndarray = values / values.max()
        return scaled
    if values.size <= 1:
        return np.zeros(values.size)
    return np.arange(values.size, dtype=np.float64) / (values.size - 1)


def choose_by_tradeoff(predicted: np.ndarray, rel_costs: np.ndarray, tradeoff: float) -> np.ndarray:
    """Per row, the index of the model with the best `predicted - tradeoff x rel_costs` (cheapest on ties)."""
    chosen: np.ndarray = np.argmax(predicted - tradeoff * rel_costs, axis=1)
    return chosen


def choose_by_floor(predicted: np.ndarray, floor: float) -> np.ndarray:
    """Per row, the cheapest model predicted to reach `floor`, else the best-predicted one."""
    clears = predicted >= floor
    chosen: np.ndarray = np.where(clears.any(axis=1), np.argmax(clears, axis=1), np.argmax(predicted, axis=1))
    return chosen


def strongest_breakpoints(predicted: np.ndarray, rel_costs: np.ndarray) -> np.ndarray:
    """Per row, the trade-off below which the trade-off rule picks the most expensive (last) model.

    The last model wins while `q_last - t x c_last > q_m - t x c_m` for every cheaper m, that is while
    `t < (q_last - q_m) / (c_last - c_m)`; the breakpoint is the smallest such ratio. A model as
    expensive as the last one but predicted at least as good (ties go to the earlier model) means the
    last model is never picked: -inf. The share of prompts sent to the last model at trade-off t is
    then the share of breakpoints above t, which lets calibration hit a target share exactly.
    """
    n, m = predicted.shape
    if m == 1:
        return np.full(n, np.inf)
    last = predicted[:, -1:]
    gaps = rel_costs[-1] - rel_costs[:-1]
    gains = last - predicted[:, :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(
            gaps > 0, gains / np.where(gaps > 0, gaps, 1.0), np.where(gains > 0, np.inf, -np.inf)
        )
    breakpoints: np.ndarray = ratios.min(axis=1)
    return breakpoints


def tradeoff_grid(predicted: np.ndarray, rel_costs: np.ndarray, points: int = 201) -> np.ndarray:
    """Trade-offs that sweep the rule from all-most-expensive to all-cheapest, sorted ascending.

    Quantiles of the breakpoints where a prompt switches models, so the sweep's points spread evenly
    over the prompts rather than over the trade-off's scale; the two ends lie past every breakpoint.
    """
    n, m = predicted.shape
    if m == 1 or n == 0:
        return np.zeros(1)
    cheaper, dearer = np.triu_indices(m, k=1)
    gaps = rel_costs[dearer] - rel_costs[cheaper]
    keep = gaps > 0
    ratios = (predicted[:, dearer[keep]] - predicted[:, cheaper[keep]]) / gaps[keep]
    flat = np.concatenate([ratios.ravel(), strongest_breakpoints(predicted, rel_costs)])
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return np.zeros(1)
    inner = np.unique(np.quantile(flat, np.linspace(0.0, 1.0, points)))
    span = max(float(inner[-1] - inner[0]), 1e-6)
    return np.unique(np.concatenate([[inner[0] - span, 0.0], inner, [inner[-1] + span]]))
