"""`DefaultPolicy`: what routes when nothing is configured.

A learned difficulty estimate shipped inside the core (`default_router.json` beside this module, trained
on every bundled outcome table by `packages/core/scripts/train_default_router.py`) predicts how much the
strong model gains over the weak one on the request's text. The gain becomes a rank in [0, 1] against
the gains of the training prompts (held out when they were predicted), so a rank of 0.7 means "harder
than 70% of the training prompts". The rank is cut into tiers so that about `upper_share` of calls go
above the cheapest tier (`DEFAULT_UPPER_SHARE`), and the step signals apply on top exactly as in
`SignalScorer`: the step type's bias shifts the rank, and a streak of tool errors or a repeated tool
call moves the step up a tier. Budgets apply after the policy, as for every policy.

What it can know: how hard a prompt's wording looks next to GSM8K, MMLU and MT-Bench prompts that a
Mixtral-class and a GPT-4-class model answered; it reads the user's text and its signals, and not the
size of the conversation around it (a system prompt or tool results), which those single-turn prompts
never showed it. What it cannot: the user's own models, domain or
traffic; `gearshift train` on the user's outcomes gives a router that knows those.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from importlib import resources

from .._errors import ConfigError
from ..policies import RouteInput, ScorerConfig, SignalScorer
from ..signals._signals import Signals
from ._features import PromptInput
from ._router_model import LearnedRouter
from ._single_prompt import SinglePromptScorer

__all__ = ["DEFAULT_UPPER_SHARE", "DefaultPolicy", "default_router"]

DEFAULT_UPPER_SHARE = 0.3
"""The share of plain requests (no step bias, no escalation) the default policy sends above the
cheapest tier: the top 30% of the learned difficulty; the tiers above share it evenly."""

_ARTIFACT = "default_router.json"


@functools.cache
def default_router() -> LearnedRouter:
    """The difficulty estimate shipped with gearshift (loaded once per process, NumPy only)."""
    with resources.as_file(resources.files(__package__) / _ARTIFACT) as path:
        return LearnedRouter.load(path)


def upper_cut_points(tier_count: int, upper_share: float) -> tuple[float, ...]:
    """Rank cut points between `tier_count` tiers: the first at `1 - upper_share`, the rest evenly above."""
    if tier_count < 2:
        return ()
    start = 1.0 - upper_share
    return tuple(start + upper_share * i / (tier_count - 1) for i in range(tier_count - 1))


class DefaultPolicy(SignalScorer):
    """The policy used when none is configured: a learned difficulty rank plus the step signals.

    `router` is the difficulty estimate (the shipped one by default; any two-or-more-model
    `LearnedRouter` works: its cheapest and most expensive models are compared). `upper_share` is the
    share of plain requests sent above the cheapest tier. `config` supplies the step biases and the
    escalation triggers (its content weights are not used). Pure and synchronous.
    """

    name = "default"

    def __init__(
        self,
        router: LearnedRouter | None = None,
        *,
        upper_share: float = DEFAULT_UPPER_SHARE,
        config: ScorerConfig | None = None,
    ) -> None:
        if not 0 < upper_share < 1:
            raise ConfigError(f"must be between 0 and 1, got {upper_share!r}", key="routing.upper_share")
        super().__init__(config)
        self.router = router if router is not None else default_router()
        if self.router.curve is None or len(self.router.models) < 2:
            raise ConfigError("the default policy needs a calibrated router over at least two models")
        self.upper_share = upper_share
        self._input = PromptInput
        spec, predictor = self.router.features, self.router.predictor
        self._fast = SinglePromptScorer(spec, predictor) if SinglePromptScorer.fits(spec, predictor) else None  # type: ignore[arg-type]
        # Quantiles (0%, 0.5%, ..., 100%) of the held-out gains of the training prompts.
        self.quantiles = [float(b) for b in self.router.curve.breakpoints]
        self._about = f"learned difficulty ({self.router.training.rows:,} bundled prompts)"

    def __repr__(self) -> str:
        return f"DefaultPolicy(upper_share={self.upper_share!r}, router={self.router!r})"

    def rank(self, route: RouteInput) -> tuple[float, float]:
        """The predicted gain of the strongest model over the cheapest, and its rank in [0, 1]."""
        # A list, not a generator: `join` makes one of it anyway, and an agent's history is long.
        text = "\n\n".join([m.text for m in route.request.messages if m.role == "user"])
        return self.rank_text(text, route.signals)

    def rank_text(self, text: str, signals: Signals) -> tuple[float, float]:
        """`rank` for the user text of a request and its signals."""
        if self._fast is not None:
            gain = self._fast.gain(text, signals)
        else:
            predicted = self.router.predict_inputs((self._input(text, signals, None),))[0]
            gain = float(predicted[-1] - predicted[0])
        return gain, rank_of(gain, self.quantiles)

    def _content(self, route: RouteInput) -> tuple[dict[str, float], str]:
        gain, rank = self.rank(route)
        step = self.config.step_bias.get(route.signals.step_type, 0.0)
        about = f"{self._about}: predicted gain {gain:+.3f} of the strongest model, harder than {rank:.0%}"
        return {"learned": rank, "step": step}, about

    def _cut_points(self, tier_count: int) -> tuple[float, ...]:
        return upper_cut_points(tier_count, self.upper_share)


def rank_of(value: float, quantiles: list[float]) -> float:
    """Where `value` falls among evenly spaced `quantiles` (ascending), as a share in [0, 1]."""
    last = len(quantiles) - 1
    index = bisect_right(quantiles, value)
    if index == 0:
        return 0.0
    if index > last:
        return 1.0
    low, high = quantiles[index - 1], quantiles[index]
    within = (value - low) / (high - low) if high > low else 0.0
    return (index - 1 + within) / last
