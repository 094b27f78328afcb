"""A real local OpenAI-compatible server with two models, and routers over it: routing really happens.

`small` (tier 1) and `large` (tier 2) are served by one `LocalOpenAIServer` on 127.0.0.1 through the
real `openai` SDK; the simulated model behind it calls tools, answers JSON schemas and reports usage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer
from gearshift._bridge import run_sync
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer

RouterFactory = Callable[..., Router]


def two_tier_registry() -> ModelRegistry:
    """`small` (tier 1) and `large` (tier 2), both served by the provider named `local`."""
    return ModelRegistry(
        [
            ModelSpec(
                id="small",
                provider="local",
                model="small",
                tier=1,
                prices=ModelPrices(input=0.15, output=0.6),
            ),
            ModelSpec(
                id="large",
                provider="local",
                model="large",
                tier=2,
                prices=ModelPrices(input=2.5, output=10.0),
            ),
        ]
    )


def build_router(server: LocalOpenAIServer, **options: object) -> Router:
    """A router over `two_tier_registry()` whose provider is the local server (policy: the scorer)."""
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    options.setdefault("policy", SignalScorer())
    return Router(two_tier_registry(), providers=[provider], **options)  # type: ignore[arg-type]


@pytest.fixture
def registry() -> ModelRegistry:
    return two_tier_registry()


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large")) as local:
        yield local


@pytest.fixture
def make_router(server: LocalOpenAIServer) -> Iterator[RouterFactory]:
    """Routers over the local server; closed afterwards (clients of the sync bridge's loop included)."""
    made: list[Router] = []

    def make(**options: object) -> Router:
        made.append(build_router(server, **options))
        return made[-1]

    yield make
    for routed in made:
        run_sync(routed.aclose())


@pytest.fixture
def router(make_router: RouterFactory) -> Router:
    return make_router()
