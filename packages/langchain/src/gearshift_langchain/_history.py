"""An agent's history converted once per distinct message, for the steps that send it again.

A LangGraph agent sends its whole history on every step: step n converts the n - 1 messages the step
before it converted already, and hashes the arguments of every tool call again for the step context.
`KeptHistory` keeps, per message values, the gearshift message a LangChain message converts to and,
for an `AIMessage`, the tool records its calls give. A message is keyed by its kind and by every value
its conversion reads (text, call ids, names, argument values with their exact types, tool status), so
an equal key means an equal conversion: a message edited in place, or a new one with the same text
and other arguments, gets a key of its own. LangChain messages are mutable and are never keyed by
identity. Only the common shapes are kept: text content (a list of blocks may carry images or a cache
breakpoint) and flat call arguments (see `gearshift._argument_texts`); any other message is converted
as `convert_messages` converts it, every time, and so is the last message of a history: it is the
step's new one, which no step sent before.

Bounded: a message whose text runs over `_MAX_CHARACTERS` is not kept (it converts in the same time
whatever its length), and past `_MAX_KEPT` messages the older half is dropped rather than grow.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import cast

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from gearshift import Message, flat_arguments_key

from ._context import CallRecords, call_records
from ._convert import convert_message, message_kind

__all__ = ["KeptHistory"]

_MAX_KEPT = 1024
_MAX_CHARACTERS = 8192
_CALL_IDS = frozenset({str, type(None)})


class KeptHistory:
    """Conversions of LangChain messages, kept per message values (see the module docstring)."""

    __slots__ = ("_calls", "_kept")

    def __init__(self) -> None:
        self._kept: dict[Hashable, Message] = {}
        # Keyed by the identity of a gearshift message this store made and holds: it is frozen.
        self._calls: dict[int, tuple[Message, CallRecords]] = {}

    def convert(self, messages: Sequence[BaseMessage]) -> list[Message]:
        """`convert_messages(messages)`: the same messages, those seen before taken from the store."""
        kept = self._kept
        converted = []
        last = len(messages) - 1
        for index, message in enumerate(messages):
            # The last message is the step's new one (the user's turn, a tool's result), seen for the
            # first time: it is converted without a key, so that a one-message call costs no more.
            kind = message_kind(message) if index < last else None
            key = _key(message, kind) if kind is not None else None
            if key is None:
                converted.append(convert_message(message, index))
                continue
            found = kept.get(key)
            if found is None:
                found = convert_message(message, index)
                self._keep(key, found, cast("AIMessage", message) if kind is AIMessage else None)
            converted.append(found)
        return converted

    def call_records(self, message: Message) -> CallRecords | None:
        """The tool records of an assistant message `convert` returned from the store; None otherwise."""
        found = self._calls.get(id(message))
        return found[1] if found is not None and found[0] is message else None

    def _keep(self, key: Hashable, message: Message, source: AIMessage | None) -> None:
        if len(self._kept) >= _MAX_KEPT:
            # The older half goes: a run's system prompt and earlier turns, sent on every step, are
            # kept again at their next step, while a store emptied at once would lose them all.
            newer = list(self._kept.items())[_MAX_KEPT // 2 :]
            self._kept = dict(newer)
            self._calls = {id(m): self._calls[id(m)] for _, m in newer if id(m) in self._calls}
        self._kept[key] = message
        if source is not None:
            self._calls[id(message)] = (message, call_records(source))


def _key(message: BaseMessage, kind: type[BaseMessage] | None) -> Hashable | None:
    """Every value the conversion of `message` reads, with its kind; None for a shape not kept."""
    content = message.content
    if type(content) is not str or len(content) > _MAX_CHARACTERS:
        return None
    if kind is ToolMessage:
        tool = cast("ToolMessage", message)
        return (ToolMessage, content, tool.tool_call_id, tool.name, tool.status)
    if kind is AIMessage:
        ai = cast("AIMessage", message)
        if ai.invalid_tool_calls:
            return None
        calls: list[Hashable] = [AIMessage, content]
        for call in ai.tool_calls:
            call_id, name = call.get("id"), call["name"]
            arguments = flat_arguments_key(call.get("args") or {})
            if (
                arguments is None
                or type(name) is not str
                or (call_id is not None and type(call_id) is not str)
            ):
                return None
            calls.append((call_id, name, arguments))
        return tuple(calls)
    if kind is HumanMessage:
        return (HumanMessage, content, message.name)
    if kind is SystemMessage:
        return (SystemMessage, content)
    return None
