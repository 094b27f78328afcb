"""Recalibration: hold a learned policy's strong-call share at its target as live traffic drifts.

A learned router's threshold is calibrated on its training table; when the live mix of prompts
moves (a week of arithmetic, then a week of trivia), the same threshold sends a different share of
calls to the expensive model. `RecalibratingPolicy` keeps a sliding window of the predicted gains
of recent decisions and, every `every` decisions, moves the trade-off to the window's quantile that
sends `target_strong_share` of it to the most expensive model; every move is reported (before,
after, window) to `on_recalibrate`, which the router writes to its log. With two models (the
RouteLLM setting) the share is exact on the window; with more, the gain is the most expensive
model's predicted quality over the cheapest one's.

```toml
[routing.learned]
path = "router.json"
target_strong_share = 0.3
recalibrate = true          # hold it on live traffic
recalibration_window = 500  # decisions in the sliding window
recalibrate_every = 100     # decisions between two recalibrations
```
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .._decision import Decision
from .._errors import ConfigError
from ..policies import RouteInput
from ._policy import LearnedPolicy

__all__ = ["RecalibratingPolicy"]

logger = logging.getLogger("gearshift.learning")


class RecalibratingPolicy:
    """A `LearnedPolicy` whose trade-off follows live traffic to hold `target_strong_share`."""

    def __init__(
        self,
        policy: LearnedPolicy,
        *,
        target_strong_share: float,
        window: int = 500,
        every: int = 100,
        min_window: int | None = None,
        on_recalibrate: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if not 0 <= target_strong_share <= 1:
            raise ConfigError(
                f"must be in [0, 1], got {target_strong_share}", key="routing.learned.target_strong_share"
            )
        if window < 10 or every < 1:
            raise ConfigError(
                f"the window must hold at least 10 decisions and every be at least 1, "
                f"got {window} and {every}",
                key="routing.learned.recalibration_window",
            )
        self.policy = policy
        self.name = policy.name
        self.target_strong_share = target_strong_share
        self.every = every
        self.min_window = window if min_window is None else min_window
        self.on_recalibrate = on_recalibrate
        self.recalibrations = 0
        costs = policy.router.relative_costs
        names = policy.router.models
        self._weak = f"quality:{names[int(np.argmin(costs))]}"
        self._strong = f"quality:{names[int(np.argmax(costs))]}"
        self._cost_gap = float(np.max(costs) - np.min(costs)) or 1.0
        self._flips: deque[float] = deque(maxlen=window)
        self._seen = 0

    def __repr__(self) -> str:
        return f"RecalibratingPolicy({self.policy!r}, target_strong_share={self.target_strong_share})"

    def decide(self, route: RouteInput) -> Decision:
        """The learned policy's decision; the decision's predicted gain joins the window."""
        decision = self.policy.decide(route)
        scores = decision.scores
        if self._weak in scores and self._strong in scores:
            # The trade-off at which this request would switch to the expensive model.
            self._flips.append((scores[self._strong] - scores[self._weak]) / self._cost_gap)
            self._seen += 1
            if self._seen % self.every == 0 and len(self._flips) >= self.min_window:
                self._recalibrate()
        return decision

    def _recalibrate(self) -> None:
        flips = np.fromiter(self._flips, dtype=np.float64)
        before = self.policy.tradeoff
        # Strong iff flip > trade-off: the (1 - target) quantile sends `target` of the window up.
        target = self.target_strong_share
        after = float(np.quantile(flips, 1.0 - target)) if target < 1 else float(flips.min()) - 1.0
        share_before = float(np.mean(flips > before))
        self.policy.retune(after, f"recalibrated on the last {flips.size} decisions")
        self.recalibrations += 1
        share_after = float(np.mean(flips > after))
        record = {
            "kind": "recalibration",
            "ts": time.time(),
            "policy": self.name,
            "target_strong_share": self.target_strong_share,
            "window": int(flips.size),
            "tradeoff_before": before,
            "tradeoff_after": after,
            "window_strong_share_before": share_before,
            "window_strong_share_after": share_after,
        }
        logger.info(
            "recalibrated the learned policy on %d decisions: trade-off %.4g -> %.4g "
            "(strong share on the window %.1f%% -> %.1f%%, target %.1f%%)",
            flips.size,
            before,
            after,
            100 * share_before,
            100 * share_after,
            100 * self.target_strong_share,
        )
        if self.on_recalibrate is not None:
            self.on_recalibrate(record)
