"""The usage of a Chat Completions answer, as OpenAI-compatible servers really report it.

OpenAI always reports both counts. Compatible servers may leave the object out (older Ollama and
LM Studio streams), fill it with nulls or zeros, or give one count without the other (Ollama reports
no prompt tokens for a prompt it had cached). A count read as 0 made the call free: no cost and no
budget charge. So each count that is missing, or that the call contradicts (no request has zero
prompt tokens; an answer with output has completion tokens), is estimated, and the usage says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._messages import ChatRequest, Usage
from ..signals._tokens import estimate_request_tokens, estimate_tokens
from ._json_fields import field

__all__ = ["reported_usage"]


def reported_usage(raw: Mapping[str, Any] | None, request: ChatRequest, output: str) -> tuple[Usage, bool]:
    """The usage in `raw` (the answer's `usage` object, if any), each count it leaves out estimated from
    `request` and `output` (everything the model wrote: text, tool calls, reasoning); and whether any was."""
    raw = raw or {}
    prompt = field(raw, "prompt_tokens", int)
    completion = field(raw, "completion_tokens", int)
    estimated = False
    if not prompt:
        prompt, estimated = estimate_request_tokens(request), True
    if completion is None or (completion == 0 and output):
        completion, estimated = estimate_tokens(output), True
    details = field(raw, "prompt_tokens_details", dict) or {}
    usage = Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cache_read_tokens=field(details, "cached_tokens", int) or 0,
    )
    return usage, estimated
