"""Rules the real Messages API enforces on a request body, which `LocalAnthropicServer` enforces too.

Only rules confirmed from the API's own 400 answers are here, each refused with the API's wording, so
a request the real API would refuse fails in tests instead of in production:

- a text block that is empty or whitespace alone ("text content blocks must contain non-whitespace
  text"), in the system prompt or any message;
- a final assistant turn (a prefill) whose text ends in whitespace;
- a base64 image of a media type other than JPEG, PNG, GIF or WebP, or whose bytes show another
  type than the one declared (anywhere, tool results included);
- more than four blocks marked with `cache_control` (tools, system and messages together);
- a stop sequence of whitespace alone (BerriAI/litellm#3286), and `temperature` with `top_p` (which
  Claude Sonnet and Haiku 4.5 and Opus 4.1 on refuse: BerriAI/litellm#15097).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..providers._image_types import ANTHROPIC_IMAGE_TYPES, sniffed_media_type

__all__ = ["request_refusal"]

_MAX_BREAKPOINTS = 4
_TYPES_NAMED = "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"


def request_refusal(body: Mapping[str, Any]) -> str | None:
    """The message the real API's 400 answer would carry for `body`, or None if it would take it."""
    stops = body.get("stop_sequences") or ()
    if any(isinstance(stop, str) and not stop.strip() for stop in stops):
        return "stop_sequences: each stop sequence must contain non-whitespace"
    if body.get("temperature") is not None and body.get("top_p") is not None:
        return "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    system = body.get("system")
    system_blocks = system if isinstance(system, list) else []
    if any(_blank_text(block) for block in system_blocks):
        return "system: text content blocks must contain non-whitespace text"
    messages = body.get("messages") or []
    blocks: list[Any] = [*(body.get("tools") or ()), *system_blocks]
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for where, block in _blocks(f"messages.{index}.content", content):
            if _blank_text(block):
                return "messages: text content blocks must contain non-whitespace text"
            refusal = _image_refusal(where, block)
            if refusal is not None:
                return refusal
            blocks.append(block)
    marks = sum(1 for block in blocks if isinstance(block, Mapping) and block.get("cache_control"))
    if marks > _MAX_BREAKPOINTS:
        return f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {marks}."
    final = messages[-1] if messages else None
    if isinstance(final, Mapping) and final.get("role") == "assistant":
        content = final.get("content")
        last = {"type": "text", "text": content} if isinstance(content, str) else (content or [None])[-1]
        text = last.get("text") if isinstance(last, Mapping) and last.get("type") == "text" else None
        if isinstance(text, str) and text != text.rstrip():
            return "messages: final assistant content cannot end with trailing whitespace"
    return None


def _blank_text(block: Any) -> bool:
    return (
        isinstance(block, Mapping) and block.get("type") == "text" and not str(block.get("text", "")).strip()
    )


def _blocks(where: str, content: Any) -> list[tuple[str, Any]]:
    """Each block of `content` with its path in the API's error messages, tool results' own included."""
    found: list[tuple[str, Any]] = []
    for index, block in enumerate(content if isinstance(content, list) else ()):
        found.append((f"{where}.{index}", block))
        if isinstance(block, Mapping) and block.get("type") == "tool_result":
            found += _blocks(f"{where}.{index}.content", block.get("content"))
    return found


def _image_refusal(where: str, block: Any) -> str | None:
    source = block.get("source") if isinstance(block, Mapping) and block.get("type") == "image" else None
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        return None
    media_type = source.get("media_type")
    if media_type not in ANTHROPIC_IMAGE_TYPES:
        return f"{where}.image.source.base64.media_type: Input should be {_TYPES_NAMED}"
    shown = sniffed_media_type(str(source.get("data") or ""))
    if shown is not None and shown != media_type:
        return f"{where}.image.source.base64.data: Image does not match the provided media type {media_type}"
    return None
