"""The pure decide pipeline: request and context in, `Decision` out, no I/O.

The router calls this before every provider call; `gearshift route` calls it alone. Budget-aware
adjustments (issue: budgets) plug in after the policy, as a second pure step over the decision.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._context import StepContext
from .._decision import Decision
from .._messages import ChatRequest
from .._models import ModelRegistry
from ..policies import Policy, RouteInput
from ..signals._signals import extract_signals
from ..signals._tokens import schema_tokens, tool_tokens
from ._eligibility import eligible_models
from ._self_escalation import offer_escalation
from ._sent_input import added_tokens_by_model

if TYPE_CHECKING:
    from ..providers import Provider

__all__ = ["DEFAULT_OUTPUT_TOKENS", "decide", "route_input"]

DEFAULT_OUTPUT_TOKENS = 512
"""Expected output tokens when the request sets no `max_tokens`: the cost estimate, and under a budget
limit that refuses, the output cap the router sends (lowered to what the budget affords)."""


def route_input(
    registry: ModelRegistry,
    request: ChatRequest,
    context: StepContext,
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    escalate: bool = False,
    providers: Mapping[str, Provider] | None = None,
) -> RouteInput:
    """Everything a policy looks at: signals, eligible candidates and size estimates.

    The input each model is billed beyond the request (`RouteInput.added_input`) counts, in its
    estimated cost and its context window, what its provider's API adds (with `providers`) and, when
    the step may `escalate`, the `escalate` tool a model below the top eligible tier is offered.
    """
    signals = extract_signals(request, context)
    # signals.prompt_tokens already counts every message; the tool definitions and the answer's
    # schema, billed as input too, are left to add.
    input_tokens = signals.prompt_tokens + (tool_tokens(request.tools) if request.tools else 0)
    if request.response_schema is not None:
        input_tokens += schema_tokens(request)
    output_tokens = request.max_tokens if request.max_tokens is not None else default_output_tokens
    models = registry._models
    added = added_tokens_by_model(request, request, models, providers) if providers else {}
    eligible = functools.partial(
        eligible_models,
        registry,
        request,
        context,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        has_images=signals.has_images,
    )
    candidates = eligible(added_input=added)
    offered = offer_escalation(request) if escalate else None
    if offered is not None:
        # Offered to the models below the top eligible tier: checked again with the tool, which only
        # they are sent, so the top tier (and with it who is offered the tool) stays as it was.
        top = max(m.tier for m in candidates)
        lower = tuple(m for m in models if m.tier < top)
        added.update(added_tokens_by_model(request, offered, lower, providers or {}))
        candidates = eligible(added_input=added)
    # Positional, in the order of the fields (named alike): keywords cost more on every decision.
    return RouteInput(request, context, signals, candidates, input_tokens, output_tokens, added)


def decide(
    registry: ModelRegistry,
    policy: Policy,
    request: ChatRequest,
    context: StepContext | None = None,
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Decision:
    """Route one request: compute its `RouteInput` and ask the policy."""
    route = route_input(
        registry, request, context or StepContext(), default_output_tokens=default_output_tokens
    )
    return policy.decide(route)
