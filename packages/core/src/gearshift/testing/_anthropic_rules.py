"""Rules the real Messages API enforces on a request body, which `LocalAnthropicServer` enforces too.

Only rules confirmed from the API's own 400 answers are here, each refused with the API's wording, so
a request the real API would refuse fails in tests instead of in production:

- a text block that is empty or whitespace alone ("text content blocks must contain non-whitespace
  text"), in the system prompt or any message;
- a final assistant turn (a prefill) whose text ends in whitespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["request_refusal"]


def request_refusal(body: Mapping[str, Any]) -> str | None:
    """The message the real API's 400 answer would carry for `body`, or None if it would take it."""
    system = body.get("system")
    if isinstance(system, list) and any(_blank_text(block) for block in system):
        return "system: text content blocks must contain non-whitespace text"
    messages = body.get("messages") or []
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in content if isinstance(content, list) else ():
            if _blank_text(block):
                return "messages: text content blocks must contain non-whitespace text"
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
