"""Local API servers and providers wired to them: the only network the core tests touch is 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from gearshift._models import ModelPrices, ModelRegistry, ModelSpec
from gearshift.providers._anthropic import AnthropicProvider
from gearshift.providers._openai import OpenAIProvider
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer

OPENAI_KEY = "sk-local-openai-7f3a9c"
ANTHROPIC_KEY = "sk-ant-local-2b8e41"


@pytest.fixture
def openai_server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large"), api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[LocalAnthropicServer]:
    with LocalAnthropicServer(models=("claude-small", "claude-large"), api_key=ANTHROPIC_KEY) as server:
        yield server


@pytest.fixture
def three_tiers() -> ModelRegistry:
    """mini (tier 0), mid (tier 1) and large (tier 2), each priced alike for input and output."""
    return ModelRegistry(
        ModelSpec(
            id=name, provider="openai", model=name, tier=tier, prices=ModelPrices(input=price, output=price)
        )
        for name, tier, price in (("mini", 0, 0.2), ("mid", 1, 3.0), ("large", 2, 20.0))
    )


@pytest.fixture
def small() -> ModelSpec:
    return ModelSpec(
        id="oa-small", provider="openai", model="small", tier=0, prices=ModelPrices(input=1.0, output=4.0)
    )


@pytest.fixture
def claude() -> ModelSpec:
    return ModelSpec(
        id="claude-small",
        provider="anthropic",
        model="claude-small",
        tier=0,
        prices=ModelPrices(input=3.0, output=15.0),
    )


@pytest.fixture
async def openai_provider(openai_server: LocalOpenAIServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url, timeout=5.0)
    yield provider
    await provider.aclose()


@pytest.fixture
async def openai_aiohttp_provider(openai_server: LocalOpenAIServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(
        api_key=OPENAI_KEY, base_url=openai_server.base_url, timeout=5.0, http_client="aiohttp"
    )
    yield provider
    await provider.aclose()


@pytest.fixture
async def anthropic_provider(anthropic_server: LocalAnthropicServer) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0)
    yield provider
    await provider.aclose()
