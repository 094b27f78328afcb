"""OpenAIProvider through the real `openai` SDK against the local OpenAI server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from gearshift._bridge import run_sync
from gearshift._errors import ProviderError
from gearshift._messages import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    StreamDone,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from gearshift._models import ModelPrices, ModelSpec
from gearshift.providers._base import Provider
from gearshift.providers._openai import OpenAIProvider
from gearshift.providers._sdk import import_sdk, parse_retry_after
from gearshift.testing import CutStream, Delay, Fail, LocalOpenAIServer, Reply

OPENAI_KEY = "sk-local-openai-7f3a9c"  # the key the openai_server fixture requires

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
    },
)


def ask(text: str = "What is the capital of France?", **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),), **kwargs)


async def drain(events: Any, into: list[StreamEvent]) -> None:
    async for event in events:
        into.append(event)


async def collect(events: Any) -> list[StreamEvent]:
    return [event async for event in events]


async def test_complete_returns_text_usage_and_cost(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    response = await openai_provider.complete(small, ask())
    assert "'small'" in response.text
    assert "What is the capital of France?" in response.text
    assert response.model_id == "oa-small"
    assert response.provider_model == "small"
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.cost_usd == pytest.approx(small.cost(response.usage))
    assert "usage_estimated" not in response.metadata
    [request] = openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.model == "small"
    assert "authorization" not in request.headers


async def test_stream_yields_deltas_in_order_then_one_done_with_usage(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    plain = await openai_provider.complete(small, ask())
    events = await collect(openai_provider.stream(small, ask()))
    *deltas, done = events
    assert isinstance(done, StreamDone)
    assert len(deltas) > 3
    assert all(isinstance(d, TextDelta) for d in deltas)
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == done.response.text == plain.text
    assert done.response.usage == plain.usage  # streamed usage comes from the final usage chunk
    assert done.response.cost_usd == pytest.approx(small.cost(plain.usage))
    assert done.response.cost_usd > 0
    streamed = openai_server.requests[-1].body
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


async def test_request_conversion(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    request = ChatRequest(
        messages=(
            Message.system("Be brief."),
            Message.user((TextPart("What is here?"), ImagePart(data="aGk=", media_type="image/jpeg"))),
            Message.assistant("Checking.", [ToolCall("call_1", "get_weather", '{"city": "Paris"}')]),
            Message.tool("call_1", "service down", is_error=True),
        ),
        tools=(WEATHER,),
        tool_choice="get_weather",
        parallel_tool_calls=False,
        stop=("END",),
        temperature=0.2,
        max_tokens=50,
    )
    await openai_provider.complete(small, request)
    body = openai_server.requests[-1].body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,aGk="}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: service down"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER.description,
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["stop"] == ["END"]
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50


async def test_max_tokens_field_and_model_cap(openai_server: LocalOpenAIServer) -> None:
    capped = ModelSpec(
        id="r",
        provider="openai",
        model="small",
        tier=0,
        prices=ModelPrices(input=1, output=1),
        max_output_tokens=20,
    )
    provider = OpenAIProvider(
        api_key=OPENAI_KEY, base_url=openai_server.base_url, max_tokens_field="max_completion_tokens"
    )
    try:
        response = await provider.complete(capped, ask(max_tokens=500))
    finally:
        await provider.aclose()
    body = openai_server.requests[-1].body
    assert body["max_completion_tokens"] == 20
    assert "max_tokens" not in body
    assert response.usage.output_tokens <= 20
    assert response.finish_reason == "length"


async def test_tool_call_plain(openai_provider: OpenAIProvider, small: ModelSpec) -> None:
    response = await openai_provider.complete(small, ask("Weather in Paris?", tools=(WEATHER,)))
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert call.id
    assert call.parsed_arguments() == {"city": "example city", "unit": "celsius"}
    assert response.finish_reason == "tool_calls"


async def test_tool_call_streamed(openai_provider: OpenAIProvider, small: ModelSpec) -> None:
    events = await collect(openai_provider.stream(small, ask("Weather in Paris?", tools=(WEATHER,))))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].id
    assert deltas[0].name == "get_weather"
    assert len(deltas) > 2
    done = events[-1]
    assert isinstance(done, StreamDone)
    [call] = done.response.tool_calls
    assert json.loads(call.arguments) == json.loads("".join(d.arguments for d in deltas))
    assert call.parsed_arguments()["unit"] == "celsius"
    assert done.response.usage.output_tokens > 0


async def test_answer_after_tool_result_summarizes_it(
    openai_provider: OpenAIProvider, small: ModelSpec
) -> None:
    request = ChatRequest(
        messages=(
            Message.user("Weather in Paris?"),
            Message.assistant(
                tool_calls=[ToolCall("call_9", "get_weather", '{"city": "Paris", "unit": "celsius"}')]
            ),
            Message.tool("call_9", "sunny, 21 degrees"),
        ),
        tools=(WEATHER,),
    )
    response = await openai_provider.complete(small, request)
    assert response.tool_calls == ()
    assert 'get_weather returned "sunny, 21 degrees"' in response.text


async def test_response_schema(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    schema = {
        "title": "City Facts",
        "type": "object",
        "properties": {"name": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
        "required": ["name", "population"],
    }
    response = await openai_provider.complete(small, ask("Facts about Paris", response_schema=schema))
    assert json.loads(response.text) == {"name": "example name", "population": 1}
    sent = openai_server.requests[-1].body["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "City_Facts", "schema": schema}}


async def test_rate_limit_carries_retry_after(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    openai_server.script("small", Fail(status=429, retry_after=2.0))
    with pytest.raises(ProviderError) as caught:
        await openai_provider.complete(small, ask())
    error = caught.value
    assert (error.kind, error.status_code, error.retry_after, error.model_id) == (
        "rate_limit",
        429,
        2.0,
        "oa-small",
    )
    assert error.allows_fallback
    assert len(openai_server.requests) == 1  # the SDK's own retries are off


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, "server"), (503, "server"), (400, "bad_request"), (403, "auth"), (404, "other")],
)
async def test_status_errors_are_translated(
    openai_provider: OpenAIProvider,
    openai_server: LocalOpenAIServer,
    small: ModelSpec,
    status: int,
    kind: str,
) -> None:
    openai_server.script("small", Fail(status=status))
    with pytest.raises(ProviderError) as caught:
        await openai_provider.complete(small, ask())
    assert (caught.value.kind, caught.value.status_code) == (kind, status)
    assert caught.value.allows_fallback is (kind != "bad_request")


async def test_unknown_model_is_not_a_bad_request(openai_provider: OpenAIProvider) -> None:
    ghost = ModelSpec(
        id="ghost", provider="openai", model="no-such-model", tier=0, prices=ModelPrices(input=1, output=1)
    )
    with pytest.raises(ProviderError) as caught:
        await openai_provider.complete(ghost, ask())
    assert caught.value.kind == "other"
    assert caught.value.status_code == 404
    assert "no-such-model" in str(caught.value)


async def test_timeout(openai_server: LocalOpenAIServer, small: ModelSpec) -> None:
    openai_server.script("small", Delay(3.0))
    provider = OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url, timeout=0.3)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(small, ask())
        assert caught.value.kind == "timeout"
        openai_server.script("small", Delay(3.0))
        with pytest.raises(ProviderError) as streamed:
            await collect(provider.stream(small, ask()))
        assert streamed.value.kind == "timeout"
    finally:
        await provider.aclose()


async def test_stream_cut_after_deltas_raises_stream_error(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    openai_server.script("small", CutStream(after_chunks=3))
    received: list[StreamEvent] = []
    with pytest.raises(ProviderError) as caught:
        await drain(openai_provider.stream(small, ask()), received)
    assert len(received) == 3
    assert all(isinstance(e, TextDelta) for e in received)
    assert caught.value.kind == "stream"
    assert caught.value.model_id == "oa-small"


@pytest.mark.parametrize(
    ("action", "kind"), [(Fail(status=500), "server"), (CutStream(after_chunks=0), "connection")]
)
async def test_failure_before_first_delta_raises_from_first_anext(
    openai_provider: OpenAIProvider,
    openai_server: LocalOpenAIServer,
    small: ModelSpec,
    action: Fail | CutStream,
    kind: str,
) -> None:
    openai_server.script("small", action)
    events = openai_provider.stream(small, ask())
    with pytest.raises(ProviderError) as caught:
        await events.__anext__()
    assert caught.value.kind == kind


async def test_scripted_reply(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    openai_server.script("small", Reply(text="Let me look.", tool_calls=[("get_weather", {"city": "Oslo"})]))
    response = await openai_provider.complete(small, ask(tools=(WEATHER,)))
    assert response.text == "Let me look."
    assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]


async def test_quirky_compatible_servers(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    head = {"id": "x1", "object": "chat.completion", "created": 0, "model": "small-2025"}
    message = {"role": "assistant", "content": "four words of text"}
    no_usage = {**head, "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    openai_server.script(
        "small", Fail(status=200, body=no_usage), Fail(status=200, body={**head, "choices": []})
    )
    response = await openai_provider.complete(small, ask())
    assert response.metadata["usage_estimated"] is True
    assert response.usage.output_tokens == 4
    assert response.usage.input_tokens > 0
    assert response.provider_model == "small-2025"
    with pytest.raises(ProviderError, match="no choices") as caught:
        await openai_provider.complete(small, ask())
    assert caught.value.kind == "server"


async def test_missing_key_names_the_env_var(
    openai_server: LocalOpenAIServer, small: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEARSHIFT_TEST_OPENAI_KEY", raising=False)
    provider = OpenAIProvider(api_key_env="GEARSHIFT_TEST_OPENAI_KEY", base_url=openai_server.base_url)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(small, ask())
    assert caught.value.kind == "auth"
    assert "GEARSHIFT_TEST_OPENAI_KEY" in str(caught.value)
    assert openai_server.requests == []
    monkeypatch.setenv("GEARSHIFT_TEST_OPENAI_KEY", OPENAI_KEY)  # read at call time, not construction
    assert (await provider.complete(small, ask())).text
    await provider.aclose()


async def test_key_never_shown(openai_server: LocalOpenAIServer, small: ModelSpec) -> None:
    provider = OpenAIProvider(
        api_key=OPENAI_KEY, base_url=openai_server.base_url, default_headers={"X-Org-Token": "org-secret-991"}
    )
    assert OPENAI_KEY not in repr(provider)
    assert OPENAI_KEY not in str(provider)
    assert "***" in repr(provider)
    assert "org-secret-991" not in repr(provider)
    await provider.complete(small, ask())
    assert openai_server.requests[-1].headers["x-org-token"] == "org-secret-991"  # default headers are sent
    echo = {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY} (org-secret-991)", "type": "x"}}
    openai_server.script("small", Fail(status=401, body=echo))
    with pytest.raises(ProviderError) as caught:
        await provider.complete(small, ask())
    await provider.aclose()
    assert caught.value.kind == "auth"
    assert OPENAI_KEY not in str(caught.value)
    assert "org-secret-991" not in str(caught.value)
    assert "***" in str(caught.value)
    assert caught.value.__cause__ is None


async def test_wrong_key_is_an_auth_error(openai_server: LocalOpenAIServer, small: ModelSpec) -> None:
    provider = OpenAIProvider(api_key="sk-wrong-key-0000", base_url=openai_server.base_url)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(small, ask())
    await provider.aclose()
    assert (caught.value.kind, caught.value.status_code) == ("auth", 401)


async def test_keyless_server_never_gets_the_openai_key(
    small: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-5150")
    monkeypatch.setenv("LOCAL_LLM_KEY", "local-key-77")
    # A server that would accept the OpenAI key: the keyless provider must not send it.
    with LocalOpenAIServer(api_key="sk-real-openai-key-5150") as server:
        keyless = OpenAIProvider(base_url=server.base_url, require_key=False)
        with pytest.raises(ProviderError) as caught:
            await keyless.complete(small, ask())
        await keyless.aclose()
    assert caught.value.kind == "auth"
    with LocalOpenAIServer() as server:
        keyless = OpenAIProvider(base_url=server.base_url, require_key=False)
        assert (await keyless.complete(small, ask())).text  # no key at all: a placeholder is sent
        await keyless.aclose()
    # A variable named explicitly is used even when the key is optional.
    with LocalOpenAIServer(api_key="local-key-77") as server:
        named = OpenAIProvider(base_url=server.base_url, require_key=False, api_key_env="LOCAL_LLM_KEY")
        assert (await named.complete(small, ask())).text
        await named.aclose()


def test_one_client_per_event_loop(openai_server: LocalOpenAIServer, small: ModelSpec) -> None:
    provider = OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url)

    async def call() -> ChatResponse:
        return await provider.complete(small, ask())

    assert asyncio.run(call()).text  # a private loop
    assert run_sync(call()).text  # the sync bridge's loop
    bridge_client = run_sync(provider._client(small))
    assert run_sync(provider._client(small)) is bridge_client  # reused on its own loop
    assert asyncio.run(provider._client(small)) is not bridge_client  # never shared with another loop
    assert len(openai_server.requests) == 2


def test_provider_satisfies_the_protocol() -> None:
    assert isinstance(OpenAIProvider(), Provider)


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, now=1445412480.0) == 30.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_missing_sdk_names_the_pip_command() -> None:
    with pytest.raises(ProviderError, match=r"pip install 'gearshift\[extra\]'"):
        import_sdk("gearshift_no_such_sdk", extra="extra", model_id="m")


def test_constructing_providers_imports_no_sdk() -> None:
    code = (
        "import sys\n"
        "from gearshift.providers._openai import OpenAIProvider\n"
        "from gearshift.providers._anthropic import AnthropicProvider\n"
        "OpenAIProvider(); AnthropicProvider()\n"
        "assert 'openai' not in sys.modules and 'anthropic' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
