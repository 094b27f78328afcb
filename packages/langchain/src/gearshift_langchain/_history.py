"""An agent's history converted once per distinct message, for the steps that send it again.

A LangGraph agent sends its whole history on every step: step n converts the n - 1 messages the step
before it converted already, and hashes the arguments of every tool call again for the step context.
`KeptHistory` keeps, per message values, the gearshift message a LangChain message converts to and,
for an `AIMessage`, the tool records its calls give. A message is keyed by its kind and by every value
its conversion reads (text, call ids, names, argument values with their exact types), so
an equal key means an equal conversion: a message edited in place, or a new one with the same text
and other arguments, gets a key of its own. LangChain messages are mutable and are never keyed by
identity. Only the common shapes are kept: text content (a list of blocks may carry images or a cache
breakpoint) and flat call arguments (see `gearshift.flat_arguments_key`); any other message is converted
as `convert_messages` converts it, every time, and so is the last message of a history: it is the
step's new one, which no step sent before. Tool results are not kept either: a `ToolMessage` converts
in about the time its key takes to build, and on histories that are not sent again
(`tests/benchmarks/decision_latency.py`) keeping them cost more than it saved.

Bounded: a message whose text runs over `_MAX_CHARACTERS` is not kept (it converts in the same time
whatever its length), and the store (`gearshift.KeptMessages`) holds `_MAX_KEPT` messages at most.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import cast

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from gearshift import KeptMessages, Message, flat_arguments_key

from ._call_records import CallRecords, call_records
from ._convert import convert_message, message_kind, tool_result

__all__ = ["KeptHistory"]

_MAX_KEPT = 1024
_MAX_CHARACTERS = 8192
_CALL_IDS = frozenset({str, type(None)})


class KeptHistory:
    """Conversions of LangChain messages, kept per message values (see the module docstring)."""

    __slots__ = ("_store",)

    def __init__(self, limit: int = _MAX_KEPT) -> None:
        self._store: KeptMessages[CallRecords] = KeptMessages(limit)

    def convert(self, messages: Sequence[BaseMessage]) -> list[Message]:
        """`convert_messages(messages)`: the same messages, those seen before taken from the store."""
        store = self._store
        converted = []
        last = len(messages) - 1
        for index, message in enumerate(messages):
            kind = message_kind(message)
            if kind is ToolMessage and type(message.content) is str:
                # A tool result is never kept (see the module docstring): text content converts at once.
                converted.append(tool_result(cast("ToolMessage", message)))
                continue
            # The last message is the step's new one (the user's turn), seen for the first time: it is
            # converted without a key, so that a one-message call costs no more.
            key = _key(message, kind) if index < last else None
            if key is None:
                converted.append(convert_message(message, index))
                continue
            found = store.get(key)
            if found is None:
                found = convert_message(message, index)
                records = call_records(cast("AIMessage", message)) if kind is AIMessage else None
                store.keep(key, found, records)
            converted.append(found)
        return converted

    def call_records(self, message: Message) -> CallRecords | None:
        """The tool records of an assistant message `convert` returned from the store; None otherwise."""
        return self._store.facts(message)


def _key(message: BaseMessage, kind: type[BaseMessage] | None) -> Hashable | None:
    """Every value the conversion of `message` reads, with its kind; None for a shape not kept."""
    content = message.content
    if type(content) is not str or len(content) > _MAX_CHARACTERS:
        return None
    if kind is AIMessage:
        ai = cast("AIMessage", message)
        if ai.invalid_tool_calls:
            return None
        calls: list[Hashable] = [AIMessage, content, message.name]
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
