"""A real router over a local OpenAI-compatible server with a small (tier 1) and a large (tier 2) model.

Everything the adapter talks to is real: the `openai` SDK, gearshift's provider and router, and an
HTTP server on 127.0.0.1 whose simulated models the tests script where an agent needs set answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from llamaindex_support import KEY, REGISTRY, MakeRouter, Observed

from gearshift import JSONLDecisionLog, ModelRegistry, Router, ScorerConfig, SignalScorer
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer
from gearshift_llamaindex import RoutedLLM


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        yield server


@pytest.fixture
def decision_log(tmp_path: Path) -> Iterator[JSONLDecisionLog]:
    log = JSONLDecisionLog(tmp_path / "decisions.jsonl")
    yield log
    log.close()


@pytest.fixture
async def make_router(server: LocalOpenAIServer, decision_log: JSONLDecisionLog) -> AsyncIterator[MakeRouter]:
    """Routers over the local server, writing to the test's decision log.

    One failed tool call moves a step up a tier (`escalate_after_errors=1`), so a short agent run
    shows it.
    """

    providers: list[OpenAIProvider] = []

    def make(registry: ModelRegistry = REGISTRY, **options: Any) -> Router:
        provider = OpenAIProvider("local", api_key=KEY, base_url=server.base_url, timeout=10.0)
        providers.append(provider)
        options.setdefault("policy", SignalScorer(ScorerConfig(escalate_after_errors=1)))
        return Router(registry, providers=[provider], decision_log=decision_log, **options)

    yield make
    for provider in providers:  # the SDK clients of this test's event loop
        await provider.aclose()


@pytest.fixture
def llm(make_router: MakeRouter) -> RoutedLLM:
    return RoutedLLM(make_router(), agent_id="tester")


@pytest.fixture
def observed(server: LocalOpenAIServer, decision_log: JSONLDecisionLog) -> Observed:
    return Observed(server, decision_log)
