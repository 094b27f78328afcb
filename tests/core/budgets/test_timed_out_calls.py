"""A call that timed out after the provider took it is charged, as a cancelled call is.

The router gives up on a model that does not answer within its timeout and falls back; the provider
already has the request and goes on working on it (and bills it). Real SDK, real local server: the
server records the request it was sent, then answers too late. A stream that the provider accepted
(its 200 came) and that broke before any chunk is charged the same way, and so is a call whose
connection the provider hung up after it had the request; a refused connection is charged nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from gearshift import (
    AllModelsFailed,
    Attempt,
    ChatRequest,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    ProviderError,
    Router,
    SignalScorer,
    StepContext,
    TextDelta,
    Usage,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.signals._tokens import estimate_request_tokens
from gearshift.testing import CutStream, Delay, Fail, LocalAnthropicServer, LocalOpenAIServer

REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small", provider="local", model="small", tier=1, prices=ModelPrices(input=1.0, output=4.0)
        ),
        ModelSpec(
            id="backup", provider="local", model="backup", tier=1, prices=ModelPrices(input=2.0, output=8.0)
        ),
    ]
)
REQUEST = ChatRequest(messages=(Message.user("What is the capital of France? " * 20),), max_tokens=32)


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "backup")) as local:
        yield local


def _router(server: LocalOpenAIServer) -> Router:
    provider = OpenAIProvider(name="local", api_key="sk-t", base_url=server.base_url, timeout=1.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
    # "small" is the cheaper model of the tier: tried first, "backup" after it.
    return Router(REGISTRY, policy=SignalScorer(), providers=[provider], budgets=ledger)


async def _fell_back_and_charged_the_input(router: Router, attempts: Sequence[Attempt]) -> None:
    """The first model, "small", failed and "backup" answered; "small" was charged its estimated input;
    the run's spend is the attempts' costs, with nothing left reserved."""
    assert [(a.model_id, a.ok) for a in attempts] == [("small", False), ("backup", True)]
    failed = attempts[0]
    assert failed.usage_estimated and failed.usage.input_tokens > 0 and failed.cost_usd > 0
    assert router.budgets is not None
    (run,) = await router.budgets.usage(["run:1"])
    assert run.spent_usd == pytest.approx(sum(a.cost_usd for a in attempts)) and run.reserved_usd == 0


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_call_that_timed_out_on_the_provider_is_charged_its_input(
    server: LocalOpenAIServer, streamed: bool
) -> None:
    server.script("small", Delay(2.5))
    router = _router(server)
    try:
        if streamed:
            stream = router.astream(REQUEST, StepContext(run_id="1"))
            assert "".join([e.text async for e in stream if isinstance(e, TextDelta)])
            assert stream.result is not None
            attempts = stream.result.attempts
        else:
            attempts = (await router.acomplete(REQUEST, StepContext(run_id="1"))).attempts
        assert [r.body["model"] for r in server.requests] == ["small", "backup"]  # it reached "small"
        await _fell_back_and_charged_the_input(router, attempts)
        # Unstreamed, the provider goes on to write the whole answer after the client gave up, and
        # bills it: the output it was allowed is charged too. A stream stops when its reader goes.
        assert attempts[0].usage.output_tokens == (0 if streamed else REQUEST.max_tokens)
    finally:
        await router.aclose()


async def test_an_unstreamed_call_cancelled_under_way_is_charged_the_output_it_was_allowed(
    server: LocalOpenAIServer,
) -> None:
    # The caller's own deadline (an agent framework's, a client that hung up) cancels the call once the
    # provider has it: it writes the answer all the same, up to the cap it was sent, and bills it. The
    # call was charged its input only, so a hard limit could be passed by the bills of such calls.
    server.script("small", Delay(1.5))
    router = _router(server)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(router.acomplete(REQUEST, StepContext(run_id="1")), timeout=0.5)
        assert router.budgets is not None
        (run,) = await router.budgets.usage(["run:1"])
        assert run.reserved_usd == 0
        prompt = estimate_request_tokens(REQUEST)
        assert REQUEST.max_tokens is not None
        billed = REGISTRY["small"].cost(Usage(prompt, REQUEST.max_tokens))
        assert run.spent_usd == pytest.approx(billed)
    finally:
        await router.aclose()


def _local_server(wire: str) -> LocalOpenAIServer | LocalAnthropicServer:
    if wire == "openai":
        return LocalOpenAIServer(models=("small", "backup"))
    return LocalAnthropicServer(models=("small", "backup"))


def _wire_router(wire: str, base_url: str) -> Router:
    """A router over "small" then "backup" of the `wire` server at `base_url`, under a run limit."""
    provider: OpenAIProvider | AnthropicProvider
    if wire == "openai":
        provider = OpenAIProvider(name="local", api_key="sk-t", base_url=base_url, timeout=5.0)
    else:
        provider = AnthropicProvider(name="local", api_key="sk-t", base_url=base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
    return Router(REGISTRY, policy=SignalScorer(), providers=[provider], budgets=ledger)


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_an_unstreamed_call_the_provider_hung_up_on_is_charged_as_a_timed_out_one(wire: str) -> None:
    # The provider had the whole request when the connection dropped with no status (a proxy's idle
    # timeout in front of it, a server restarted under the call): it may have processed and billed
    # it, up to the cap it was sent, as for a timeout. It was charged nothing, so under a hard limit
    # such calls were free in the ledger.
    with _local_server(wire) as server:
        server.script("small", CutStream())
        router = _wire_router(wire, server.base_url)
        try:
            attempts = (await router.acomplete(REQUEST, StepContext(run_id="1"))).attempts
            assert [r.body["model"] for r in server.requests] == ["small", "backup"]  # it reached "small"
            error = attempts[0].error
            assert error is not None and error.kind == "connection" and "hung up" in str(error)
            await _fell_back_and_charged_the_input(router, attempts)
            assert attempts[0].usage.output_tokens == REQUEST.max_tokens
        finally:
            await router.aclose()


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_a_call_whose_connection_was_refused_is_charged_nothing(wire: str) -> None:
    with _local_server(wire) as gone:
        base_url = gone.base_url  # nothing listens there once it stopped
    router = _wire_router(wire, base_url)
    try:
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete(REQUEST, StepContext(run_id="1"))
        assert all(isinstance(e, ProviderError) and e.kind == "connection" for e in caught.value.exceptions)
        assert router.budgets is not None
        (run,) = await router.budgets.usage(["run:1"])
        assert (run.spent_usd, run.reserved_usd) == (0, 0)
    finally:
        await router.aclose()


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_a_stream_dropped_after_the_providers_200_is_charged_its_input(wire: str) -> None:
    with _local_server(wire) as server:
        server.script("small", CutStream(after_chunks=0))
        router = _wire_router(wire, server.base_url)
        ledger = router.budgets
        assert ledger is not None
        try:
            stream = router.astream(REQUEST, StepContext(run_id="1"))
            assert "".join([e.text async for e in stream if isinstance(e, TextDelta)])
            assert stream.result is not None
            attempts = stream.result.attempts
            assert [(a.model_id, a.ok) for a in attempts] == [("small", False), ("backup", True)]
            dropped = attempts[0]
            assert dropped.error is not None and dropped.error.kind == "stream"
            assert "cannot connect" not in str(dropped.error)  # it did connect: the 200 came
            assert dropped.usage.input_tokens > 0 and dropped.cost_usd > 0
            # Anthropic's message_start reported the prompt's counts before the cut: those are charged.
            assert dropped.usage_estimated == (wire == "openai")
            (run,) = await ledger.usage(["run:1"])
            assert run.spent_usd == pytest.approx(sum(a.cost_usd for a in attempts)) and run.reserved_usd == 0
        finally:
            await router.aclose()


@pytest.mark.parametrize(
    "body",
    [
        # A compatible server that strays from the API: an answer gearshift cannot read.
        {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": "Paris"}]},
        # OpenRouter when the model fails mid-answer: a 200 whose choice finished with "error"
        # (openrouter.ai/docs/errors: "any error occurred while the LLM is producing the output will
        # be emitted in the response body").
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Paris is"},
                    "finish_reason": "error",
                    "error": {"code": 502, "message": "upstream model crashed"},
                }
            ],
        },
    ],
    ids=["unreadable", "finished-with-error"],
)
async def test_a_200_answer_that_fails_is_charged_its_input(
    server: LocalOpenAIServer, body: dict[str, Any]
) -> None:
    # The server took the call and worked on it (its 200 came), so it billed the input; the attempt was
    # charged nothing, as if the call had been refused. A choice that finished with "error" was even
    # taken for the answer: "Paris is", charged as a success, and no fallback.
    server.script("small", Fail(200, body=body))
    router = _router(server)
    try:
        result = await router.acomplete(REQUEST, StepContext(run_id="1"))
        await _fell_back_and_charged_the_input(router, result.attempts)
    finally:
        await router.aclose()
