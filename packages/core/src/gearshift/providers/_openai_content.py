"""What a Chat Completions message or stream delta says, however a compatible server spells it.

OpenAI sends the answer as a `content` string. Mistral's reasoning models (Magistral) send a list of
parts, their thinking in `thinking` parts (docs.mistral.ai, "Reasoning"); DeepSeek and vLLM's reasoning
parsers send the thinking as `reasoning_content`, Ollama and newer vLLM as `reasoning`. The thinking is
not the answer, but it is billed output, so an estimate of the usage counts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._json_fields import field

__all__ = ["answer_and_reasoning"]

_REASONING_FIELDS = ("reasoning_content", "reasoning")


def answer_and_reasoning(part: Mapping[str, Any]) -> tuple[str | None, str]:
    """The answer text of a message or delta (None if it has none) and the reasoning it carries."""
    reasoning = [field(part, name, str) or "" for name in _REASONING_FIELDS]
    content = part.get("content")
    if not isinstance(content, list):
        return field(part, "content", str), "".join(reasoning)
    texts: list[str] = []
    for item in content:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif item.get("type") == "thinking":
            reasoning.append(_text_of(item.get("thinking")))
    return "".join(texts) or None, "".join(reasoning)


def _text_of(thinking: Any) -> str:
    """A thinking part's text: a string, or a list of text parts."""
    if isinstance(thinking, str):
        return thinking
    if not isinstance(thinking, list):
        return ""
    return "".join(t["text"] for t in thinking if isinstance(t, dict) and isinstance(t.get("text"), str))
