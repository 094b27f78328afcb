"""Anthropic's Messages wire format: a request body to a core `ChatRequest`, an answer or a stream of
core events back to Anthropic's JSON and its event sequence (message_start, content blocks,
message_delta, message_stop). Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
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
from ._wire_fields import SAMPLING, check_fields, field_error, located, optional, required

__all__ = [
    "AnthropicChat",
    "AnthropicStream",
    "error_body",
    "message_body",
    "model_body",
    "models_body",
    "parse_messages",
]

_KNOWN = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stream", "tools", "tool_choice", "temperature",
        "top_p", "top_k", "stop_sequences", "metadata", "thinking", "service_tier", "cache_control",
        "output_config",
    }
)  # fmt: skip
_OUTPUT_CONFIG = frozenset({"effort", "format"})
_METADATA = frozenset({"user_id"})
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_CLAUDE_ONLY_STOP_REASONS = frozenset({"model_context_window_exceeded", "pause_turn"})
_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "not_found": "not_found_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "budget_exceeded": "rate_limit_error",
    "rate_limited": "rate_limit_error",
    "too_large": "request_too_large",
    "unavailable": "overloaded_error",
    "upstream": "api_error",
    "server": "api_error",
}


@dataclass(frozen=True, slots=True)
class AnthropicChat:
    """A parsed Messages request: the core request plus how to route and answer it."""

    request: ChatRequest
    model: str
    stream: bool = False
    caller: CallerIdentity = field(default_factory=CallerIdentity)


def parse_messages(body: Any, *, count_only: bool = False) -> AnthropicChat:
    """A Messages request body (or a count_tokens one, which has no `max_tokens`), field by field."""
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    check_fields(body, _KNOWN)
    model = required(body, "model", str)
    max_tokens = None if count_only else required(body, "max_tokens", int)
    raw = required(body, "messages", list)
    messages: list[Message] = []
    system = body.get("system")
    if system is not None:
        messages.append(_system(system))
    for index, item in enumerate(raw):
        messages.extend(_message(item, f"messages[{index}]"))
    if not raw:
        raise field_error("messages", "must hold at least one message")
    tools = tuple(_tool(t, f"tools[{i}]") for i, t in enumerate(optional(body, "tools", list) or ()))
    choice, parallel = _tool_choice(optional(body, "tool_choice", dict))
    stops = optional(body, "stop_sequences", list) or []
    if not all(isinstance(s, str) for s in stops):
        raise field_error("stop_sequences", "must be an array of strings")
    metadata = optional(body, "metadata", dict) or {}
    check_fields(metadata, _METADATA, "metadata.")
    schema = _output_schema(optional(body, "output_config", dict))
    temperature = optional(body, "temperature", float)
    if temperature is not None and not 0 <= temperature <= 1:  # Anthropic's range; OpenAI's goes to 2
        raise field_error("temperature", f"must be a number from 0 to 1, got {temperature}")
    paired = _cached_to_the_end(pair_tool_results(messages), optional(body, "cache_control", dict))
    try:
        request = ChatRequest(
            messages=paired,
            tools=tools,
            tool_choice=choice,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=tuple(stops),
            parallel_tool_calls=parallel,
            response_schema=schema,
            response_strict=True if schema is not None else None,
            top_p=optional(body, "top_p", float),
            top_k=optional(body, "top_k", int),
        )
    except InvalidRequestError as exc:
        raise located(exc, {"max_tokens": "max_tokens", **SAMPLING}) from None
    user = optional(metadata, "user_id", str, "metadata.")  # another type was skipped unseen
    return AnthropicChat(
        request=request,
        model=model,
        stream=bool(optional(body, "stream", bool)),
        caller=CallerIdentity(user=user),
    )


def _cached_to_the_end(messages: tuple[Message, ...], mark: dict[str, Any] | None) -> tuple[Message, ...]:
    """`messages` with a top-level `cache_control` (Anthropic's automatic caching: the prefix up to
    the last cacheable block is cached) put on the last message, where a breakpoint of its own ends
    that prefix, so the mark reaches Anthropic and the reservation prices the write; a last message
    that marks itself keeps its own."""
    if mark is None or not messages or messages[-1].cache_control is not None:
        return messages
    return (*messages[:-1], replace(messages[-1], cache_control=mark))


def _output_schema(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """`output_config.format`'s JSON schema (what the SDK's `messages.parse` sends): Anthropic's
    structured outputs always keep to the schema, so the core request asks for it strictly."""
    if raw is None:
        return None
    check_fields(raw, _OUTPUT_CONFIG, "output_config.")
    optional(raw, "effort", str, "output_config.")
    output_format = optional(raw, "format", dict, "output_config.")
    if output_format is None:
        return None
    if output_format.get("type") != "json_schema":
        raise field_error("output_config.format.type", 'must be "json_schema"')
    return required(output_format, "schema", dict, "output_config.format.")


def _system(raw: Any) -> Message:
    if isinstance(raw, str):
        return Message.system(raw)
    if isinstance(raw, list) and all(isinstance(b, dict) and isinstance(b.get("text"), str) for b in raw):
        return Message("system", "\n".join(b["text"] for b in raw), cache_control=_cache_mark(raw, "system"))
    raise field_error("system", "must be a string or an array of text blocks")


def _cache_mark(blocks: list[Any], path: str) -> dict[str, Any] | None:
    """The last `cache_control` of a message's blocks: it ends the prefix Anthropic caches, which
    gearshift marks at the end of the message (the blocks of one message are one message to it)."""
    mark = None
    for index, block in enumerate(blocks):
        if isinstance(block, dict) and block.get("cache_control") is not None:
            mark = optional(block, "cache_control", dict, f"{path}[{index}].")
    return mark


def _message(raw: Any, path: str) -> list[Message]:
    if not isinstance(raw, dict):
        raise field_error(path, "must be an object")
    role = required(raw, "role", str, f"{path}.")
    if role not in ("user", "assistant"):
        raise field_error(f"{path}.role", f'must be "user" or "assistant", got {role!r}')
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role, content)]  # type: ignore[arg-type]
    if not isinstance(content, list):
        raise field_error(f"{path}.content", "must be a string or an array of content blocks")
    if not content and role == "user":  # was dropped unseen; only a final assistant turn may be empty
        raise field_error(f"{path}.content", "must hold at least one content block")
    results: list[Message] = []
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    for index, block in enumerate(content):
        where = f"{path}.content[{index}]"
        if not isinstance(block, dict):
            raise field_error(where, "must be an object")
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(required(block, "text", str, f"{where}.")))
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "tool_use" and role == "assistant":
            arguments = block.get("input", {})
            if not isinstance(arguments, dict):
                raise field_error(f"{where}.input", "must be an object")
            calls.append(
                ToolCall(
                    required(block, "id", str, f"{where}."),
                    required(block, "name", str, f"{where}."),
                    json.dumps(arguments),
                )
            )
        elif kind == "tool_result" and role == "user":
            text, images = _result(block.get("content"), f"{where}.content")
            results.append(
                Message.tool(
                    required(block, "tool_use_id", str, f"{where}."),
                    text,
                    is_error=bool(optional(block, "is_error", bool, f"{where}.")),
                )
            )
            parts.extend(images)  # a tool message is text: its images go in the user turn after it
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # the next model does not need another model's reasoning
        else:
            raise field_error(f"{where}.type", f"unsupported content block type {kind!r} in a {role} message")
    if role == "assistant":
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        results = [Message.assistant(text, calls)]
    elif parts:
        only_text = all(isinstance(p, TextPart) for p in parts)
        body: str | tuple[ContentPart, ...] = (
            "\n".join(p.text for p in parts if isinstance(p, TextPart)) if only_text else tuple(parts)
        )
        results.append(Message("user", body))
    mark = _cache_mark(content, f"{path}.content")
    if mark is not None and results:
        results[-1] = replace(results[-1], cache_control=mark)
    return results


def _image(block: Mapping[str, Any], where: str) -> ImagePart:
    source = block.get("source")
    if not isinstance(source, dict):
        raise field_error(f"{where}.source", "must be an object")
    if source.get("type") == "base64":
        return ImagePart(
            data=required(source, "data", str, f"{where}.source."),
            media_type=required(source, "media_type", str, f"{where}.source."),
        )
    if source.get("type") == "url":
        return ImagePart(url=required(source, "url", str, f"{where}.source."))
    raise field_error(f"{where}.source.type", 'must be "base64" or "url"')


def _result(raw: Any, where: str) -> tuple[str, list[ImagePart]]:
    """A tool result's text, and its images (a screenshot tool's): these were dropped unseen."""
    if raw is None or isinstance(raw, str):
        return raw or "", []
    if not isinstance(raw, list):
        raise field_error(where, "must be a string or an array of content blocks")
    texts: list[str] = []
    images: list[ImagePart] = []
    for index, block in enumerate(raw):
        if isinstance(block, dict) and block.get("type") == "image":
            images.append(_image(block, f"{where}[{index}]"))
        elif isinstance(block, dict) and block.get("type") == "text":
            texts.append(required(block, "text", str, f"{where}[{index}]."))
        else:
            kind = block.get("type") if isinstance(block, dict) else None
            raise field_error(f"{where}[{index}].type", f"unsupported tool_result block type {kind!r}")
    return "\n".join(texts), images


def _tool(raw: Any, where: str) -> ToolSpec:
    if not isinstance(raw, dict):
        raise field_error(where, "must be an object")
    if raw.get("type") not in (None, "custom"):
        raise field_error(
            f"{where}.type", f"server tools ({raw.get('type')!r}) are not supported by the proxy"
        )
    plain = {
        "name": raw.get("name"),
        "description": raw.get("description", ""),
        "parameters": raw.get("input_schema", {"type": "object", "properties": {}}),
        "strict": raw.get("strict"),  # was dropped, and the model was free to leave the schema
    }
    return ToolSpec.parse(plain, where=where)


def _tool_choice(raw: dict[str, Any] | None) -> tuple[str | None, bool | None]:
    if raw is None:
        return None, None
    parallel = False if raw.get("disable_parallel_tool_use") else None
    kind = raw.get("type")
    if kind in ("auto", "none"):
        return kind, parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool":
        return required(raw, "name", str, "tool_choice."), parallel
    raise field_error("tool_choice.type", 'must be "auto", "any", "tool" or "none"')


# -- answers --------------------------------------------------------------------------------------


def _stop_reason(response: ChatResponse) -> str:
    # Claude's own reasons that gearshift's (OpenAI's) words fold into others: model_context_window_
    # exceeded reads as `length` (max_tokens), pause_turn has no word at all.
    native = response.metadata.get("stop_reason")
    if native in _CLAUDE_ONLY_STOP_REASONS:
        return str(native)
    if response.tool_calls and response.finish_reason != "length":  # a cut call is max_tokens
        return "tool_use"
    if _stop_sequence(response) is not None:
        return "stop_sequence"
    return _STOP_REASONS.get(response.finish_reason or "stop", "end_turn")


def _stop_sequence(response: ChatResponse) -> str | None:
    """The stop sequence that ended the answer, when its provider says which (Anthropic's does;
    an OpenAI-compatible one only says "stop")."""
    matched = response.metadata.get("stop_sequence")
    return matched if isinstance(matched, str) and response.finish_reason == "stop" else None


def _usage(usage: Usage) -> dict[str, Any]:
    """Usage in Anthropic's terms: its `input_tokens` leave out the cached ones (gearshift's count
    every input token), so a client adding the three counts gets the call's input once."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": max(usage.input_tokens - cached, 0),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens - usage.cache_write_1h_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        },
    }


def _input(call: ToolCall) -> dict[str, Any]:
    """A tool call's arguments as `tool_use.input`; `{}` when `max_tokens` cut them short, which
    `stop_reason: max_tokens` says (the paid answer was a 400 blaming the request)."""
    try:
        return call.parsed_arguments()
    except InvalidRequestError:
        return {}


def message_body(response: ChatResponse, request_id: str, usage: Usage) -> dict[str, Any]:
    """A `message` object; `model` is the registry id of the model that answered."""
    content: list[dict[str, Any]] = [{"type": "text", "text": response.text}] if response.text else []
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c)} for c in response.tool_calls
    ]
    return {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": response.model_id,
        "content": content,
        "stop_reason": _stop_reason(response),
        "stop_sequence": _stop_sequence(response),
        "usage": _usage(usage),
    }


class AnthropicStream:
    """Turns core stream events into Anthropic's server-sent events.

    `input_tokens` is what `message_start` reports, as Anthropic's API does there: gearshift's
    estimate of the request (the upstream's count is known only at the end); `message_delta` then
    carries the count the model reported."""

    def __init__(self, request_id: str, model: str, input_tokens: int = 0) -> None:
        self._id = f"msg_{request_id}"
        self.model = model
        self._input_tokens = input_tokens
        self._started = False
        self._open: int | None = None  # the content block being streamed
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}

    def events(self, event: StreamEvent, figures: Mapping[str, Any] | None = None) -> Iterator[str]:
        """The events for one core event (`StreamDone` closes the message); `message_delta` carries
        the call's final `figures` as an extra `gearshift` object."""
        if not self._started:
            self._started = True
            message: dict[str, Any] = {
                "id": self._id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
            }  # fmt: skip
            yield _event("message_start", {"message": message})
        if isinstance(event, TextDelta):
            if not event.text:
                return
            if self._open is None or self._open in self._tool_blocks.values():
                yield from self._start({"type": "text", "text": ""})
            yield _event(
                "content_block_delta",
                {"index": self._open, "delta": {"type": "text_delta", "text": event.text}},
            )
        elif isinstance(event, ToolCallDelta):
            if event.index not in self._tool_blocks:
                block = {
                    "type": "tool_use",
                    "id": event.id or f"toolu_{event.index}",
                    "name": event.name or "",
                    "input": {},
                }
                yield from self._start(block)
                self._tool_blocks[event.index] = self._open  # type: ignore[assignment]
            if event.arguments:
                delta = {"type": "input_json_delta", "partial_json": event.arguments}
                yield _event("content_block_delta", {"index": self._tool_blocks[event.index], "delta": delta})
        else:
            response = event.response
            self.model = response.model_id
            yield from self._stop()
            ending = {"stop_reason": _stop_reason(response), "stop_sequence": _stop_sequence(response)}
            extra = {"gearshift": dict(figures)} if figures is not None else {}
            yield _event("message_delta", {"delta": ending, "usage": _usage(response.usage), **extra})
            yield _event("message_stop", {})

    def _start(self, block: dict[str, Any]) -> Iterator[str]:
        yield from self._stop()
        self._open = self._blocks
        self._blocks += 1
        yield _event("content_block_start", {"index": self._open, "content_block": block})

    def _stop(self) -> Iterator[str]:
        if self._open is not None:
            yield _event("content_block_stop", {"index": self._open})
            self._open = None

    def error(self, failure: Failure) -> str:
        """A failure after the stream started: an `error` event."""
        return _event("error", error_body(failure))


def _event(kind: str, payload: Mapping[str, Any]) -> str:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n"


def error_body(failure: Failure) -> dict[str, Any]:
    """Anthropic's error object for a failure."""
    return {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(failure.kind, "api_error"), "message": failure.message},
    }


def model_body(alias: str) -> dict[str, Any]:
    """One `ModelInfo`: a model a request may name (gearshift knows no release date: the epoch)."""
    return {
        "type": "model",
        "id": alias,
        "display_name": alias,
        "created_at": "1970-01-01T00:00:00Z",
        "lifecycle": "active",
    }


def models_body(aliases: tuple[str, ...]) -> dict[str, Any]:
    """`GET /v1/models` for the Anthropic SDK: every model a request may name, on one page."""
    return {
        "data": [model_body(a) for a in aliases],
        "has_more": False,
        "first_id": aliases[0] if aliases else None,
        "last_id": aliases[-1] if aliases else None,
    }
