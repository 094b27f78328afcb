"""LlamaIndex chat messages, tools and responses to and from gearshift's neutral types.

This is the adapter's only edge with LlamaIndex's message model: `ChatMessage` blocks become
`gearshift.Message` content and tool calls, `BaseTool` metadata becomes a `ToolSpec`, and a routed
answer (or stream) becomes LlamaIndex `ChatResponse`s whose `raw` and `additional_kwargs` carry the
usage (in the keys LlamaIndex's token counter reads) and the routing record (model, decision,
escalations, cost).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from io import IOBase
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    CompletionResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from gearshift import ChatResponse as RoutedChatResponse
from gearshift import (
    ContentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    Role,
    StreamDone,
    TextDelta,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
    pair_tool_results,
)
from gearshift.providers import StreamAssembler

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

    from gearshift import ModelRegistry, RoutedResponse, RoutedStream

__all__ = [
    "ROUTING_KEY",
    "FilesToRead",
    "block_kind",
    "chat_chunks",
    "chat_message",
    "chat_response",
    "completion",
    "completion_chunks",
    "convert_message",
    "convert_messages",
    "routing_record",
    "to_messages",
    "to_tool_choice",
    "tool_selections",
    "tool_spec",
]

ROUTING_KEY = "gearshift"
"""The key of the routing record in a response's `additional_kwargs`."""

_ROLES: dict[str, Role] = {
    MessageRole.SYSTEM.value: "system",
    MessageRole.DEVELOPER.value: "system",
    MessageRole.USER.value: "user",
    MessageRole.ASSISTANT.value: "assistant",
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.TOOL.value: "tool",
    MessageRole.FUNCTION.value: "tool",
}


# -- LlamaIndex -> gearshift --------------------------------------------------------------------------


class FilesToRead(Exception):
    """Raised by `convert_messages(..., read_files=False)` on an image that must be read from a file or a
    stream (blocking I/O): the caller converts again where blocking is allowed."""


def to_messages(messages: Sequence[ChatMessage]) -> tuple[Message, ...]:
    """gearshift messages from LlamaIndex chat messages.

    Text and image blocks become content, `ToolCallBlock`s (and the older `tool_calls` in
    `additional_kwargs`) become tool calls, and a tool message's `tool_call_id` and `name` come from its
    `additional_kwargs`; `is_error=True` there marks a failed tool result. Thinking blocks and cache
    points are provider hints gearshift does not route on and are left out; any other block (audio,
    video, documents, citations) is refused with an error naming it, since no gearshift provider
    sends them. Tool calls and results are then paired for any provider (`pair_tool_results`), so a
    step may go to another provider than the one that made the calls it reads.
    """
    return pair_tool_results(convert_messages(messages))


def convert_messages(messages: Sequence[ChatMessage], *, read_files: bool = True) -> list[Message]:
    """One gearshift message per LlamaIndex message, in order, before tool calls and results are paired
    (`to_messages` pairs them): the step context reads the history from these.

    With `read_files=False`, an image that must be read from a file or a stream raises `FilesToRead`
    instead: a call on the event loop converts there, and only such a history again off the loop.
    """
    return [convert_message(message, index, read_files) for index, message in enumerate(messages)]


def convert_message(message: ChatMessage, index: int, read_files: bool = True) -> Message:
    """The gearshift message of one LlamaIndex message, the `index`-th of its history (errors name it);
    `read_files` as for `convert_messages`."""
    # A `MessageRole` is a str enum, equal to its value: looked up as it is, without reading `.value`.
    role = _ROLES.get(message.role) or _ROLES.get(str(getattr(message.role, "value", message.role)))
    if role is None:
        raise InvalidRequestError(f"message {index}: unknown role {message.role!r}")
    blocks: list[Any] = message.blocks  # narrowed by `block_kind`, which mypy does not follow
    extra = message.additional_kwargs
    if (
        role == "tool"
        and len(blocks) == 1
        and block_kind(blocks[0]) is TextBlock
        and not extra.get("tool_calls")
    ):
        # An agent's history holds a tool result per call, converted on every step: its common shape
        # (one text block) goes straight to the message the general walk below would build.
        return _tool_result(blocks[0].text, extra)
    texts: list[str] = []
    images: list[ContentPart] | None = None  # every part, once an image is among them
    calls: list[ToolCall] = []
    block: Any  # narrowed by `block_kind` below, which mypy does not follow
    for block in blocks:
        kind = block_kind(block)
        if kind is TextBlock:
            texts.append(block.text)
            if images is not None:
                images.append(TextPart(block.text))
        elif kind is ImageBlock:
            if images is None:
                images = [TextPart(text) for text in texts]
            images.append(_image(block, read_files))
        elif kind is ToolCallBlock:
            calls.append(_call(block.tool_call_id, block.tool_name, block.tool_kwargs, len(calls)))
        elif kind is None:
            raise InvalidRequestError(
                f"message {index}: gearshift routes text, images and tool calls; a "
                f"{getattr(block, 'block_type', type(block).__name__)} block cannot be sent"
            )
    if not calls and extra.get("tool_calls"):
        calls = [_legacy_call(raw, n) for n, raw in enumerate(extra["tool_calls"])]
    text = texts[0] if len(texts) == 1 else "\n".join(texts)
    content: str | tuple[ContentPart, ...] = tuple(images) if images is not None else text
    if role == "tool":
        return _tool_result(text, extra)
    if role == "assistant":
        return Message("assistant", content, tuple(calls))
    return Message(role, content, name=extra.get("name") if role == "user" else None)


def _tool_result(text: str, extra: Mapping[str, Any]) -> Message:
    """A tool result with this text, answering the call its `additional_kwargs` name."""
    call_id, name = str(extra.get("tool_call_id") or ""), extra.get("name") or extra.get("tool_name")
    # Positional (role, content, tool_calls, tool_call_id, name, is_error): keywords cost a quarter more.
    return Message("tool", text, (), call_id, name, bool(extra.get("is_error")))


# The blocks a message may hold, by the class an isinstance chain would find first; thinking blocks
# and cache points are left out of what is sent. Exact classes are looked up rather than tested one
# by one: a block's isinstance goes through pydantic's ABCMeta.
_BLOCKS: tuple[tuple[type, type], ...] = (
    (TextBlock, TextBlock),
    (ImageBlock, ImageBlock),
    (ToolCallBlock, ToolCallBlock),
    (ThinkingBlock, ThinkingBlock),
    (CachePoint, CachePoint),
)
_BLOCK_KIND: dict[type, type | None] = {}


def block_kind(block: object) -> type | None:
    """Which of `TextBlock`, `ImageBlock`, `ToolCallBlock`, `ThinkingBlock`, `CachePoint` a content block
    is an instance of (the first in that order), or None for a block gearshift cannot send."""
    cls = type(block)
    try:
        return _BLOCK_KIND[cls]
    except KeyError:
        kind = next((kind for base, kind in _BLOCKS if issubclass(cls, base)), None)
        _BLOCK_KIND[cls] = kind
        return kind


def _image_needs_reading(block: ImageBlock) -> bool:
    return block.url is None and (
        isinstance(block.image, IOBase) or (not block.image and block.path is not None)
    )


def _image(block: ImageBlock, read_files: bool) -> ImagePart:
    media_type = block.image_mimetype or "image/png"
    if isinstance(block.image, bytes) and block.image:
        return ImagePart(data=block.image.decode("ascii"), media_type=media_type)  # base64 once validated
    if block.url is not None:
        return ImagePart(url=str(block.url), media_type=media_type)
    if _image_needs_reading(block):
        if not read_files:
            raise FilesToRead
        return ImagePart(
            data=block.resolve_image(as_base64=True).read().decode("ascii"), media_type=media_type
        )
    raise InvalidRequestError("an image block has no url, data or path")


def _call(call_id: str | None, name: str, arguments: Mapping[str, Any] | str, position: int) -> ToolCall:
    if isinstance(arguments, str):
        return ToolCall(id=call_id or f"call_{position}", name=name, arguments=arguments or "{}")
    return ToolCall.with_arguments(call_id or f"call_{position}", name, arguments)


def _legacy_call(raw: Any, position: int) -> ToolCall:
    # Older integrations stored OpenAI's tool-call objects (or their dicts) in additional_kwargs.
    data = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
    function = data.get("function") or {}
    return _call(data.get("id"), function.get("name", ""), function.get("arguments") or "{}", position)


def tool_spec(tool: BaseTool) -> ToolSpec:
    """The `ToolSpec` of a LlamaIndex tool: its name, description and argument schema."""
    metadata = tool.metadata
    return ToolSpec.parse(
        {
            "name": metadata.get_name(),
            "description": metadata.description,
            "parameters": metadata.get_parameters_dict(),
        },
        where="LlamaIndex tool",
    )


def to_tool_choice(
    tool_choice: str | Mapping[str, Any] | None, *, tool_required: bool, has_tools: bool
) -> ToolChoice | None:
    """gearshift's tool choice from LlamaIndex's `tool_choice` (a name or OpenAI's dict) and `tool_required`.

    A named tool wins; otherwise `tool_required` asks for `required`. Without tools there is no choice.
    """
    if not has_tools:
        return None
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        if not isinstance(name, str):
            raise InvalidRequestError(f"tool_choice {dict(tool_choice)!r} names no tool")
        return name
    if tool_choice in (None, "auto") and tool_required:
        return "required"
    return tool_choice


# -- gearshift -> LlamaIndex --------------------------------------------------------------------------


def chat_message(text: str, calls: Sequence[ToolCall], *, partial: bool = False) -> ChatMessage:
    """An assistant `ChatMessage`: the text, then one `ToolCallBlock` per call.

    Finished calls carry their arguments parsed; calls still streaming (`partial`) carry the JSON text
    so far, which `tool_selections` reads leniently. The calls are also listed in OpenAI's shape under
    `additional_kwargs["tool_calls"]`, where parts of LlamaIndex still look for them (streamed
    structured output reads partial objects only when that list is there).
    """
    blocks: list[Any] = [TextBlock(text=text)] if text or not calls else []
    for call in calls:
        arguments: dict[str, Any] | str = call.arguments
        if not partial:
            try:
                arguments = call.parsed_arguments()
            except InvalidRequestError:
                arguments = call.arguments  # kept as text: the agent reports the bad arguments
        blocks.append(ToolCallBlock(tool_call_id=call.id, tool_name=call.name, tool_kwargs=arguments))
    if not calls:
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)
    listed = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs={"tool_calls": listed})


def routing_record(result: RoutedResponse, registry: ModelRegistry) -> dict[str, Any]:
    """How gearshift served one call, JSON-ready (the same fields as the LangChain adapter's record).

    `model_id` and `tier` are the model that answered; `decided_model`, `decided_tier` and `reasons`
    the decision behind the answer (after an escalation, the stronger model's: the first choice is the
    escalation's `from`). `attempts` lists every provider call (the deployment called: `model_id` and
    `provider`; `probe` for a tripped deployment's probe) with its tokens and cost; `cost_usd` is
    their sum and `usage` their tokens. The decision's scores stay in the decision log.
    """
    response = result.response
    decision = result.decision
    return {
        "model_id": response.model_id,
        "provider_model": response.provider_model,
        "tier": registry[response.model_id].tier if response.model_id in registry else None,
        "decided_model": decision.model,
        "decided_tier": decision.tier,
        "reasons": list(decision.reasons),
        "escalations": [e.to_dict() for e in result.escalations],
        "attempts": [a.to_dict() for a in result.attempts],
        "cost_usd": result.cost_usd,
        "usage": usage_dict(result.usage),
        "finish_reason": response.finish_reason,
        "request_id": result.request_id,
    }


def usage_dict(usage: Usage) -> dict[str, int]:
    """Token counts under the names LlamaIndex's token counter reads."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def chat_response(
    result: RoutedResponse, registry: ModelRegistry, *, delta: str | None = None
) -> ChatResponse:
    """A LlamaIndex `ChatResponse` for a routed answer, with its usage and routing record."""
    response: RoutedChatResponse = result.response
    record = routing_record(result, registry)
    message = chat_message(response.text, response.tool_calls)
    if response.tool_calls:
        # Agents keep only the message: it says which model made the calls, for a sticky tool loop.
        message.additional_kwargs[ROUTING_KEY] = {"model_id": response.model_id}
    return ChatResponse(
        message=message,
        raw=record,
        delta=delta,
        additional_kwargs={**record["usage"], ROUTING_KEY: record},
    )


def tool_selections(response: ChatResponse) -> list[ToolSelection]:
    """The tool calls of a response as LlamaIndex `ToolSelection`s (partial JSON is read leniently)."""
    selections = []
    for block in response.message.blocks:
        if not isinstance(block, ToolCallBlock):
            continue
        arguments = block.tool_kwargs
        if isinstance(arguments, str):
            try:
                arguments = parse_partial_json(arguments) if arguments.strip() else {}
            except (ValueError, TypeError):
                arguments = {}
        selections.append(
            ToolSelection(
                tool_id=block.tool_call_id or "",
                tool_name=block.tool_name,
                tool_kwargs=arguments if isinstance(arguments, dict) else {},
            )
        )
    return selections


async def chat_chunks(stream: RoutedStream, registry: ModelRegistry) -> AsyncGenerator[ChatResponse, None]:
    """One `ChatResponse` per delta (the message so far, and the new text), then the final one.

    The final response carries the whole answer with its usage and routing record, and `delta=""`.
    """
    assembler = StreamAssembler()
    try:
        async for event in stream:
            if isinstance(event, StreamDone):
                continue  # the final response, with usage and escalations, follows from `stream.result`
            assembler.add(event)
            yield ChatResponse(
                message=chat_message(assembler.text, assembler.tool_calls, partial=True),
                delta=event.text if isinstance(event, TextDelta) else "",
            )
        if stream.result is not None:
            yield chat_response(stream.result, registry, delta="")
    finally:
        await stream.aclose()  # a caller that stops early: the attempt is recorded as cancelled


def completion(response: ChatResponse) -> CompletionResponse:
    """A chat response as LlamaIndex's completion response (text, delta, usage, routing record)."""
    return CompletionResponse(
        text=response.message.content or "",
        raw=response.raw,
        delta=response.delta,
        additional_kwargs=response.additional_kwargs,
    )


async def completion_chunks(chunks: ChatResponseAsyncGen) -> AsyncGenerator[CompletionResponse, None]:
    """Streamed chat responses as streamed completion responses."""
    try:
        async for chunk in chunks:
            yield completion(chunk)
    finally:
        await chunks.aclose()
