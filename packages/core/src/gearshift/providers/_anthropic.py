"""`AnthropicProvider`: Anthropic's Messages API through the official `anthropic` SDK.

The conversion rules that differ from OpenAI's:

- System messages, wherever they appear, are joined into the `system` parameter.
- Tool results travel as `tool_result` blocks inside a user message (`is_error` kept); consecutive
  messages of one role are merged, since the API wants user and assistant turns to alternate.
- Tool-call ids from other providers may contain characters Anthropic refuses (it wants
  `^[a-zA-Z0-9_-]+$`); they are rewritten by one deterministic function, so a call and its result
  still pair up.
- `response_schema` uses a forced tool, which every Claude model supports: the request offers an extra
  tool whose input schema is the wanted schema, the model is made to call a tool, and that tool's
  input comes back as the answer's JSON text (never as a tool call). A schema whose top level is not
  an object is wrapped in `{"value": ...}` for the call and unwrapped on the way back.
- `temperature`, `top_p` and `top_k` were dropped from the typed SDK signature (the API still takes
  them on the models that support them), so they go through `extra_body`. The API has no `seed`,
  `frequency_penalty` or `presence_penalty`: they are not sent (see `unsent_settings`); `top_p` is
  not sent beside `temperature` (see `exclusive_settings`), nor is
  `reasoning_effort` (extended thinking would need its thinking blocks carried back on every tool
  step of an agent, which gearshift's messages do not hold).

Calls are sent as `OpenAIProvider` sends them, and answers are read from their JSON, without a pydantic
model per answer or event: a plain call on aiohttp is a `DirectPost` and a stream a `DirectStream` (no
SDK request building per call; the SDK's own `AsyncStream` reads the stream), unless the SDK would
trace the call: then it goes through `messages.create`, which makes the SDK's span and sends its trace
context. A plain call on httpx goes through `messages.create` too, its raw answer read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._errors import InvalidRequestError, ProviderError, ProviderErrorKind
from .._messages import ChatRequest, ChatResponse, TextDelta, ToolCallDelta, Usage
from .._models import ModelSpec
from ..signals._tokens import estimate_request_tokens
from ._anthropic_convert import TEMPERATURE_CAP, AnswerTool, request_params, tool_call_id
from ._anthropic_tool_prompt import tool_prompt_tokens
from ._assembly import StreamAssembler
from ._direct_paths import DirectPaths
from ._json_fields import field, json_object
from ._reported_usage import counted_or_estimated
from ._sdk import HttpClient
from ._sdk_provider import SDKProvider, SDKStream

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["AnthropicProvider", "tool_call_id"]

_Call = tuple[dict[str, Any], AnswerTool | None]  # messages.create's arguments, and the answer tool

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_ONE_HOUR_WRITES = "ephemeral_1h_input_tokens"  # in `usage.cache_creation`: billed at 2x input
_ERROR_TYPES: dict[str, ProviderErrorKind] = {
    "rate_limit_error": "rate_limit",
    "overloaded_error": "server",
    "api_error": "server",
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "auth",
    "invalid_request_error": "bad_request",
    "timeout_error": "timeout",
}


class AnthropicProvider(SDKProvider["AsyncAnthropic", _Call, bytes, dict[str, Any]]):
    """Serves Claude models through the official `anthropic` SDK (Messages API).

    The key is `api_key`, else the environment variable named by `api_key_env`, read on the first call
    of each event loop. The API requires `max_tokens`: a request without one gets `default_max_tokens`,
    capped by the model's `max_output_tokens`. `http_client="aiohttp"` posts plain calls with aiohttp
    (`DirectPost`), which costs less CPU per call (`gearshift serve`'s default); streams stay on the
    SDK's httpx client. SDK retries are off: the router falls back instead.
    """

    _SDK = "anthropic"
    _CLIENT = "AsyncAnthropic"
    _UNFINISHED_STREAM = "the stream ended before message_stop"
    unsent_settings: frozenset[str] = frozenset(
        {"seed", "frequency_penalty", "presence_penalty", "reasoning_effort"}
    )
    """`ChatRequest` settings the Messages API does not take, left out of the call (as Anthropic's
    own OpenAI compatibility layer ignores them); the decision's reasons name the ones a request set."""
    reasoning_unsent: frozenset[str] = frozenset()
    """A Claude model marked `reasoning` takes every setting the Messages API takes."""
    cache_write_rates: tuple[float, float] = (1.25, 2.0)
    """What the API bills a prompt-cache write, as a multiple of the input price: 1.25x, and 2x for
    the 1-hour cache; a model's prices that leave `cache_write` or `cache_write_1h` out get these."""
    temperature_cap: float | None = TEMPERATURE_CAP
    """The API takes `temperature` from 0 to 1: a higher one is sent as 1, as Anthropic's own OpenAI
    compatibility layer caps it (the decision's reasons say so)."""
    visible_stops_only: bool = True
    """The API refuses a stop sequence of whitespace alone (`"\n"`): such ones are not sent."""
    exclusive_settings: tuple[tuple[str, str], ...] = (("temperature", "top_p"),)
    """(kept, left out) when a request sets both: Claude Sonnet and Haiku 4.5 and Opus 4.1 on refuse
    `temperature` with `top_p` ("cannot both be specified"); older models gain nothing from both."""

    def __init__(
        self,
        name: str = "anthropic",
        *,
        api_key: str | None = None,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        base_url: str | None = None,
        timeout: float = 60.0,
        default_max_tokens: int = 4096,
        default_headers: Mapping[str, str] | None = None,
        http_client: HttpClient = "httpx",
    ) -> None:
        super().__init__(
            name,
            api_key=api_key,
            api_key_env=api_key_env,
            base_url=base_url,
            timeout=timeout,
            default_headers=default_headers,
            http_client=http_client,
        )
        self.default_max_tokens = default_max_tokens
        self._direct = DirectPaths(self._SDK)

    def added_input_tokens(self, model: ModelSpec, request: ChatRequest) -> int:
        """Input tokens the API bills for `request` beyond what it sends: the tool-use system prompt
        it adds whenever tools go out (see `_anthropic_tool_prompt`)."""
        return tool_prompt_tokens(model.model, request)

    def _prepare(self, model: ModelSpec, request: ChatRequest) -> _Call:
        try:
            return request_params(model, request, default_max_tokens=self.default_max_tokens)
        except InvalidRequestError as exc:
            raise ProviderError(str(exc), model_id=model.id, kind="bad_request") from None

    async def _send(self, client: AsyncAnthropic, call: _Call) -> bytes:
        # On aiohttp without the SDK's request path (see `DirectPost`); tests/core/
        # test_provider_anthropic_direct.py checks it sends what `create` sends and fails as it does.
        params, _ = call
        if self.http_client == "aiohttp" and not _sdk_traces(client):
            return await self._direct.post(client).post("/v1/messages", _body(params))
        raw = await client.messages.with_raw_response.create(**params)
        return await raw.read()

    def _read(self, model: ModelSpec, request: ChatRequest, call: _Call, response: bytes) -> ChatResponse:
        _, answer = call
        return _response(model, request, json_object(json.loads(response), "the message"), answer)

    async def _open_stream(self, client: AsyncAnthropic, call: _Call) -> SDKStream[dict[str, Any]]:
        # Without the SDK's request path and its pydantic model per event (see `DirectStream`);
        # tests/core/test_provider_anthropic_direct.py checks the request is the one
        # `create(stream=True)` sends and that its failures read as the SDK's.
        params, _ = call
        if _sdk_traces(client):
            return _EventObjects(await client.messages.create(**params, stream=True))
        stream = self._direct.stream(client)
        events: SDKStream[dict[str, Any]] = await stream.open("/v1/messages", _body(params, stream=True))
        return events

    def _stream_state(self, model: ModelSpec, request: ChatRequest, call: _Call) -> _StreamState:
        _, answer = call
        return _StreamState(model, request, answer)

    def _error_event_kind(self, sdk: ModuleType, exc: Exception) -> ProviderErrorKind | None:
        # The SDK raises an `error` event inside a 200 stream as a status error: only the body says what.
        if isinstance(exc, sdk.APIStatusError) and exc.status_code < 400:
            return _body_kind(exc.body)
        return None

    async def aclose(self) -> None:
        """Close the running event loop's connections: the direct path's, then the SDK clients'."""
        await self._direct.aclose()
        await super().aclose()


def _body(params: Mapping[str, Any], *, stream: bool = False) -> dict[str, Any]:
    """The JSON body `messages.create(**params)` sends: its `extra_body` merged over the rest."""
    body = {name: value for name, value in params.items() if name != "extra_body"}
    if stream:
        body["stream"] = True
    body.update(params.get("extra_body") or {})
    return body


def _sdk_traces(client: Any) -> bool:
    """Whether the SDK would trace a call made now: it has a tracer, and the application set up a
    tracer provider or a trace is current (whose context the SDK would send on)."""
    if getattr(client, "_tracer", None) is None:
        return False
    from opentelemetry import trace  # a dependency of every anthropic SDK that traces

    provider = trace.get_tracer_provider()
    if not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return True
    return bool(trace.get_current_span().get_span_context().is_valid)


class _EventObjects:
    """The SDK's typed stream events as the JSON objects they arrived as, which `_StreamState` reads."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def __aiter__(self) -> _EventObjects:
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self._events.__anext__()
        objects: dict[str, Any] = event.to_dict()
        return objects

    async def close(self) -> None:
        await self._events.close()


class _StreamState:
    """What one streamed message has produced so far, from Anthropic's raw event stream."""

    def __init__(self, model: ModelSpec, request: ChatRequest, answer: AnswerTool | None) -> None:
        self.model = model
        self.request = request
        self.answer = answer
        self.assembler = StreamAssembler()
        self.blocks: dict[int, int | None] = {}  # content block index -> tool-call index (None: answer)
        self.answer_json: list[str] = []
        self.provider_model = ""
        self.message_id = ""
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None  # which of the request's stop sequences ended it
        self.tokens: dict[str, int] = {}
        self.finished = False
        self.started = False

    def feed(self, event: dict[str, Any]) -> list[TextDelta | ToolCallDelta]:
        """The deltas one event carries; records model, usage and stop reason on the way. Read as
        leniently as the SDK reads an event: a missing field is absent, only a wrong type fails."""
        out: list[TextDelta | ToolCallDelta] = []
        kind = event.get("type")
        if kind == "message_start":
            message = json_object(event.get("message"), "message_start.message")
            self.provider_model = field(message, "model", str) or ""
            self.message_id = field(message, "id", str) or ""
            self.tokens.update(_token_counts(field(message, "usage", dict) or {}))
        elif kind == "content_block_start":
            block = json_object(event.get("content_block"), "content_block_start.content_block")
            index, block_type = field(event, "index", int), block.get("type")
            if block_type == "text" and field(block, "text", str):
                out.append(TextDelta(block["text"]))
            elif block_type == "tool_use":
                name = field(block, "name", str)
                if self.answer is not None and name == self.answer.name:
                    self.blocks[index] = None
                else:
                    call_index = sum(1 for i in self.blocks.values() if i is not None)
                    self.blocks[index] = call_index
                    out.append(ToolCallDelta(call_index, field(block, "id", str), name, ""))
        elif kind == "content_block_delta":
            delta = json_object(event.get("delta"), "content_block_delta.delta")
            index, delta_type = field(event, "index", int), delta.get("type")
            if delta_type == "text_delta":
                out.append(TextDelta(field(delta, "text", str) or ""))
            elif delta_type == "input_json_delta" and index in self.blocks:
                partial = field(delta, "partial_json", str) or ""
                target = self.blocks[index]
                if target is not None:
                    out.append(ToolCallDelta(target, arguments=partial))
                elif self.answer is not None and self.answer.wrapped:
                    self.answer_json.append(partial)  # unwrapped once complete
                else:
                    out.append(TextDelta(partial))
        elif kind == "content_block_stop":
            index = field(event, "index", int)
            if self.blocks.get(index, 0) is None and self.answer is not None and self.answer.wrapped:
                out.append(TextDelta(self.answer.text(json.loads("".join(self.answer_json) or "{}"))))
        elif kind == "message_delta":
            delta = field(event, "delta", dict) or {}
            self.stop_reason = field(delta, "stop_reason", str) or self.stop_reason
            self.stop_sequence = field(delta, "stop_sequence", str) or self.stop_sequence
            # It repeats the counts cumulatively (the input ones only on newer API versions).
            self.tokens.update(_token_counts(field(event, "usage", dict) or {}))
        elif kind == "message_stop":
            self.finished = True
        out = [d for d in out if not isinstance(d, TextDelta) or d.text]
        self.assembler.extend(out)
        self.started = self.started or bool(out)
        return out

    def reported_usage(self) -> Usage | None:
        """The usage `message_start` (and any `message_delta`) reported: the prompt's full cost. None
        when it reported no input (a gateway's zeros): the prompt is then charged at an estimate."""
        usage = _usage(self.tokens)
        return usage if usage.input_tokens else None

    def response(self) -> ChatResponse:
        """The final response, once `message_stop` arrived; usage the server left out is estimated."""
        usage, estimated = _billed(self.tokens, self.model, self.request, self.assembler)
        calls = sum(1 for i in self.blocks.values() if i is not None)
        reason = _finish_reason(self.stop_reason, tool_calls=calls)
        metadata: dict[str, Any] = {
            "response_id": self.message_id,
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
        }
        if estimated:
            metadata["usage_estimated"] = True
        return self.assembler.finish(self.model, self.provider_model, usage, reason, metadata)


def _response(
    model: ModelSpec, request: ChatRequest, message: dict[str, Any], answer: AnswerTool | None
) -> ChatResponse:
    """A `message` JSON object in gearshift's form, read as leniently as the SDK reads it."""
    assembler = StreamAssembler()
    texts: list[str] = []
    answer_text: str | None = None
    calls = 0
    for raw in field(message, "content", list) or ():
        block = json_object(raw, "content[]")
        block_type, name = block.get("type"), field(block, "name", str)
        if block_type == "text":
            texts.append(field(block, "text", str) or "")
        elif block_type == "tool_use" and answer is not None and name == answer.name:
            answer_text = answer.text(block.get("input"))
        elif block_type == "tool_use":
            arguments = json.dumps(block.get("input"))
            assembler.add(ToolCallDelta(calls, field(block, "id", str), name, arguments))
            calls += 1
        # thinking and server-tool blocks carry nothing the caller asked for
    # With the answer tool, any text beside it is preamble, not part of the JSON answer.
    text = answer_text if answer_text is not None else "".join(texts)
    if text:
        assembler.add(TextDelta(text))
    tokens = _token_counts(field(message, "usage", dict) or {})
    usage, estimated = _billed(tokens, model, request, assembler)
    stop_reason = field(message, "stop_reason", str)
    metadata: dict[str, Any] = {
        "response_id": field(message, "id", str) or "",
        "stop_reason": stop_reason,
        "stop_sequence": field(message, "stop_sequence", str),
    }
    if estimated:  # a gateway that reports no usage, or zeros: estimated, never free
        metadata["usage_estimated"] = True
    reason = _finish_reason(stop_reason, tool_calls=calls)
    return assembler.finish(model, field(message, "model", str) or "", usage, reason, metadata)


def _token_counts(usage: Mapping[str, Any]) -> dict[str, int]:
    """The token counts a `usage` object carries (a count it leaves out or sends as null is absent),
    with the 1-hour cache writes of its `cache_creation` breakdown."""
    counts = {name: field(usage, name, int) for name in _TOKEN_FIELDS}
    breakdown = field(usage, "cache_creation", dict) or {}
    counts[_ONE_HOUR_WRITES] = field(breakdown, _ONE_HOUR_WRITES, int)
    return {name: count for name, count in counts.items() if count is not None}


def _billed(
    tokens: Mapping[str, int], model: ModelSpec, request: ChatRequest, answer: StreamAssembler
) -> tuple[Usage, bool]:
    """The usage `tokens` report for `model`'s answer, the counts a gateway left out (or sent as zero
    where the call had some) estimated from `request`, with the tool-use system prompt the API adds
    to it, and the answer; and whether any was."""
    estimated_input = estimate_request_tokens(request) + tool_prompt_tokens(model.model, request)
    return counted_or_estimated(_usage(tokens), tokens.get("output_tokens"), estimated_input, answer.output)


def _usage(tokens: Mapping[str, int]) -> Usage:
    # Anthropic's input_tokens leaves out cached tokens; gearshift's input_tokens counts every input token.
    read, write = tokens.get("cache_read_input_tokens", 0), tokens.get("cache_creation_input_tokens", 0)
    return Usage(
        input_tokens=tokens.get("input_tokens", 0) + read + write,
        output_tokens=tokens.get("output_tokens", 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=min(tokens.get(_ONE_HOUR_WRITES, 0), write),
    )


def _finish_reason(stop_reason: str | None, *, tool_calls: int) -> str | None:
    """Anthropic's stop reason in OpenAI's words, which the rest of gearshift uses.

    A `tool_use` stop caused only by the forced answer tool is a normal stop for the caller.
    """
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and not tool_calls:
        return "stop"
    return _FINISH.get(stop_reason, stop_reason)


def _body_kind(body: object) -> ProviderErrorKind:
    error = body.get("error") if isinstance(body, Mapping) else None
    error_type = error.get("type") if isinstance(error, Mapping) else None
    return _ERROR_TYPES.get(str(error_type), "server")
