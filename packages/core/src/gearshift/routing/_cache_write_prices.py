"""The prices a model's provider bills its prompt-cache writes at, where the model's own leave them out.

Anthropic bills a cache write at 1.25x the input price (2x for the 1-hour cache), and OpenAI at the
input price. A `ModelSpec` whose prices give no `cache_write` would bill (and reserve) Anthropic's
writes at 1x, less than the bill, whether it was written in gearshift.toml or built in Python: so the
router, where a model first meets the providers that serve it, gives every model the rates its
providers state (`Provider.cache_write_rates`), the highest when several serve it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._models import ModelRegistry, ModelSpec
from ..providers._base import cache_write_rates

if TYPE_CHECKING:
    from ..providers import Provider

__all__ = ["with_cache_write_prices"]


def with_cache_write_prices(registry: ModelRegistry, providers: Mapping[str, Provider]) -> ModelRegistry:
    """`registry` with each model's missing cache-write prices set from the rates of the providers that
    serve it; `registry` itself when none needed any."""
    specs = [_priced(spec, providers) for spec in registry]
    if all(new is old for new, old in zip(specs, registry, strict=True)):
        return registry
    return ModelRegistry(specs)


def _priced(spec: ModelSpec, providers: Mapping[str, Provider]) -> ModelSpec:
    stated = [rates for name in spec.served_by() if (rates := _rates(providers.get(name))) is not None]
    if not stated:
        return spec
    five_minutes, one_hour = max(r[0] for r in stated), max(r[1] for r in stated)
    prices = spec.prices.with_cache_write_rates(five_minutes, one_hour)
    return spec if prices == spec.prices else spec.model_copy(update={"prices": prices})


def _rates(provider: Provider | None) -> tuple[float, float] | None:
    return None if provider is None else cache_write_rates(provider)
