"""The local servers in `gearshift.testing`, through the raw SDKs and plain HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from enum import Enum
from typing import Any, Literal

import anthropic
import openai
import pytest
from pydantic import BaseModel, Field

from gearshift.testing import (
    CutStream,
    Delay,
    Fail,
    LocalAnthropicServer,
    LocalOpenAIServer,
    Reply,
    example_from_schema,
)


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str = Field(min_length=12)
    zip_code: str = Field(max_length=5)
    country: Literal["FR", "DE"]


class Node(BaseModel):
    label: str
    children: list[Node] = Field(default_factory=list)


class Order(BaseModel):
    id: int = Field(gt=100, multiple_of=7)
    ratio: float = Field(ge=0.0, lt=1.0)
    color: Color
    address: Address
    lines: list[Address] = Field(min_length=2)
    note: str | None
    tags: set[str] = Field(min_length=3)
    tree: Node
    paid: bool
    maybe_count: int | None = None


def test_schema_examples_validate_against_pydantic_models() -> None:
    schema = Order.model_json_schema()
    value = example_from_schema(schema)
    order = Order.model_validate(value)  # raises if any generated value breaks the schema
    assert order.color is Color.RED
    assert order.address.country == "FR"
    assert len(order.lines) == 2
    assert len(order.tags) == 3
    assert order.id % 7 == 0
    assert order.id > 100
    assert "maybe_count" not in value  # optional properties are left out


def test_schema_examples_for_scalars_and_formats() -> None:
    assert example_from_schema({"type": "string", "format": "date-time"}) == "2024-01-01T00:00:00Z"
    assert example_from_schema({"type": ["null", "integer"], "maximum": -3}) == -3
    assert example_from_schema({"const": 42}) == 42
    assert example_from_schema({"type": "object", "properties": {"a": {}}, "required": ["a"]}) == {
        "a": "example a"
    }


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_openai_errors_use_openais_shape() -> None:
    with LocalOpenAIServer(models=("small",), api_key="sk-abc-123") as server:
        url = f"{server.base_url}/chat/completions"
        body = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
        status, payload = _post(url, body)
        assert status == 401
        assert payload["error"]["code"] == "invalid_api_key"
        status, payload = _post(url, {**body, "model": "huge"}, {"Authorization": "Bearer sk-abc-123"})
        assert status == 404
        assert payload["error"]["code"] == "model_not_found"
        status, payload = _post(url, body, {"Authorization": "Bearer sk-abc-123"})
        assert status == 200
        assert payload["object"] == "chat.completion"
        assert [r.model for r in server.requests] == ["small", "huge", "small"]
        assert all("authorization" not in r.headers for r in server.requests)


def test_anthropic_errors_use_anthropics_shape() -> None:
    with LocalAnthropicServer(api_key="ak-1234") as server:
        url = f"{server.base_url}/v1/messages"
        body = {"model": "claude-small", "messages": [{"role": "user", "content": "hi"}]}
        status, payload = _post(url, {**body, "max_tokens": 5}, {"x-api-key": "nope"})
        assert status == 401
        assert payload["error"]["type"] == "authentication_error"
        status, payload = _post(url, body, {"x-api-key": "ak-1234"})
        assert status == 400
        assert payload == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            "request_id": "req_local",
        }


async def test_openai_sdk_stream_shape_and_model_list() -> None:
    with LocalOpenAIServer() as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        assert [m.id async for m in client.models.list()] == ["small", "large"]
        stream = await client.chat.completions.create(
            model="large",
            messages=[{"role": "user", "content": "Say something long enough to stream"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        await client.close()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text.startswith("Simulated answer from model 'large'")


async def test_anthropic_sdk_event_sequence() -> None:
    tool = {
        "name": "add",
        "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    }
    with LocalAnthropicServer() as server:
        server.script("claude-large", Reply(text="Adding.", tool_calls=[("add", {"a": 2})]))
        client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key="unused", max_retries=0)
        stream = await client.messages.create(
            model="claude-large",
            max_tokens=100,
            messages=[{"role": "user", "content": "add"}],
            tools=[tool],  # type: ignore[list-item]
            stream=True,
        )
        events: list[Any] = [event async for event in stream]  # type: ignore[union-attr]
        await client.close()
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert {d.type for d in deltas} == {"text_delta", "input_json_delta"}
    assert json.loads("".join(d.partial_json for d in deltas if d.type == "input_json_delta")) == {"a": 2}
    final = events[-2]
    assert final.type == "message_delta"
    assert final.delta.stop_reason == "tool_use"
    assert final.usage.output_tokens > 0


def test_stop_sequences_max_tokens_and_json_mode() -> None:
    with LocalOpenAIServer() as server:
        url = f"{server.base_url}/chat/completions"
        base = {"model": "small", "messages": [{"role": "user", "content": "one two three"}]}
        _, stopped = _post(url, {**base, "stop": "model"})
        assert stopped["choices"][0]["message"]["content"] == "Simulated answer from "
        _, short = _post(url, {**base, "max_tokens": 3})
        assert short["choices"][0]["finish_reason"] == "length"
        assert short["usage"]["completion_tokens"] <= 3
        _, as_json = _post(url, {**base, "response_format": {"type": "json_object"}})
        assert "one two three" in json.loads(as_json["choices"][0]["message"]["content"])["answer"]


JOKE = "Tell me a joke about cats. Return the result as a JSON with 'setup' and 'punchline' keys."


class Joke(BaseModel):
    setup: str
    punchline: str
    rating: int = Field(ge=1, le=5)


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object"},
        # JSON mode in schema form (how gearshift's OpenAI provider asks for any JSON object).
        {"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}},
    ],
)
def test_json_mode_answers_an_object_with_the_keys_the_prompt_names(response_format: dict[str, Any]) -> None:
    with LocalOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        messages: Any = [{"role": "user", "content": JOKE}]
        answer = client.chat.completions.create(
            model="small", messages=messages, response_format=response_format
        )  # type: ignore[arg-type]
        assert set(json.loads(answer.choices[0].message.content or "")) == {"setup", "punchline"}
        # Without JSON mode, the same prompt gets plain text, as from a real model asked nothing special.
        plain = client.chat.completions.create(model="small", messages=messages)
        with pytest.raises(json.JSONDecodeError):
            json.loads(plain.choices[0].message.content or "")
        client.close()


def test_a_json_schema_with_properties_gets_an_answer_matching_it() -> None:
    with LocalOpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        parsed = client.beta.chat.completions.parse(
            model="small", messages=[{"role": "user", "content": JOKE}], response_format=Joke
        )
        assert isinstance(parsed.choices[0].message.parsed, Joke)
        client.close()


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_openai_cuts_a_scripted_reply_to_the_output_cap(field: str) -> None:
    with LocalOpenAIServer() as server:
        url = f"{server.base_url}/chat/completions"
        body = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
        server.script("small", Reply(text="word " * 500), Reply(text="word " * 500), Reply(text="short"))
        _, capped = _post(url, {**body, field: 40})
        _, free = _post(url, body)
        _, fits = _post(url, {**body, field: 40})
    assert capped["choices"][0]["finish_reason"] == "length"
    assert capped["usage"]["completion_tokens"] == 40
    assert capped["choices"][0]["message"]["content"].split() == ["word"] * 40
    assert free["usage"]["completion_tokens"] == 500  # no cap: the script as written
    assert (fits["choices"][0]["finish_reason"], fits["choices"][0]["message"]["content"]) == (
        "stop",
        "short",
    )


def test_anthropic_cuts_a_scripted_reply_to_max_tokens_and_drops_a_tool_call_that_no_longer_fits() -> None:
    with LocalAnthropicServer() as server:
        url = f"{server.base_url}/v1/messages"
        body = {"model": "claude-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
        server.script(
            "claude-small",
            Reply(text="word " * 300),
            Reply(text="one two", tool_calls=[("search", {"query": "a long query " * 10})]),
        )
        _, capped = _post(url, body)
        _, called = _post(url, body)
    assert capped["stop_reason"] == "max_tokens"
    assert capped["usage"]["output_tokens"] == 10
    assert capped["content"][0]["text"].split() == ["word"] * 10
    assert called["stop_reason"] == "max_tokens"
    assert [block["type"] for block in called["content"]] == ["text"]


def test_required_tool_choice_moves_on_to_a_tool_not_called_yet() -> None:
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
        for name in ("search", "finish")
    ]
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "found"},
    ]
    with LocalOpenAIServer() as server:
        url = f"{server.base_url}/chat/completions"
        _, forced = _post(
            url, {"model": "small", "messages": messages, "tools": tools, "tool_choice": "required"}
        )
        _, free = _post(url, {"model": "small", "messages": messages, "tools": tools})
    assert forced["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "finish"
    assert free["choices"][0]["message"]["content"].endswith('search returned "found"')


def test_scripts_are_per_model_and_consumed_in_order() -> None:
    with LocalOpenAIServer() as server:
        url = f"{server.base_url}/chat/completions"
        server.script("large", Fail(status=503), Reply(text="scripted"))
        body = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
        assert _post(url, body)[0] == 200  # small is unscripted
        assert server.pending("large") == 2
        assert _post(url, {**body, "model": "large"})[0] == 503
        assert _post(url, {**body, "model": "large"})[1]["choices"][0]["message"]["content"] == "scripted"
        assert server.pending("large") == 0


def test_requests_are_recorded_from_many_threads() -> None:
    with LocalOpenAIServer() as server:
        url = f"{server.base_url}/chat/completions"
        body = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
        threads = [threading.Thread(target=_post, args=(url, body)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(server.requests) == 8


async def test_thirty_parallel_connections_are_all_accepted() -> None:
    # A router's parallel calls open a connection each; a listen backlog of 5 dropped the rest while
    # the first were answering, and the SDK reported a connection error the real API never gives.
    with LocalOpenAIServer(models=("small",)) as server:
        server.script("small", *[Delay(0.3)] * 30)
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=2.0)
        async with client:
            answers = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="small", messages=[{"role": "user", "content": "hi"}]
                    )
                    for _ in range(30)
                ),
                return_exceptions=True,
            )
    assert [a for a in answers if isinstance(a, BaseException)] == []


def test_close_does_not_wait_for_a_delayed_answer() -> None:
    server = LocalOpenAIServer()
    server.script("small", Delay(30.0))
    url = f"{server.base_url}/chat/completions"
    errors: list[BaseException] = []

    def call() -> None:
        try:
            _post(url, {"model": "small", "messages": [{"role": "user", "content": "hi"}]})
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while not server.requests:
        time.sleep(0.01)
    started = time.monotonic()
    server.close()
    thread.join(timeout=5)
    assert time.monotonic() - started < 2
    assert not thread.is_alive()
    assert errors


def test_cut_stream_on_a_plain_request_drops_the_connection() -> None:
    with LocalOpenAIServer() as server:
        server.script("small", CutStream(after_chunks=1))
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _post(
                f"{server.base_url}/chat/completions",
                {"model": "small", "messages": [{"role": "user", "content": "x"}]},
            )


def test_a_client_resetting_a_kept_alive_connection_prints_nothing_and_the_server_serves_on(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Connection pools close idle connections with a reset; socketserver printed a traceback for
    # each one while the server waited for the connection's next request.
    body = json.dumps({"model": "small", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with LocalOpenAIServer() as server:
        for _ in range(3):
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            assert connection.recv(65536).startswith(b"HTTP/1.1 200")
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # linger 0: a reset, not a FIN
        deadline = time.monotonic() + 5
        while len(server.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # let the handler threads meet the resets
        status, answer = _post(
            f"{server.base_url}/chat/completions",
            {"model": "small", "messages": [{"role": "user", "content": "again"}]},
        )
    assert status == 200
    assert answer["choices"][0]["message"]["content"]
    assert "Traceback" not in capfd.readouterr().err


def test_public_names() -> None:
    import gearshift.testing

    assert sorted(gearshift.testing.__all__) == [
        "Action",
        "CutStream",
        "Delay",
        "Drip",
        "Fail",
        "LocalAnthropicServer",
        "LocalOpenAIServer",
        "LocalRedisServer",
        "LocalServer",
        "RecordedRequest",
        "RedisServerMissing",
        "Reply",
        "example_from_schema",
    ]
