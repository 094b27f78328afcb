"""AnthropicProvider through the real `anthropic` SDK against the local Anthropic server."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import pytest

from gearshift._errors import ProviderError
from gearshift._messages import (
    ChatRequest,
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
from gearshift.providers._anthropic import AnthropicProvider, tool_call_id
from gearshift.providers._base import Provider
from gearshift.testing import CutStream, Delay, Fail, LocalAnthropicServer

ANTHROPIC_KEY = "sk-ant-local-2b8e41"  # the key the anthropic_server fixture requires
LOOKUP = ToolSpec(
    name="lookup",
    description="Look a term up.",
    parameters={
        "type": "object",
        "properties": {"term": {"type": "string"}, "limit": {"type": "integer", "minimum": 3}},
        "required": ["term", "limit"],
    },
)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "role": {"enum": ["admin", "user"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
    },
    "required": ["name", "role", "tags"],
}


def ask(text: str = "Tell me about gear ratios.", **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),), **kwargs)


async def drain(events: Any, into: list[StreamEvent]) -> None:
    async for event in events:
        into.append(event)


async def collect(events: Any) -> list[StreamEvent]:
    return [event async for event in events]


def last_body(server: LocalAnthropicServer) -> Any:
    return server.requests[-1].body


async def test_complete_returns_text_usage_and_cost(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    response = await anthropic_provider.complete(claude, ask())
    assert "'claude-small'" in response.text
    assert "gear ratios" in response.text
    assert (response.model_id, response.provider_model, response.finish_reason) == (
        "claude-small",
        "claude-small",
        "stop",
    )
    assert response.metadata["stop_reason"] == "end_turn"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.cost_usd == pytest.approx(claude.cost(response.usage))
    body = last_body(anthropic_server)
    assert body["max_tokens"] == 4096
    assert "temperature" not in body
    assert "authorization" not in anthropic_server.requests[-1].headers


async def test_stream_yields_deltas_then_done_with_usage(
    anthropic_provider: AnthropicProvider, claude: ModelSpec
) -> None:
    plain = await anthropic_provider.complete(claude, ask())
    *deltas, done = await collect(anthropic_provider.stream(claude, ask()))
    assert isinstance(done, StreamDone)
    assert len(deltas) > 3
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == done.response.text == plain.text
    assert done.response.usage == plain.usage  # message_start input + message_delta output
    assert done.response.cost_usd == pytest.approx(claude.cost(plain.usage))
    assert done.response.cost_usd > 0


async def test_request_conversion(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    request = ChatRequest(
        messages=(
            Message.system("Be brief."),
            Message.user((TextPart("Compare these."), ImagePart(url="data:image/png;base64,iVBO"))),
            Message.user((ImagePart(url="https://example.com/cat.jpg"),)),
            Message.assistant("Looking.", [ToolCall("toolu_1", "lookup", '{"term": "cat", "limit": 3}')]),
            Message.tool("toolu_1", "no results", is_error=True),
            Message.system("Answer in French."),
            Message.user("Well?"),
        ),
        tools=(LOOKUP,),
        stop=("END",),
        temperature=0.3,
        max_tokens=99,
    )
    await anthropic_provider.complete(claude, request)
    body = last_body(anthropic_server)
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"term": "cat", "limit": 3}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "no results", "is_error": True},
                {"type": "text", "text": "Well?"},
            ],
        },
    ]
    assert body["tools"] == [
        {"name": "lookup", "input_schema": LOOKUP.parameters, "description": LOOKUP.description}
    ]
    assert "tool_choice" not in body
    assert (body["stop_sequences"], body["temperature"], body["max_tokens"]) == (["END"], 0.3, 99)


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ("lookup", None, {"type": "tool", "name": "lookup"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
async def test_tool_choice_mapping(
    anthropic_provider: AnthropicProvider,
    anthropic_server: LocalAnthropicServer,
    claude: ModelSpec,
    choice: str | None,
    parallel: bool | None,
    expected: dict[str, Any],
) -> None:
    await anthropic_provider.complete(
        claude, ask(tools=(LOOKUP,), tool_choice=choice, parallel_tool_calls=parallel)
    )
    assert last_body(anthropic_server)["tool_choice"] == expected


async def test_tool_call_plain_and_streamed(anthropic_provider: AnthropicProvider, claude: ModelSpec) -> None:
    plain = await anthropic_provider.complete(claude, ask("Look up cats", tools=(LOOKUP,)))
    [call] = plain.tool_calls
    assert call.name == "lookup"
    assert call.parsed_arguments() == {"term": "example term", "limit": 3}
    assert plain.finish_reason == "tool_calls"
    events = await collect(anthropic_provider.stream(claude, ask("Look up cats", tools=(LOOKUP,))))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].id
    assert deltas[0].name == "lookup"
    assert len(deltas) > 2
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert done.response.finish_reason == "tool_calls"
    assert done.response.tool_calls[0].parsed_arguments() == call.parsed_arguments()


def test_tool_call_id_sanitizing_is_deterministic_and_keeps_ids_apart() -> None:
    assert tool_call_id("toolu_01A-b") == "toolu_01A-b"
    odd = tool_call_id("call.abc:1/x")
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", odd)
    assert odd == tool_call_id("call.abc:1/x")
    assert tool_call_id("call.abc:1/x") != tool_call_id("call_abc_1_x") != tool_call_id("call.abc:1.x")
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", tool_call_id(""))


async def test_foreign_tool_call_ids_stay_paired(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    foreign = "functions.lookup:0"  # the shape some OpenAI-compatible servers produce
    request = ChatRequest(
        messages=(
            Message.user("Look up cats"),
            Message.assistant(tool_calls=[ToolCall(foreign, "lookup", '{"term": "cats", "limit": 5}')]),
            Message.tool(foreign, "cats purr"),
        ),
        tools=(LOOKUP,),
    )
    response = await anthropic_provider.complete(claude, request)
    use, result = (
        last_body(anthropic_server)["messages"][1]["content"][0],
        last_body(anthropic_server)["messages"][2]["content"][0],
    )
    assert use["id"] == result["tool_use_id"]
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", use["id"])
    # The simulated model resolves the result's tool by its id: the summary names it only if they pair.
    assert 'lookup returned "cats purr"' in response.text


async def test_response_schema_uses_a_forced_answer_tool(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    response = await anthropic_provider.complete(claude, ask("Describe a user", response_schema=PERSON))
    assert json.loads(response.text) == {
        "name": "example name",
        "role": "admin",
        "tags": ["example tags", "example tags 1"],
    }
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    body = last_body(anthropic_server)
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert body["tools"][-1]["input_schema"] == PERSON
    events = await collect(anthropic_provider.stream(claude, ask("Describe a user", response_schema=PERSON)))
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    assert len(events) > 2
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert done.response.text == response.text


async def test_response_schema_that_is_not_an_object(
    anthropic_provider: AnthropicProvider, claude: ModelSpec
) -> None:
    schema = {"type": "array", "items": {"type": "integer", "minimum": 5}, "minItems": 2}
    response = await anthropic_provider.complete(claude, ask("Numbers", response_schema=schema))
    assert json.loads(response.text) == [5, 5]
    *_, done = await collect(anthropic_provider.stream(claude, ask("Numbers", response_schema=schema)))
    assert isinstance(done, StreamDone)
    assert json.loads(done.response.text) == [5, 5]


async def test_response_schema_with_tools_calls_tools_then_answers_json(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    first = await anthropic_provider.complete(
        claude, ask("Who is admin?", tools=(LOOKUP,), response_schema=PERSON)
    )
    assert last_body(anthropic_server)["tool_choice"] == {"type": "any"}
    [call] = first.tool_calls
    assert call.name == "lookup"
    follow_up = ChatRequest(
        messages=(Message.user("Who is admin?"), first.message, Message.tool(call.id, "ada is admin")),
        tools=(LOOKUP,),
        response_schema=PERSON,
    )
    second = await anthropic_provider.complete(claude, follow_up)
    assert second.tool_calls == ()
    assert json.loads(second.text)["role"] == "admin"


@pytest.mark.parametrize(
    ("status", "kind"), [(529, "server"), (500, "server"), (400, "bad_request"), (401, "auth")]
)
async def test_status_errors_are_translated(
    anthropic_provider: AnthropicProvider,
    anthropic_server: LocalAnthropicServer,
    claude: ModelSpec,
    status: int,
    kind: str,
) -> None:
    anthropic_server.script("claude-small", Fail(status=status))
    with pytest.raises(ProviderError) as caught:
        await anthropic_provider.complete(claude, ask())
    assert (caught.value.kind, caught.value.status_code, caught.value.model_id) == (
        kind,
        status,
        "claude-small",
    )


async def test_rate_limit_carries_retry_after(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    anthropic_server.script("claude-small", Fail(status=429, retry_after=7.0))
    with pytest.raises(ProviderError) as caught:
        await collect(anthropic_provider.stream(claude, ask()))
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limit", 7.0)
    assert len(anthropic_server.requests) == 1


async def test_timeout(anthropic_server: LocalAnthropicServer, claude: ModelSpec) -> None:
    anthropic_server.script("claude-small", Delay(3.0))
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=0.3)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(claude, ask())
    finally:
        await provider.aclose()
    assert caught.value.kind == "timeout"


async def test_stream_cut_after_deltas_raises_stream_error(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    anthropic_server.script("claude-small", CutStream(after_chunks=2))
    received: list[StreamEvent] = []
    with pytest.raises(ProviderError) as caught:
        await drain(anthropic_provider.stream(claude, ask()), received)
    assert len(received) == 2
    assert caught.value.kind == "stream"


async def test_cut_before_first_delta_raises_from_first_anext(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    anthropic_server.script("claude-small", CutStream(after_chunks=0))
    with pytest.raises(ProviderError) as caught:
        await anthropic_provider.stream(claude, ask()).__anext__()
    assert caught.value.kind == "connection"


def test_error_event_inside_a_stream_is_classified_by_its_body(claude: ModelSpec) -> None:
    import anthropic

    provider = AnthropicProvider(api_key=ANTHROPIC_KEY)
    response = httpx2.Response(200, request=httpx2.Request("POST", "http://127.0.0.1/v1/messages"))
    for error_type, kind in (("overloaded_error", "server"), ("rate_limit_error", "rate_limit")):
        body = {"type": "error", "error": {"type": error_type, "message": f"{ANTHROPIC_KEY} busy"}}
        exc = anthropic.APIStatusError(f"{body}", response=response, body=body)
        error = provider._error(exc, claude)
        assert error.kind == kind
        assert ANTHROPIC_KEY not in str(error)
        assert provider._error(exc, claude, after_output=True).kind == "stream"


async def test_malformed_tool_arguments_are_a_bad_request(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    request = ChatRequest(
        messages=(
            Message.user("Look up cats"),
            Message.assistant(tool_calls=[ToolCall("toolu_x", "lookup", "{not json")]),
            Message.tool("toolu_x", "cats purr"),
        ),
        tools=(LOOKUP,),
    )
    with pytest.raises(ProviderError, match="lookup") as caught:
        await anthropic_provider.complete(claude, request)
    assert caught.value.kind == "bad_request"
    assert anthropic_server.requests == []


async def test_early_close_releases_the_stream(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    events = anthropic_provider.stream(claude, ask())
    assert isinstance(await events.__anext__(), TextDelta)
    await events.aclose()
    assert (await anthropic_provider.complete(claude, ask())).text  # the client is still usable
    assert isinstance(AnthropicProvider(), Provider)


async def test_missing_key_names_the_env_var(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    provider = AnthropicProvider(base_url=anthropic_server.base_url)
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY") as caught:
        await provider.complete(claude, ask())
    assert caught.value.kind == "auth"
    assert anthropic_server.requests == []


async def test_key_never_shown(anthropic_server: LocalAnthropicServer, claude: ModelSpec) -> None:
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url)
    assert ANTHROPIC_KEY not in repr(provider)
    assert ANTHROPIC_KEY not in str(provider)
    echo = {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {ANTHROPIC_KEY}"}}
    anthropic_server.script("claude-small", Fail(status=401, body=echo))
    with pytest.raises(ProviderError) as caught:
        await provider.complete(claude, ask())
    await provider.aclose()
    assert ANTHROPIC_KEY not in str(caught.value)
    assert "***" in str(caught.value)


async def test_max_tokens_capped_by_the_model(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    capped = ModelSpec(
        id="c",
        provider="anthropic",
        model="claude-large",
        tier=1,
        prices=ModelPrices(input=1, output=1),
        max_output_tokens=8,
    )
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url)
    response = await provider.complete(capped, ask())
    await provider.aclose()
    assert last_body(anthropic_server)["max_tokens"] == 8
    assert response.finish_reason == "length"
    assert response.usage.output_tokens <= 8
