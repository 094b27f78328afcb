"""Feedback on the realised strong share: the pure controller behind recalibration's `share_feedback`.

Re-fitting a threshold to a window's quantile sends the target share of *that window* to the strong
model; the next requests are different ones, so the realised share only matches in expectation (a
500-request window spreads about 2 points either way) and lags behind a drift by up to a window. The
controller closes the loop on what actually happened: it keeps the running excess of strong decisions
over the target's count (`debt`, in decisions) and asks the next decisions for a share corrected by it,
`target - debt / horizon`, so an excess or shortfall is paid back over about `horizon` decisions (an
integral, sigma-delta-like correction). As long as the debt stays within `±d` decisions, every run of N
consecutive decisions holds between `target * N - 2d` and `target * N + 2d` strong ones, whatever the
traffic does. The debt is clamped to `±bound` (4 horizons unless given), so a stretch the threshold
cannot follow does not wind it up without end.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["StrongShareController", "strong_share_for_quality_floor"]


class StrongShareController:
    """Integral feedback on the count of strong decisions. Pure: no I/O, no clock."""

    def __init__(self, target: float, *, horizon: float = 10.0, bound: float | None = None) -> None:
        if not 0 <= target <= 1:
            raise ValueError(f"target must be in [0, 1], got {target}")
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1 decision, got {horizon}")
        if bound is not None and bound < horizon:
            raise ValueError(f"bound must be at least the horizon ({horizon:g}), got {bound}")
        self.target = float(target)
        self.horizon = float(horizon)
        self.bound = float(bound) if bound is not None else 4.0 * self.horizon
        """The debt is clamped to ±bound decisions (anti-windup)."""
        self.debt = 0.0
        """Strong decisions so far minus the target's count (clamped to ±bound)."""
        self.decisions = 0
        self.strong = 0

    def __repr__(self) -> str:
        return f"StrongShareController(target={self.target}, horizon={self.horizon:g}, debt={self.debt:+.2f})"

    def share(self) -> float:
        """The strong share to ask of the next decisions: the target, corrected by the debt.

        It leaves [0, 1] (by at most bound / horizon) when the debt is more than the next `horizon`
        decisions could pay back within it: the caller then puts the threshold past the edge of what it
        has seen, since traffic that drifted far enough can lie entirely beyond it."""
        return self.target - self.debt / self.horizon

    def record(self, strong: bool) -> None:
        """Count one decision (`strong`: it went to the strong model)."""
        self.decisions += 1
        self.strong += strong
        self.debt = min(self.bound, max(-self.bound, self.debt + float(strong) - self.target))


def strong_share_for_quality_floor(
    weak_quality: Iterable[float], gains: Iterable[float], quality_floor: float
) -> float:
    """The smallest share of these requests to send to the strong model for their mean predicted
    quality to reach `quality_floor`, sending first those with the largest predicted `gains` (strong
    minus weak quality). When no share reaches it, the share that gets closest (every positive gain)."""
    weak = np.fromiter(weak_quality, dtype=np.float64)
    if weak.size == 0:
        return 0.0
    ordered = np.sort(np.fromiter(gains, dtype=np.float64))[::-1]
    quality = weak.mean() + np.concatenate(([0.0], np.cumsum(ordered))) / weak.size
    reached = np.flatnonzero(quality >= quality_floor - 1e-12)
    count = int(reached[0]) if reached.size else int(np.sum(ordered > 0))
    return count / weak.size
