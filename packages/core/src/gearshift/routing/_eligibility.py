"""Which models can serve a request at all: capabilities, context window, caller hints. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from .._context import CallerHints, StepContext
from .._errors import NoEligibleModel
from .._messages import ChatRequest
from .._models import ModelRegistry, ModelSpec

__all__ = ["eligible_models", "hint_refusal"]


def hint_refusal(model: ModelSpec, hints: CallerHints) -> str | None:
    """Why the caller's hints (a forced model, `min_tier`, `max_tier`) rule `model` out, or None."""
    if hints.force_model is not None and model.id != hints.force_model:
        return f"the caller forced model '{hints.force_model}'"
    if hints.min_tier is not None and model.tier < hints.min_tier:
        return f"tier {model.tier} is below the caller's min_tier {hints.min_tier}"
    if hints.max_tier is not None and model.tier > hints.max_tier:
        return f"tier {model.tier} is above the caller's max_tier {hints.max_tier}"
    return None


def _why_not(
    model: ModelSpec,
    hints: CallerHints,
    needs_tools: bool,
    has_images: bool,
    needs_json: bool,
    needs_stop: bool,
    input_tokens: int,
    output_tokens: int,
) -> str | None:
    # `input_tokens` as this model is billed them (see `eligible_models`' `added_input`).
    refused = hint_refusal(model, hints)
    if refused is not None:
        return refused
    if needs_tools and not model.supports_tools:
        return "it cannot call tools and the request offers tools"
    if has_images and not model.supports_vision:
        return "it does not accept images"
    if needs_json and not model.supports_json:
        return "it cannot be asked for JSON output"
    if needs_stop and model.reasoning:
        return "it is a reasoning model, which refuses stop sequences"
    if input_tokens + output_tokens > model.context_window:
        return (
            f"about {input_tokens + output_tokens} tokens do not fit its context window of "
            f"{model.context_window}"
        )
    if hints.max_cost_usd is not None:
        cost = model.estimate_cost(input_tokens, output_tokens)
        if cost > hints.max_cost_usd:
            return f"estimated ${cost:.6f} is above the caller's max_cost_usd ${hints.max_cost_usd}"
    return None


def eligible_models(
    registry: ModelRegistry,
    request: ChatRequest,
    context: StepContext,
    *,
    input_tokens: int,
    output_tokens: int,
    has_images: bool | None = None,
    added_input: Mapping[str, int] | None = None,
) -> tuple[ModelSpec, ...]:
    """The registry's models that can serve `request`, weakest and cheapest first.

    `has_images` is whether any message holds an image; read from the messages when not given (the
    router passes the value its signals already hold). `added_input` holds, by model id, the input a
    model is billed beyond `input_tokens` (the `escalate` tool, a provider's own prompt): its context
    window and the caller's `max_cost_usd` are checked with them.

    Raises `NoEligibleModel`, with the reason for each model, when none can. A forced model that is
    not in the registry raises `UnknownModelError`.
    """
    hints = context.hints
    if hints.force_model is not None:
        registry[hints.force_model]  # raises UnknownModelError naming the known ids
    if has_images is None:
        has_images = any(m.has_images for m in request.messages)
    # What the request needs is the same for every model: worked out once, not once per model.
    needs_tools = bool(request.tools) and request.tool_choice != "none"
    needs_json = request.response_schema is not None
    needs_stop = bool(request.stop)
    why: dict[str, str] = {}
    fit: list[ModelSpec] = []
    added = added_input or {}
    for model in registry._models:
        sent = input_tokens + added.get(model.id, 0)
        reason = _why_not(model, hints, needs_tools, has_images, needs_json, needs_stop, sent, output_tokens)
        if reason is None:
            fit.append(model)
        else:
            why[model.id] = reason
    if not fit:
        raise NoEligibleModel(why)
    return tuple(fit) if why else registry._models  # every model fits: the registry's own tuple
