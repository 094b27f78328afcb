"""Self-escalation: a model below the top tier may hand its step to a stronger one. Pure functions.

When the router routes a request to a model that has stronger candidates above it, it may offer that
model one more tool, `escalate`, whose only argument is the reason. A model that calls it says "this
step is beyond me"; the router then re-asks a stronger model with the caller's original request
(without the extra tool unless that model can escalate too) and returns only that answer. The caller
never sees the `escalate` tool nor the call to it; the hand-over is kept as an `Escalation` record.

The tool is not offered when the caller has pinned the tool choice (`none` or one named tool), when
the caller already has a tool of that name, or when no stronger model could take the request.
"""

from __future__ import annotations

import json
from dataclasses import replace

from .._messages import ChatRequest, ChatResponse, ToolCall, ToolSpec

__all__ = [
    "ESCALATE_TOOL",
    "ESCALATE_TOOL_NAME",
    "escalation_call",
    "escalation_reason",
    "offer_escalation",
    "without_escalation",
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


def offer_escalation(request: ChatRequest) -> ChatRequest | None:
    """`request` with the `escalate` tool added, or None when it must not be offered."""
    if request.tool_choice not in (None, "auto", "required"):
        return None  # "none", or the caller pinned one of its own tools
    if any(tool.name == ESCALATE_TOOL_NAME for tool in request.tools):
        return None  # the caller's own tool of that name wins; never shadow it
    return replace(request, tools=(*request.tools, ESCALATE_TOOL))


def escalation_call(response: ChatResponse) -> ToolCall | None:
    """The model's call to `escalate`, if it made one."""
    for call in response.tool_calls:
        if call.name == ESCALATE_TOOL_NAME:
            return call
    return None


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
    """`response` with any call to `escalate` removed (used when a hand-over cannot happen)."""
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
