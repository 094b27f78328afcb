"""An agent's history converted once per distinct message, for the steps that send it again.

A LlamaIndex agent sends its whole chat history on every step: step n converts the n - 1 messages the
step before it converted already, and hashes the arguments of every tool call again for the step
context. `KeptHistory` keeps, per message values, the gearshift message a LlamaIndex message converts
to and, for an assistant message, the tool records of its calls. A message is keyed by its role, the
values of its blocks (texts; tool calls' ids, names and arguments with their exact types) and every
`additional_kwargs` entry the conversion reads, so an equal key means an equal conversion: a message
edited in place, or a new one with the same text and other arguments, gets a key of its own.
LlamaIndex messages are mutable and are never keyed by identity. Only the common shapes are kept:
text and tool-call blocks (an image may have to be read from a file) and flat call arguments (see
`gearshift.flat_arguments_key`); any other message is converted as `convert_messages` converts it,
every time, and so is the last message of a history: it is the step's new one, which no step sent
before. Tool results are not kept either: a LlamaIndex tool result converts in about the time its key
takes to build, and on histories that are not sent again (`tests/benchmarks/decision_latency.py`)
keeping them cost more than it saved.

Bounded: a message whose text runs over `_MAX_CHARACTERS` is not kept (it converts in the same time
whatever its length), and the store (`gearshift.KeptMessages`) holds `_MAX_KEPT` messages at most.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock

from gearshift import KeptMessages, Message, flat_arguments_key

from ._call_records import CallRecords, call_records
from ._convert import block_kind, convert_message

__all__ = ["KeptHistory"]

_MAX_KEPT = 1024
_MAX_CHARACTERS = 8192
# What the conversion reads of `additional_kwargs` besides calls in OpenAI's shape (a message whose calls
# are only there is not kept).
_EXTRA_KEYS = frozenset({"tool_call_id", "name", "tool_name", "is_error", "status"})
_EXTRA_TYPES = frozenset({str, int, bool, float, type(None)})
_CALL_IDS = frozenset({str, type(None)})
_TOOL = frozenset({MessageRole.TOOL, MessageRole.FUNCTION})


class KeptHistory:
    """Conversions of LlamaIndex messages, kept per message values (see the module docstring)."""

    __slots__ = ("_store",)

    def __init__(self, limit: int = _MAX_KEPT) -> None:
        self._store: KeptMessages[CallRecords] = KeptMessages(limit)

    def convert(self, messages: Sequence[ChatMessage], *, read_files: bool = True) -> list[Message]:
        """`convert_messages(messages, read_files=read_files)`, those seen before taken from the store."""
        store = self._store
        converted = []
        last = len(messages) - 1
        for index, message in enumerate(messages):
            role = message.role
            # A tool result is never kept, nor is the last message (see the module docstring): both are
            # converted without a key, so that a one-message call costs no more.
            key = _key(message, role) if index < last and role not in _TOOL else None
            if key is None:
                converted.append(convert_message(message, index, read_files))
                continue
            found = store.get(key)
            if found is None:
                found = convert_message(message, index, read_files)
                store.keep(key, found, call_records(message) if found.tool_calls else None)
            converted.append(found)
        return converted

    def call_records(self, message: Message) -> CallRecords | None:
        """The tool records of an assistant message `convert` returned from the store; None otherwise."""
        return self._store.facts(message)


def _key(message: ChatMessage, role: MessageRole) -> Hashable | None:
    """Every value the conversion and the step context read of `message` (whose role is `role`, not a
    tool's); None for a shape not kept."""
    extra = message.additional_kwargs
    key: list[Any] = [role]
    size = 0
    calls = False
    block: Any  # narrowed by `block_kind`, which mypy does not follow
    for block in message.blocks:
        kind = block_kind(block)
        if kind is TextBlock:
            text = block.text
            size += len(text)
            key.append(text)
        elif kind is ToolCallBlock:
            call_id, arguments = block.tool_call_id, block.tool_kwargs
            written = arguments if type(arguments) is str else flat_arguments_key(arguments)
            if written is None or type(call_id) not in _CALL_IDS or type(block.tool_name) is not str:
                return None
            key.append((call_id, block.tool_name, written))
            calls = True
        else:
            return None
    if size > _MAX_CHARACTERS:
        return None
    # Calls in OpenAI's shape are read only from a message without `ToolCallBlock`s (gearshift's own
    # answers carry both, for parts of LlamaIndex that look there).
    if not extra:
        return tuple(key)
    if not calls and extra.get("tool_calls"):
        return None
    for name, value in extra.items():
        if name in _EXTRA_KEYS:
            if type(value) not in _EXTRA_TYPES:
                return None
            key.append((name, type(value), value))
    return tuple(key)
