"""The note a decision carries when the chosen model's API does not take a sampling setting the
request set (Anthropic has no `seed` or penalties, OpenAI no `top_k`), or the model does not take
`reasoning_effort` (it is not marked `supports_reasoning_effort`): the provider sends the request
without it, as the APIs' own compatibility layers do, and the decision's reasons say so. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from .._messages import SAMPLING_SETTINGS

if TYPE_CHECKING:
    from .._decision import Decision
    from .._messages import ChatRequest
    from .._models import ModelRegistry
    from ..providers import Provider

__all__ = ["note_unsent_settings"]


def note_unsent_settings(
    request: ChatRequest, decision: Decision, registry: ModelRegistry, providers: Mapping[str, Provider]
) -> Decision:
    """`decision`, with a reason naming the settings `request` set that its model's provider does not
    send (a provider lists them in its `unsent_settings`)."""
    wanted = [name for name in SAMPLING_SETTINGS if getattr(request, name) is not None]
    effort = request.reasoning_effort is not None
    if not wanted and not effort:
        return decision
    spec = registry[decision.model]
    unsent_by_provider: frozenset[str] = getattr(providers.get(spec.provider), "unsent_settings", frozenset())
    unsent = [name for name in wanted if name in unsent_by_provider]
    reasons = []
    if unsent:
        reasons.append(
            f"{', '.join(unsent)} not sent: the API of {decision.model} (provider {spec.provider}) "
            f"does not take {'it' if len(unsent) == 1 else 'them'}"
        )
    if effort and "reasoning_effort" in unsent_by_provider:
        where = f"{decision.model} (provider {spec.provider})"
        reasons.append(f"reasoning_effort not sent: the API of {where} does not take it")
    elif effort and not spec.supports_reasoning_effort:
        reasons.append(f"reasoning_effort not sent: {decision.model} is not marked supports_reasoning_effort")
    if not reasons:
        return decision
    return replace(decision, reasons=(*decision.reasons, *reasons))
