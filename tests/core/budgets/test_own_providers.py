"""A provider of the caller's own that fails with an error of its own leaves no budget held; one that
reports no usage, or no cost, is charged an estimate, never $0.

The `Provider` protocol is public: applications plug in their own (a local inference library, a
wrapper that post-processes an SDK's answer). Such a provider may raise something other than
`ProviderError`; the router passes it on, and must not leave the call's reservation behind, renewed
by the heartbeat for hours while the process lives. It may also build its own `ChatResponse` and
leave `usage` (or `cost_usd`) at its default: the shipped providers estimate the counts a server
leaves out, and the router holds any provider to the same rule, or such a call is free (its
reservation released, a hard limit never reached). The wrapped provider is the real OpenAI one on a
local server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from routed_answers import routed

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
    TextDelta,
    Usage,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import OpenAIProvider
from gearshift.signals._tokens import estimate_request_tokens
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


class PromptedProvider(UncountedProvider):
    """An application's provider whose service puts a system prompt of its own before every request
    (`added_input_tokens` says how long), and bills it, but reports no usage."""

    PROMPT_TOKENS = 500

    def added_input_tokens(self, model: ModelSpec, request: ChatRequest) -> int:
        return self.PROMPT_TOKENS


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small",)) as local:
        yield local


def _inner(server: LocalOpenAIServer, name: str = "local") -> OpenAIProvider:
    return OpenAIProvider(name=name, api_key="sk-own", base_url=server.base_url, timeout=5.0)


def _router(server: LocalOpenAIServer, **options: bool) -> tuple[Router, BudgetLedger]:
    return _routed(RedactingProvider(_inner(server), **options))


def _routed(provider: object) -> tuple[Router, BudgetLedger]:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
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


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("drop", ["usage", "cost"])
async def test_an_answer_its_provider_reports_no_usage_or_cost_for_is_charged_an_estimate(
    server: LocalOpenAIServer, streamed: bool, drop: str
) -> None:
    server.script("small", Reply("Paris is the capital of France."))
    router, ledger = _routed(UncountedProvider(_inner(server), drop))
    try:
        answer = (
            answered := await routed(router, REQUEST, StepContext(run_id="1"), streamed=streamed)
        ).response
        (spent,) = await ledger.usage(["run:1"])
        assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0
        assert answer.cost_usd == pytest.approx(REGISTRY["small"].cost(answer.usage))
        assert spent.spent_usd == pytest.approx(answer.cost_usd) and spent.reserved_usd == 0
        assert spent.spent_tokens == answer.usage.total_tokens
        assert answer.metadata.get("usage_estimated", False) is (drop == "usage")
        assert [a.usage_estimated for a in answered.attempts] == [drop == "usage"]
    finally:
        await router.aclose()


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_an_unreported_answer_is_charged_the_input_its_provider_adds_too(
    server: LocalOpenAIServer, streamed: bool
) -> None:
    """The estimate of an answer without usage counted the request alone, though a failed or
    cancelled call of the same provider was charged what it adds too (and its reservation held it)."""
    server.script("small", Reply("Paris is the capital of France."))
    router, ledger = _routed(PromptedProvider(_inner(server), "usage"))
    try:
        answer = (await routed(router, REQUEST, StepContext(run_id="1"), streamed=streamed)).response
        (spent,) = await ledger.usage(["run:1"])
        billed = estimate_request_tokens(REQUEST) + PromptedProvider.PROMPT_TOKENS
        assert answer.usage.input_tokens == billed
        assert spent.spent_usd == pytest.approx(REGISTRY["small"].cost(answer.usage))
    finally:
        await router.aclose()


async def test_an_answer_with_its_usage_reported_is_charged_as_reported(server: LocalOpenAIServer) -> None:
    server.script("small", Reply("Paris."))
    router, ledger = _routed(_inner(server, name="own"))
    try:
        routed = await router.acomplete(REQUEST, StepContext(run_id="1"))
        answer = routed.response
        (spent,) = await ledger.usage(["run:1"])
        assert answer.usage == Usage(answer.usage.input_tokens, answer.usage.output_tokens)
        assert answer.cost_usd > 0 and spent.spent_usd == pytest.approx(answer.cost_usd)
        assert "usage_estimated" not in answer.metadata and not routed.attempts[0].usage_estimated
    finally:
        await router.aclose()
