"""The setup every overhead benchmark shares: a two-tier router in front of one local server."""

from __future__ import annotations

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer

PROMPT = "Summarise the main idea of the following paragraph in one sentence: routing saves money."

REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small", provider="local", model="small", tier=1, prices=ModelPrices(input=0.1, output=0.4)
        ),
        ModelSpec(
            id="large", provider="local", model="large", tier=2, prices=ModelPrices(input=2.0, output=8.0)
        ),
    ]
)


def local_router(server: LocalOpenAIServer) -> Router:
    """A router over `REGISTRY` whose models are served by `server` (the simple prompt goes to `small`)."""
    return Router(
        REGISTRY,
        policy=SignalScorer(),
        providers=[OpenAIProvider("local", base_url=server.base_url, require_key=False)],
    )
