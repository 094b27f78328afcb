"""Stickiness: keeping a tool loop on the model that started it, unless routing must move it up.

When a model has made tool calls and the next step reads their results, sending that step to a
different model of the same tier buys nothing and loses the caller the model that planned the
calls. `keep_tool_loop_model` lifts the step's floor to the tier of the model that made the calls
and, when the policy would pick another model at that tier, forces the same one. The policy can
still move the step up (tool errors, a loop), the caller's tier cap still wins, and a step the
prior model cannot serve is routed freely. Which model made the calls is the adapter's to say (it
reads it from its framework's record of the answer); the decision itself is pure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from .._context import StepContext
from .._decision import Decision
from .._errors import RoutingError
from .._messages import ChatRequest
from .._models import ModelRegistry

__all__ = ["Decides", "keep_tool_loop_model"]


class Decides(Protocol):
    """What stickiness needs of a router: its registry and its pure decision (`Router` is one)."""

    @property
    def registry(self) -> ModelRegistry:
        """The models routed over."""
        ...

    def decide(self, request: ChatRequest, context: StepContext | None = None) -> Decision:
        """The decision for a request, without calling any model."""
        ...


def keep_tool_loop_model(
    router: Decides, request: ChatRequest, context: StepContext, prior: str | None
) -> StepContext:
    """`context` lifted so the step stays with `prior` (the model that made the tool calls it reads).

    Never a lower tier than `prior`'s, and `prior` itself when the policy's choice at that tier is
    another model. Unchanged when there is no prior model, it is not in the registry, the caller
    forces a model or caps the tier below it, or no decision can be made with the lifted floor.
    """
    registry = router.registry
    if prior is None or prior not in registry or context.hints.force_model is not None:
        return context
    tier = registry[prior].tier
    hints = context.hints
    if hints.max_tier is not None and hints.max_tier < tier:
        return context  # the caller's cap wins over stickiness
    lifted = replace(context, hints=replace(hints, min_tier=max(hints.min_tier or 0, tier)))
    try:
        decision = router.decide(request, lifted)
    except RoutingError:
        return context  # the prior model cannot serve this step: route it freely
    if decision.tier == tier and decision.model != prior:
        lifted = replace(lifted, hints=replace(lifted.hints, force_model=prior))
    return lifted
