"""The stateless part of OpenAI's Responses API: `input` items to a core `ChatRequest`, an answer or
a stream of core events back to a `response` object and its typed events. Pure: no I/O.

The proxy keeps no state, so what needs stored responses (`previous_response_id`, `conversation`,
`background`) is refused with a 400 that says to send the whole history as `input` instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
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
from ._openai_wire import OpenAIChat
from ._step import CallerIdentity
from ._wire_fields import SAMPLING, check_fields, field_error, located, optional, required, string_map

__all__ = ["ResponsesStream", "parse_responses", "request_echo", "response_body"]

_KNOWN = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "max_output_tokens", "temperature",
        "top_p", "stream", "text", "parallel_tool_calls", "user", "metadata", "store", "include",
        "reasoning", "truncation", "previous_response_id", "conversation", "background",
        "service_tier", "prompt_cache_key", "safety_identifier", "stream_options",
    }
)  # fmt: skip
_STATEFUL = ("previous_response_id", "conversation", "background")
_ECHOED = (
    "instructions", "metadata", "temperature", "top_p", "max_output_tokens", "tools", "tool_choice",
    "parallel_tool_calls", "text", "reasoning",
)  # fmt: skip
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


def parse_responses(body: Any) -> OpenAIChat:
    """A Responses request body, field by field; stateful requests are refused."""
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    check_fields(body, _KNOWN)
    for name in _STATEFUL:
        if body.get(name):
            raise field_error(
                name, "this proxy keeps no state: send the whole conversation as 'input' instead"
            )
    model = required(body, "model", str)
    messages: list[Message] = []
    instructions = optional(body, "instructions", str)
    if instructions:
        messages.append(Message.system(instructions))
    raw = body.get("input")
    if isinstance(raw, str):
        messages.append(Message.user(raw))
    elif isinstance(raw, list):
        _items(raw, messages)
    else:
        raise field_error("input", "must be a string or an array of input items")
    tools = tuple(_tool(t, f"tools[{i}]") for i, t in enumerate(optional(body, "tools", list) or ()))
    text = optional(body, "text", dict) or {}
    text_format = optional(text, "format", dict, "text.")
    metadata = string_map(body, "metadata")
    reasoning = optional(body, "reasoning", dict) or {}
    try:
        request = ChatRequest(
            messages=pair_tool_results(messages),
            tools=tools,
            tool_choice=_tool_choice(body.get("tool_choice")),
            max_tokens=optional(body, "max_output_tokens", int),
            temperature=optional(body, "temperature", float),
            response_schema=_schema(text_format),
            parallel_tool_calls=optional(body, "parallel_tool_calls", bool),
            response_strict=_strict(text_format),
            top_p=optional(body, "top_p", float),
            reasoning_effort=optional(reasoning, "effort", str, "reasoning."),
        )
    except InvalidRequestError as exc:
        raise located(
            exc, {"max_tokens": "max_output_tokens", "reasoning_effort": "reasoning.effort", **SAMPLING}
        ) from None
    return OpenAIChat(
        request=request,
        model=model,
        stream=bool(optional(body, "stream", bool)),
        caller=CallerIdentity(
            user=optional(body, "user", str),
            metadata=metadata,
        ),
    )


def request_echo(body: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a `response` object repeats from its request (OpenAI's does: a caller reads
    back the `metadata` it tagged the call with); those not sent keep the response's defaults."""
    return {name: body[name] for name in _ECHOED if body.get(name) is not None}


def _items(raw: list[Any], messages: list[Message]) -> None:
    images: list[ContentPart] = []  # of tool outputs, sent after the run of outputs they came in
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise field_error(where, "must be an object")
        kind = item.get("type", "message")
        if images and kind != "function_call_output":
            messages.append(Message("user", tuple(images)))
            images = []
        if kind == "message":
            role = required(item, "role", str, f"{where}.")
            if role not in _ROLES:
                raise field_error(f"{where}.role", f"must be one of {', '.join(_ROLES)}, got {role!r}")
            messages.append(Message(_ROLES[role], _content(item.get("content"), f"{where}.content")))  # type: ignore[arg-type]
        elif kind == "function_call":
            call = ToolCall(
                required(item, "call_id", str, f"{where}."),
                required(item, "name", str, f"{where}."),
                optional(item, "arguments", str, f"{where}.") or "{}",
            )
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and (last.tool_calls or not last.text):
                messages[-1] = Message("assistant", last.content, (*last.tool_calls, call))
            else:
                messages.append(Message.assistant("", [call]))
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):  # text and images: the images went to the model as JSON text
                content = _content(output, f"{where}.output")
                parts = (TextPart(content),) if isinstance(content, str) else content
                text = "\n".join(p.text for p in parts if isinstance(p, TextPart))
                images += [p for p in parts if not isinstance(p, TextPart)]
            else:
                text = output if isinstance(output, str) else json.dumps(output)
            messages.append(Message.tool(required(item, "call_id", str, f"{where}."), text))
        elif kind == "reasoning":
            continue  # another model's reasoning is of no use to the next one
        else:
            raise field_error(f"{where}.type", f"unsupported input item type {kind!r}")
    if images:
        messages.append(Message("user", tuple(images)))


def _content(raw: Any, where: str) -> str | tuple[ContentPart, ...]:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise field_error(where, "must be a string or an array of content parts")
    parts: list[ContentPart] = []
    for index, part in enumerate(raw):
        if not isinstance(part, dict):
            raise field_error(f"{where}[{index}]", "must be an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(TextPart(required(part, "text", str, f"{where}[{index}].")))
        elif kind == "input_image":
            parts.append(ImagePart(url=required(part, "image_url", str, f"{where}[{index}].")))
        elif kind == "refusal":  # in a history replayed from OpenAI's output
            parts.append(TextPart(required(part, "refusal", str, f"{where}[{index}].")))
        else:
            raise field_error(f"{where}[{index}].type", f"unsupported content part type {kind!r}")
    return tuple(parts)


def _tool(raw: Any, where: str) -> ToolSpec:
    if not isinstance(raw, dict):
        raise field_error(where, "must be an object")
    if raw.get("type") != "function":
        raise field_error(f"{where}.type", f"only function tools are supported, got {raw.get('type')!r}")
    plain = {k: raw[k] for k in ("name", "description", "parameters", "strict") if raw.get(k) is not None}
    return ToolSpec.parse(plain, where=where)


def _tool_choice(raw: Any) -> str | None:
    if raw is None or raw in ("auto", "none", "required"):
        return raw  # type: ignore[no-any-return]
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return str(raw["name"])
    raise field_error(
        "tool_choice", 'must be "auto", "none", "required" or {"type": "function", "name": ...}'
    )


def _schema(raw: dict[str, Any] | None) -> Mapping[str, Any] | None:
    if raw is None or raw.get("type") == "text":
        return None
    if raw.get("type") == "json_object":
        return {"type": "object"}
    if raw.get("type") == "json_schema" and isinstance(raw.get("schema"), dict):
        return dict(raw["schema"])
    raise field_error(
        "text.format", 'must be {"type": "text"}, {"type": "json_object"} or a json_schema format'
    )


def _strict(raw: dict[str, Any] | None) -> bool | None:
    """`text.format.strict`, passed on to the model (the SDK's `responses.parse` sends true; it was
    dropped, so a strict schema reached the model as a hint)."""
    if raw is None or raw.get("type") != "json_schema":
        return None
    return optional(raw, "strict", bool, "text.format.")


# -- answers --------------------------------------------------------------------------------------


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def _text_item(request_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {
        "type": "message", "id": f"msg_{request_id}", "status": status, "role": "assistant",
        "content": [part] if status == "completed" else [],
    }  # fmt: skip


def _call_item(call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": name,
        "arguments": arguments, "status": status,
    }  # fmt: skip


def response_body(
    request_id: str,
    model: str,
    response: ChatResponse | None,
    usage: Usage | None,
    status: str = "completed",
    echo: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A `response` object (`response` None: one still in progress, with no output yet), repeating
    the request's settings in `echo` (see `request_echo`)."""
    output: list[dict[str, Any]] = []
    if response is not None:
        if response.text:
            output.append(_text_item(request_id, response.text))
        output += [_call_item(c.id, c.name, c.arguments) for c in response.tool_calls]
    incomplete = response is not None and response.finish_reason == "length"
    return {
        "id": f"resp_{request_id}", "object": "response", "created_at": int(time.time()),
        "status": "incomplete" if incomplete else status, "model": model, "output": output,
        "usage": _usage(usage) if usage is not None else None, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": None, "metadata": {}, "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [], "temperature": None, "top_p": None, "text": {"format": {"type": "text"}},
        "store": False, "truncation": "disabled", "previous_response_id": None, "reasoning": None,
        **(echo or {}),
    }  # fmt: skip


class ResponsesStream:
    """Turns core stream events into the Responses API's typed server-sent events."""

    def __init__(self, request_id: str, model: str, echo: Mapping[str, Any] | None = None) -> None:
        self._id = request_id
        self.model = model
        self._echo = echo
        self._sequence = 0
        self._started = False
        self._text: str | None = None  # the text item being streamed, when one is open
        self._text_at = 0  # its output index
        self._output = 0
        self._calls: dict[int, tuple[int, str, str, list[str]]] = {}  # index -> position, id, name, pieces

    def _event(self, kind: str, payload: Mapping[str, Any]) -> str:
        data = json.dumps({"type": kind, "sequence_number": self._sequence, **payload}, separators=(",", ":"))
        self._sequence += 1
        return f"event: {kind}\ndata: {data}\n\n"

    def events(self, event: StreamEvent, figures: Mapping[str, Any] | None = None) -> Iterator[str]:
        """The events for one core event (`StreamDone` completes the response); `response.completed`
        carries the call's final `figures` as an extra `gearshift` object."""
        if not self._started:
            self._started = True
            shell = response_body(self._id, self.model, None, None, "in_progress", self._echo)
            yield self._event("response.created", {"response": shell})
            yield self._event("response.in_progress", {"response": shell})
        if isinstance(event, TextDelta):
            if not event.text:
                return
            if self._text is None:
                self._text = ""
                self._text_at = self._output
                self._output += 1
                item = _text_item(self._id, "", status="in_progress")
                yield self._event("response.output_item.added", {"output_index": self._text_at, "item": item})
                part = {"type": "output_text", "text": "", "annotations": []}
                yield self._event("response.content_part.added", self._where() | {"part": part})
            self._text += event.text
            yield self._event(
                "response.output_text.delta", self._where() | {"delta": event.text, "logprobs": []}
            )
        elif isinstance(event, ToolCallDelta):
            yield from self._close_text()
            if event.index not in self._calls:
                call_id, name = event.id or f"call_{event.index}", event.name or ""
                self._calls[event.index] = (self._output, call_id, name, [])
                item = _call_item(call_id, name, "", status="in_progress")
                yield self._event("response.output_item.added", {"output_index": self._output, "item": item})
                self._output += 1
            position, call_id, _, pieces = self._calls[event.index]
            if event.arguments:
                pieces.append(event.arguments)
                where = {"item_id": f"fc_{call_id}", "output_index": position, "delta": event.arguments}
                yield self._event("response.function_call_arguments.delta", where)
        else:
            yield from self._close_text()
            for position, call_id, name, pieces in self._calls.values():
                arguments = "".join(pieces)
                where = {"item_id": f"fc_{call_id}", "output_index": position, "arguments": arguments}
                yield self._event("response.function_call_arguments.done", where)
                item = _call_item(call_id, name, arguments)
                yield self._event("response.output_item.done", {"output_index": position, "item": item})
            response = event.response
            self.model = response.model_id
            body = response_body(self._id, self.model, response, response.usage, echo=self._echo)
            extra = {"gearshift": dict(figures)} if figures is not None else {}
            yield self._event("response.completed", {"response": body, **extra})

    def _where(self) -> dict[str, Any]:
        return {"item_id": f"msg_{self._id}", "output_index": self._text_at, "content_index": 0}

    def _close_text(self) -> Iterator[str]:
        if self._text is None:
            return
        text, self._text = self._text, None
        yield self._event("response.output_text.done", self._where() | {"text": text, "logprobs": []})
        part = {"type": "output_text", "text": text, "annotations": []}
        yield self._event("response.content_part.done", self._where() | {"part": part})
        item = _text_item(self._id, text)
        yield self._event("response.output_item.done", {"output_index": self._text_at, "item": item})

    def error(self, failure: Failure) -> str:
        """A failure after the stream started: an `error` event."""
        return self._event(
            "error", {"code": failure.kind, "message": failure.message, "param": failure.param}
        )
