"""The policy protocol and the values every policy works on.

A policy is pure and synchronous: `decide(route) -> Decision`. The router computes the `RouteInput`
(signals, eligible candidates, size estimates) before calling it, so policies never do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .._context import StepContext
from .._decision import Decision
from .._messages import ChatRequest
from .._models import ModelSpec
from ..signals._signals import Signals

__all__ = ["Policy", "RouteInput", "fallback_chain", "make_decision"]


@dataclass(frozen=True, slots=True)
class RouteInput:
    """Everything a policy may look at for one request.

    `candidates` are the models that can serve the request (capabilities, context window and caller
    hints already checked), weakest and cheapest first; never empty. `input_tokens` estimates the
    request; `added_input` holds, by model id, the input a model is billed beyond it (the `escalate`
    tool it is offered, what its provider's API adds), which `input_tokens_on` counts.
    """

    request: ChatRequest
    context: StepContext
    signals: Signals
    candidates: tuple[ModelSpec, ...]
    input_tokens: int
    output_tokens: int
    added_input: Mapping[str, int] = field(default_factory=dict)

    @property
    def tiers(self) -> tuple[int, ...]:
        """The distinct tiers among the candidates, ascending."""
        return tuple(sorted({m.tier for m in self.candidates}))

    def cheapest_in_tier(self, tier: int) -> ModelSpec:
        """The cheapest candidate of `tier`, or of the nearest tier above it (else below it)."""
        above = [m for m in self.candidates if m.tier >= tier]
        pool = above or list(self.candidates)
        best_tier = min(m.tier for m in pool) if above else max(m.tier for m in pool)
        return next(m for m in pool if m.tier == best_tier)

    def input_tokens_on(self, model: ModelSpec) -> int:
        """The input tokens `model` is billed for this request: `input_tokens` and its `added_input`."""
        return self.input_tokens + self.added_input.get(model.id, 0)

    def estimated_cost(self, model: ModelSpec) -> float:
        """The expected cost of this request on `model`."""
        return model.estimate_cost(self.input_tokens_on(model), self.output_tokens)


@runtime_checkable
class Policy(Protocol):
    """Chooses a model for a request. Pure and synchronous."""

    name: str

    def decide(self, route: RouteInput) -> Decision:
        """The decision for this request."""
        ...


def fallback_chain(candidates: Sequence[ModelSpec], chosen: ModelSpec) -> tuple[str, ...]:
    """What to try when `chosen` fails: the same tier on other models, then each tier above, cheapest first.

    Lower tiers are left out: falling back must not quietly trade away the quality the policy asked for.
    """
    same = [m.id for m in candidates if m.tier == chosen.tier and m.id != chosen.id]
    higher = [m.id for m in candidates if m.tier > chosen.tier]
    return (*same, *higher)


def make_decision(
    route: RouteInput,
    model: ModelSpec,
    *,
    policy: str,
    reasons: Sequence[str],
    scores: Mapping[str, float] | None = None,
    budget_changed: bool = False,
    fallbacks: Sequence[str] | None = None,
) -> Decision:
    """A `Decision` for `model`, with its fallback chain and estimated cost filled in.

    `fallbacks`, when given, is `fallback_chain(route.candidates, model)` that the policy has already
    worked out (a policy can keep it per candidates tuple rather than rebuild it on every decision).
    """
    # Positional, in the order of Decision's fields: keywords cost about a microsecond more here.
    return Decision(
        model.id,
        model.tier,
        fallback_chain(route.candidates, model) if fallbacks is None else tuple(fallbacks),
        tuple(reasons),
        dict(scores or {}),
        route.estimated_cost(model),
        policy,
        budget_changed,
    )
