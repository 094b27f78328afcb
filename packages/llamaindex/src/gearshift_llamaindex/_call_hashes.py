"""The hashed tool calls of an assistant message, as the step context reads them: what the history
keeps per assistant message (`_history`) and what the step context reads when nothing is kept
(`_context`).

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock

from gearshift import hash_arguments

from ._convert import block_kind

__all__ = ["CallHashes", "call_hashes"]

CallHashes = tuple[tuple[str, tuple[str, str]], ...]
"""Per `ToolCallBlock` of an assistant message, in order: the call's id (its tool's name when it has
none), and its tool's name and its arguments' hash."""


def call_hashes(message: ChatMessage) -> CallHashes:
    """The hashed calls of an assistant message's `ToolCallBlock`s (see `CallHashes`)."""
    blocks: list[Any] = message.blocks  # narrowed by `block_kind`, which mypy does not follow
    return tuple(
        (block.tool_call_id or block.tool_name, (block.tool_name, hash_arguments(block.tool_kwargs)))
        for block in blocks
        if block_kind(block) is ToolCallBlock
    )
