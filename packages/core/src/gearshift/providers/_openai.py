"""`OpenAIProvider`: OpenAI's Chat Completions API, and every server that speaks it.

Ollama, vLLM, LM Studio, llama.cpp, Groq, Together and the rest are reached through `base_url`;
`require_key=False` serves the ones that need no key. The `openai` SDK is imported on the first call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from .._errors import InvalidRequestError, ProviderError
from .._messages import (
    SAMPLING_SETTINGS,
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from .._models import ModelSpec
from ._answer_schema import answer_schema, is_wrapped, unwrapped_answer_text
from ._assembly import StreamAssembler
from ._direct_paths import DirectPaths
from ._done_sentinel import STREAM_DONE, DoneSentinelStream
from ._json_fields import field as _field
from ._json_fields import json_object as _object
from ._openai_content import answer_and_reasoning
from ._openai_schema import openai_schema
from ._reported_usage import reported_usage
from ._sdk import HttpClient, ReportedError, Secret, resolve_api_key
from ._sdk_provider import SDKProvider, SDKStream

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["OpenAIProvider"]

_OPENAI_ENV = "OPENAI_API_KEY"
_TOOL_IMAGES = "The images the tool results above returned:"
_IMAGES_FOLLOW = "(the result's images follow in the next user message)"
_KEPT_TOOL_SCHEMAS = 1024
_TOOL_SCHEMAS: dict[tuple[int, bool], tuple[Mapping[str, Any], dict[str, Any]]] = {}
_DESCRIPTION_LIMIT = 1024  # the most characters the API takes in a tool's description
_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")  # the characters a schema's or a message's name may not hold


class OpenAIProvider(SDKProvider["AsyncOpenAI", dict[str, Any], bytes, dict[str, Any]]):
    """Serves models through the official `openai` SDK (Chat Completions).

    The key is `api_key`, else the environment variable named by `api_key_env`, read on the first call
    of each event loop. With `require_key=False` (Ollama, vLLM, LM Studio, llama.cpp) a missing key is
    fine and a placeholder is sent; such a provider never picks up `OPENAI_API_KEY` implicitly, so an
    OpenAI key is not handed to another server (name the variable in `api_key_env` explicitly, or pass
    `api_key`, for a keyless-by-default server that should get it).

    `max_tokens_field` picks the request field carrying the output cap. Unset, it is
    `max_completion_tokens` on OpenAI's own API (no `base_url`, or [eu.]api.openai.com), which every model
    there takes and the reasoning models (gpt-5, o-series) require, and `max_tokens` on other
    servers, which mostly expect it. `http_client="aiohttp"`
    sends plain calls through aiohttp, which costs less CPU per call (`gearshift serve`'s default);
    streams stay on the SDK's httpx client, which hands over every chunk that arrived before a break.
    SDK retries are off: on failure the router falls back to the next model instead.
    """

    _SDK = "openai"
    _CLIENT = "AsyncOpenAI"
    # Keyless OpenAI-compatible servers ignore the key, but the SDK refuses to build a client without one.
    _KEYLESS = "not-needed"
    _UNFINISHED_STREAM = "the stream ended before the model finished"
    _API_PATH = "/v1"  # compatible servers serve the API under it, and the SDK's default URL names it
    unsent_settings: frozenset[str] = frozenset({"top_k"})
    """`ChatRequest` settings the Chat Completions API does not take, left out of the call."""
    reasoning_unsent: frozenset[str] = frozenset(
        {"temperature", "top_p", "frequency_penalty", "presence_penalty"}
    )
    """Settings OpenAI's reasoning models (`ModelSpec.reasoning`: gpt-5, o-series) refuse with a 400 unless
    at their defaults, left out of their calls."""

    def __init__(
        self,
        name: str = "openai",
        *,
        api_key: str | None = None,
        api_key_env: str | None = _OPENAI_ENV,
        base_url: str | None = None,
        timeout: float = 60.0,
        require_key: bool = True,
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = None,
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
        self.require_key = require_key
        self.max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = max_tokens_field or (
            "max_completion_tokens" if _is_openai(base_url) else "max_tokens"
        )
        self._direct = DirectPaths(self._SDK)
        self._stream_options = True  # False once the server refused them

    def _prepare(self, model: ModelSpec, request: ChatRequest) -> dict[str, Any]:
        try:
            return self._params(model, request)
        except InvalidRequestError as exc:
            raise ProviderError(str(exc), model_id=model.id, kind="bad_request") from None

    def _params(self, model: ModelSpec, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model.model, "messages": _messages(request.messages)}
        max_tokens = _cap(request.max_tokens, model.max_output_tokens)
        if max_tokens is not None:
            params[self.max_tokens_field] = max_tokens
        refused = self.reasoning_unsent if model.reasoning else frozenset()
        if request.temperature is not None and "temperature" not in refused:
            params["temperature"] = request.temperature
        if request.stop:
            params["stop"] = list(request.stop)
        for name in SAMPLING_SETTINGS:
            value = getattr(request, name)
            if value is not None and name not in self.unsent_settings and name not in refused:
                params[name] = value
        if request.reasoning_effort is not None and model.reasoning:
            params["reasoning_effort"] = request.reasoning_effort
        if request.tools:
            params["tools"] = [
                _tool(tool.name, tool.description, tool.parameters, tool.strict) for tool in request.tools
            ]
            if request.tool_choice is not None:
                params["tool_choice"] = _tool_choice(request.tool_choice)
            if request.parallel_tool_calls is not None:
                params["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_schema is not None:
            params["response_format"] = _response_format(request.response_schema, request.response_strict)
        return params

    async def _send(self, client: AsyncOpenAI, call: dict[str, Any]) -> bytes:
        # On aiohttp the call skips the SDK's request path (see `DirectPost`): about 1 ms of CPU a
        # call under `gearshift serve`. tests/core/test_provider_transports.py checks it sends what
        # the SDK sends and reports errors as the SDK does.
        if self.http_client == "aiohttp":
            return await self._direct.post(client).post("/chat/completions", call)
        # The SDK's own request path (auth, headers, status errors) without the parameter transform
        # `create` runs first: a recursive walk of the request against its TypedDicts that changes
        # nothing for Chat Completions (no field has an alias or a format) and cost about 0.4 ms a call.
        # tests/core/test_provider_openai.py checks the body equals the one `create` sends. The answer
        # comes back as its bytes: `_read` takes the few fields gearshift uses from the JSON at once,
        # where a `ChatCompletion` would build a dozen pydantic models per call only to be read once.
        body: bytes = await client.post("/chat/completions", body=call, cast_to=bytes)
        return body

    def _read(
        self, model: ModelSpec, request: ChatRequest, call: dict[str, Any], response: bytes
    ) -> ChatResponse:
        return _response(model, request, json.loads(response))

    async def _open_stream(self, client: AsyncOpenAI, call: dict[str, Any]) -> SDKStream[dict[str, Any]]:
        # The SDK's stream (SSE decoding, error events, closing) on the SDK client's httpx client, sent
        # without the SDK's request path (see `DirectStream`), each chunk left as the JSON object it
        # arrived as: a `ChatCompletionChunk` per event was most of a stream's CPU in `gearshift serve`.
        # tests/core/test_provider_transports.py checks the request is the one `create(stream=True)`
        # sends and that its failures read as the SDK's.
        # Some servers refuse `stream_options` (vLLM before 0.5 with a 400, Mistral's API with a 422):
        # such a stream is asked again without them, and this provider stops sending them.
        stream = self._direct.stream(client)
        if self._stream_options:
            body = {**call, "stream": True, "stream_options": {"include_usage": True}}
            try:
                return DoneSentinelStream(await stream.open("/chat/completions", body))
            except Exception as exc:
                if not _refuses_stream_options(exc):
                    raise
                self._stream_options = False
        return DoneSentinelStream(await stream.open("/chat/completions", {**call, "stream": True}))

    def _stream_state(self, model: ModelSpec, request: ChatRequest, call: dict[str, Any]) -> _StreamState:
        return _StreamState(model, request)

    async def aclose(self) -> None:
        """Close the running event loop's connections: the direct path's, then the SDK client's."""
        await self._direct.aclose()
        await super().aclose()

    def _resolve_key(self, model: ModelSpec) -> Secret | None:
        # A keyless provider reads only a variable named for it, never the default OPENAI_API_KEY.
        return resolve_api_key(
            self._api_key,
            self.api_key_env if self.require_key or self.api_key_env != _OPENAI_ENV else None,
            provider=self.name,
            model_id=model.id,
            required=self.require_key,
        )


def _refuses_stream_options(exc: Exception) -> bool:
    """Whether `exc` is a server's refusal of the `stream_options` field (a 400 or 422 naming it)."""
    if getattr(exc, "status_code", None) not in (400, 422):
        return False
    said = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}"
    return "stream_options" in said or "include_usage" in said


def _is_openai(base_url: str | None) -> bool:
    """Whether `base_url` is OpenAI's own API (None: the SDK's default, which is), its data-residency
    hosts (eu.api.openai.com, us.api.openai.com) included."""
    if base_url is None:
        return True
    host = urlsplit(base_url).hostname or ""
    return host == "api.openai.com" or host.endswith(".api.openai.com")


class _StreamState:
    """What one streamed completion has produced so far."""

    def __init__(self, model: ModelSpec, request: ChatRequest) -> None:
        self.model = model
        self.request = request
        self.assembler = StreamAssembler()
        self.provider_model = ""
        self.response_id = ""
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.reasoning: list[str] = []
        self.call_indexes: dict[str, int] = {}  # the index each tool call's id was given
        self.last_call: int | None = None  # the index of the tool call the last piece went to
        self.started = False
        self.ended = False  # the server closed the stream with `data: [DONE]`
        # A wrapped answer's text is held until it is complete, then sent unwrapped.
        self.wrapped_answer: list[str] | None = [] if _wraps_answer(request) else None

    def reported_usage(self) -> Usage | None:
        """None: a Chat Completions stream reports its usage only in its last chunk."""
        return None

    def feed(self, chunk: dict[str, Any]) -> list[TextDelta | ToolCallDelta]:
        """The deltas in one `chat.completion.chunk` object; records model name, finish reason and
        usage on the way. Read as leniently as `_response` reads a whole answer."""
        events: list[TextDelta | ToolCallDelta] = []
        if chunk is STREAM_DONE:
            self.ended = True
            self._release_wrapped_answer(events)
            self.assembler.extend(events)
            return events
        self.provider_model = self.provider_model or _field(chunk, "model", str) or ""
        self.response_id = self.response_id or _field(chunk, "id", str) or ""
        self.usage = _field(chunk, "usage", dict) or self.usage
        for raw in _field(chunk, "choices", list) or ():
            choice = _object(raw, "choices[]")
            if choice.get("index", 0) != 0:
                continue  # gearshift never asks for n > 1
            delta = _field(choice, "delta", dict) or {}
            content, thought = answer_and_reasoning(delta)
            if thought:
                self.reasoning.append(thought)
            if content and self.wrapped_answer is not None:
                self.wrapped_answer.append(content)
                content = None
            for text in (content, _field(delta, "refusal", str)):
                if text:
                    events.append(TextDelta(text))
            for raw_call in _field(delta, "tool_calls", list) or ():
                call = _object(raw_call, "choices[].delta.tool_calls[]")
                function = _field(call, "function", dict) or {}
                call_id, name = _field(call, "id", str), _field(function, "name", str)
                arguments = _arguments(function)
                if call_id or name or arguments:
                    index = self._call_index(_field(call, "index", int), call_id)
                    events.append(ToolCallDelta(index, call_id, name, arguments))
            finish = _field(choice, "finish_reason", str)
            if finish == "error":
                raise _broken_off(choice, chunk)
            if finish:
                self.finish_reason = finish
                self._release_wrapped_answer(events)
        self.assembler.extend(events)
        self.started = self.started or bool(events)
        return events

    def _release_wrapped_answer(self, events: list[TextDelta | ToolCallDelta]) -> None:
        """Add the held wrapped answer, unwrapped, to `events`: the model has finished it."""
        if self.wrapped_answer:
            events.append(TextDelta(unwrapped_answer_text("".join(self.wrapped_answer))))
            self.wrapped_answer = []

    def _call_index(self, index: int | None, call_id: str | None) -> int:
        """The index of the tool call a piece belongs to.

        OpenAI numbers every piece; Ollama sends each call whole without an index (ollama/ollama#7881)
        and other servers number only a call's first piece. A piece without one goes to the call its id
        names, starts a new call when it brings a new id, and otherwise continues the last call.
        """
        if index is None:
            if call_id in self.call_indexes:
                index = self.call_indexes[call_id]
            elif self.last_call is None:
                index = 0
            elif call_id:
                index = max([self.last_call, *self.call_indexes.values()]) + 1
            else:
                index = self.last_call
        if call_id:
            self.call_indexes.setdefault(call_id, index)
        self.last_call = index
        return index

    @property
    def finished(self) -> bool:
        """Whether the model finished: a chunk carried a finish reason, or the server ended the stream
        with `data: [DONE]` without one (see `DoneSentinelStream`)."""
        return self.finish_reason is not None or self.ended

    def response(self) -> ChatResponse:
        """The final response; usage the server left out is estimated (and says so)."""
        metadata: dict[str, Any] = {"response_id": self.response_id}
        output = _output(self.assembler, "".join(self.reasoning))
        usage, estimated = reported_usage(self.usage, self.request, output)
        if estimated:
            metadata["usage_estimated"] = True
        return self.assembler.finish(self.model, self.provider_model, usage, self.finish_reason, metadata)


# -- conversion: gearshift -> OpenAI ----------------------------------------------------------------


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation in Chat Completions form.

    The API takes images only in user messages ("Image URLs are only allowed for messages with role
    'user', but this message with role 'tool' contains an image URL."), so the images of a run of tool
    results (a screenshot tool's) follow the run as one user message, where the model still sees them.
    """
    out: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []  # the images of the tool results since the last other message
    for message in messages:
        if held and message.role != "tool":
            out.append(_tool_images(held))
            held = []
        out.append(_message(message))
        if message.role == "tool" and message.has_images:
            held += [_part(part) for part in message.content if isinstance(part, ImagePart)]
    if held:
        out.append(_tool_images(held))
    return out


def _tool_images(images: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": _TOOL_IMAGES}, *images]}


def _message(message: Message) -> dict[str, Any]:
    """One message in Chat Completions form.

    OpenAI has no error flag for tool results, so a failed tool's result is prefixed with `Error: `
    to keep that information in front of the model.
    """
    if message.role == "tool":
        text = message.text
        if message.is_error and not text.lower().startswith("error"):
            text = f"Error: {text}"
        if message.has_images:
            text = f"{text}\n{_IMAGES_FOLLOW}" if text else _IMAGES_FOLLOW
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": text}
    out: dict[str, Any] = {"role": message.role}
    if message.name:
        # The API refuses a name outside `^[a-zA-Z0-9_-]+$` ("Invalid 'messages[5].name': string does
        # not match pattern"); frameworks name agents "Research Agent".
        out["name"] = _SCHEMA_NAME.sub("_", message.name)[:64]
    if message.role == "assistant":
        # null content is only taken beside tool calls ("Invalid value for 'content': expected a
        # string, got null"): an empty answer in the history goes as "".
        out["content"] = message.text or (None if message.tool_calls else "")
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments or "{}"},
                }
                for c in message.tool_calls
            ]
        return out
    if message.role == "user" and message.has_images and not isinstance(message.content, str):
        out["content"] = [_part(part) for part in message.content]
    else:
        out["content"] = message.text
    return out


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        url = part.url or f"data:{part.media_type};base64,{part.data or ''}"
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "text", "text": part.text}


def _tool(name: str, description: str, parameters: Mapping[str, Any], strict: bool | None) -> dict[str, Any]:
    schema = _tool_schema(name, parameters, bool(strict))
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if len(description) > _DESCRIPTION_LIMIT:
        # The API refuses a longer description ("Invalid 'tools[0].function.description': string too
        # long. Expected a string with maximum length 1024"), which MCP tools often have; the rest goes
        # on as the parameters schema's own description, so the model still reads all of it.
        cut = description.rfind(" ", 0, _DESCRIPTION_LIMIT - 1) + 1 or _DESCRIPTION_LIMIT - 1
        description, rest = description[:cut].rstrip() + "…", description[cut:]
        own = schema.get("description")
        schema["description"] = f"(description, continued) {rest}" + (f"\n\n{own}" if own else "")
    if description:
        function["description"] = description
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


def _tool_schema(name: str, parameters: Mapping[str, Any], strict: bool) -> dict[str, Any]:
    """`openai_schema` of a tool's parameters, kept per parameters object: an agent sends the same
    tools on every step, and walking 20 schemas cost about 0.5 ms a call."""
    key = (id(parameters), strict)
    kept = _TOOL_SCHEMAS.get(key)
    if kept is None or kept[0] is not parameters:  # the object is held, so its id is not reused
        if len(_TOOL_SCHEMAS) >= _KEPT_TOOL_SCHEMAS:
            _TOOL_SCHEMAS.clear()
        kept = _TOOL_SCHEMAS[key] = (parameters, openai_schema(parameters, f"tool '{name}'", strict=strict))
    return dict(kept[1])  # the caller may add a description at the top


def _tool_choice(choice: str) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _response_format(schema: Mapping[str, Any], strict: bool | None) -> dict[str, Any]:
    # The name is required and restricted to [a-zA-Z0-9_-]{1,64}; derive it from the schema's title.
    title = str(schema.get("title") or "response")
    name = _SCHEMA_NAME.sub("_", title)[:64] or "response"
    # The API takes only an object at the top ("schema must be a JSON Schema of 'type: "object"'").
    sent = answer_schema(schema)[0]
    json_schema: dict[str, Any] = {
        "name": name,
        "schema": openai_schema(sent, "response_schema", strict=bool(strict)),
    }
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}


def _wraps_answer(request: ChatRequest) -> bool:
    """Whether the request's `response_schema` goes wrapped in `{"value": ...}` (see `_answer_schema`)."""
    return request.response_schema is not None and is_wrapped(request.response_schema)


def _cap(requested: int | None, limit: int | None) -> int | None:
    if requested is None:
        return None
    return min(requested, limit) if limit else requested


# -- conversion: OpenAI -> gearshift ----------------------------------------------------------------


def _response(model: ModelSpec, request: ChatRequest, completion: Any) -> ChatResponse:
    """A `chat.completion` JSON object in gearshift's form, read as leniently as the SDK reads it: a
    missing or null field is absent, and only a shape that cannot be an answer raises."""
    choices = _field(completion, "choices", list) or []
    if not choices:
        reported = _reported_error(completion)
        raise reported or ValueError("the response has no choices")
    choice = _object(choices[0], "choices[0]")
    if _field(choice, "finish_reason", str) == "error":
        raise _broken_off(choice, completion)
    message = _object(choice.get("message"), "choices[0].message")
    refusal = _field(message, "refusal", str)
    assembler = StreamAssembler()
    content, reasoning = answer_and_reasoning(message)
    if content and _wraps_answer(request):
        content = unwrapped_answer_text(content)
    text = content or refusal or ""
    if text:
        assembler.add(TextDelta(text))
    for index, raw in enumerate(_field(message, "tool_calls", list) or ()):
        call = _object(raw, f"choices[0].message.tool_calls[{index}]")
        function = call.get("function")  # custom (non-function) tools carry no function
        if isinstance(function, dict):
            arguments = _arguments(function)
            assembler.add(
                ToolCallDelta(index, _field(call, "id", str), _field(function, "name", str), arguments)
            )
    metadata: dict[str, Any] = {"response_id": _field(completion, "id", str) or ""}
    if refusal:
        metadata["refusal"] = refusal
    output = _output(assembler, reasoning)
    usage, estimated = reported_usage(_field(completion, "usage", dict), request, output)
    if estimated:  # some compatible servers report no usage, or not all of it: estimate, and say so
        metadata["usage_estimated"] = True
    provider_model = _field(completion, "model", str) or ""
    return assembler.finish(model, provider_model, usage, _field(choice, "finish_reason", str), metadata)


def _arguments(function: Mapping[str, Any]) -> str:
    """A tool call's arguments as the JSON text the API sends; llama-server has sent them as an object
    (ggml-org/llama.cpp#20198), which is taken as the text it stands for."""
    arguments = function.get("arguments")
    if isinstance(arguments, dict):
        return json.dumps(arguments, ensure_ascii=False)
    return _field(function, "arguments", str) or ""


def _reported_error(completion: Any) -> ReportedError | None:
    """The error an answer without choices carries instead: OpenAI's `{"error": {"message", "code"}}`,
    Ollama's `{"error": "..."}` or vLLM's `{"object": "error", "message", "code"}`; None if it has none."""
    if not isinstance(completion, dict):
        return None
    error = completion.get("error")
    if error is None and completion.get("object") == "error":
        error = completion
    if isinstance(error, str) and error:
        return ReportedError(error, None)
    if isinstance(error, dict):
        message, code = error.get("message"), error.get("code")
        text = message if isinstance(message, str) and message else json.dumps(error)[:300]
        return ReportedError(text, code if isinstance(code, int) else None)
    return None


def _broken_off(choice: Mapping[str, Any], answer: Any) -> ReportedError:
    """The error of a choice that finished with "error" (OpenRouter, when the model fails mid-answer):
    the choice's own error, else the answer's, else a plain one."""
    reported = _reported_error(choice) or _reported_error(answer)
    message = reported.message if reported else "the model stopped with an error"
    return ReportedError(message, reported.status if reported else None, midway=True)


def _output(assembler: StreamAssembler, reasoning: str) -> str:
    """Everything the model wrote: its reasoning, answer text and tool calls."""
    return reasoning + assembler.output
