"""The two models of the bundled RouteLLM data, with the list prices their costs are computed from.

RouteLLM records Mixtral-8x7B-Instruct (`mistralai/Mixtral-8x7B-Instruct-v0.1`, the weak model) and
GPT-4 Turbo (`gpt-4-1106-preview`, the strong model). gearshift names them `mixtral-8x7b-instruct` and
`gpt-4-1106-preview` and serves them through the replay provider.

Prices are list prices in dollars per million tokens, as genai-prices gives them (the test suite checks
it still does, with `calc_price` on 1,000 tokens since some models have tiered prices):

- `gpt-4-1106-preview`: OpenAI's price for it, which genai-prices files under `gpt-4-turbo`:
  $10 input, $30 output.
- Mixtral-8x7B: Mistral's own API, `open-mixtral-8x7b`: $0.70 input, $0.70 output. The maker's
  first-party price, like OpenAI's for the strong model; hosts differ (Groq $0.24/$0.24, Together
  $0.90/$0.90, Bedrock $0.45/$0.70), and Mistral's sits in the middle of them.

They are pinned here rather than looked up at load time: importing genai-prices and matching a model
takes about a second, and pinned prices keep the bundled costs the same whatever genai-prices version
is installed.
"""

from __future__ import annotations

from .._models import ModelPrices, ModelSpec

__all__ = ["ROUTELLM_PRICE_SOURCES", "ROUTELLM_STRONG_MODEL", "ROUTELLM_WEAK_MODEL", "routellm_models"]

ROUTELLM_WEAK_MODEL = "mixtral-8x7b-instruct"
"""Model id of the weak model of the RouteLLM data (Mixtral-8x7B-Instruct-v0.1)."""

ROUTELLM_STRONG_MODEL = "gpt-4-1106-preview"
"""Model id of the strong model of the RouteLLM data (GPT-4 Turbo, November 2023 preview)."""

SOURCE_MODEL_NAMES: dict[str, str] = {
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ROUTELLM_WEAK_MODEL,
    "gpt-4-1106-preview": ROUTELLM_STRONG_MODEL,
}
"""RouteLLM's column and judgement model names, mapped to gearshift's model ids."""

ROUTELLM_PRICE_SOURCES: dict[str, tuple[str, str]] = {
    ROUTELLM_WEAK_MODEL: ("mistral", "open-mixtral-8x7b"),
    ROUTELLM_STRONG_MODEL: ("openai", "gpt-4-1106-preview"),
}
"""Where each model's list price comes from: (genai-prices provider id, model reference)."""

_PRICES = {
    ROUTELLM_WEAK_MODEL: ModelPrices(input=0.7, output=0.7),
    ROUTELLM_STRONG_MODEL: ModelPrices(input=10.0, output=30.0),
}


def routellm_models(provider: str = "replay") -> tuple[ModelSpec, ModelSpec]:
    """The weak (tier 1) and strong (tier 2) model of the RouteLLM data, in that order.

    Both are served by the provider named `provider` (a `ReplayProvider` by default) under their
    outcome-table ids. Context windows are the real models' (32k and 128k tokens). They declare no
    tool, JSON or image support because a replay can only answer with the recorded text.
    """
    weak = ModelSpec(
        id=ROUTELLM_WEAK_MODEL,
        provider=provider,
        model=ROUTELLM_WEAK_MODEL,
        tier=1,
        prices=_PRICES[ROUTELLM_WEAK_MODEL],
        context_window=32_768,
        supports_tools=False,
        supports_json=False,
    )
    strong = ModelSpec(
        id=ROUTELLM_STRONG_MODEL,
        provider=provider,
        model=ROUTELLM_STRONG_MODEL,
        tier=2,
        prices=_PRICES[ROUTELLM_STRONG_MODEL],
        context_window=128_000,
        max_output_tokens=4_096,
        supports_tools=False,
        supports_json=False,
    )
    return weak, strong
