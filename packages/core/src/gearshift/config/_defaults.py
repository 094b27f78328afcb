"""The built-in model ladder gearshift routes over when no config file names any models.

Three tiers, each with at least one OpenAI and one Anthropic model, so a user holding only one of
the two keys still has every tier, and a failing model can fall back to the other vendor at the
same tier:

| tier | role                                   | OpenAI                    | Anthropic         |
|------|----------------------------------------|---------------------------|-------------------|
| 1    | quick lookups, extraction, tool steps  | gpt-5-nano, gpt-4.1-nano  | claude-haiku-4-5  |
| 2    | everyday reasoning, coding, writing    | gpt-5-mini                | claude-sonnet-4-5 |
| 3    | hard reasoning, planning, long agents  | gpt-5                     | claude-opus-4-5   |

A tier is a capability rank, not a price band: claude-haiku-4-5 costs more than gpt-5-mini, yet it
is its vendor's small model. `gpt-4.1-nano` sits next to `gpt-5-nano` because it does not reason
before answering: lower latency, and no hidden reasoning tokens billed as output.

Prices and context windows come from `genai-prices` when the ladder is built; the output caps and
capabilities below are the vendors' documented values. Every model here accepts images, calls
tools, and can answer in JSON matching a schema (Anthropic's through a forced tool); the gpt-5 models
reason before answering (`ModelSpec.reasoning`: they take `reasoning_effort`, and refuse `temperature`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigError
from .._models import ModelRegistry, ModelSpec
from ._pricing import lookup_model

__all__ = ["DEFAULT_LADDER", "DefaultModel", "default_models", "default_registry"]


@dataclass(frozen=True, slots=True)
class DefaultModel:
    """One rung of the built-in ladder: everything but the prices, which `genai-prices` supplies."""

    id: str
    provider: str
    tier: int
    max_output_tokens: int
    reasoning: bool = False
    """Whether it is an OpenAI reasoning model (`ModelSpec.reasoning`): the gpt-5 models are."""


DEFAULT_LADDER: tuple[DefaultModel, ...] = (
    DefaultModel("gpt-5-nano", "openai", 1, 128_000, reasoning=True),
    DefaultModel("gpt-4.1-nano", "openai", 1, 32_768),
    DefaultModel("claude-haiku-4-5", "anthropic", 1, 64_000),
    DefaultModel("gpt-5-mini", "openai", 2, 128_000, reasoning=True),
    DefaultModel("claude-sonnet-4-5", "anthropic", 2, 64_000),
    DefaultModel("gpt-5", "openai", 3, 128_000, reasoning=True),
    DefaultModel("claude-opus-4-5", "anthropic", 3, 64_000),
)
"""The built-in ladder; ids are the vendors' model names, served by the built-in providers."""


@functools.cache
def default_models() -> tuple[ModelSpec, ...]:
    """The built-in ladder as model specs, priced from `genai-prices`."""
    specs = []
    for entry in DEFAULT_LADDER:
        # The built-in providers `openai` and `anthropic` share their names with genai-prices' ids.
        known = lookup_model(entry.provider, entry.id)
        if known is None:  # only when an installed genai-prices dropped a model of the ladder
            raise ConfigError(
                f"genai-prices has no price for the built-in model '{entry.id}'; install a "
                "genai-prices release that knows it, or list your models in a gearshift.toml",
                source="<defaults>",
                key="models",
            )
        window: dict[str, Any] = {"context_window": known.context_window} if known.context_window else {}
        specs.append(
            ModelSpec(
                id=entry.id,
                provider=entry.provider,
                model=entry.id,
                tier=entry.tier,
                prices=known.prices,
                max_output_tokens=entry.max_output_tokens,
                supports_tools=True,
                supports_vision=True,
                supports_json=True,
                reasoning=entry.reasoning,
                **window,
            )
        )
    return tuple(specs)


def default_registry() -> ModelRegistry:
    """A registry over the built-in ladder."""
    return ModelRegistry(default_models())
