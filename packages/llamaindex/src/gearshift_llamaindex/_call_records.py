"""The tool records of an assistant message's calls, as the step context reads them: what the history
keeps per assistant message (`_history`) and what the step context reads when nothing is kept
(`_context`).

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock

from gearshift import ToolRecord, hash_arguments

from ._convert import block_kind

__all__ = ["CallRecords", "call_records"]

CallRecords = tuple[tuple[str, tuple[ToolRecord, ToolRecord]], ...]
"""Per `ToolCallBlock` of an assistant message, in order: the call's id (its tool's name when it has
none), and its record if its result succeeds and if it fails (built once, not per step that reads it)."""


def call_records(message: ChatMessage) -> CallRecords:
    """The tool records of an assistant message's `ToolCallBlock`s (see `CallRecords`)."""
    blocks: list[Any] = message.blocks  # narrowed by `block_kind`, which mypy does not follow
    return tuple(
        (
            block.tool_call_id or block.tool_name,
            (
                ToolRecord(block.tool_name, True, args_hash := hash_arguments(block.tool_kwargs)),
                ToolRecord(block.tool_name, False, args_hash),
            ),
        )
        for block in blocks
        if block_kind(block) is ToolCallBlock
    )
