"""The behaviour every provider must show, run once per SDK against its local server.

Each test takes `wired`: a provider built on an official SDK, the local server it talks to, and the
model it serves there; it runs once for OpenAI and once for Anthropic. What only one SDK does (request
conversion, tool-call ids, JSON through a forced tool, `max_tokens_field`...) is tested in
`test_provider_openai.py` and `test_provider_anthropic.py`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from gearshift._bridge import run_sync
from gearshift._errors import ProviderError
from gearshift._messages import (
    ChatRequest,
    ChatResponse,
    Message,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from gearshift._models import ModelSpec
from gearshift.providers._anthropic import AnthropicProvider
from gearshift.providers._base import Provider
from gearshift.providers._openai import OpenAIProvider
from gearshift.providers._sdk import import_sdk, parse_retry_after
from gearshift.testing import CutStream, Delay, Fail, LocalAnthropicServer, LocalOpenAIServer, Reply

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "hours": {"type": "integer", "minimum": 3},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit", "hours"],
    },
)
WEATHER_CALL = {"city": "example city", "unit": "celsius", "hours": 3}  # what the simulated model sends
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "role": {"enum": ["admin", "user"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
    },
    "required": ["name", "role", "tags"],
}
PERSON_ANSWER = {"name": "example name", "role": "admin", "tags": ["example tags", "example tags 1"]}

# The conftest fixtures that make up each SDK's provider, server and model.
SDK_FIXTURES = {
    "openai": ("openai_provider", "openai_server", "small"),
    # The direct aiohttp path of plain calls (gearshift serve's default) must behave the same.
    "openai-aiohttp": ("openai_aiohttp_provider", "openai_server", "small"),
    "anthropic": ("anthropic_provider", "anthropic_server", "claude"),
}
BOTH_CALLS = pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])


@dataclass(frozen=True)
class WiredProvider:
    """A provider on an official SDK, the local server it talks to, and the model it serves there."""

    provider: OpenAIProvider | AnthropicProvider
    server: LocalOpenAIServer | LocalAnthropicServer
    model: ModelSpec

    @property
    def key(self) -> str:
        """The key the server requires."""
        assert self.server.api_key
        return self.server.api_key

    def connect(self, **settings: Any) -> OpenAIProvider | AnthropicProvider:
        """Another provider of the same SDK on the same server, with these settings (the key by default)."""
        settings.setdefault("api_key", self.key)
        settings.setdefault("http_client", self.provider.http_client)
        return type(self.provider)(base_url=self.server.base_url, **settings)


@pytest.fixture(params=sorted(SDK_FIXTURES))
def wired(request: pytest.FixtureRequest) -> WiredProvider:
    provider, server, model = (request.getfixturevalue(name) for name in SDK_FIXTURES[request.param])
    return WiredProvider(provider, server, model)


def ask(text: str = "What is the capital of France?", **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),), **kwargs)


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def drain(events: AsyncIterator[StreamEvent], into: list[StreamEvent]) -> None:
    async for event in events:
        into.append(event)


async def answer(
    provider: OpenAIProvider | AnthropicProvider, model: ModelSpec, request: ChatRequest, *, streamed: bool
) -> ChatResponse:
    """The response to one call, made plainly or streamed."""
    if not streamed:
        return await provider.complete(model, request)
    *_, done = await collect(provider.stream(model, request))
    assert isinstance(done, StreamDone)
    return done.response


# -- answers ------------------------------------------------------------------------------------


async def test_complete_returns_text_usage_and_cost(wired: WiredProvider) -> None:
    model = wired.model
    response = await wired.provider.complete(model, ask())
    assert f"'{model.model}'" in response.text
    assert "What is the capital of France?" in response.text
    assert (response.model_id, response.provider_model, response.finish_reason) == (
        model.id,
        model.model,
        "stop",
    )
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.cost_usd == pytest.approx(model.cost(response.usage))
    assert "usage_estimated" not in response.metadata
    [request] = wired.server.requests
    assert request.model == model.model
    assert "authorization" not in request.headers


async def test_stream_yields_deltas_in_order_then_one_done_with_usage(wired: WiredProvider) -> None:
    model = wired.model
    plain = await wired.provider.complete(model, ask())
    *deltas, done = await collect(wired.provider.stream(model, ask()))
    assert isinstance(done, StreamDone)
    assert len(deltas) > 3
    assert all(isinstance(d, TextDelta) for d in deltas)
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == done.response.text == plain.text
    assert done.response.usage == plain.usage  # the usage the stream reports, not an estimate
    assert done.response.cost_usd == pytest.approx(model.cost(plain.usage))
    assert done.response.cost_usd > 0
    assert wired.server.requests[-1].body["stream"] is True


async def test_the_model_caps_max_tokens(wired: WiredProvider) -> None:
    capped = wired.model.model_copy(update={"max_output_tokens": 8})
    response = await wired.provider.complete(capped, ask(max_tokens=500))
    assert wired.server.requests[-1].body["max_tokens"] == 8
    assert response.usage.output_tokens <= 8
    assert response.finish_reason == "length"


async def test_scripted_reply(wired: WiredProvider) -> None:
    wired.server.script(
        wired.model.model, Reply(text="Let me look.", tool_calls=[("get_weather", {"city": "Oslo"})])
    )
    response = await wired.provider.complete(wired.model, ask(tools=(WEATHER,)))
    assert response.text == "Let me look."
    assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]


async def test_early_close_releases_the_stream(wired: WiredProvider) -> None:
    events = wired.provider.stream(wired.model, ask())
    assert isinstance(await events.__anext__(), TextDelta)
    await events.aclose()
    assert (await wired.provider.complete(wired.model, ask())).text  # the client is still usable


# -- tools and JSON -----------------------------------------------------------------------------


async def test_tool_call_plain(wired: WiredProvider) -> None:
    response = await wired.provider.complete(wired.model, ask("Weather in Paris?", tools=(WEATHER,)))
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert call.id
    assert call.parsed_arguments() == WEATHER_CALL
    assert response.finish_reason == "tool_calls"


async def test_tool_call_streamed(wired: WiredProvider) -> None:
    events = await collect(wired.provider.stream(wired.model, ask("Weather in Paris?", tools=(WEATHER,))))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].id
    assert deltas[0].name == "get_weather"
    assert len(deltas) > 2
    done = events[-1]
    assert isinstance(done, StreamDone)
    [call] = done.response.tool_calls
    assert json.loads(call.arguments) == json.loads("".join(d.arguments for d in deltas))
    assert call.parsed_arguments() == WEATHER_CALL
    assert done.response.finish_reason == "tool_calls"
    assert done.response.usage.output_tokens > 0


async def test_answer_after_tool_result_summarizes_it(wired: WiredProvider) -> None:
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
    response = await wired.provider.complete(wired.model, request)
    assert response.tool_calls == ()
    assert 'get_weather returned "sunny, 21 degrees"' in response.text


async def test_response_schema_answers_json_text(wired: WiredProvider) -> None:
    response = await wired.provider.complete(wired.model, ask("Describe a user", response_schema=PERSON))
    assert json.loads(response.text) == PERSON_ANSWER
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    events = await collect(wired.provider.stream(wired.model, ask("Describe a user", response_schema=PERSON)))
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    assert len(events) > 2
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert done.response.text == response.text


# -- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "bad_request"),
        (401, "auth"),
        (403, "auth"),
        (404, "other"),
        (500, "server"),
        (503, "server"),
        (529, "server"),
    ],
)
async def test_status_errors_are_translated(wired: WiredProvider, status: int, kind: str) -> None:
    wired.server.script(wired.model.model, Fail(status=status))
    with pytest.raises(ProviderError) as caught:
        await wired.provider.complete(wired.model, ask())
    error = caught.value
    assert (error.kind, error.status_code, error.model_id) == (kind, status, wired.model.id)
    assert error.allows_fallback is (kind != "bad_request")


@BOTH_CALLS
async def test_rate_limit_carries_retry_after(wired: WiredProvider, streamed: bool) -> None:
    wired.server.script(wired.model.model, Fail(status=429, retry_after=2.0))
    with pytest.raises(ProviderError) as caught:
        await answer(wired.provider, wired.model, ask(), streamed=streamed)
    error = caught.value
    assert (error.kind, error.status_code, error.retry_after, error.model_id) == (
        "rate_limit",
        429,
        2.0,
        wired.model.id,
    )
    assert error.allows_fallback
    assert len(wired.server.requests) == 1  # the SDK's own retries are off


@BOTH_CALLS
@pytest.mark.parametrize(
    "body",
    [
        # Ollama's error shape (docs/api.md, "Errors"): the message is the value of "error" itself.
        {"error": 'model "small" not found, try pulling it first'},
        'model "small" not found, try pulling it first\n',  # a plain-text body (llama.cpp, proxies)
    ],
    ids=["error-string", "plain-text"],
)
async def test_an_error_body_that_is_not_openais_object_is_still_read(
    wired: WiredProvider, streamed: bool, body: Any
) -> None:
    # The SDKs put only an `{"error": {"message": ...}}` message in their exception's text, so these
    # read "Error code: 404" and the user never learnt the model was not pulled.
    wired.server.script(wired.model.model, Fail(status=404, body=body))
    with pytest.raises(ProviderError) as caught:
        await answer(wired.provider, wired.model, ask(), streamed=streamed)
    assert 'model "small" not found, try pulling it first' in str(caught.value)
    assert (caught.value.kind, caught.value.status_code) == ("other", 404)


async def test_unknown_model_is_not_a_bad_request(wired: WiredProvider) -> None:
    ghost = wired.model.model_copy(update={"id": "ghost", "model": "no-such-model"})
    with pytest.raises(ProviderError) as caught:
        await wired.provider.complete(ghost, ask())
    assert caught.value.kind == "other"
    assert caught.value.status_code == 404
    assert "no-such-model" in str(caught.value)


@BOTH_CALLS
async def test_timeout(wired: WiredProvider, streamed: bool) -> None:
    wired.server.script(wired.model.model, Delay(3.0))
    provider = wired.connect(timeout=0.3)
    try:
        with pytest.raises(ProviderError) as caught:
            await answer(provider, wired.model, ask(), streamed=streamed)
    finally:
        await provider.aclose()
    assert caught.value.kind == "timeout"


@pytest.mark.parametrize("after_chunks", [2, 3])
async def test_stream_cut_after_deltas_raises_stream_error(wired: WiredProvider, after_chunks: int) -> None:
    wired.server.script(wired.model.model, CutStream(after_chunks=after_chunks))
    received: list[StreamEvent] = []
    with pytest.raises(ProviderError) as caught:
        await drain(wired.provider.stream(wired.model, ask()), received)
    assert len(received) == after_chunks
    assert all(isinstance(e, TextDelta) for e in received)
    assert caught.value.kind == "stream"
    assert caught.value.model_id == wired.model.id


@pytest.mark.parametrize(
    ("action", "kind"),
    [(Fail(status=500), "server"), (CutStream(after_chunks=0), "stream")],
    ids=["fail", "cut"],
)
async def test_failure_before_first_delta_raises_from_first_anext(
    wired: WiredProvider, action: Fail | CutStream, kind: str
) -> None:
    wired.server.script(wired.model.model, action)
    events = wired.provider.stream(wired.model, ask())
    with pytest.raises(ProviderError) as caught:
        await events.__anext__()
    assert caught.value.kind == kind


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "api_key_env", [None, "GEARSHIFT_TEST_PROVIDER_KEY"], ids=["default-env", "named-env"]
)
async def test_missing_key_names_the_env_var(
    wired: WiredProvider, monkeypatch: pytest.MonkeyPatch, api_key_env: str | None
) -> None:
    named = {"api_key_env": api_key_env} if api_key_env else {}
    provider = wired.connect(api_key=None, **named)
    variable = provider.api_key_env
    assert variable
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(wired.model, ask())
    assert caught.value.kind == "auth"
    assert variable in str(caught.value)
    assert wired.server.requests == []
    monkeypatch.setenv(variable, wired.key)  # read at call time, not construction
    assert (await provider.complete(wired.model, ask())).text
    await provider.aclose()


async def test_key_never_shown(wired: WiredProvider) -> None:
    key = wired.key
    provider = wired.connect(default_headers={"X-Org-Token": "org-secret-991"})
    assert key not in repr(provider)
    assert key not in str(provider)
    assert "***" in repr(provider)
    assert "org-secret-991" not in repr(provider)
    await provider.complete(wired.model, ask())
    assert wired.server.requests[-1].headers["x-org-token"] == "org-secret-991"  # default headers are sent
    # An error body that echoes the credentials, in the shape both APIs use for errors.
    message = f"Incorrect API key provided: {key} (org-secret-991)"
    echo = {"type": "error", "error": {"type": "authentication_error", "message": message}}
    wired.server.script(wired.model.model, Fail(status=401, body=echo))
    with pytest.raises(ProviderError) as caught:
        await provider.complete(wired.model, ask())
    await provider.aclose()
    assert caught.value.kind == "auth"
    assert key not in str(caught.value)
    assert "org-secret-991" not in str(caught.value)
    assert "***" in str(caught.value)
    assert caught.value.__cause__ is None


async def test_wrong_key_is_an_auth_error(wired: WiredProvider) -> None:
    provider = wired.connect(api_key="sk-wrong-key-0000")
    with pytest.raises(ProviderError) as caught:
        await provider.complete(wired.model, ask())
    await provider.aclose()
    assert (caught.value.kind, caught.value.status_code) == ("auth", 401)


# -- clients ------------------------------------------------------------------------------------


def test_one_client_per_event_loop(wired: WiredProvider) -> None:
    provider, model = wired.provider, wired.model

    async def call() -> ChatResponse:
        return await provider.complete(model, ask())

    assert asyncio.run(call()).text  # a private loop
    assert run_sync(call()).text  # the sync bridge's loop
    bridge_client = run_sync(provider._client(model))
    assert run_sync(provider._client(model)) is bridge_client  # reused on its own loop
    assert asyncio.run(provider._client(model)) is not bridge_client  # never shared with another loop
    assert len(wired.server.requests) == 2


def test_provider_satisfies_the_protocol(wired: WiredProvider) -> None:
    assert isinstance(type(wired.provider)(), Provider)


# -- the plumbing every SDK provider shares -----------------------------------------------------


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
