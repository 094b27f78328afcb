"""Price lookups through genai-prices: offline, cached, per-token prices from the base tier."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from pydantic import ValidationError

from gearshift._messages import Usage
from gearshift._models import ModelPrices, PriceTier
from gearshift.config._pricing import lookup_context_window, lookup_model, lookup_prices


def test_known_model_has_its_list_prices() -> None:
    assert lookup_prices("openai", "gpt-4o-mini") == ModelPrices(input=0.15, output=0.6, cache_read=0.075)


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-5-nano"), ("openai", "gpt-4.1"), ("anthropic", "claude-haiku-4-5")],
)
def test_our_cost_matches_genai_prices_for_a_mid_sized_call(provider: str, model: str) -> None:
    prices = lookup_prices(provider, model)
    assert prices is not None
    usage = Usage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000)
    theirs = calc_price(
        GenaiUsage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000),
        model,
        provider_id=provider,
    )
    assert prices.cost(usage) == pytest.approx(float(theirs.total_price), rel=1e-9)


def test_tiered_model_gets_its_base_and_long_context_prices() -> None:
    prices = lookup_prices("anthropic", "claude-sonnet-4-5")
    assert prices == ModelPrices(
        input=3.0,
        output=15.0,
        cache_read=0.3,
        cache_write=3.75,
        cache_write_1h=6.0,
        long_context=(
            PriceTier(
                above=200_000, input=6.0, output=22.5, cache_read=0.6, cache_write=7.5, cache_write_1h=12.0
            ),
        ),
    )


@pytest.mark.parametrize(
    ("provider", "model"), [("anthropic", "claude-sonnet-4-5"), ("google", "gemini-2.5-pro")]
)
@pytest.mark.parametrize(
    ("input_tokens", "cache_read", "cache_write", "output_tokens"),
    [
        (12_000, 0, 0, 500),
        (200_000, 50_000, 10_000, 900),  # at the threshold: still the base tier
        (200_001, 0, 0, 900),  # one past it: the whole call at the long-context rates
        (350_000, 120_000, 30_000, 4_000),
    ],
)
def test_long_context_calls_cost_what_genai_prices_bills(
    provider: str, model: str, input_tokens: int, cache_read: int, cache_write: int, output_tokens: int
) -> None:
    prices = lookup_prices(provider, model)
    assert prices is not None
    if prices.cache_write is None:
        cache_write = 0  # this vendor bills no cache writes
    theirs = calc_price(
        GenaiUsage(
            input_tokens=input_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=output_tokens,
        ),
        model,
        provider_id=provider,
    )
    usage = Usage(input_tokens, output_tokens, cache_read_tokens=cache_read, cache_write_tokens=cache_write)
    assert prices.cost(usage) == pytest.approx(float(theirs.total_price), rel=1e-9)


def test_anthropic_cache_writes_cost_a_quarter_more_than_input() -> None:
    prices = lookup_prices("anthropic", "claude-haiku-4-5")
    assert prices is not None
    assert prices.cache_write == pytest.approx(1.25 * prices.input)
    write = prices.cost(Usage(input_tokens=10_000, cache_write_tokens=10_000))
    plain = prices.cost(Usage(input_tokens=10_000))
    assert write == pytest.approx(1.25 * plain)


@pytest.mark.parametrize("input_tokens", [11_000, 250_000])
def test_anthropic_one_hour_cache_writes_cost_what_genai_prices_bills(input_tokens: int) -> None:
    # A `cache_control` with `"ttl": "1h"` is written at 2x input, not the 5-minute write's 1.25x.
    prices = lookup_prices("anthropic", "claude-sonnet-4-5")
    assert prices is not None
    assert prices.cache_write_1h == pytest.approx(2 * prices.input)
    theirs = calc_price(
        GenaiUsage(
            input_tokens=input_tokens,
            cache_read_tokens=1_000,
            cache_write_tokens=8_000,
            cache_write_1h_tokens=5_000,
            output_tokens=300,
        ),
        "claude-sonnet-4-5",
        provider_id="anthropic",
    )
    usage = Usage(input_tokens, 300, 1_000, cache_write_tokens=8_000, cache_write_1h_tokens=5_000)
    assert prices.cost(usage) == pytest.approx(float(theirs.total_price), rel=1e-9)


def test_long_context_tiers_must_ascend() -> None:
    with pytest.raises(ValidationError, match="ascending"):
        ModelPrices(
            input=1,
            output=2,
            long_context=(PriceTier(above=500, input=3, output=4), PriceTier(above=100, input=2, output=3)),
        )


def test_dated_model_names_resolve_to_the_model() -> None:
    assert lookup_prices("openai", "gpt-5-nano-2025-08-07") == lookup_prices("openai", "gpt-5-nano")


def test_model_without_a_cache_price_leaves_cache_read_unset() -> None:
    prices = lookup_prices("openai", "llama-3.3-70b-versatile", base_url="https://api.groq.com/openai/v1")
    assert prices is not None
    assert prices.input > 0
    assert prices.cache_read is None


@pytest.mark.parametrize(
    ("provider", "model", "base_url"),
    [
        ("openai", "my-finetune-v3", None),  # unknown model
        ("no-such-provider", "gpt-5", None),  # unknown provider
        ("openai", "claude-haiku-4-5", None),  # another vendor's model
        ("openai", "gpt-5", "http://localhost:11434/v1"),  # a local server: its calls are not OpenAI's
        ("openai", "moderation", None),  # known, but has no per-token prices
    ],
)
def test_unknown_prices_are_none(provider: str, model: str, base_url: str | None) -> None:
    assert lookup_prices(provider, model, base_url=base_url) is None


def test_base_url_picks_the_provider_by_host() -> None:
    assert lookup_prices("openai", "gpt-5", base_url="https://api.openai.com/v1") == lookup_prices(
        "openai", "gpt-5"
    )


def test_context_window_when_known() -> None:
    assert lookup_context_window("openai", "gpt-5") == 400_000
    assert lookup_context_window("anthropic", "claude-opus-4-5") == 200_000
    assert lookup_context_window("openai", "my-finetune-v3") is None


def test_lookups_are_cached() -> None:
    lookup_model.cache_clear()
    first = lookup_model("openai", "gpt-5-mini")
    assert lookup_model("openai", "gpt-5-mini") is first
    assert lookup_model.cache_info().hits == 1


def test_lookups_never_touch_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a price lookup opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    lookup_model.cache_clear()
    assert lookup_prices("openai", "o3") is not None
    assert lookup_prices("anthropic", "claude-opus-4-1") is not None


def test_importing_gearshift_config_does_not_load_genai_prices() -> None:
    code = (
        "import sys, gearshift, gearshift.config._config, gearshift.config._defaults\n"
        "import gearshift.providers._factory\n"
        "assert 'genai_prices' not in sys.modules, 'genai_prices was imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
