"""The router against real SDKs and local servers: fallback, cooldowns, streams, records, secrets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gearshift import (
    AllModelsFailed,
    CallerHints,
    ChatRequest,
    ConfigError,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    ProviderError,
    Router,
    SignalScorer,
    StepContext,
    StreamDone,
    TextDelta,
    read_records,
)
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import CutStream, Delay, Fail, LocalAnthropicServer, LocalOpenAIServer, Reply

OPENAI_KEY = "sk-router-test-openai-91c4e2"
ANTHROPIC_KEY = "sk-ant-router-test-55d7a0"


class Clock:
    """A clock the test moves by hand, so cooldowns need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _spec(model_id: str, provider: str, model: str, tier: int, price: float) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        model=model,
        tier=tier,
        prices=ModelPrices(input=price, output=price * 4),
    )


REGISTRY = ModelRegistry(
    [
        _spec("small", "openai", "small", 1, 0.1),
        _spec("large", "openai", "large", 2, 2.0),
        _spec("claude", "anthropic", "claude-large", 2, 3.0),
    ]
)


@pytest.fixture
def servers() -> Iterator[tuple[LocalOpenAIServer, LocalAnthropicServer]]:
    with (
        LocalOpenAIServer(models=("small", "large"), api_key=OPENAI_KEY) as openai_server,
        LocalAnthropicServer(models=("claude-large",), api_key=ANTHROPIC_KEY) as anthropic_server,
    ):
        yield openai_server, anthropic_server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def router(
    servers: tuple[LocalOpenAIServer, LocalAnthropicServer], clock: Clock, tmp_path: Path
) -> AsyncIterator[Router]:
    openai_server, anthropic_server = servers
    router = Router(
        REGISTRY,
        policy=SignalScorer(),
        providers=[
            OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url, timeout=1.0),
            AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=1.0),
        ],
        decision_log=open_decision_log(tmp_path / "log.jsonl"),
        clock=clock,
    )
    yield router
    await router.aclose()


def _served(server: LocalOpenAIServer) -> list[str | None]:
    return [r.model for r in server.requests]


async def test_an_easy_request_goes_to_the_cheapest_model_and_is_recorded(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer], tmp_path: Path
) -> None:
    result = await router.acomplete("hi there")
    assert result.decision.model == "small"
    assert result.decision.fallbacks == ("large", "claude")
    assert result.model_id == "small"
    assert "small" in result.response.text
    assert len(result.attempts) == 1 and result.attempts[0].ok
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.cost_usd == pytest.approx(REGISTRY["small"].cost(result.usage))
    router.close()
    records = list(read_records(tmp_path / "log.jsonl"))
    assert [r["kind"] for r in records] == ["decision", "attempt"]
    assert {r["request_id"] for r in records} == {result.request_id}
    assert records[1]["cost_usd"] == pytest.approx(result.cost_usd)
    assert "prompt" not in records[0]  # prompts are left out unless include_prompts is set
    assert {r["schema"] for r in records} == {1}
    # The always-strongest counterfactual: the cheapest model of the top eligible tier, with its prices.
    assert records[0]["reference"] == {
        "model": "large",
        "tier": 2,
        "input_per_mtok": 2.0,
        "output_per_mtok": 8.0,
        "prices": REGISTRY["large"].prices.model_dump(mode="json"),
    }


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        (Fail(status=429, retry_after=7.0), "rate_limit"),
        (Fail(status=500), "server"),
        (Fail(status=503), "server"),
        (Delay(seconds=2.5), "timeout"),
    ],
)
async def test_provider_failures_fall_back_along_the_chain(
    router: Router,
    servers: tuple[LocalOpenAIServer, LocalAnthropicServer],
    clock: Clock,
    action: Fail | Delay,
    kind: str,
) -> None:
    openai_server, _ = servers
    openai_server.script("small", action)
    result = await router.acomplete("hi there")
    assert result.model_id == "large"
    failed, answered = result.attempts
    assert failed.model_id == "small" and not failed.ok
    assert failed.error is not None and failed.error.kind == kind
    assert answered.ok and answered.model_id == "large"
    assert router.cooldowns.cooling("small", clock.now) > 0
    if kind == "rate_limit":
        assert failed.error.retry_after == 7.0
        assert router.cooldowns.cooling("small", clock.now) == pytest.approx(7.0)


async def test_a_cooling_model_is_skipped_until_its_cooldown_ends(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer], clock: Clock
) -> None:
    openai_server, _ = servers
    openai_server.script("small", Fail(status=429, retry_after=30.0))
    await router.acomplete("hi there")
    before = len(openai_server.requests)
    second = await router.acomplete("hi again")
    assert second.model_id == "large"
    assert _served(openai_server)[before:] == ["large"]  # small was not even tried
    clock.now += 31
    third = await router.acomplete("and again")
    assert third.model_id == "small"


async def test_connection_refused_falls_back(servers: tuple[LocalOpenAIServer, LocalAnthropicServer]) -> None:
    openai_server, _ = servers
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    async with Router(
        ModelRegistry([_spec("dead", "dead", "small", 1, 0.1), _spec("large", "openai", "large", 2, 2.0)]),
        policy=SignalScorer(),
        providers=[
            OpenAIProvider("dead", api_key=OPENAI_KEY, base_url=f"http://127.0.0.1:{dead_port}/v1"),
            OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url),
        ],
    ) as router:
        result = await router.acomplete("hi there")
    assert [a.model_id for a in result.attempts] == ["dead", "large"]
    assert result.attempts[0].error is not None and result.attempts[0].error.kind == "connection"


async def test_a_bad_request_is_not_retried_elsewhere(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer]
) -> None:
    openai_server, _ = servers
    openai_server.script("small", Fail(status=400, body={"error": {"message": "bad field 'x'"}}))
    with pytest.raises(ProviderError) as caught:
        await router.acomplete("hi there")
    assert caught.value.kind == "bad_request"
    assert _served(openai_server) == ["small"]


async def test_when_every_model_fails_the_error_lists_each_attempt_without_secrets(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer], tmp_path: Path
) -> None:
    openai_server, anthropic_server = servers
    openai_server.script("small", Fail(status=500, body=f"upstream echoed {OPENAI_KEY}"))
    openai_server.script("large", Fail(status=429))
    anthropic_server.script("claude-large", Fail(status=529))
    with pytest.raises(AllModelsFailed) as caught:
        await router.acomplete("hi there")
    error = caught.value
    assert [e.model_id for e in error.exceptions] == ["small", "large", "claude"]  # type: ignore[attr-defined]
    assert "small" in str(error) and "claude" in str(error)
    router.close()
    for text in (str(error), repr(error), repr(router), (tmp_path / "log.jsonl").read_text()):
        assert OPENAI_KEY not in text
        assert ANTHROPIC_KEY not in text


async def test_an_error_that_ends_a_routed_call_names_its_decision_log_records(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer], tmp_path: Path
) -> None:
    # A failed call's decision and attempts were logged under a request id its caller never saw: an
    # operator holding the exception could not find out which models were tried, or why.
    openai_server, anthropic_server = servers
    for _ in range(2):
        openai_server.script("small", Fail(status=500))
        openai_server.script("large", Fail(status=500))
        anthropic_server.script("claude-large", Fail(status=529))
    with pytest.raises(AllModelsFailed) as failed:
        await router.acomplete("hi there")
    with pytest.raises(AllModelsFailed) as broke:
        async for _ in router.astream("hi there"):
            pass
    router.close()
    records = list(read_records(tmp_path / "log.jsonl"))
    for error in (failed.value, broke.value):
        assert error.request_id is not None
        kinds = [r["kind"] for r in records if r["request_id"] == error.request_id]
        assert kinds.count("decision") == 1 and kinds.count("attempt") == 3, kinds
    assert failed.value.request_id != broke.value.request_id


async def test_a_stream_that_breaks_before_its_first_token_falls_back(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer]
) -> None:
    openai_server, _ = servers
    openai_server.script("small", CutStream(after_chunks=0))
    stream = router.astream("hi there")
    events = [event async for event in stream]
    assert isinstance(events[-1], StreamDone)
    assert events[-1].response.model_id == "large"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == events[-1].response.text
    assert stream.result is not None
    assert [(a.model_id, a.ok) for a in stream.result.attempts] == [("small", False), ("large", True)]
    assert stream.result.attempts[1].usage.output_tokens > 0  # streamed usage is recorded


async def test_a_stream_that_breaks_mid_way_raises_and_its_spend_is_estimated(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer], tmp_path: Path
) -> None:
    openai_server, _ = servers
    openai_server.script("small", CutStream(after_chunks=2))
    received = []
    with pytest.raises(ProviderError) as caught:
        async for event in router.astream("hi there, tell me a long story please"):
            received.append(event)
    assert caught.value.kind == "stream"
    assert received  # the caller saw part of the answer, so no silent switch to another model
    router.close()
    attempt = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "attempt"][-1]
    assert attempt["ok"] is False and attempt["usage_estimated"] is True
    assert attempt["output_tokens"] > 0 and attempt["cost_usd"] > 0


async def test_closing_a_stream_early_records_a_cancelled_attempt(router: Router, tmp_path: Path) -> None:
    stream = router.astream("hi there, tell me a long story please")
    async for _ in stream:
        break
    await stream.aclose()
    router.close()
    attempt = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "attempt"][-1]
    assert attempt["cancelled"] is True and attempt["input_tokens"] > 0


async def test_a_cancelled_call_is_recorded(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer], tmp_path: Path
) -> None:
    openai_server, _ = servers
    openai_server.script("small", Delay(seconds=0.8))
    task = asyncio.create_task(router.acomplete("hi there"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    router.close()
    attempt = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "attempt"][-1]
    assert attempt["cancelled"] is True and attempt["model"] == "small"


def test_sync_complete_and_stream_go_through_the_bridge(
    servers: tuple[LocalOpenAIServer, LocalAnthropicServer],
) -> None:
    openai_server, anthropic_server = servers
    router = Router(
        REGISTRY,
        policy=SignalScorer(),
        providers=[
            OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url),
            AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url),
        ],
    )
    assert router.complete("hi").model_id == "small"
    stream = router.stream("hi", StepContext(hints=CallerHints(force_model="claude")))
    assert stream.decision.model == "claude"
    events = list(stream)
    assert isinstance(events[-1], StreamDone) and events[-1].response.model_id == "claude"
    assert stream.result is not None and stream.result.usage.output_tokens > 0


async def test_tool_calls_pass_through_the_router(
    router: Router, servers: tuple[LocalOpenAIServer, LocalAnthropicServer]
) -> None:
    from gearshift import ToolSpec

    openai_server, _ = servers
    openai_server.script("small", Reply(tool_calls=[("lookup", {"city": "Paris"})]))
    tool = ToolSpec(
        name="lookup",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    result = await router.acomplete(ChatRequest(messages=(Message.user("weather in Paris?"),), tools=(tool,)))
    (call,) = result.response.tool_calls
    assert call.name == "lookup" and call.parsed_arguments() == {"city": "Paris"}


def test_a_model_without_a_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model 'claude' is served by provider 'anthropic'.*have: openai"):
        Router(REGISTRY, policy=SignalScorer(), providers=[OpenAIProvider(api_key=OPENAI_KEY)])


def test_routing_a_bad_value_names_what_was_passed() -> None:
    router = Router(REGISTRY, policy=SignalScorer(), providers=[OpenAIProvider(), AnthropicProvider()])
    with pytest.raises(ValueError, match="cannot route a int"):
        router.decide(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no messages"):
        router.decide([])


async def test_async_with_closes_clients_and_the_log(
    servers: tuple[LocalOpenAIServer, LocalAnthropicServer], tmp_path: Path
) -> None:
    openai_server, anthropic_server = servers
    log = open_decision_log(tmp_path / "log.db")
    provider = OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url)
    async with Router(
        REGISTRY,
        policy=SignalScorer(),
        providers=[provider, AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url)],
        decision_log=log,
    ) as router:
        await router.acomplete("hi")
        client = await provider._client(REGISTRY["small"])
    assert client.is_closed()
    with pytest.raises(RuntimeError, match="closed"):
        log.write({"kind": "late"})
    assert [r["kind"] for r in read_records(tmp_path / "log.db")] == ["decision", "attempt"]
