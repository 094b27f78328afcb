"""The tool records of an `AIMessage`'s calls, as the step context reads them: what the history keeps
per assistant message (`_history`) and what the step context reads when nothing is kept (`_context`).

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from gearshift import ToolRecord, hash_arguments

__all__ = ["CallRecords", "call_records"]

CallRecords = tuple[tuple[Any, ToolRecord, ToolRecord], ...]
"""Per tool call of an `AIMessage`, in order: its id as LangChain holds it, and its record if its
result succeeds and if it fails."""


def call_records(message: AIMessage) -> CallRecords:
    """Per tool call of `message`, in order: its id, and its record if its result succeeds and if it fails."""
    return tuple(
        (
            call.get("id"),
            ToolRecord(call["name"], True, args_hash := hash_arguments(call.get("args") or {})),
            ToolRecord(call["name"], False, args_hash),
        )
        for call in message.tool_calls
    )
