"""What only AnthropicProvider does, through the real `anthropic` SDK against the local Anthropic server.

The behaviour every provider shares (errors, timeouts, streams, keys, tools) is in
`test_provider_contract.py`.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx2
import pytest
from routed_answers import routed

from gearshift import ModelRegistry, Router, SignalScorer, StepContext, TextDelta
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
    Usage,
)
from gearshift._models import ModelPrices, ModelSpec
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers._anthropic import AnthropicProvider, tool_call_id
from gearshift.signals._tokens import estimate_request_tokens, estimate_tokens
from gearshift.testing import Fail, LocalAnthropicServer

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


async def collect(events: Any) -> list[StreamEvent]:
    return [event async for event in events]


def last_body(server: LocalAnthropicServer) -> Any:
    return server.requests[-1].body


async def test_complete_sends_the_default_max_tokens_and_keeps_the_stop_reason(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    response = await anthropic_provider.complete(claude, ask())
    assert response.metadata["stop_reason"] == "end_turn"
    body = last_body(anthropic_server)
    assert body["max_tokens"] == 4096
    assert "temperature" not in body


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
    await anthropic_provider.complete(claude, ask("Describe a user", response_schema=PERSON))
    body = last_body(anthropic_server)
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert body["tools"][-1]["input_schema"] == PERSON


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


async def test_default_max_tokens_capped_by_the_model(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    capped = claude.model_copy(update={"max_output_tokens": 8})
    response = await anthropic_provider.complete(capped, ask())  # no max_tokens: the default, capped
    assert last_body(anthropic_server)["max_tokens"] == 8
    assert response.finish_reason == "length"
    assert response.usage.output_tokens <= 8


async def test_whitespace_text_is_never_sent_as_a_text_block(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    # The real API refuses a text block of whitespace alone (anthropics/claude-code#23440: "messages:
    # text content blocks must contain non-whitespace text"): a model's "\n\n" before a tool call
    # came back in the next step's history.
    request = ChatRequest(
        messages=(
            Message.system("  \n"),
            Message.user((TextPart("Look cats up."), TextPart(" "))),
            Message.assistant("\n\n", [ToolCall("toolu_1", "lookup", '{"term": "cat", "limit": 3}')]),
            Message.tool("toolu_1", "three cats"),
        ),
        tools=(LOOKUP,),
    )
    await anthropic_provider.complete(claude, request)
    body = last_body(anthropic_server)
    assert "system" not in body
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Look cats up."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"term": "cat", "limit": 3}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "three cats"}],
        },
    ]


async def test_a_prefill_ending_in_whitespace_is_trimmed(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    # The real API refuses "messages: final assistant content cannot end with trailing whitespace"
    # (tailcallhq/forgecode#1872); only the final assistant turn is held to it.
    request = ChatRequest(
        messages=(
            Message.user("Name a gear."),
            Message.assistant("Sure: "),
            Message.user("A spur gear?"),
            Message.assistant("Yes, it is \n"),
        )
    )
    await anthropic_provider.complete(claude, request)
    messages = last_body(anthropic_server)["messages"]
    assert messages[1]["content"] == [{"type": "text", "text": "Sure: "}]
    assert messages[-1] == {"role": "assistant", "content": [{"type": "text", "text": "Yes, it is"}]}


@pytest.mark.parametrize(
    ("messages", "refusal"),
    [
        (
            [{"role": "user", "content": [{"type": "text", "text": " \n"}]}],
            "messages: text content blocks must contain non-whitespace text",
        ),
        (
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Well "}],
            "messages: final assistant content cannot end with trailing whitespace",
        ),
    ],
)
def test_local_server_refuses_what_the_api_refuses(
    anthropic_server: LocalAnthropicServer, messages: list[dict[str, Any]], refusal: str
) -> None:
    answer = httpx2.post(
        f"{anthropic_server.url}/v1/messages",
        json={"model": "claude-small", "max_tokens": 10, "messages": messages},
        headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {"type": "invalid_request_error", "message": refusal}


JPEG = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00").decode()
WEBP = base64.b64encode(b"RIFF\x24\x00\x00\x00WEBPVP8 ").decode()


async def test_an_image_is_sent_with_the_media_type_its_bytes_show(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    # The real API checks the declared type against the image ("Image does not match the provided
    # media type image/png", home-assistant/core#167208) and knows no image/jpg: a JPEG sent with
    # ImagePart's default type, or as a data:image/jpg URL, failed on every Claude model.
    request = ChatRequest(
        messages=(
            Message.user(
                (TextPart("Compare."), ImagePart(data=JPEG), ImagePart(url=f"data:image/jpg;base64,{JPEG}"))
            ),
            Message.assistant("", [ToolCall("toolu_1", "lookup", '{"term": "cat", "limit": 3}')]),
            Message("tool", (ImagePart(data=WEBP, media_type="image/png"),), tool_call_id="toolu_1"),
        ),
        tools=(LOOKUP,),
    )
    await anthropic_provider.complete(claude, request)
    messages = last_body(anthropic_server)["messages"]
    assert [block["source"]["media_type"] for block in messages[0]["content"][1:]] == ["image/jpeg"] * 2
    assert messages[2]["content"][0]["content"][0]["source"] == {
        "type": "base64",
        "media_type": "image/webp",
        "data": WEBP,
    }


async def test_an_image_type_anthropic_does_not_take_is_refused_before_sending(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    bmp = base64.b64encode(b"BM6\x00\x00\x00\x00\x00\x00\x006\x00").decode()
    request = ChatRequest(
        messages=(Message.user((TextPart("What is this?"), ImagePart(data=bmp, media_type="image/bmp"))),)
    )
    with pytest.raises(
        ProviderError, match=r"messages\[0\] \(user\): image of media type 'image/bmp'"
    ) as caught:
        await anthropic_provider.complete(claude, request)
    assert caught.value.kind == "bad_request"
    assert anthropic_server.requests == []


async def test_a_request_with_nothing_but_whitespace_is_refused_before_sending(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    request = ChatRequest(messages=(Message.system("Be brief."), Message.user(" \n")))
    with pytest.raises(
        ProviderError, match="every user and assistant message is empty or whitespace"
    ) as caught:
        await anthropic_provider.complete(claude, request)
    assert caught.value.kind == "bad_request"
    assert anthropic_server.requests == []


def test_local_server_refuses_an_image_the_api_refuses(anthropic_server: LocalAnthropicServer) -> None:
    def send(media_type: str) -> Any:
        image = {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": JPEG}}
        message = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}
        return httpx2.post(
            f"{anthropic_server.url}/v1/messages",
            json={"model": "claude-small", "max_tokens": 10, "messages": [message]},
            headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"},
        ).json()["error"]["message"]

    assert send("image/png") == (
        "messages.0.content.1.image.source.base64.data: "
        "Image does not match the provided media type image/png"
    )
    assert send("image/jpg") == (
        "messages.0.content.1.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
        "'image/gif' or 'image/webp'"
    )


async def test_only_the_last_four_cache_breakpoints_are_sent(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    # The real API refuses a fifth mark ("A maximum of 4 blocks with cache_control may be provided.
    # Found 5.", Wei-Shaw/sub2api#176): an application marking every turn failed from its fifth turn.
    mark = {"type": "ephemeral"}
    turns = [Message("system", "Be brief.", cache_control=mark)]
    for n in range(3):
        turns += [Message("user", f"Question {n}", cache_control=mark), Message.assistant(f"Answer {n}")]
    turns.append(Message("user", "Last question", cache_control=mark))
    await anthropic_provider.complete(claude, ChatRequest(messages=tuple(turns)))
    body = last_body(anthropic_server)
    assert body["system"] == "Be brief."  # its mark was the first of five: a plain system prompt again
    marked = [
        block["text"] for turn in body["messages"] for block in turn["content"] if "cache_control" in block
    ]
    assert marked == ["Question 0", "Question 1", "Question 2", "Last question"]


async def test_a_wrapped_answer_keeps_its_definitions_where_its_refs_point(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    city = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    schema = {"type": "array", "items": {"$ref": "#/$defs/City"}, "minItems": 2, "$defs": {"City": city}}
    response = await anthropic_provider.complete(claude, ask("Two cities", response_schema=schema))
    assert json.loads(response.text) == [{"name": "example name"}] * 2
    [answer_tool] = last_body(anthropic_server)["tools"]
    assert answer_tool["input_schema"]["$defs"] == {"City": city}
    assert "$defs" not in answer_tool["input_schema"]["properties"]["value"]


def _sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)


def _message_start(usage: dict[str, int]) -> dict[str, Any]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-small"}
    return {"type": "message_start", "message": {**message, "content": [], "usage": usage}}


async def test_a_stream_that_breaks_with_an_error_event_is_charged_its_input(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    # The 200 came and message_start said what Anthropic bills (2,000 prompt tokens, 10,000 written to
    # the cache), then an overloaded_error event: nothing reached the caller, so the router falls back,
    # and the broken attempt is charged its input (it was charged nothing: the error event read as a
    # call the provider refused), as reported, not gearshift's estimate of a one-line prompt.
    reported = {"input_tokens": 2000, "cache_creation_input_tokens": 10000, "output_tokens": 1}
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    anthropic_server.script("claude-small", Fail(200, body=_sse(_message_start(reported), overloaded)))
    large = claude.model_copy(update={"id": "claude-large", "model": "claude-large", "tier": 1})
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0)
    async with Router(ModelRegistry([claude, large]), policy=SignalScorer(), providers=[provider]) as router:
        stream = router.astream(ask("What is 2 + 2?"))
        assert "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    assert stream.result is not None
    broken, answered = stream.result.attempts
    assert (broken.model_id, broken.ok, answered.model_id) == ("claude-small", False, "claude-large")
    assert (broken.usage.input_tokens, broken.usage.cache_write_tokens) == (12000, 10000)
    assert not broken.usage_estimated


async def test_a_stream_that_breaks_is_charged_the_input_its_message_start_reported(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    # message_start said what Anthropic bills (a 12,000-token prompt, 10,000 of it written to the
    # cache), then "Hello" reached the caller and an overloaded_error event broke the stream: the
    # attempt is charged those counts, not gearshift's estimate of a one-line prompt (10 tokens).
    reported = {"input_tokens": 2000, "cache_creation_input_tokens": 10000, "output_tokens": 1}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    hello = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    body = _sse(_message_start(reported), block, hello, overloaded)
    anthropic_server.script("claude-small", Fail(200, body=body))
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=10.0)])
    registry = ModelRegistry([claude])
    async with Router(registry, policy=SignalScorer(), providers=[provider], budgets=ledger) as router:
        stream = router.astream(ask("What is 2 + 2?"), StepContext(run_id="r1"))
        with pytest.raises(ProviderError, match="Overloaded"):
            assert [event async for event in stream]
    billed = Usage(input_tokens=12000, output_tokens=1, cache_write_tokens=10000)
    # The cache writes at Anthropic's 1.25x input, which `claude`'s prices leave out.
    written = claude.model_copy(update={"prices": ModelPrices(input=3.0, output=15.0, cache_write=3.75)})
    assert (await ledger.status(["run:r1"])).limits[0].spent_usd == pytest.approx(written.cost(billed))


def _unreported(usage: dict[str, Any] | None, *, streamed: bool) -> Fail:
    """An Anthropic-compatible gateway's answer "Paris is the capital." carrying this usage (None: none)."""
    extra = {"usage": usage} if usage is not None else {}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-small"}
    if not streamed:
        content = [{"type": "text", "text": "Paris is the capital."}]
        return Fail(200, body={**message, "content": content, "stop_reason": "end_turn", **extra})
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    text = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Paris is the capital."},
    }
    stop = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, **extra}
    start = {"type": "message_start", "message": {**message, "content": [], **extra}}
    events = (start, block, text, {"type": "content_block_stop", "index": 0}, stop, {"type": "message_stop"})
    return Fail(200, body=_sse(*events))


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    "usage",
    [None, {"input_tokens": None, "output_tokens": None}, {"input_tokens": 0, "output_tokens": 0}],
    ids=["absent", "nulls", "zeros"],
)
async def test_usage_a_gateway_leaves_out_is_estimated_never_charged_as_zero(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec, usage: dict[str, Any] | None, streamed: bool
) -> None:
    # Gateways that speak the Messages API (a proxy in front of Bedrock or Vertex, a local server) may
    # send no usage or zero counts. Read as 0 the answer was free: no cost, and its reservation was
    # released as if the call had never been made, so a hard limit was never charged for it.
    anthropic_server.script("claude-small", _unreported(usage, streamed=streamed))
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=10.0)])
    registry = ModelRegistry([claude])
    async with Router(registry, policy=SignalScorer(), providers=[provider], budgets=ledger) as router:
        answer = (
            await routed(router, ask("What is 2 + 2?"), StepContext(run_id="r1"), streamed=streamed)
        ).response
    assert answer.text == "Paris is the capital."
    assert answer.metadata["usage_estimated"] is True
    assert answer.usage.input_tokens == estimate_request_tokens(ask("What is 2 + 2?")) > 0
    assert answer.usage.output_tokens == estimate_tokens("Paris is the capital.") > 0
    spent = (await ledger.status(["run:r1"])).limits[0].spent_usd
    assert spent == pytest.approx(answer.cost_usd) and spent > 0


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_an_unreported_answer_to_a_request_with_tools_is_charged_the_tool_use_prompt_too(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec, streamed: bool
) -> None:
    # The API bills its tool-use system prompt (346 tokens with `auto`) in input_tokens; an answer a
    # gateway reported no usage for was estimated from the request alone, 346 tokens short, though a
    # failed or cancelled call was charged the prompt (and the reservation held it).
    anthropic_server.script("claude-small", _unreported(None, streamed=streamed))
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=10.0)])
    request = ask("What is 2 + 2?", tools=(LOOKUP,))
    async with Router(
        ModelRegistry([claude]), policy=SignalScorer(), providers=[provider], budgets=ledger
    ) as router:
        answer = (await routed(router, request, StepContext(run_id="r1"), streamed=streamed)).response
    billed = Usage(estimate_request_tokens(request) + 346, estimate_tokens("Paris is the capital."))
    assert answer.usage == billed
    assert (await ledger.status(["run:r1"])).limits[0].spent_usd == pytest.approx(claude.cost(billed))


async def test_a_broken_stream_whose_message_start_reported_zeros_is_charged_its_estimated_input(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    # A gateway's message_start with zero counts, "Hello", then a break: the zeros are no report of
    # what was billed, so the prompt is charged at gearshift's estimate (it was charged nothing).
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    hello = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    body = _sse(_message_start({"input_tokens": 0, "output_tokens": 0}), block, hello, overloaded)
    anthropic_server.script("claude-small", Fail(200, body=body))
    provider = AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=10.0)])
    async with Router(
        ModelRegistry([claude]), policy=SignalScorer(), providers=[provider], budgets=ledger
    ) as router:
        stream = router.astream(ask("What is 2 + 2?"), StepContext(run_id="r1"))
        with pytest.raises(ProviderError, match="Overloaded"):
            assert [event async for event in stream]
    billed = Usage(estimate_request_tokens(ask("What is 2 + 2?")), estimate_tokens("Hello"))
    assert billed.input_tokens > 0
    assert (await ledger.status(["run:r1"])).limits[0].spent_usd == pytest.approx(claude.cost(billed))
