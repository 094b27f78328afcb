"""A provider of the caller's own that reports no usage, or no cost, is charged an estimate, never $0.

The `Provider` protocol is public: an application may plug in a local inference library, or a
wrapper that builds its own `ChatResponse` from an SDK's answer and leaves `usage` (or `cost_usd`) at
its default. The shipped providers estimate the counts a server leaves out; the router must hold any
provider to the same rule, or such a call is free: its reservation released, a hard limit never
reached. The wrapped provider is the real OpenAI one on a local server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from gearshift import (
    ChatRequest,
    ChatResponse,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    StepContext,
    StreamDone,
    StreamEvent,
    Usage,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply

REGISTRY = ModelRegistry(
    [ModelSpec(id="small", provider="own", model="small", tier=1, prices=ModelPrices(input=1.0, output=4.0))]
)
REQUEST = ChatRequest(messages=(Message.user("What is the capital of France?"),), max_tokens=64)


class UncountedProvider:
    """An application's provider that hands on the answer but not what it cost: `usage` left at its
    default (`drop="usage"`), or the counts kept and `cost_usd` left at its default (`drop="cost"`)."""

    name = "own"

    def __init__(self, inner: OpenAIProvider, drop: str) -> None:
        self.inner = inner
        self.drop = drop

    def _bare(self, response: ChatResponse) -> ChatResponse:
        if self.drop == "usage":
            return ChatResponse(response.message, response.model_id, response.provider_model)
        return replace(response, cost_usd=0.0, metadata={})

    async def complete(self, model: ModelSpec, request: ChatRequest) -> ChatResponse:
        return self._bare(await self.inner.complete(model, request))

    async def stream(self, model: ModelSpec, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        async for event in self.inner.stream(model, request):
            yield StreamDone(self._bare(event.response)) if isinstance(event, StreamDone) else event

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small",)) as local:
        yield local


def _router(server: LocalOpenAIServer, drop: str) -> tuple[Router, BudgetLedger]:
    inner = OpenAIProvider(name="local", api_key="sk-own", base_url=server.base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
    provider = UncountedProvider(inner, drop)
    return Router(REGISTRY, policy=SignalScorer(), providers=[provider], budgets=ledger), ledger  # type: ignore[list-item]


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("drop", ["usage", "cost"])
async def test_an_answer_its_provider_reports_no_usage_or_cost_for_is_charged_an_estimate(
    server: LocalOpenAIServer, streamed: bool, drop: str
) -> None:
    server.script("small", Reply("Paris is the capital of France."))
    router, ledger = _router(server, drop)
    try:
        if streamed:
            stream = router.astream(REQUEST, StepContext(run_id="1"))
            events = [event async for event in stream]
            assert isinstance(events[-1], StreamDone) and stream.result is not None
            routed = stream.result
        else:
            routed = await router.acomplete(REQUEST, StepContext(run_id="1"))
        answer = routed.response
        (spent,) = await ledger.usage(["run:1"])
        assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0
        assert answer.cost_usd == pytest.approx(REGISTRY["small"].cost(answer.usage))
        assert spent.spent_usd == pytest.approx(answer.cost_usd) and spent.reserved_usd == 0
        assert spent.spent_tokens == answer.usage.total_tokens
        assert answer.metadata.get("usage_estimated", False) is (drop == "usage")
        assert [a.usage_estimated for a in routed.attempts] == [drop == "usage"]
    finally:
        await router.aclose()


async def test_an_answer_with_its_usage_reported_is_charged_as_reported(server: LocalOpenAIServer) -> None:
    server.script("small", Reply("Paris."))
    inner = OpenAIProvider(name="own", api_key="sk-own", base_url=server.base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
    router = Router(REGISTRY, policy=SignalScorer(), providers=[inner], budgets=ledger)
    try:
        routed = await router.acomplete(REQUEST, StepContext(run_id="1"))
        answer = routed.response
        (spent,) = await ledger.usage(["run:1"])
        assert answer.usage == Usage(answer.usage.input_tokens, answer.usage.output_tokens)
        assert answer.cost_usd > 0 and spent.spent_usd == pytest.approx(answer.cost_usd)
        assert "usage_estimated" not in answer.metadata and not routed.attempts[0].usage_estimated
    finally:
        await router.aclose()
