"""List prices and context windows from `genai-prices`, offline.

`genai-prices` ships its price table inside the package, so a lookup never touches the network. It
is imported on the first lookup, not with `gearshift`: loading it costs most of a second (the table
is a large Python module), which `import gearshift` and every CLI command that needs no price should
not pay.

Prices are read by pricing a small call (1,000 tokens) rather than by reading the table's fields,
because some models have tiered prices (a higher rate above 200k input tokens) and the routed calls
gearshift estimates sit in the base tier.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from ._models import ModelPrices

if TYPE_CHECKING:
    from genai_prices import Usage
    from genai_prices.types import PriceCalculation

__all__ = ["KnownModel", "lookup_context_window", "lookup_model", "lookup_prices"]

_SAMPLE_TOKENS = 1_000
_PER_MILLION = Decimal(1_000_000 // _SAMPLE_TOKENS)


@dataclass(frozen=True, slots=True)
class KnownModel:
    """What `genai-prices` knows about one model: its list prices and, when known, its context window."""

    prices: ModelPrices
    context_window: int | None


def lookup_prices(provider: str, model: str, *, base_url: str | None = None) -> ModelPrices | None:
    """List prices of `model` in dollars per million tokens, or None when `genai-prices` doesn't know them.

    `provider` is a `genai-prices` provider id (`openai`, `anthropic`, `groq`...); gearshift passes a
    provider configuration's `kind`. When `base_url` is given it identifies the provider instead
    (`genai-prices` recognises the public API hosts), and a host it does not recognise, such as a
    local server, has no known prices.
    """
    known = lookup_model(provider, model, base_url=base_url)
    return known.prices if known else None


def lookup_context_window(provider: str, model: str, *, base_url: str | None = None) -> int | None:
    """The model's context window in tokens, or None when `genai-prices` doesn't know it."""
    known = lookup_model(provider, model, base_url=base_url)
    return known.context_window if known else None


@functools.lru_cache(maxsize=512)
def lookup_model(provider: str, model: str, *, base_url: str | None = None) -> KnownModel | None:
    """Prices and context window of `model` (see `lookup_prices`); cached, as the table never changes."""
    from genai_prices import Usage

    try:
        call = _price(
            Usage(input_tokens=_SAMPLE_TOKENS, output_tokens=_SAMPLE_TOKENS), provider, model, base_url
        )
    except LookupError:  # genai-prices' answer for an unknown provider, host or model
        return None
    table = call.model_price
    if table.input_mtok is None or table.output_mtok is None:
        # Image, audio and embedding models are priced per image, second or input token only;
        # a price of 0 for the missing side would make them look free.
        return None
    cache_read: float | None = None
    if getattr(table, "cache_read_mtok", None) is not None:
        cached = _price(
            Usage(input_tokens=_SAMPLE_TOKENS, cache_read_tokens=_SAMPLE_TOKENS), provider, model, base_url
        )
        cache_read = float(cached.input_price * _PER_MILLION)
    prices = ModelPrices(
        input=float(call.input_price * _PER_MILLION),
        output=float(call.output_price * _PER_MILLION),
        cache_read=cache_read,
    )
    return KnownModel(prices=prices, context_window=getattr(call.model, "context_window", None))


def _price(usage: Usage, provider: str, model: str, base_url: str | None) -> PriceCalculation:
    from genai_prices import calc_price

    if base_url:
        return calc_price(usage, model, provider_api_url=base_url)
    return calc_price(usage, model, provider_id=provider)
