"""List prices and context windows from `genai-prices`, offline.

`genai-prices` ships its price table inside the package, so a lookup never touches the network. It
is imported on the first lookup, not with `gearshift`: loading it costs most of a second (the table
is a large Python module), which `import gearshift` and every CLI command that needs no price should
not pay.

Prices are read by pricing calls rather than by reading the table's fields: a small call (1,000
tokens) gives the base prices, and for a model with long-context tiers (a higher rate for the whole
call above 200k input tokens) a call just past each threshold gives that tier's prices
(`ModelPrices.long_context`). Cache writes are priced too (Anthropic bills them at 1.25x input, and
at 2x for its 1-hour cache).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from .._models import ModelPrices, PriceTier

if TYPE_CHECKING:
    from genai_prices import Usage
    from genai_prices.types import PriceCalculation

__all__ = ["KnownModel", "lookup_context_window", "lookup_model", "lookup_prices"]

_SAMPLE_TOKENS = 1_000


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
    has = {
        kind: getattr(table, f"{kind}_mtok", None) is not None
        for kind in ("cache_read", "cache_write", "cache_write_1h")
    }
    base = _rates(provider, model, base_url, _SAMPLE_TOKENS, has)
    tiers = tuple(
        PriceTier(above=start, **_rates(provider, model, base_url, start + 1, has)._asdict())
        for start in _tier_starts(table)
    )
    prices = ModelPrices(**base._asdict(), long_context=tiers)
    return KnownModel(prices=prices, context_window=getattr(call.model, "context_window", None))


def _tier_starts(table: object) -> list[int]:
    """The thresholds of the long-context tiers of any of the table's token prices."""
    starts: set[int] = set()
    for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok"):
        for tier in getattr(getattr(table, name, None), "tiers", None) or ():
            starts.add(int(tier.start))
    return sorted(starts)


def _rates(
    provider: str, model: str, base_url: str | None, input_tokens: int, has: dict[str, bool]
) -> _Rates:
    """Dollars per million tokens of each kind for a call with `input_tokens` of input.

    Read by pricing calls of that size rather than from the table's fields, so that genai-prices'
    own rules (tier cliffs, price variants) decide, as they do for the bill. `has` says which cache
    prices the table lists.
    """
    from genai_prices import Usage

    per_million = Decimal(1_000_000) / Decimal(input_tokens)

    def input_rate(**cached: int) -> float:
        usage = Usage(input_tokens=input_tokens, **cached)
        return float(_price(usage, provider, model, base_url).input_price * per_million)

    plain = _price(Usage(input_tokens=input_tokens, output_tokens=input_tokens), provider, model, base_url)
    n = input_tokens
    return _Rates(
        float(plain.input_price * per_million),
        float(plain.output_price * per_million),
        input_rate(cache_read_tokens=n) if has["cache_read"] else None,
        input_rate(cache_write_tokens=n) if has["cache_write"] else None,
        input_rate(cache_write_tokens=n, cache_write_1h_tokens=n) if has["cache_write_1h"] else None,
    )


class _Rates(NamedTuple):
    input: float
    output: float
    cache_read: float | None
    cache_write: float | None
    cache_write_1h: float | None


def _price(usage: Usage, provider: str, model: str, base_url: str | None) -> PriceCalculation:
    from genai_prices import calc_price

    if base_url:
        return calc_price(usage, model, provider_api_url=base_url)
    return calc_price(usage, model, provider_id=provider)
