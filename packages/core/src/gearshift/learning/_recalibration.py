"""Recalibration: hold a learned policy's strong-call share at its target as live traffic drifts.

A learned router's threshold is calibrated on its training table; when the live mix of prompts
moves (a week of arithmetic, then a week of trivia), the same threshold sends a different share of
calls to the expensive model. `RecalibratingPolicy` keeps a sliding window of the predicted gains
of recent decisions and, every `every` decisions, moves the trade-off to the window's quantile that
sends `target_strong_share` of it to the most expensive model; every move is reported (before,
after, window) to `on_recalibrate`, which the router writes to its log. With two models (the
RouteLLM setting) the share is exact on the window; with more, the gain is the most expensive
model's predicted quality over the cheapest one's.

A quantile re-fit holds the share on the window it was fitted on, not on the requests that come next:
on fresh traffic each window of 500 lands about 2 points either side, and after a drift the share is
off until the window has turned over. `share_feedback_horizon` (on by default) closes the loop on the
realised count of strong decisions (`StrongShareController`): before every decision the trade-off is
set to the window's quantile for the target share corrected by the excess or shortfall of strong
decisions so far, paid back over about that many decisions. Every `every` decisions the move since
the last record is logged the same way, with the controller's state.

`quality_floor` instead of `target_strong_share` holds the window's mean *predicted* quality at the
floor: each recalibration finds the strong share the floor needs on the window, and that share is
held the same way.

```toml
[routing.learned]
path = "router.json"
target_strong_share = 0.3
recalibrate = true          # hold it on live traffic
recalibration_window = 500  # decisions in the sliding window
recalibrate_every = 100     # decisions between two recalibrations (and records)
share_feedback_horizon = 10 # pay back the realised excess of strong calls over ~10 decisions (0: off)
```
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .._decision import Decision
from .._errors import ConfigError
from ..policies import RouteInput
from ._policy import LearnedPolicy
from ._share_control import StrongShareController, strong_share_for_quality_floor

__all__ = ["RecalibratingPolicy"]

logger = logging.getLogger("gearshift.learning")

_FEEDBACK_START = 20
"""Decisions in the window before the feedback starts setting the trade-off (a rough quantile will do:
the feedback corrects what it gets wrong)."""


class RecalibratingPolicy:
    """A `LearnedPolicy` whose trade-off follows live traffic to hold `target_strong_share`, or the
    mean predicted quality at `quality_floor` (give one).

    With a quality floor, each recalibration turns the floor into a strong share on the window: the
    fewest of its requests, those with the largest predicted gain, whose sending to the strong model
    lifts the window's mean predicted quality to the floor. That share is then held like a target
    share. It relies on the router's predicted quality: shadow outcomes check it (`gearshift report`).
    """

    def __init__(
        self,
        policy: LearnedPolicy,
        *,
        target_strong_share: float | None = None,
        quality_floor: float | None = None,
        window: int = 500,
        every: int = 100,
        min_window: int | None = None,
        on_recalibrate: Callable[[dict[str, Any]], None] | None = None,
        feedback_horizon: float = 10,
    ) -> None:
        if (target_strong_share is None) == (quality_floor is None):
            raise ConfigError(
                "recalibration holds one target: give target_strong_share or quality_floor",
                key="routing.learned.recalibrate",
            )
        if quality_floor is not None and not 0 <= quality_floor <= 1:
            raise ConfigError(f"must be in [0, 1], got {quality_floor}", key="routing.learned.quality_floor")
        if quality_floor is not None:
            # Until the first window is in, hold the share the router's operating point expects.
            known = policy.operating_point.strong_share
            target_strong_share = 0.5 if known is None else float(known)
        assert target_strong_share is not None
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
        if feedback_horizon and feedback_horizon < 1:
            raise ConfigError(
                f"must be 0 (off) or at least 1 decision, got {feedback_horizon}",
                key="routing.learned.share_feedback_horizon",
            )
        self.policy = policy
        self.name = policy.name
        self.target_strong_share = target_strong_share
        """The share held; with a quality floor, the share each recalibration finds the floor needs."""
        self.quality_floor = quality_floor
        self.every = every
        self.min_window = window if min_window is None else min_window
        self.on_recalibrate = on_recalibrate
        self.recalibrations = 0
        costs = policy.router.relative_costs
        names = policy.router.models
        self._weak = f"quality:{names[int(np.argmin(costs))]}"
        self._strong = f"quality:{names[int(np.argmax(costs))]}"
        self._cost_gap = float(np.max(costs) - np.min(costs)) or 1.0
        self._strong_id = policy.registry_ids[int(np.argmax(costs))]
        self._flips: deque[float] = deque(maxlen=window)
        self._weak_quality: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []
        self._recent: deque[bool] = deque(maxlen=window)
        self._seen = 0
        self.controller = (
            StrongShareController(target_strong_share, horizon=feedback_horizon) if feedback_horizon else None
        )
        """The feedback on the realised strong count (None when `feedback_horizon` is 0)."""
        self._logged_tradeoff = policy.tradeoff
        # `Router.decide` runs the policy in its caller's thread (several at once from threaded sync
        # callers, a LangChain batch): the trade-off set before a decision, the decision and its place in
        # the window and the count are one step, or the window's sorted copy loses track of its values.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        target = (
            f"quality_floor={self.quality_floor}"
            if self.quality_floor is not None
            else f"target_strong_share={self.target_strong_share}"
        )
        return f"RecalibratingPolicy({self.policy!r}, {target})"

    def decide(self, route: RouteInput) -> Decision:
        """The learned policy's decision; the decision's predicted gain joins the window."""
        with self._lock:
            return self._decide(route)

    def _decide(self, route: RouteInput) -> Decision:
        control = self.controller
        if control is not None and len(self._sorted) >= min(self.min_window, _FEEDBACK_START):
            self.policy.retune(
                self._quantile(1.0 - control.share()), "recalibrated on live traffic with share feedback"
            )
        decision = self.policy.decide(route)
        scores = decision.scores
        if self._weak in scores and self._strong in scores:
            # The trade-off at which this request would switch to the expensive model.
            flip = (scores[self._strong] - scores[self._weak]) / self._cost_gap
            if len(self._flips) == self._flips.maxlen:
                del self._sorted[bisect.bisect_left(self._sorted, self._flips[0])]
            self._flips.append(flip)
            self._weak_quality.append(scores[self._weak])
            bisect.insort(self._sorted, flip)
            strong = decision.model == self._strong_id
            self._recent.append(strong)
            if control is not None:
                control.record(strong)
            self._seen += 1
            if self._seen % self.every == 0 and len(self._flips) >= self.min_window:
                self._recalibrate()
        return decision

    def _quantile(self, q: float) -> float:
        """The window's `q` quantile (linear interpolation, as `numpy.quantile`), from its sorted copy;
        beyond [0, 1], past the window's edge by `q`'s excess times the window's range."""
        ordered = self._sorted
        if not 0.0 <= q <= 1.0:
            spread = max(ordered[-1] - ordered[0], 1e-9)
            return ordered[0] + q * spread if q < 0 else ordered[-1] + (q - 1.0) * spread
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    def _recalibrate(self) -> None:
        flips = np.fromiter(self._flips, dtype=np.float64)
        control = self.controller
        floor = self.quality_floor
        if floor is not None:
            share = strong_share_for_quality_floor(self._weak_quality, flips * self._cost_gap, floor)
            self.target_strong_share = share
            if control is not None:
                control.target = share
        if control is None:
            before = self.policy.tradeoff
            # Strong iff flip > trade-off: the (1 - target) quantile sends `target` of the window up.
            target = self.target_strong_share
            after = float(np.quantile(flips, 1.0 - target)) if target < 1 else float(flips.min()) - 1.0
            self.policy.retune(after, f"recalibrated on the last {flips.size} decisions")
        else:  # the feedback moves it on every decision: record the move since the last record
            before, after = self._logged_tradeoff, self.policy.tradeoff
        self._logged_tradeoff = after
        share_before = float(np.mean(flips > before))
        self.recalibrations += 1
        share_after = float(np.mean(flips > after))
        record: dict[str, Any] = {
            "kind": "recalibration",
            "ts": time.time(),
            "policy": self.name,
            "target_strong_share": self.target_strong_share,
            "window": int(flips.size),
            "tradeoff_before": before,
            "tradeoff_after": after,
            "window_strong_share_before": share_before,
            "window_strong_share_after": share_after,
            "window_realised_strong_share": sum(self._recent) / len(self._recent),
        }
        if floor is not None:
            gains = np.sort(flips * self._cost_gap)[::-1]
            base = float(np.mean(self._weak_quality))
            sent = round(self.target_strong_share * gains.size)
            record["quality_floor"] = floor
            # The window's mean predicted quality at the share asked, and at best (every positive gain).
            record["window_predicted_quality"] = base + float(gains[:sent].sum()) / gains.size
            record["window_best_predicted_quality"] = base + float(gains[gains > 0].sum()) / gains.size
        if control is not None:
            record["share_feedback"] = {
                "horizon": control.horizon,
                "debt": round(control.debt, 4),
                "asked_share": control.share(),
            }
        # With the feedback on, the share after is the one asked to pay back the realised excess.
        feedback = (
            ""
            if control is None
            else f", asked {100 * control.share():.1f}% by the share feedback for a debt of "
            f"{control.debt:+.1f} decisions"
        )
        logger.info(
            "recalibrated the learned policy on %d decisions: trade-off %.4g -> %.4g "
            "(strong share on the window %.1f%% -> %.1f%%, target %.1f%%%s)",
            flips.size,
            before,
            after,
            100 * share_before,
            100 * share_after,
            100 * self.target_strong_share,
            feedback,
        )
        if self.on_recalibrate is not None:
            self.on_recalibrate(record)
