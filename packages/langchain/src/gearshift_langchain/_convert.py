"""LangChain's side of a request in gearshift's terms: messages, tools, tool choice, response format.

This is the only place LangChain input meets gearshift's provider-neutral types. Message content
may be a string or a list of blocks in any of the shapes LangChain carries (OpenAI's, Anthropic's,
LangChain's own standard blocks); text and images go through, reasoning and tool-use blocks are left
to the fields that already hold them (`AIMessage.tool_calls`). The history is then passed through
`pair_tool_results`, so that it stays valid for whichever provider answers next.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from gearshift import ImagePart, InvalidRequestError, Message, TextPart, ToolCall, ToolSpec, pair_tool_results

__all__ = [
    "ToolSpecCache",
    "as_tool_dicts",
    "convert_message",
    "convert_messages",
    "message_kind",
    "to_messages",
    "to_response_schema",
    "to_response_strict",
    "to_tool_choice",
    "to_tool_specs",
    "tool_result",
]

_ROLES = {"human": "user", "user": "user", "system": "system", "developer": "system", "ai": "assistant"}
_ROLES |= {"assistant": "assistant", "tool": "tool"}
# Blocks an assistant turn carries besides its text: the calls are read from `tool_calls`, and
# reasoning is the provider's own business.
_SKIPPED_AI_BLOCKS = frozenset(
    {"tool_use", "tool_call", "tool_call_chunk", "function_call", "reasoning", "thinking"}
    | {"redacted_thinking", "server_tool_call", "server_tool_result", "invalid_tool_call"}
)
_JSON_OBJECT_SCHEMA: Mapping[str, Any] = {"type": "object"}
_MAX_CACHED_TOOLS = 256

# The message classes a history is made of, by the class an isinstance chain would find first: exact
# classes are looked up, not tested one by one (a LangChain message's isinstance goes through ABCMeta).
_KINDS: tuple[tuple[type[BaseMessage], type[BaseMessage]], ...] = (
    (ToolMessage, ToolMessage),
    (AIMessage, AIMessage),
    (SystemMessage, SystemMessage),
    (HumanMessage, HumanMessage),
    (ChatMessage, ChatMessage),
)
_KIND_OF: dict[type, type[BaseMessage] | None] = {}


def message_kind(message: BaseMessage) -> type[BaseMessage] | None:
    """Which of `ToolMessage`, `AIMessage`, `SystemMessage`, `HumanMessage`, `ChatMessage` the message is
    an instance of (the first in that order; a chunk is its message's kind), or None for another class."""
    cls = type(message)
    try:
        return _KIND_OF[cls]
    except KeyError:
        kind = next((kind for base, kind in _KINDS if issubclass(cls, base)), None)
        _KIND_OF[cls] = kind
        return kind


def to_messages(messages: Sequence[BaseMessage]) -> tuple[Message, ...]:
    """gearshift messages for a LangChain history, with tool calls and results paired for any provider."""
    return pair_tool_results(convert_messages(messages))


def convert_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """One gearshift message per LangChain message, in order, before tool calls and results are paired
    (`to_messages` pairs them): the step context reads the history from these."""
    return [convert_message(message, index) for index, message in enumerate(messages)]


def convert_message(message: BaseMessage, index: int) -> Message:
    """The gearshift message of one LangChain message, the `index`-th of its history (errors name it)."""
    converted = _converted(message, index)
    cache = _cache_control(message.content)
    return converted if cache is None else replace(converted, cache_control=cache)


def _cache_control(content: str | list[str | dict[Any, Any]]) -> Mapping[str, Any] | None:
    """The prompt-cache breakpoint a content block carries (`cache_control`, as for ChatAnthropic)."""
    if isinstance(content, str):
        return None
    marked = [b["cache_control"] for b in content if isinstance(b, Mapping) and b.get("cache_control")]
    return dict(marked[-1]) if marked else None


def _converted(message: BaseMessage, index: int) -> Message:
    kind = message_kind(message)
    if kind is ToolMessage:
        return tool_result(cast("ToolMessage", message))
    if kind is AIMessage:
        # The name says which agent spoke (`create_agent(name=...)` sets it): a supervisor's next agent
        # must not read another agent's words as its own. ChatOpenAI sends it too.
        calls = _tool_calls(cast("AIMessage", message))
        return Message("assistant", _ai_text(message.content), calls, name=message.name)
    if kind is SystemMessage:
        return Message("system", _plain_text(message.content, where=f"system message {index}"))
    if kind is HumanMessage:
        return Message("user", _user_content(message.content, index), name=message.name)
    if isinstance(message, ChatMessage) and message.role in _ROLES:
        role = _ROLES[message.role]
        if role == "user":
            return Message("user", _user_content(message.content, index), name=message.name)
        if role == "assistant":
            return Message("assistant", _ai_text(message.content), name=message.name)
        if role == "tool":
            raise InvalidRequestError(f"message {index}: a tool result must be a ToolMessage")
        return Message.system(_plain_text(message.content, where=f"message {index}"))
    raise InvalidRequestError(
        f"message {index}: cannot route a {type(message).__name__} "
        f"(role {getattr(message, 'role', message.type)!r}); use System, Human, AI or Tool messages"
    )


def tool_result(message: ToolMessage) -> Message:
    """The gearshift message of a `ToolMessage`, before any cache breakpoint its content blocks carry
    (`convert_message` adds it): for text content, all of its conversion."""
    # Positional (role, content, tool_calls, tool_call_id, name, is_error): an agent's history holds a
    # tool result per call, converted on every step, and keywords cost a quarter more.
    content = message.content
    return Message(
        "tool",
        content if type(content) is str else _tool_text(content),
        (),
        message.tool_call_id or "",
        message.name,
        message.status == "error",
    )


def _tool_calls(message: AIMessage) -> tuple[ToolCall, ...]:
    calls = [
        ToolCall.with_arguments(
            call.get("id") or "", call["name"], call.get("args") or {}, ensure_ascii=False
        )
        for call in message.tool_calls
    ]
    # A call the model got wrong (arguments that are not JSON) was still made: the provider must see
    # it, with the arguments as they were, so that the tool result that reports the error pairs up.
    if message.invalid_tool_calls:
        calls.extend(
            ToolCall(call.get("id") or "", call.get("name") or "unknown_tool", call.get("args") or "{}")
            for call in message.invalid_tool_calls
        )
    return tuple(calls)


def _blocks(content: str | list[str | dict[Any, Any]]) -> list[str | dict[Any, Any]]:
    return [content] if isinstance(content, str) else list(content)


def _block_text(block: str | Mapping[Any, Any]) -> str | None:
    if isinstance(block, str):
        return block
    if block.get("type") == "text" or ("text" in block and "type" not in block):
        return str(block.get("text", ""))
    return None


def _plain_text(content: str | list[str | dict[Any, Any]], *, where: str) -> str:
    texts = []
    for block in _blocks(content):
        text = _block_text(block)
        if text is None:
            raise InvalidRequestError(
                f"{where}: a {_kind(block)} block cannot go in this message; only text can"
            )
        texts.append(text)
    return "".join(texts) if isinstance(content, str) else "\n".join(texts)


def _ai_text(content: str | list[str | dict[Any, Any]]) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for block in content:
        text = _block_text(block)
        if text is not None:
            texts.append(text)
        elif isinstance(block, Mapping) and block.get("type") not in _SKIPPED_AI_BLOCKS:
            raise InvalidRequestError(
                f"an AI message holds a {_kind(block)} block, which gearshift cannot send"
            )
    return "".join(texts)


def _tool_text(content: str | list[str | dict[Any, Any]]) -> str:
    """A tool result as text: text blocks joined; other blocks named, since results are sent as text."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        text = _block_text(block)
        if text is not None:
            parts.append(text)
        elif isinstance(block, Mapping) and block.get("type") in (None, "json"):
            parts.append(json.dumps(block.get("json", block), ensure_ascii=False, default=str))
        else:
            kind = block.get("type", "block") if isinstance(block, Mapping) else "block"
            parts.append(f"[{kind} omitted: gearshift sends tool results as text]")
    return "\n".join(parts)


def _user_content(
    content: str | list[str | dict[Any, Any]], index: int
) -> str | tuple[TextPart | ImagePart, ...]:
    if isinstance(content, str):
        return content
    parts: list[TextPart | ImagePart] = []
    for block in content:
        text = _block_text(block)
        if text is not None:
            parts.append(TextPart(text))
            continue
        image = _image(block)
        if image is None:
            raise InvalidRequestError(
                f"message {index}: a {_kind(block)} block cannot be routed; gearshift sends text and images"
            )
        parts.append(image)
    if all(isinstance(part, TextPart) for part in parts):
        return "\n".join(part.text for part in parts if isinstance(part, TextPart))
    return tuple(parts)


def _image(block: str | Mapping[Any, Any]) -> ImagePart | None:
    """An image block in OpenAI's, Anthropic's or LangChain's standard shape; None for anything else."""
    if isinstance(block, str):
        return None
    kind = block.get("type")
    if kind == "image_url":
        url = block.get("image_url")
        url = url.get("url") if isinstance(url, Mapping) else url
        return _image_from_url(str(url or ""))
    if kind != "image":
        return None
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic
        if source.get("type") == "url":
            return ImagePart(url=str(source.get("url", "")))
        return ImagePart(
            data=str(source.get("data", "")), media_type=str(source.get("media_type", "image/png"))
        )
    mime = str(block.get("mime_type") or "image/png")
    if block.get("url"):
        return _image_from_url(str(block["url"]))
    data = block.get("base64") or block.get("data")
    if data:
        return ImagePart(data=str(data), media_type=mime)
    return None


def _image_from_url(url: str) -> ImagePart:
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return ImagePart(data=data, media_type=head or "image/png")
    return ImagePart(url=url)


def _kind(block: str | Mapping[Any, Any]) -> str:
    return "text" if isinstance(block, str) else repr(block.get("type", "untyped"))


def as_tool_dicts(tools: Sequence[Any]) -> Sequence[Mapping[str, Any]]:
    """Tools given as a call option (`bind(tools=...)`, `invoke(..., tools=...)`) as the OpenAI-format
    dicts `bind_tools` stores: LangChain tools, functions and pydantic models converted as it does."""
    if all(type(tool) is dict or isinstance(tool, Mapping) for tool in tools):
        return tools
    converted: list[Mapping[str, Any]] = []
    for index, tool in enumerate(tools):
        if isinstance(tool, Mapping):
            converted.append(tool)
        elif isinstance(tool, BaseTool) or callable(tool):
            converted.append(convert_to_openai_tool(tool))
        else:
            raise InvalidRequestError(
                f"tool {index} is a {type(tool).__name__}; a tool is a LangChain tool, a function, "
                "a pydantic model or an OpenAI-format dict"
            )
    return converted


def to_tool_specs(tools: Sequence[Mapping[str, Any]] | None) -> tuple[ToolSpec, ...]:
    """gearshift tool definitions from the OpenAI-format tools `bind_tools` stored."""
    return tuple(ToolSpec.parse(tool, where=f"tool {index}") for index, tool in enumerate(tools or ()))


class ToolSpecCache:
    """`ToolSpec`s of OpenAI-format tool dicts, kept per tool name while the dict stays the same.

    An agent sends the same tools on every step, and may build their dicts anew for each step
    (`bind_tools` per call): a spec is reused when the dict equals, as Python compares dicts, a deep
    copy of the one it was parsed from, and holds values of the same types where that copy holds
    anything but strings and None. Python finds `1 == True == 1.0`, but a provider is sent JSON,
    where `1`, `true` and `1.0` differ; only those leaves are checked, so a schema of strings costs
    no more than the `==`. A dict edited in place or a new tool of the same name is parsed again.
    Parsing and the spec's token estimate then happen once per tool, not per step.

    The last list of tools of each length is kept too (the copies of its dicts): a list equal to it,
    with the same types at the same leaves, gets its specs in one comparison rather than one per tool.
    """

    def __init__(self) -> None:
        self._specs: dict[str, tuple[dict[str, Any], ToolSpec, tuple[_TypedLeaf, ...]]] = {}
        self._lists: dict[int, tuple[list[dict[str, Any]], tuple[ToolSpec, ...], tuple[_TypedLeaf, ...]]] = {}

    def specs(self, tools: Sequence[Mapping[str, Any]] | None) -> tuple[ToolSpec, ...]:
        """`to_tool_specs(tools)`, with the specs of tools seen before reused."""
        if not tools:
            return ()
        offered = self._lists.get(len(tools))
        if offered is not None and offered[0] == tools and (not offered[2] or _same_types(tools, offered[2])):
            return offered[1]
        cache = self._specs
        specs = []
        entries = []
        for index, tool in enumerate(tools):
            function = tool.get("function")
            # A dict is tested by its class first: an isinstance against Mapping goes through ABCMeta.
            source = function if type(function) is dict or isinstance(function, Mapping) else tool
            name = source.get("name")
            hit = cache.get(name) if isinstance(name, str) else None
            if hit is None or hit[0] != tool or (hit[2] and not _same_types(tool, hit[2])):
                spec = ToolSpec.parse(tool, where=f"tool {index}")
                if not isinstance(name, str):
                    specs.append(spec)
                    continue
                if len(cache) >= _MAX_CACHED_TOOLS:
                    cache.clear()
                    self._lists.clear()
                kept = copy.deepcopy(dict(tool))
                hit = cache[name] = (kept, spec, tuple(_typed_leaves(kept, ())))
            specs.append(hit[1])
            entries.append(hit)
        found = tuple(specs)
        if len(entries) == len(tools) and type(tools) is list:
            leaves = tuple(((i, *path), kind) for i, entry in enumerate(entries) for path, kind in entry[2])
            if len(self._lists) >= _MAX_CACHED_TOOLS:
                self._lists.clear()
            self._lists[len(tools)] = ([entry[0] for entry in entries], found, leaves)
        return found


_TypedLeaf = tuple[tuple[Any, ...], type]


def _typed_leaves(value: Any, path: tuple[Any, ...]) -> Iterator[_TypedLeaf]:
    """Where `value` holds something other than a string or None, a dict or a list (numbers and
    booleans, in a JSON schema), and its exact type."""
    if type(value) is dict:
        for key, item in value.items():
            yield from _typed_leaves(item, (*path, key))
    elif type(value) is list or type(value) is tuple:
        for position, item in enumerate(value):
            yield from _typed_leaves(item, (*path, position))
    elif type(value) is not str and value is not None:
        yield path, type(value)


def _same_types(tool: Any, leaves: tuple[_TypedLeaf, ...]) -> bool:
    """Whether `tool` (equal to the dict, or list of dicts, `leaves` were read from) holds each leaf's
    exact type."""
    for path, kind in leaves:
        value: Any = tool
        for step in path:
            value = value[step]
        if type(value) is not kind:
            return False
    return True


def to_tool_choice(choice: Any, tools: Sequence[ToolSpec]) -> str | None:
    """gearshift's tool choice for any form LangChain users pass to `bind_tools(tool_choice=...)`.

    `"any"`, `"required"` and `True` force some tool call; a tool name (or OpenAI's
    `{"type": "function", "function": {"name": ...}}`, Anthropic's `{"type": "tool", "name": ...}`)
    forces that tool; `"auto"`, `"none"` pass through; Anthropic's `{"type": "any" | "auto" | "none"}`
    read as the word.
    """
    if choice is None or choice is False:
        return None
    if choice is True or choice in ("any", "required"):
        return "required"
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        if not name and choice.get("type") in ("any", "auto", "none", "required"):
            return to_tool_choice(choice["type"], tools)  # Anthropic's {"type": "any"}, ChatAnthropic's
        if not name:
            raise InvalidRequestError(f"tool_choice {dict(choice)!r} names no tool")
        return str(name)
    if isinstance(choice, str):
        return choice
    raise InvalidRequestError(
        f"tool_choice must be 'auto', 'any', 'none', a tool name or True, got {choice!r} "
        f"(tools: {', '.join(t.name for t in tools) or 'none'})"
    )


def to_response_schema(response_format: Any) -> Mapping[str, Any] | None:
    """The JSON schema an OpenAI-style `response_format` asks the answer to match.

    `{"type": "json_schema", "json_schema": {"schema": ...}}` gives its schema; `{"type": "json_object"}`
    (JSON mode) asks for any JSON object; `{"type": "text"}` or None asks for nothing.
    """
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise InvalidRequestError(f"response_format must be a dict, got {type(response_format).__name__}")
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise InvalidRequestError("response_format of type json_schema needs json_schema.schema")
        return schema
    if kind == "json_object":
        return _JSON_OBJECT_SCHEMA
    if kind in (None, "text"):
        return None
    raise InvalidRequestError(
        f"response_format type {kind!r} is not supported; use json_schema or json_object"
    )


def to_response_strict(response_format: Any) -> bool | None:
    """Whether a `json_schema` response format asks for strict adherence (`json_schema.strict`, as
    ChatOpenAI sends it); None when it does not say, or for any other format."""
    if (
        response_format is None  # the common case, without an isinstance through ABCMeta
        or not isinstance(response_format, Mapping)
        or response_format.get("type") != "json_schema"
    ):
        return None
    spec = response_format.get("json_schema")
    strict = spec.get("strict") if isinstance(spec, Mapping) else None
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequestError(f"response_format json_schema.strict must be true or false, got {strict!r}")
    return strict
