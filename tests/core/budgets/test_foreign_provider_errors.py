"""A provider of the caller's own that fails with an error of its own leaves no budget held.

The `Provider` protocol is public: applications plug in their own (a local inference library, a
wrapper that post-processes an SDK's answer). Such a provider may raise something other than
`ProviderError`; the router passes it on, and must not leave the call's reservation behind, renewed
by the heartbeat for hours while the process lives. The wrapped provider is the real OpenAI one on a
local server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

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
    StreamEvent,
    TextDelta,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply

REGISTRY = ModelRegistry(
    [ModelSpec(id="small", provider="own", model="small", tier=1, prices=ModelPrices(input=1.0, output=4.0))]
)
REQUEST = ChatRequest(messages=(Message.user("What is the capital of France?"),), max_tokens=64)


class RedactingProvider:
    """An application's provider: the OpenAI one, with every answer checked by its own rule, which
    raises `ValueError` on a word it must not pass on (its own error, not a `ProviderError`)."""

    name = "own"

    def __init__(self, inner: OpenAIProvider, *, refuse_requests: bool = False) -> None:
        self.inner = inner
        self.refuse_requests = refuse_requests

    def _check_request(self, request: ChatRequest) -> None:
        if self.refuse_requests:
            raise ValueError("this deployment takes no requests today")

    async def complete(self, model: ModelSpec, request: ChatRequest) -> ChatResponse:
        self._check_request(request)
        response = await self.inner.complete(model, request)
        if "secret" in response.text:
            raise ValueError("the answer holds a word this application must not pass on")
        return response

    async def stream(self, model: ModelSpec, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self._check_request(request)
        async for event in self.inner.stream(model, request):
            if isinstance(event, TextDelta) and "secret" in event.text:
                raise ValueError("the answer holds a word this application must not pass on")
            yield event

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small",)) as local:
        yield local


def _router(server: LocalOpenAIServer, **options: bool) -> tuple[Router, BudgetLedger]:
    inner = OpenAIProvider(name="local", api_key="sk-own", base_url=server.base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
    provider = RedactingProvider(inner, **options)
    return Router(REGISTRY, policy=SignalScorer(), providers=[provider], budgets=ledger), ledger  # type: ignore[list-item]


async def _spent_and_held(ledger: BudgetLedger) -> tuple[float, float]:
    (usage,) = await ledger.usage(["run:1"])
    return usage.spent_usd, usage.reserved_usd


async def test_a_request_the_provider_refuses_with_its_own_error_is_settled_and_holds_nothing(
    server: LocalOpenAIServer,
) -> None:
    router, ledger = _router(server, refuse_requests=True)
    try:
        with pytest.raises(ValueError, match="no requests today"):
            await router.acomplete(REQUEST, StepContext(run_id="1"))
        with pytest.raises(ValueError, match="no requests today"):
            async for _ in router.astream(REQUEST, StepContext(run_id="1")):
                pass
        spent, held = await _spent_and_held(ledger)
        # Whether such a provider sent the request is unknown: charged at the input estimate, held never.
        assert held == 0 and spent > 0
    finally:
        await router.aclose()


async def test_an_answer_the_provider_rejects_is_charged_and_holds_nothing(server: LocalOpenAIServer) -> None:
    server.script("small", Reply("the secret is out"), Reply("the secret is out"))
    router, ledger = _router(server)
    try:
        with pytest.raises(ValueError, match="must not pass on"):
            await router.acomplete(REQUEST, StepContext(run_id="1"))
        spent, held = await _spent_and_held(ledger)
        assert spent > 0 and held == 0  # the model answered: the call was paid for
        with pytest.raises(ValueError, match="must not pass on"):
            async for _ in router.astream(REQUEST, StepContext(run_id="1")):
                pass
        streamed, held = await _spent_and_held(ledger)
        assert streamed > spent and held == 0
    finally:
        await router.aclose()
