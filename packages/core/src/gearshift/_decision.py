"""A routing decision: which model, what to try if it fails, and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Decision"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a policy.

    `model` is a registry id; `fallbacks` are the ids to try, in order, when it fails. `reasons` say in
    plain words why this model was chosen. `scores` hold the numbers the policy computed (difficulty,
    per-model estimates). `estimated_cost_usd` is the expected cost of the call on `model`.
    `budget_changed` is true when a budget moved the choice away from what the policy preferred.
    """

    model: str
    tier: int
    fallbacks: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    estimated_cost_usd: float = 0.0
    policy: str = ""
    budget_changed: bool = False

    @property
    def chain(self) -> tuple[str, ...]:
        """The model followed by its fallbacks."""
        return (self.model, *self.fallbacks)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as `gearshift route --json` prints it."""
        return {
            "model": self.model,
            "tier": self.tier,
            "fallbacks": list(self.fallbacks),
            "reasons": list(self.reasons),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "estimated_cost_usd": self.estimated_cost_usd,
            "policy": self.policy,
            "budget_changed": self.budget_changed,
        }
