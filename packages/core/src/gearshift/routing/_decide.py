"""The pure decide pipeline: request and context in, `Decision` out, no I/O.

The router calls this before every provider call; `gearshift route` calls it alone. Budget-aware
adjustments (issue: budgets) plug in after the policy, as a second pure step over the decision.
"""

from __future__ import annotations

from .._context import StepContext
from .._decision import Decision
from .._messages import ChatRequest
from .._models import ModelRegistry
from ..policies import Policy, RouteInput
from ..signals._signals import extract_signals
from ..signals._tokens import schema_tokens, tool_tokens
from ._eligibility import eligible_models

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
) -> RouteInput:
    """Everything a policy looks at: signals, eligible candidates and size estimates."""
    signals = extract_signals(request, context)
    # signals.prompt_tokens already counts every message; the tool definitions and the answer's
    # schema, billed as input too, are left to add.
    input_tokens = signals.prompt_tokens + (tool_tokens(request.tools) if request.tools else 0)
    if request.response_schema is not None:
        input_tokens += schema_tokens(request)
    output_tokens = request.max_tokens if request.max_tokens is not None else default_output_tokens
    candidates = eligible_models(
        registry,
        request,
        context,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        has_images=signals.has_images,
    )
    # Positional, in the order of the fields (named alike): keywords cost more on every decision.
    return RouteInput(request, context, signals, candidates, input_tokens, output_tokens)


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
