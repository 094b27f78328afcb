"""The note a decision carries when the chosen model is sent the request without a setting the
request set: its API does not take it (Anthropic has no `seed`, penalties or `reasoning_effort`,
OpenAI no `top_k`), it is an OpenAI reasoning model, which refuses `temperature`, `top_p` and the
penalties (`ModelSpec.reasoning`), or it is not a reasoning model and `reasoning_effort` is asked
for, or its API refuses two settings together (Claude's newer models: `temperature` with `top_p`)
or a stop sequence of whitespace alone (Anthropic's);
and when a `temperature` above what its API takes is sent capped (Anthropic's goes to 1).
The provider sends the request without it, as the APIs' own compatibility layers do, and the
decision's reasons say so. Pure."""

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

_NOTED = ("temperature", *SAMPLING_SETTINGS, "reasoning_effort")


def _them(names: list[str]) -> str:
    return "it" if len(names) == 1 else "them"


def note_unsent_settings(
    request: ChatRequest, decision: Decision, registry: ModelRegistry, providers: Mapping[str, Provider]
) -> Decision:
    """`decision`, with a reason for each kind of setting `request` set that its model is not sent
    (a provider lists those its API does not take in `unsent_settings`, those its reasoning models
    refuse in `reasoning_unsent`, and pairs it takes one of in `exclusive_settings`)."""
    wanted = [name for name in _NOTED if getattr(request, name) is not None]
    if not wanted and not request.stop:
        return decision
    spec = registry[decision.model]
    provider = providers.get(spec.provider)
    by_api: frozenset[str] = getattr(provider, "unsent_settings", frozenset())
    by_reasoning: frozenset[str] = (
        getattr(provider, "reasoning_unsent", frozenset()) if spec.reasoning else frozenset()
    )
    reasons = []
    api = [name for name in wanted if name in by_api]
    if api:
        reasons.append(
            f"{', '.join(api)} not sent: the API of {decision.model} (provider {spec.provider}) "
            f"does not take {_them(api)}"
        )
    refused = [name for name in wanted if name in by_reasoning and name not in by_api]
    if refused:
        names = ", ".join(refused)
        reasons.append(
            f"{names} not sent: {decision.model} is a reasoning model, which refuses {_them(refused)}"
        )
    if "reasoning_effort" in wanted and "reasoning_effort" not in by_api and not spec.reasoning:
        reasons.append(f"reasoning_effort not sent: {decision.model} is not a reasoning model")
    cap: float | None = getattr(provider, "temperature_cap", None)
    if cap is not None and "temperature" not in by_reasoning and (request.temperature or 0.0) > cap:
        reasons.append(
            f"temperature {request.temperature:g} sent as {cap:g}: the API of {decision.model} "
            f"(provider {spec.provider}) takes 0 to {cap:g}"
        )
    pairs: tuple[tuple[str, str], ...] = getattr(provider, "exclusive_settings", ())
    for kept, dropped in pairs:
        if kept in wanted and dropped in wanted and kept not in by_api and dropped not in by_api:
            reasons.append(
                f"{dropped} not sent: the API of {decision.model} (provider {spec.provider}) takes "
                f"{kept} or {dropped}, not both ({kept} kept)"
            )
    if request.stop and getattr(provider, "visible_stops_only", False):
        blank = [stop for stop in request.stop if not stop.strip()]
        if blank:
            reasons.append(
                f"stop sequences {', '.join(map(repr, blank))} not sent: the API of {decision.model} "
                f"(provider {spec.provider}) takes only ones holding a non-whitespace character"
            )
    if not reasons:
        return decision
    return replace(decision, reasons=(*decision.reasons, *reasons))
