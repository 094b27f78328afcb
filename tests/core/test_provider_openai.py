"""What only OpenAIProvider does, through the real `openai` SDK against the local OpenAI server.

The behaviour every provider shares (errors, timeouts, streams, keys, tools) is in
`test_provider_contract.py`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gearshift._errors import ProviderError
from gearshift._messages import (
    ChatRequest,
    ImagePart,
    Message,
    StreamDone,
    StreamEvent,
    TextPart,
    ToolCall,
    ToolSpec,
)
from gearshift._models import ModelSpec
from gearshift.providers._openai import OpenAIProvider
from gearshift.signals._tokens import estimate_request_tokens, estimate_tokens
from gearshift.testing import Fail, LocalOpenAIServer

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

# A history with every kind of part and turn the conversion handles.
HISTORY = (
    Message.system("Be brief."),
    Message.user((TextPart("What is here?"), ImagePart(data="aGk=", media_type="image/jpeg"))),
    Message.assistant("Checking.", [ToolCall("call_1", "get_weather", '{"city": "Paris"}')]),
    Message.tool("call_1", "service down", is_error=True),
)


def ask(text: str = "What is the capital of France?", **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),), **kwargs)


async def collect(events: Any) -> list[StreamEvent]:
    return [event async for event in events]


async def test_stream_asks_for_usage_in_the_last_chunk(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    await collect(openai_provider.stream(small, ask()))
    streamed = openai_server.requests[-1].body
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


# What vLLM before 0.5 answered (modelscope/ms-agent#489) and, as a 422, Mistral's API
# (openai/openai-agents-python#442): the server's schema forbids the field.
STREAM_OPTIONS_REFUSED = {
    "object": "error",
    "message": "[{'type': 'extra_forbidden', 'loc': ('body', 'stream_options'), 'msg': 'Extra inputs are "
    "not permitted', 'input': {'include_usage': True}}]",
    "type": "BadRequestError",
    "code": 400,
}


@pytest.mark.parametrize("status", [400, 422])
async def test_a_server_that_refuses_stream_options_is_streamed_without_them(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec, status: int
) -> None:
    # Every streamed call to such a server failed as a bad request, which the router does not fall back
    # from: streaming did not work at all. The provider asks again without them, once, and remembers.
    openai_server.script("small", Fail(status, body=STREAM_OPTIONS_REFUSED))
    *_, done = await collect(openai_provider.stream(small, ask()))
    assert isinstance(done, StreamDone) and done.response.text
    assert done.response.metadata["usage_estimated"] is True
    first, second = (request.body for request in openai_server.requests)
    assert "stream_options" in first and "stream_options" not in second
    assert {k: v for k, v in first.items() if k != "stream_options"} == second
    await collect(openai_provider.stream(small, ask()))
    assert len(openai_server.requests) == 3 and "stream_options" not in openai_server.requests[-1].body
    # Another refusal is the caller's: not retried.
    openai_server.script("small", Fail(400))
    with pytest.raises(ProviderError) as caught:
        await collect(openai_provider.stream(small, ask()))
    assert caught.value.kind == "bad_request" and len(openai_server.requests) == 4


async def test_request_conversion(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    request = ChatRequest(
        messages=HISTORY,
        tools=(WEATHER,),
        tool_choice="get_weather",
        parallel_tool_calls=False,
        stop=("END",),
        temperature=0.2,
        max_tokens=50,
    )
    await openai_provider.complete(small, request)
    [sent] = openai_server.requests
    assert sent.path == "/v1/chat/completions"
    body = sent.body
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


async def test_request_is_what_the_sdks_create_sends(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    """The provider posts through the SDK's client without `create`'s parameter transform (it costs
    time and changes nothing for Chat Completions); an SDK whose transform starts to change a field
    fails here, with the field in the diff."""
    from openai import AsyncOpenAI

    request = ChatRequest(
        messages=(*HISTORY, Message.user("And tomorrow?")),
        tools=(WEATHER,),
        tool_choice="required",
        parallel_tool_calls=True,
        stop=("END",),
        temperature=0.0,
        max_tokens=40,
        response_schema={"title": "Forecast", "type": "object", "properties": {"sky": {"type": "string"}}},
    )
    await openai_provider.complete(small, request)
    sdk = AsyncOpenAI(
        api_key=openai_server.api_key, base_url=openai_server.base_url, max_retries=0, timeout=5.0
    )
    try:
        await sdk.chat.completions.create(**openai_provider._prepare(small, request))
    finally:
        await sdk.close()
    ours, theirs = openai_server.requests
    assert (ours.method, ours.path, ours.body) == (theirs.method, theirs.path, theirs.body)
    assert ours.headers.keys() == theirs.headers.keys()


async def test_max_tokens_field_and_model_cap(openai_server: LocalOpenAIServer, small: ModelSpec) -> None:
    capped = small.model_copy(update={"max_output_tokens": 20})
    provider = OpenAIProvider(
        api_key=openai_server.api_key,
        base_url=openai_server.base_url,
        max_tokens_field="max_completion_tokens",
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


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "model": "small", "choices": [choice], **extra}


def _sse(*events: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"


def _unreported(usage: dict[str, Any] | None, *, streamed: bool, reasoning: str = "") -> Any:
    """A compatible server's answer "Paris is the capital." (after `reasoning`), with this usage."""
    extra = {"usage": usage} if usage is not None else {}
    if streamed:
        thought = [_chunk({"reasoning_content": reasoning})] if reasoning else []
        text = _chunk({"content": "Paris is the capital."}, "stop")
        return Fail(200, body=_sse(*thought, text, {**_chunk({}), "choices": [], **extra}))
    message = {"role": "assistant", "content": "Paris is the capital.", "reasoning_content": reasoning}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    head = {"id": "x1", "object": "chat.completion", "model": "small"}
    return Fail(200, body={**head, "choices": [choice], **extra})


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    "usage",
    [
        None,
        {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None},
        {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        {"prompt_tokens": 12},
    ],
    ids=["absent", "nulls", "zeros", "no-completion-count"],
)
async def test_usage_a_server_leaves_out_is_estimated_never_charged_as_zero(
    openai_provider: OpenAIProvider,
    openai_server: LocalOpenAIServer,
    small: ModelSpec,
    usage: dict[str, Any] | None,
    streamed: bool,
) -> None:
    # Servers answer usage with null or zero counts (a template that fills the object without the
    # numbers; Ollama's prompt_tokens of a cached prompt). Read as 0 they made the call free: its cost
    # was 0 and the budget was never charged. A count the answer contradicts is estimated, and says so.
    openai_server.script("small", _unreported(usage, streamed=streamed))
    response = await _answer(openai_provider, small, ask(), streamed=streamed)
    assert response.text == "Paris is the capital."
    assert response.metadata["usage_estimated"] is True
    reported = usage == {"prompt_tokens": 12}
    assert response.usage.input_tokens == (12 if reported else estimate_request_tokens(ask()))
    assert response.usage.output_tokens == estimate_tokens("Paris is the capital.") > 0
    assert response.cost_usd > 0


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_an_unreported_usage_counts_the_reasoning_the_model_wrote(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec, streamed: bool
) -> None:
    # DeepSeek, vLLM's reasoning parsers and Ollama send the thinking apart from the answer
    # (`reasoning_content`, `reasoning`); it is output the server bills, so an estimate must count it.
    reasoning = "The user asks for a capital. France's capital is Paris, so I answer that. " * 10
    openai_server.script("small", _unreported(None, streamed=streamed, reasoning=reasoning))
    response = await _answer(openai_provider, small, ask(), streamed=streamed)
    assert response.text == "Paris is the capital."
    assert response.usage.output_tokens == estimate_tokens(reasoning + "Paris is the capital.")


async def _answer(provider: OpenAIProvider, model: ModelSpec, request: ChatRequest, *, streamed: bool) -> Any:
    if not streamed:
        return await provider.complete(model, request)
    *_, done = await collect(provider.stream(model, request))
    assert isinstance(done, StreamDone)
    return done.response


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [
        # OpenRouter commits its 200 before the upstream runs, then reports the failure in the body
        # with the status it would have sent (its API reference, "Errors").
        ({"error": {"message": "Rate limit exceeded upstream", "code": 429}}, "rate_limit", 429),
        # vLLM's own error object (runpod-workers/worker-vllm#57: a 200 for a model that does not exist).
        (
            {"object": "error", "message": "The model `small` does not exist.", "code": 404},
            "other",
            404,
        ),
        ({"error": "llama runner process has terminated"}, "server", None),  # Ollama's error shape
    ],
    ids=["openrouter", "vllm", "ollama"],
)
async def test_an_error_inside_a_200_answer_is_reported_as_the_servers_error(
    openai_provider: OpenAIProvider,
    openai_server: LocalOpenAIServer,
    small: ModelSpec,
    body: dict[str, Any],
    kind: str,
    status: int | None,
) -> None:
    # It read "could not read the response: ValueError: the response has no choices", which hid both
    # what the server said and that a rate limit was one (the router's cooldown never saw a 429).
    openai_server.script("small", Fail(200, body=body))
    with pytest.raises(ProviderError) as caught:
        await openai_provider.complete(small, ask())
    message = body.get("message") or body["error"]
    assert (message["message"] if isinstance(message, dict) else message) in str(caught.value)
    assert "no choices" not in str(caught.value)
    assert (caught.value.kind, caught.value.status_code) == (kind, status)


def _call_delta(arguments: str, *, index: int | None = None, call_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"arguments": arguments}}
    if call_id:  # a call's first piece: its id and name
        call.update(id=call_id, function={"name": "get_weather", "arguments": arguments})
    if index is not None:
        call["index"] = index
    return _chunk({"tool_calls": [call]})


@pytest.mark.parametrize(
    "pieces",
    [
        # Ollama streams each call whole and without an index (ollama/ollama#7881).
        [
            _call_delta('{"city": "Paris"}', call_id="call_a"),
            _call_delta('{"city": "Rome"}', call_id="call_b"),
        ],
        # Servers that number a call's first piece only and send the rest of its arguments bare.
        [
            _call_delta("", index=0, call_id="call_a"),
            _call_delta('{"city": '),
            _call_delta('"Paris"}'),
            _call_delta("", index=1, call_id="call_b"),
            _call_delta('{"city": "Rome"}'),
        ],
    ],
    ids=["whole-calls-no-index", "index-on-first-piece-only"],
)
async def test_streamed_tool_calls_without_an_index_stay_apart(
    openai_provider: OpenAIProvider,
    openai_server: LocalOpenAIServer,
    small: ModelSpec,
    pieces: list[dict[str, Any]],
) -> None:
    # A missing index was read as 0, so every call and every bare piece went into the first call:
    # one call to get_weather with '{"city": "Paris"}{"city": "Rome"}', which no tool could run.
    openai_server.script("small", Fail(200, body=_sse(*pieces, _chunk({}, "tool_calls"))))
    response = await _answer(openai_provider, small, ask(tools=(WEATHER,)), streamed=True)
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_weather", {"city": "Rome"}),
    ]


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_tool_arguments_sent_as_a_json_object_are_read(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec, streamed: bool
) -> None:
    # llama-server sent `arguments` as an object for a while (ggml-org/llama.cpp#20198); the answer was
    # refused whole ("'arguments' is a dict, not a str") and the router fell back for nothing.
    call = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    if streamed:
        body: Any = _sse(_chunk({"tool_calls": [{"index": 0, **call}]}), _chunk({}, "tool_calls"))
    else:
        choice = {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}}
        body = {"id": "x1", "object": "chat.completion", "model": "small", "choices": [choice]}
    openai_server.script("small", Fail(200, body=body))
    response = await _answer(openai_provider, small, ask(tools=(WEATHER,)), streamed=streamed)
    assert [(c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


@pytest.mark.parametrize("finish", ["", None], ids=["empty-string", "null"])
async def test_a_stream_the_server_ends_with_done_but_no_finish_reason_is_complete(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec, finish: str | None
) -> None:
    # Ollama sent `"finish_reason": ""` on every chunk (ollama/ollama#4357), as sglang did
    # (sgl-project/sglang#3912), and Gemini proxies send null throughout; the stream still ends with
    # `data: [DONE]`. It was taken for a broken stream: the answer was lost and the router fell back.
    pieces = [_chunk({"content": "Hello"}, finish), _chunk({"content": " there!"}, finish)]
    openai_server.script("small", Fail(200, body=_sse(*pieces)))
    response = await _answer(openai_provider, small, ask(), streamed=True)
    assert response.text == "Hello there!"
    assert response.finish_reason is None
    # An answer held until it is complete (a schema's wrapped value) comes out at the [DONE] too.
    wrapped = [_chunk({"content": '{"value": '}, finish), _chunk({"content": "[1, 2]}"}, finish)]
    openai_server.script("small", Fail(200, body=_sse(*wrapped)))
    schema = {"type": "array", "items": {"type": "integer"}}
    answer = await _answer(openai_provider, small, ask(response_schema=schema), streamed=True)
    assert json.loads(answer.text) == [1, 2]
    # Without the [DONE] nothing says the server finished: that stays a broken stream.
    unfinished = "".join(f"data: {json.dumps(piece)}\n\n" for piece in pieces)
    openai_server.script("small", Fail(200, body=unfinished))
    with pytest.raises(ProviderError, match="ended before the model finished") as caught:
        await _answer(openai_provider, small, ask(), streamed=True)
    assert caught.value.kind == "stream"


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_base_url_without_its_api_path_says_so(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec, streamed: bool
) -> None:
    # "http://localhost:11434" for Ollama: every call was a 404 ("404 page not found") that read like
    # a missing model. The servers serve the API under /v1 (vLLM, LM Studio, Ollama).
    provider = OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.url)
    try:
        with pytest.raises(ProviderError) as caught:
            await _answer(provider, small, ask(), streamed=streamed)
    finally:
        await provider.aclose()
    assert caught.value.status_code == 404
    assert f"is base_url meant to be {openai_server.url}/v1?" in str(caught.value)
    # A 404 under the right path (a model the server does not have) gets no such hint.
    ghost = small.model_copy(update={"model": "ghost"})
    with pytest.raises(ProviderError) as caught:
        await _answer(openai_provider, ghost, ask(), streamed=streamed)
    assert caught.value.status_code == 404 and "base_url" not in str(caught.value)


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_content_sent_as_a_list_of_thinking_and_text_parts_is_read(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec, streamed: bool
) -> None:
    # Mistral's Magistral models answer `content` as a list of parts, their thinking in one
    # (epam/ai-dial-adapter-openai#395; docs.mistral.ai, "Reasoning"): the answer was refused whole
    # ("'content' is a list, not a str").
    thinking = "The user asks for the capital of France, which is Paris. " * 5
    parts = [
        {"type": "thinking", "thinking": [{"type": "text", "text": thinking}]},
        {"type": "text", "text": "Paris is the capital."},
    ]
    if streamed:
        body: Any = _sse(*(_chunk({"content": [part]}) for part in parts), _chunk({}, "stop"))
    else:
        choice = {"index": 0, "message": {"role": "assistant", "content": parts}, "finish_reason": "stop"}
        body = {"id": "x1", "object": "chat.completion", "model": "small", "choices": [choice]}
    openai_server.script("small", Fail(200, body=body))
    response = await _answer(openai_provider, small, ask(), streamed=streamed)
    assert response.text == "Paris is the capital."
    assert response.usage.output_tokens == estimate_tokens(thinking + "Paris is the capital.")


async def test_a_stream_whose_choice_finishes_with_error_is_a_broken_stream(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    # OpenRouter ends a stream the model broke off with finish_reason "error" and the error in the
    # choice (openrouter.ai/docs/errors); "Paris is" was returned as a finished answer.
    broken = _chunk({}, "error")
    broken["choices"][0]["error"] = {"code": 502, "message": "upstream model crashed"}
    openai_server.script("small", Fail(200, body=_sse(_chunk({"content": "Paris is"}), broken)))
    with pytest.raises(ProviderError, match="upstream model crashed") as caught:
        await _answer(openai_provider, small, ask(), streamed=True)
    assert caught.value.kind == "stream"


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


async def test_names_and_empty_answers_in_the_history_are_sent_as_the_api_takes_them(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    # The real API refuses a message name outside ^[a-zA-Z0-9_-]+$ (FlowiseAI/Flowise#2948) and an
    # assistant message whose content is null without tool calls (docker/docker-agent#63: "Invalid
    # value for 'content': expected a string, got null."; the reference says content is "Required
    # unless tool_calls or function_call is specified").
    request = ChatRequest(
        messages=(
            Message("user", "Plan a trip.", name="Trip Planner (EU)"),
            Message("assistant", "", name="research agent"),
            Message.assistant("", [ToolCall("call_1", "get_weather", '{"city": "Paris"}')]),
            Message.tool("call_1", "sunny"),
        ),
        tools=(WEATHER,),
    )
    await openai_provider.complete(small, request)
    messages = openai_server.requests[-1].body["messages"]
    assert messages[0] == {"role": "user", "name": "Trip_Planner__EU_", "content": "Plan a trip."}
    assert messages[1] == {"role": "assistant", "name": "research_agent", "content": ""}
    assert messages[2]["content"] is None and messages[2]["tool_calls"]


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        (
            {"role": "user", "name": "Trip Planner", "content": "Hi"},
            "Invalid 'messages[0].name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$'.",
        ),
        ({"role": "assistant", "content": None}, "Invalid value for 'content': expected a string, got null."),
    ],
)
async def test_local_server_refuses_what_the_api_refuses(
    openai_server: LocalOpenAIServer, small: ModelSpec, message: dict[str, Any], refusal: str
) -> None:
    from openai import AsyncOpenAI, BadRequestError

    client = AsyncOpenAI(api_key=OPENAI_KEY, base_url=openai_server.base_url, max_retries=0)
    with pytest.raises(BadRequestError) as caught:
        await client.chat.completions.create(model="small", messages=[message])  # type: ignore[list-item]
    await client.close()
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": refusal,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_a_response_schema_that_is_not_an_object_is_wrapped_and_unwrapped(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    # The real API refuses a json_schema whose top level is not an object ("Invalid schema for
    # response_format 'AdSegmentPredictionList': schema must be a JSON Schema of 'type: "object"',
    # got 'type: "array"'.", podly-pure-podcasts/podly_pure_podcasts#89); Claude's answer tool already
    # wrapped such a schema, so a list answer failed only when the router picked an OpenAI model.
    schema = {
        "title": "Cities",
        "type": "array",
        "items": {"$ref": "#/$defs/City"},
        "minItems": 2,
        "$defs": {
            "City": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        },
    }
    response = await openai_provider.complete(small, ask("Two cities", response_schema=schema))
    assert json.loads(response.text) == [{"name": "example name"}] * 2
    sent = openai_server.requests[-1].body["response_format"]["json_schema"]
    assert sent["name"] == "Cities"
    assert sent["schema"] == {
        "type": "object",
        "properties": {"value": {k: v for k, v in schema.items() if k != "$defs"}},
        "required": ["value"],
        "additionalProperties": False,
        "$defs": schema["$defs"],
    }
    *_, done = await collect(openai_provider.stream(small, ask("Two cities", response_schema=schema)))
    assert isinstance(done, StreamDone)
    assert json.loads(done.response.text) == [{"name": "example name"}] * 2


def test_openais_own_api_gets_max_completion_tokens_unless_told_otherwise() -> None:
    # gpt-5 and the o-series refuse max_tokens ("Unsupported parameter: 'max_tokens' is not supported
    # with this model. Use 'max_completion_tokens' instead.", langgenius/dify#24307); only the
    # built-in `openai` provider sent the right field, a second OpenAI provider or a bare
    # OpenAIProvider() sent max_tokens.
    from gearshift.config._provider_config import ProviderConfig
    from gearshift.providers._factory import _build

    assert OpenAIProvider().max_tokens_field == "max_completion_tokens"
    assert OpenAIProvider(base_url="https://api.openai.com/v1").max_tokens_field == "max_completion_tokens"
    assert OpenAIProvider(base_url="https://eu.api.openai.com/v1").max_tokens_field == "max_completion_tokens"
    assert OpenAIProvider(base_url="https://api.openai.com.example/v1").max_tokens_field == "max_tokens"
    assert OpenAIProvider(base_url="http://127.0.0.1:11434/v1").max_tokens_field == "max_tokens"
    assert OpenAIProvider(max_tokens_field="max_tokens").max_tokens_field == "max_tokens"
    team = ProviderConfig.model_validate({"kind": "openai", "api_key_env": "TEAM_OPENAI_KEY"})
    local = ProviderConfig.model_validate(
        {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "require_key": False}
    )
    told = ProviderConfig.model_validate(
        {"kind": "openai", "api_key_env": "TEAM_OPENAI_KEY", "max_tokens_field": "max_tokens"}
    )
    built = [_build(name, settings) for name, settings in [("team", team), ("local", local), ("told", told)]]
    assert [p.max_tokens_field for p in built if isinstance(p, OpenAIProvider)] == [
        "max_completion_tokens",
        "max_tokens",
        "max_tokens",
    ]


async def test_strict_schemas_are_sent_as_openais_strict_mode_takes_them(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    # Strict mode refuses an object without additionalProperties false ("'additionalProperties' is
    # required to be supplied and to be false") or with an optional property ("'required' is required
    # to be supplied and to be an array including every key in properties. Missing 'params'.",
    # kevinwatt/mysql-mcp#5). The first is added; the second is refused before sending, named.
    place = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    search = ToolSpec(
        name="search",
        parameters={
            "type": "object",
            "properties": {"properties": {"type": "string"}, "place": {"$ref": "#/$defs/Place"}},
            "required": ["properties", "place"],
            "$defs": {"Place": place},
        },
        strict=True,
    )
    await openai_provider.complete(small, ask("Find it", tools=(search,)))
    [sent] = openai_server.requests[-1].body["tools"]
    assert sent["function"]["strict"] is True
    assert sent["function"]["parameters"] == {
        **search.parameters,
        "$defs": {"Place": {**place, "additionalProperties": False}},
        "additionalProperties": False,
    }
    loose = WEATHER.model_copy(update={"strict": True})  # "days" is optional
    with pytest.raises(ProviderError, match=r"tool 'get_weather', at the top: .* 'days' is not") as caught:
        await openai_provider.complete(small, ask("Weather?", tools=(loose,)))
    assert caught.value.kind == "bad_request"
    open_map = {"type": "object", "additionalProperties": {"type": "string"}}
    with pytest.raises(ProviderError, match=r"response_schema, at the top: .*additionalProperties false"):
        await openai_provider.complete(small, ask("Tags", response_schema=open_map, response_strict=True))
    assert len(openai_server.requests) == 1


async def test_a_long_tool_description_reaches_the_model_whole_within_the_apis_limit(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    # The real API refuses a description over 1,024 characters ("Invalid 'tools[13].function.
    # description': string too long. Expected a string with maximum length 1024", getsentry/sentry-mcp
    # #106), which MCP tools often have: the rest goes on as the parameters' own description.
    words = " ".join(f"word{n}" for n in range(400))  # 2,689 characters
    tool = ToolSpec(
        name="search",
        description=words,
        parameters={"type": "object", "description": "Search options.", "properties": {}},
    )
    await openai_provider.complete(small, ask("Find it", tools=(tool,)))
    function = openai_server.requests[-1].body["tools"][0]["function"]
    head, rest = function["description"], function["parameters"]["description"]
    assert len(head) <= 1024 and head.endswith("…")
    assert rest.startswith("(description, continued) ") and rest.endswith("\n\nSearch options.")
    assert (
        head.removesuffix("…")
        + " "
        + rest.removeprefix("(description, continued) ").removesuffix("\n\nSearch options.")
        == words
    )


async def test_an_array_without_items_is_sent_with_any_items(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    # The real API refuses "Invalid schema for function 'filesystem_read_multiple_files': In
    # context=('properties', 'paths'), array schema missing items." (sigoden/aichat#1049), as the
    # filesystem MCP server's tools were written; JSON Schema reads a missing `items` as any item.
    tool = ToolSpec(
        name="read_files",
        parameters={
            "type": "object",
            "properties": {"paths": {"type": "array"}, "tags": {"type": ["array", "null"]}},
        },
    )
    await openai_provider.complete(small, ask("Read them", tools=(tool,)))
    sent = openai_server.requests[-1].body["tools"][0]["function"]["parameters"]["properties"]
    assert sent == {"paths": {"type": "array", "items": {}}, "tags": {"type": ["array", "null"], "items": {}}}


async def test_a_tool_results_images_follow_it_in_a_user_message(
    openai_provider: OpenAIProvider, openai_server: LocalOpenAIServer, small: ModelSpec
) -> None:
    # The real API takes images only in user messages ("Invalid 'messages[234]'. Image URLs are only
    # allowed for messages with role 'user', but this message with role 'tool' contains an image
    # URL.", OpenHands/OpenHands#7700); a screenshot a Claude step saw was dropped for OpenAI.
    shot = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    request = ChatRequest(
        messages=(
            Message.user("Open both pages."),
            Message.assistant(
                "", [ToolCall("call_1", "get_weather", "{}"), ToolCall("call_2", "get_weather", "{}")]
            ),
            Message("tool", (TextPart("page one"), shot), tool_call_id="call_1"),
            Message("tool", (shot,), tool_call_id="call_2"),
            Message.user("What do they show?"),
        ),
        tools=(WEATHER,),
    )
    await openai_provider.complete(small, request)
    messages = openai_server.requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user", "user"]
    assert messages[2]["content"] == "page one\n(the result's images follow in the next user message)"
    assert messages[3]["content"] == "(the result's images follow in the next user message)"
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert messages[4]["content"] == [
        {"type": "text", "text": "The images the tool results above returned:"},
        image,
        image,
    ]


async def test_a_stream_whose_sdk_keeps_no_decoder_is_read_unwatched() -> None:
    # The [DONE] watch swaps the SDK stream's private `_decoder`; an SDK release without it made
    # every stream fail with an AttributeError before its first chunk. It is now read as before the
    # watch: its chunks, and no STREAM_DONE.
    from gearshift.providers._done_sentinel import DoneSentinelStream

    class Chunks:
        def __init__(self) -> None:
            self.closed = False

        async def __aiter__(self) -> Any:
            for chunk in ({"choices": []}, {"choices": [{"delta": {"content": "hi"}}]}):
                yield chunk

        async def close(self) -> None:
            self.closed = True

    source = Chunks()
    stream = DoneSentinelStream(source)
    assert [chunk async for chunk in stream] == [{"choices": []}, {"choices": [{"delta": {"content": "hi"}}]}]
    await stream.close()
    assert source.closed
