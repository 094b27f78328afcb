"""Self-escalation: a model below the top tier may hand its step to a stronger one. Pure functions.

When the router routes a request to a model that has stronger candidates above it, it may offer that
model one more tool, `escalate`, whose only argument is the reason. A model that calls it says "this
step is beyond me"; the router then re-asks a stronger model with the caller's original request
(without the extra tool unless that model can escalate too) and returns only that answer. The caller
never sees the `escalate` tool nor the call to it; the hand-over is kept as an `Escalation` record.

The tool is not offered when the caller has pinned the tool choice (`none` or one named tool), when
the caller already has a tool of that name, or when no stronger model could take the request.

A model offered the tool may write the call out as its whole text instead of making it: open models
behind a server that does not parse their tool calls answer `{"name": "escalate", "arguments": {...}}`,
maybe in a code fence or `<tool_call>` tags. That text counts as the call, and is never shown either.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from .._messages import ChatRequest, ChatResponse, ToolCall, ToolSpec

__all__ = [
    "ESCALATE_TOOL",
    "ESCALATE_TOOL_NAME",
    "escalation_call",
    "escalation_reason",
    "offer_escalation",
    "without_escalation",
    "written_call",
]

ESCALATE_TOOL_NAME = "escalate"

ESCALATE_TOOL = ToolSpec(
    name=ESCALATE_TOOL_NAME,
    description=(
        "Hand this step to a stronger model. Call it only when you cannot do the step well yourself "
        "(it needs deeper reasoning, knowledge or care than you can give); a stronger model will then "
        "answer the same conversation instead of you. Give the reason in one sentence."
    ),
    parameters={
        "type": "object",
        "properties": {
            "reason": {
                "type": "string",
                "description": "Why this step needs a stronger model, in one sentence.",
            }
        },
        "required": ["reason"],
    },
)

_MAX_REASON_CHARS = 500

_WRITTEN_CALL = re.compile(
    r"\A\s*(?:<tool_call>\s*)?(?:```(?:json)?\s*)?(\{.*\})\s*(?:```\s*)?(?:</tool_call>\s*)?\Z", re.DOTALL
)


def offer_escalation(request: ChatRequest) -> ChatRequest | None:
    """`request` with the `escalate` tool added, or None when it must not be offered."""
    if request.tool_choice not in (None, "auto", "required"):
        return None  # "none", or the caller pinned one of its own tools
    if any(tool.name == ESCALATE_TOOL_NAME for tool in request.tools):
        return None  # the caller's own tool of that name wins; never shadow it
    return replace(request, tools=(*request.tools, ESCALATE_TOOL))


def escalation_call(response: ChatResponse) -> ToolCall | None:
    """The model's call to `escalate`, if it made one (or wrote one out as its whole text)."""
    for call in response.tool_calls:
        if call.name == ESCALATE_TOOL_NAME:
            return call
    return written_call(response.text)


def written_call(text: str) -> ToolCall | None:
    """The call to `escalate` that `text` is, as a whole, written out as JSON; else None."""
    if ESCALATE_TOOL_NAME not in text:
        return None
    match = _WRITTEN_CALL.match(text)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    function = value.get("function")  # OpenAI's shape: {"type": "function", "function": {...}}
    call = function if isinstance(function, dict) else value
    if call.get("name") != ESCALATE_TOOL_NAME:
        return None
    arguments = call.get("arguments", call.get("parameters", {}))
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return ToolCall("written-escalate", ESCALATE_TOOL_NAME, arguments)


def escalation_reason(call: ToolCall) -> str:
    """The reason the model gave, cleaned up for a record; a fixed text when it gave none."""
    reason = ""
    try:
        arguments = json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        arguments = call.arguments  # malformed JSON: keep what the model wrote
    if isinstance(arguments, dict):
        value = arguments.get("reason")
        reason = value if isinstance(value, str) else ""
    elif isinstance(arguments, str):
        reason = arguments
    reason = " ".join(reason.split())[:_MAX_REASON_CHARS]
    return reason or "the model asked for a stronger model without giving a reason"


def without_escalation(response: ChatResponse) -> ChatResponse:
    """`response` with any call to `escalate` removed, a written-out one too (used when a hand-over
    cannot happen)."""
    if written_call(response.text) is not None:
        response = replace(response, message=replace(response.message, content=""))
    calls = tuple(c for c in response.tool_calls if c.name != ESCALATE_TOOL_NAME)
    if len(calls) == len(response.tool_calls):
        return response
    message = replace(response.message, tool_calls=calls)
    finish = (
        response.finish_reason
        if calls
        else ("stop" if response.finish_reason == "tool_calls" else response.finish_reason)
    )
    return replace(response, message=message, finish_reason=finish)
