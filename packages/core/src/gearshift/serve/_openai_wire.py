"""OpenAI's Chat Completions wire format: a request body to a core `ChatRequest`, an answer or a
stream of core events back to OpenAI's JSON and server-sent events. Pure: no I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidRequestError
from .._messages import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    ImagePart,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from .._tool_pairing import pair_tool_results
from ._failures import Failure
from ._step import CallerIdentity
from ._wire_fields import SAMPLING, check_fields, field_error, located, optional, required, string_map

__all__ = [
    "OpenAIChat",
    "OpenAIStream",
    "completion_body",
    "error_body",
    "model_body",
    "models_body",
    "parse_chat",
]

_KNOWN = frozenset(
    {
        "model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
        "response_format", "max_tokens", "max_completion_tokens", "temperature", "stop", "n", "user",
        "metadata", "top_p", "seed", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs",
        "top_logprobs", "store", "service_tier", "reasoning_effort", "prompt_cache_key",
        "safety_identifier", "verbosity",
    }
)  # fmt: skip
_REQUEST_FIELDS = {
    "max_tokens": "max_tokens",
    "tool_choice": "tool_choice",
    "tool names": "tools",
    "reasoning_effort": "reasoning_effort",
    **SAMPLING,
}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_ERROR_TYPES = {
    "invalid_request": ("invalid_request_error", None),
    "not_found": ("invalid_request_error", "model_not_found"),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", "permission_denied"),
    "budget_exceeded": ("budget_exceeded", "budget_exceeded"),
    "rate_limited": ("requests", "rate_limit_exceeded"),
    "too_large": ("invalid_request_error", "request_too_large"),
    "unavailable": ("server_error", "budget_ledger_unavailable"),
    "upstream": ("upstream_error", "all_models_failed"),
    "server": ("server_error", None),
}


@dataclass(frozen=True, slots=True)
class OpenAIChat:
    """A parsed Chat Completions request: the core request plus how to route and answer it."""

    request: ChatRequest
    model: str
    stream: bool = False
    include_usage: bool = False
    caller: CallerIdentity = field(default_factory=CallerIdentity)


def parse_chat(body: Any) -> OpenAIChat:
    """A Chat Completions request body, checked field by field (errors name the field)."""
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    check_fields(body, _KNOWN)
    model = required(body, "model", str)
    raw_messages = required(body, "messages", list)
    n = optional(body, "n", int)
    if n is not None and n != 1:
        raise field_error("n", f"only n = 1 is supported, got {n}")
    if optional(body, "logprobs", bool) or optional(body, "top_logprobs", int):
        raise field_error(
            "logprobs" if body.get("logprobs") else "top_logprobs",
            "the routing proxy cannot return log probabilities: not every model it routes to has them",
        )
    if optional(body, "logit_bias", dict):  # token ids are one tokenizer's; dropping it was unseen
        raise field_error(
            "logit_bias",
            "the routing proxy cannot bias tokens: their ids differ between the models it routes to",
        )
    messages = tuple(_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages))
    if not messages:
        raise field_error("messages", "must hold at least one message")
    tools = tuple(_tool(t, f"tools[{i}]") for i, t in enumerate(optional(body, "tools", list) or ()))
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise field_error("stop", "must be a string or an array of strings")
    max_tokens = _max_tokens(body)
    stream = bool(optional(body, "stream", bool))
    stream_options = optional(body, "stream_options", dict)
    if stream_options is not None and not stream:  # OpenAI answers such a request with a 400
        raise field_error("stream_options", "is only allowed when 'stream' is true")
    metadata = string_map(body, "metadata")
    response_format = optional(body, "response_format", dict)
    try:
        request = ChatRequest(
            messages=pair_tool_results(messages),
            tools=tools,
            tool_choice=_tool_choice(body.get("tool_choice")),
            max_tokens=max_tokens,
            temperature=optional(body, "temperature", float),
            stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
            response_schema=_response_schema(response_format),
            parallel_tool_calls=optional(body, "parallel_tool_calls", bool),
            response_strict=_response_strict(response_format),
            top_p=optional(body, "top_p", float),
            seed=optional(body, "seed", int),
            frequency_penalty=optional(body, "frequency_penalty", float),
            presence_penalty=optional(body, "presence_penalty", float),
            reasoning_effort=optional(body, "reasoning_effort", str),
        )
    except InvalidRequestError as exc:
        raise located(exc, _REQUEST_FIELDS) from None
    return OpenAIChat(
        request=request,
        model=model,
        stream=stream,
        include_usage=bool(optional(stream_options or {}, "include_usage", bool, "stream_options.")),
        caller=CallerIdentity(
            user=optional(body, "user", str),
            metadata=metadata,
        ),
    )


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    """`max_completion_tokens`, else the older `max_tokens`; each must be at least 1 (a 0 was read
    as absent, and the call went on with no cap)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = optional(body, name, int)
        if value is not None:
            if value < 1:
                raise field_error(name, f"must be at least 1, got {value}")
            return value
    return None


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise field_error(path, "must be an object")
    return value


def _tool(raw: Any, path: str) -> ToolSpec:
    tool = _object(raw, path)
    if tool.get("type", "function") != "function":  # a custom tool was "name: Field required"
        raise field_error(f"{path}.type", f"only function tools are supported, got {tool.get('type')!r}")
    return ToolSpec.parse(tool, where=path)


def _message(raw: Any, path: str) -> Message:
    body = _object(raw, path)
    role = required(body, "role", str, f"{path}.")
    if role not in _ROLES:
        raise field_error(f"{path}.role", f"must be one of {', '.join(_ROLES)}, got {role!r}")
    content = _content(body.get("content"), f"{path}.content")
    name = optional(body, "name", str, f"{path}.")
    if role == "tool":
        call_id = required(body, "tool_call_id", str, f"{path}.")
        if isinstance(content, str):
            return Message.tool(call_id, content, name=name)
        for index, part in enumerate(content):
            if not isinstance(part, TextPart):  # was dropped unseen; OpenAI takes text parts only
                raise field_error(f"{path}.content[{index}].type", "a tool message's parts must be text")
        return Message.tool(call_id, "\n".join(p.text for p in content if isinstance(p, TextPart)), name=name)
    if role == "assistant":
        calls = tuple(
            _tool_call(c, f"{path}.tool_calls[{i}]")
            for i, c in enumerate(optional(body, "tool_calls", list, f"{path}.") or ())
        )
        return Message("assistant", content, calls, name=name)
    return Message(_ROLES[role], content, name=name)  # type: ignore[arg-type]


def _content(raw: Any, path: str) -> str | tuple[ContentPart, ...]:
    if raw is None or isinstance(raw, str):
        return raw or ""
    if not isinstance(raw, list):
        raise field_error(path, "must be a string or an array of content parts")
    parts: list[ContentPart] = []
    for index, item in enumerate(raw):
        part = _object(item, f"{path}[{index}]")
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(TextPart(required(part, "text", str, f"{path}[{index}].")))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise field_error(f"{path}[{index}].image_url.url", "must be a URL string")
            parts.append(ImagePart(url=url))
        elif kind == "refusal":
            parts.append(TextPart(str(part.get("refusal", ""))))
        else:
            raise field_error(f"{path}[{index}].type", f"unsupported content part type {kind!r}")
    return tuple(parts)


def _tool_call(raw: Any, path: str) -> ToolCall:
    call = _object(raw, path)
    function = _object(call.get("function"), f"{path}.function")
    return ToolCall(
        id=required(call, "id", str, f"{path}."),
        name=required(function, "name", str, f"{path}.function."),
        arguments=optional(function, "arguments", str, f"{path}.function.") or "{}",
    )


def _tool_choice(raw: Any) -> str | None:
    if raw is None or raw in ("auto", "none", "required"):
        return raw  # type: ignore[no-any-return]
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if isinstance(name, str) and name:
            return name
    raise field_error("tool_choice", 'must be "auto", "none", "required" or {"type": "function", ...}')


def _response_schema(raw: dict[str, Any] | None) -> Mapping[str, Any] | None:
    if raw is None or raw.get("type") == "text":
        return None
    if raw.get("type") == "json_object":
        return {"type": "object"}
    if raw.get("type") == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise field_error("response_format.json_schema.schema", "must be a JSON schema object")
        return schema
    raise field_error("response_format.type", 'must be "text", "json_object" or "json_schema"')


def _response_strict(raw: dict[str, Any] | None) -> bool | None:
    """`response_format.json_schema.strict`, passed on to the model (the SDKs' `parse` sends true)."""
    if raw is None or raw.get("type") != "json_schema" or not isinstance(raw.get("json_schema"), dict):
        return None
    return optional(raw["json_schema"], "strict", bool, "response_format.json_schema.")


# -- answers --------------------------------------------------------------------------------------


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
    }


def _calls(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def _finish_reason(response: ChatResponse) -> str:
    """`length` when `max_tokens` cut the answer, even inside a tool call (whose arguments are then
    cut short too: it said `tool_calls`, and the caller ran a tool on half its arguments)."""
    if response.finish_reason == "length":
        return "length"
    return "tool_calls" if response.tool_calls else response.finish_reason or "stop"


def completion_body(response: ChatResponse, request_id: str, usage: Usage) -> dict[str, Any]:
    """A `chat.completion` object; `model` is the registry id of the model that answered."""
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None, "refusal": None}
    if response.tool_calls:
        message["tool_calls"] = _calls(response.tool_calls)
    finish = _finish_reason(response)
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model_id,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(usage),
        "system_fingerprint": None,
    }


class OpenAIStream:
    """Turns core stream events into `chat.completion.chunk` server-sent events."""

    def __init__(self, request_id: str, model: str, include_usage: bool) -> None:
        self._head = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
        }
        self.model = model
        self._include_usage = include_usage
        self._started = False

    def _chunk(
        self, delta: Mapping[str, Any], finish: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**self._head, "model": self.model, "choices": [choice], **(extra or {})})

    def events(self, event: StreamEvent, figures: Mapping[str, Any] | None = None) -> Iterator[str]:
        """The SSE lines for one core event (`StreamDone` closes the stream).

        The last chunk (the usage chunk when the client asked for it) carries the call's final
        `figures` as an extra `gearshift` object, which the SDKs keep as an extra field."""
        if not self._started:
            self._started = True
            yield self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, TextDelta):
            if event.text:
                yield self._chunk({"content": event.text})
        elif isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.index, "function": {"arguments": event.arguments}}
            if event.id is not None:
                call["id"], call["type"] = event.id, "function"
            if event.name is not None:
                call["function"]["name"] = event.name
            yield self._chunk({"tool_calls": [call]})
        else:
            response = event.response
            self.model = response.model_id
            finish = _finish_reason(response)
            extra = {"gearshift": dict(figures)} if figures is not None else {}
            yield self._chunk({}, finish, {} if self._include_usage else extra)
            if self._include_usage:
                usage = _usage(response.usage)
                yield _sse({**self._head, "model": self.model, "choices": [], "usage": usage, **extra})
            yield "data: [DONE]\n\n"

    def error(self, failure: Failure) -> str:
        """A failure after the stream started: an `error` event the SDKs raise as an API error."""
        return _sse(error_body(failure))


def _sse(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def error_body(failure: Failure) -> dict[str, Any]:
    """OpenAI's error object for a failure."""
    kind, code = _ERROR_TYPES.get(failure.kind, ("server_error", None))
    return {"error": {"message": failure.message, "type": kind, "param": failure.param, "code": code}}


def model_body(alias: str) -> dict[str, Any]:
    """One `model` object: a model a request may name."""
    return {"id": alias, "object": "model", "created": 0, "owned_by": "gearshift"}


def models_body(aliases: tuple[str, ...]) -> dict[str, Any]:
    """`GET /v1/models`: every model a request may name."""
    return {"object": "list", "data": [model_body(a) for a in aliases]}
