"""A provider's `timeout` is a deadline: a server that trickles its answer cannot hold a call for long.

The local servers' `Drip` action sends the headers at once and then one byte of the answer every
`interval` seconds, so every single read succeeds long before an HTTP read timeout: only a deadline
on the whole call (or on each gap between stream events) ends it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearshift import (
    ConfigError,
    GearshiftConfig,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    ProviderError,
    Router,
    SignalScorer,
    StreamDone,
    load_config,
)
from gearshift._messages import ChatRequest
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.testing import Drip, LocalAnthropicServer, LocalOpenAIServer

KEY = "sk-deadline-test-3e9a1c"
PROVIDERS = {
    "openai": (OpenAIProvider, LocalOpenAIServer),
    "anthropic": (AnthropicProvider, LocalAnthropicServer),
}
BOTH_SDKS = pytest.mark.parametrize("sdk", sorted(PROVIDERS))
BOTH_CALLS = pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])


def _spec(model_id: str, provider: str, tier: int = 1) -> ModelSpec:
    return ModelSpec(
        id=model_id, provider=provider, model=model_id, tier=tier, prices=ModelPrices(input=1.0, output=2.0)
    )


async def _answer(provider: OpenAIProvider | AnthropicProvider, model: ModelSpec, *, streamed: bool) -> str:
    request = ChatRequest(messages=(Message.user("Say something long enough to take a while."),))
    if not streamed:
        return (await provider.complete(model, request)).text
    events = [event async for event in provider.stream(model, request)]
    done = events[-1]
    assert isinstance(done, StreamDone)
    return done.response.text


@BOTH_SDKS
@BOTH_CALLS
async def test_a_dripping_server_fails_the_call_at_its_deadline(sdk: str, streamed: bool) -> None:
    provider_type, server_type = PROVIDERS[sdk]
    with server_type(models=("m",), api_key=KEY) as server:
        provider = provider_type(api_key=KEY, base_url=server.base_url, timeout=1.0)
        try:
            await _answer(provider, _spec("m", sdk), streamed=streamed)  # the SDK imported and connected
            server.script("m", Drip(interval=1.0))
            started = time.monotonic()
            with pytest.raises(ProviderError) as caught:
                await _answer(provider, _spec("m", sdk), streamed=streamed)
            elapsed = time.monotonic() - started
        finally:
            await provider.aclose()
    assert caught.value.kind == "timeout"
    # It says what did not come: "no the stream's next event within ..." read as a typo.
    what = "the stream's next event" if streamed else "a complete answer"
    assert f"m: timeout: {what} did not come within the 1 s timeout" in str(caught.value)
    assert caught.value.allows_fallback
    # Not a speed target: the dripped answer would take about ten minutes; the deadline ends it at 1 s.
    assert elapsed < 10.0, elapsed


@BOTH_SDKS
@BOTH_CALLS
async def test_a_slow_but_steady_answer_within_the_deadline_is_read_whole(sdk: str, streamed: bool) -> None:
    provider_type, server_type = PROVIDERS[sdk]
    with server_type(models=("m",), api_key=KEY) as server:
        provider = provider_type(api_key=KEY, base_url=server.base_url, timeout=20.0)
        try:
            expected = await _answer(provider, _spec("m", sdk), streamed=streamed)
            server.script("m", Drip(interval=0.0005))
            dripped = await _answer(provider, _spec("m", sdk), streamed=streamed)
        finally:
            await provider.aclose()
    assert dripped == expected and "'m'" in dripped


@pytest.fixture
def servers() -> Iterator[tuple[LocalOpenAIServer, LocalAnthropicServer]]:
    with (
        LocalOpenAIServer(models=("cheap",), api_key=KEY) as openai_server,
        LocalAnthropicServer(models=("strong",), api_key=KEY) as anthropic_server,
    ):
        yield openai_server, anthropic_server


@BOTH_CALLS
async def test_the_router_moves_on_when_a_model_misses_its_deadline(
    servers: tuple[LocalOpenAIServer, LocalAnthropicServer], streamed: bool
) -> None:
    openai_server, anthropic_server = servers
    openai_server.script("cheap", Drip(interval=1.0))
    router = Router(
        ModelRegistry([_spec("cheap", "openai", 1), _spec("strong", "anthropic", 2)]),
        policy=SignalScorer(),
        providers=[
            OpenAIProvider(api_key=KEY, base_url=openai_server.base_url, timeout=1.0),
            AnthropicProvider(api_key=KEY, base_url=anthropic_server.base_url, timeout=5.0),
        ],
    )
    started = time.monotonic()
    try:
        if streamed:
            events = [event async for event in router.astream("hi there")]
            done = events[-1]
            assert isinstance(done, StreamDone)
            text = done.response.text
        else:
            text = (await router.acomplete("hi there")).response.text
    finally:
        await router.aclose()
    assert "'strong'" in text
    assert time.monotonic() - started < 30.0  # the drip alone would take about ten minutes
    assert [r.model for r in openai_server.requests] == ["cheap"]


@pytest.mark.parametrize("timeout", [math.inf, -math.inf, math.nan, 0.0, -1.0, "5", True])
@pytest.mark.parametrize("provider_type", [OpenAIProvider, AnthropicProvider])
def test_a_provider_refuses_a_timeout_that_is_no_deadline(
    provider_type: type[OpenAIProvider | AnthropicProvider], timeout: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        provider_type("edge", api_key=KEY, timeout=timeout)  # type: ignore[arg-type]
    assert caught.value.key == "providers.edge.timeout"
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-3"])
def test_the_config_refuses_a_timeout_that_is_no_deadline(tmp_path: Path, value: str) -> None:
    path = tmp_path / "gearshift.toml"
    path.write_text(f'[providers.local]\nkind = "openai"\nrequire_key = false\ntimeout = {value}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == "providers.local.timeout"
    assert "finite" in str(caught.value) or "> 0" in str(caught.value)


@pytest.mark.parametrize("field", ["input", "output", "cache_read"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_the_config_refuses_a_price_that_is_not_a_finite_amount(
    tmp_path: Path, field: str, value: str
) -> None:
    prices = {"input": "1", "output": "2", field: value}
    table = ", ".join(f"{name} = {amount}" for name, amount in prices.items())
    path = tmp_path / "gearshift.toml"
    path.write_text(
        '[providers.local]\nkind = "openai"\nrequire_key = false\n\n'
        f'[[models]]\nid = "m"\nprovider = "local"\nmodel = "m"\ntier = 1\nprices = {{ {table} }}\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == f"models[0].prices.{field}"


def test_a_price_built_in_python_must_be_finite() -> None:
    with pytest.raises(ConfigError) as caught:
        GearshiftConfig.from_dict(
            {
                "models": [
                    {
                        "id": "m",
                        "provider": "openai",
                        "model": "m",
                        "tier": 1,
                        "prices": {"input": 1, "output": math.inf},
                    }
                ]
            }
        )
    assert caught.value.key == "models[0].prices.output"
    assert "finite" in str(caught.value)
