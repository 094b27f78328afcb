"""Anthropic calls skip the SDK's request path (streams are `DirectStream`s, plain calls on aiohttp
`DirectPost`s): what reaches the server, what the caller gets (before a failure too) and how each
failure reads must be what `messages.create` gives, through the real `anthropic` SDK against the local
Anthropic server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from gearshift._errors import ProviderError
from gearshift._messages import ChatRequest, Message, StreamDone, TextDelta, ToolSpec
from gearshift._models import ModelSpec
from gearshift.providers._anthropic import AnthropicProvider
from gearshift.testing import Action, CutStream, Fail, LocalAnthropicServer

KEY = "sk-ant-local-2b8e41"  # the key the anthropic_server fixture requires
TRANSPORT = {"connection", "accept-encoding", "content-length"}  # each request's own


def _sse(*events: Mapping[str, Any]) -> str:
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-small",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    },
}
BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def _text(text: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


def _error(error_type: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": f"{error_type} for {KEY}"}}


# Each failure, and what it must read as: (texts the caller got first, kind, status code).
FAILURES: dict[str, tuple[Action, tuple[list[str], str, int | None]]] = {
    "rate-limited-before": (Fail(429, retry_after=3.0), ([], "rate_limit", 429)),
    "server-error-before": (Fail(500), ([], "server", 500)),
    "overloaded-before": (Fail(529), ([], "server", 529)),
    "bad-request-before": (Fail(400), ([], "bad_request", 400)),
    "error-event-mid-stream": (
        Fail(200, body=_sse(START, BLOCK, _text("Hello"), _text(" there"), _error("overloaded_error"))),
        (["Hello", " there"], "stream", None),
    ),
    "error-event-first": (Fail(200, body=_sse(START, _error("rate_limit_error"))), ([], "rate_limit", None)),
    "cut-mid-stream": (CutStream(after_chunks=2), (["Simulated", " answer"], "stream", None)),
    "cut-before-output": (CutStream(after_chunks=0), ([], "stream", None)),
}


def ask(**kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message.user("hello"),), **kwargs)


def _on_direct_path(provider: AnthropicProvider) -> bool:
    return len(provider._direct._streams) == 1


@pytest.fixture
def untraced(anthropic_provider: AnthropicProvider) -> AnthropicProvider:
    from opentelemetry import trace

    if not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        pytest.skip("this process has a tracer provider: streams go through the SDK's request path")
    return anthropic_provider


async def _ours(
    provider: AnthropicProvider, model: ModelSpec, request: ChatRequest
) -> tuple[list[str], ProviderError | None]:
    texts: list[str] = []
    try:
        async for event in provider.stream(model, request):
            if isinstance(event, TextDelta):
                texts.append(event.text)
    except ProviderError as exc:
        return texts, exc
    return texts, None


async def _sdks(
    provider: AnthropicProvider, server: LocalAnthropicServer, model: ModelSpec, request: ChatRequest
) -> tuple[list[str], ProviderError | None]:
    """What `messages.create(stream=True)` gives, its failure translated as the provider translates it."""
    from anthropic import AsyncAnthropic

    client = AsyncAnthropic(api_key=KEY, base_url=server.base_url, max_retries=0, timeout=5.0)
    params, _ = provider._prepare(model, request)
    texts: list[str] = []
    opened = False
    try:
        stream = await client.messages.create(**params, stream=True)
        opened = True
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                texts.append(event.delta.text)
    except Exception as exc:
        return texts, provider._error(exc, model, after_output=bool(texts), accepted=opened)
    finally:
        await client.close()
    return texts, None


async def test_a_stream_is_requested_as_create_requests_it(
    untraced: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    tool = ToolSpec(name="lookup", description="Look a term up.", parameters={"type": "object"})
    request = ChatRequest(
        messages=(Message.system("Be brief."), Message.user("hello")),
        temperature=0.5,
        stop=("END",),
        tools=(tool,),
        tool_choice="auto",
    )
    ours = [event async for event in untraced.stream(claude, request)]
    assert _on_direct_path(untraced)
    assert await _sdks(untraced, anthropic_server, claude, request) == (
        [e.text for e in ours if isinstance(e, TextDelta)],
        None,
    )
    direct, via_sdk = anthropic_server.requests
    assert direct.body == via_sdk.body
    assert direct.body["stream"] is True and direct.body["temperature"] == 0.5
    assert {k: v for k, v in direct.headers.items() if k not in TRANSPORT} == {
        k: v for k, v in via_sdk.headers.items() if k not in TRANSPORT
    }
    done = ours[-1]
    assert isinstance(done, StreamDone)
    assert done.response.usage.output_tokens > 0


@pytest.mark.parametrize("failure", sorted(FAILURES))
async def test_a_failed_stream_reads_as_the_sdks_and_keeps_the_text_before_it(
    untraced: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec, failure: str
) -> None:
    action, (texts, kind, status) = FAILURES[failure]
    anthropic_server.script(claude.model, action)
    ours, error = await _ours(untraced, claude, ask())
    assert _on_direct_path(untraced)
    anthropic_server.script(claude.model, action)
    sdk_texts, sdk_error = await _sdks(untraced, anthropic_server, claude, ask())
    assert error is not None and sdk_error is not None
    assert (ours, error.kind, error.status_code) == (texts, kind, status)
    assert (ours, error.kind, error.status_code, error.retry_after, str(error)) == (
        sdk_texts,
        sdk_error.kind,
        sdk_error.status_code,
        sdk_error.retry_after,
        str(sdk_error),
    )
    assert KEY not in str(error)


async def test_a_traced_stream_keeps_the_sdks_span_context(
    anthropic_provider: AnthropicProvider, anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    """Inside a trace the SDK sends the trace context on and makes its span, so the call goes through
    `messages.create`; the caller gets the same answer either way."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = SpanContext(trace_id=0x5EA12, span_id=0x5A7E, is_remote=False, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(parent)):
        *_, traced = [event async for event in anthropic_provider.stream(claude, ask())]
    *_, plain = [event async for event in anthropic_provider.stream(claude, ask())]
    assert isinstance(traced, StreamDone) and isinstance(plain, StreamDone)
    assert traced.response.text == plain.response.text
    assert traced.response.usage == plain.response.usage
    assert traced.response.finish_reason == plain.response.finish_reason == "stop"
    first = anthropic_server.requests[0]
    # The SDK's own span (a child of the current one, where a tracer provider records it) sends it on.
    assert first.headers["traceparent"].split("-")[1] == f"{0x5EA12:032x}"


async def test_a_plain_call_on_aiohttp_sends_answers_and_fails_as_create_does(
    anthropic_server: LocalAnthropicServer, claude: ModelSpec
) -> None:
    from anthropic import AsyncAnthropic

    tool = ToolSpec(name="lookup", description="Look a term up.", parameters={"type": "object"})
    requests = (
        ask(temperature=0.5, stop=("END",)),
        ChatRequest(messages=(Message.system("Be brief."), Message.user("Look up gears")), tools=(tool,)),
        ask(response_schema={"type": "array", "items": {"type": "string"}}),
    )
    providers = {
        c: AnthropicProvider(api_key=KEY, base_url=anthropic_server.base_url, timeout=5.0, http_client=c)  # type: ignore[arg-type]
        for c in ("httpx", "aiohttp")
    }
    errors: list[ProviderError] = []
    try:
        for request in requests:
            via_sdk, direct = [await providers[c].complete(claude, request) for c in ("httpx", "aiohttp")]
            assert direct.text == via_sdk.text
            assert [(c.name, c.arguments) for c in direct.tool_calls] == [
                (c.name, c.arguments) for c in via_sdk.tool_calls
            ]
            assert (direct.usage, direct.finish_reason) == (via_sdk.usage, via_sdk.finish_reason)
        assert len(providers["aiohttp"]._direct._posts) == 1
        client = AsyncAnthropic(api_key=KEY, base_url=anthropic_server.base_url, max_retries=0, timeout=5.0)
        params, _ = providers["aiohttp"]._prepare(claude, requests[0])
        await client.messages.create(**params)
        await client.close()
        for fail in (Fail(404), Fail(429, retry_after=3.0), Fail(500), Fail(529)):
            for c in ("httpx", "aiohttp"):
                anthropic_server.script(claude.model, fail)
                with pytest.raises(ProviderError) as caught:
                    await providers[c].complete(claude, requests[0])
                errors.append(caught.value)
    finally:
        for provider in providers.values():
            await provider.aclose()
    direct_request, created = anthropic_server.requests[1], anthropic_server.requests[2 * len(requests)]
    assert direct_request.body == created.body
    assert {k: v for k, v in direct_request.headers.items() if k not in TRANSPORT} == {
        k: v for k, v in created.headers.items() if k not in TRANSPORT
    }
    assert [e.kind for e in errors[::2]] == ["other", "rate_limit", "server", "server"]
    for sdk_error, direct_error in zip(errors[::2], errors[1::2], strict=True):
        assert (direct_error.kind, direct_error.status_code, direct_error.retry_after, str(direct_error)) == (
            sdk_error.kind,
            sdk_error.status_code,
            sdk_error.retry_after,
            str(sdk_error),
        )
