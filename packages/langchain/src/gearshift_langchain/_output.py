"""gearshift's answers in LangChain's terms: `AIMessage`, streamed `AIMessageChunk`s, usage and metadata.

Whichever model answered, the message says so the way LangChain integrations do: `model_name` in
`response_metadata` (what callback handlers and LangSmith read), `usage_metadata` with the tokens,
and a `gearshift` entry with the registry id, tier, cost, the decision's reasons and any escalation.
In a stream, text and tool-call pieces come first and a last chunk carries usage and metadata alone:
LangChain adds chunks together, and strings in `response_metadata` would be concatenated.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, InvalidToolCall, ToolCall, UsageMetadata
from langchain_core.messages.ai import InputTokenDetails
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from gearshift import RoutedResponse, TextDelta, ToolCallDelta, Usage
from gearshift import ToolCall as GearshiftToolCall

__all__ = [
    "GEARSHIFT_KEY",
    "ai_message",
    "chat_result",
    "combined_llm_output",
    "delta_chunk",
    "final_chunk",
    "response_metadata",
    "usage_metadata",
]

GEARSHIFT_KEY = "gearshift"
"""The `response_metadata` entry that records how gearshift routed the call."""


def usage_metadata(usage: Usage) -> UsageMetadata:
    """LangChain's usage record for gearshift's `Usage` (cache details only when there are any)."""
    metadata = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.cache_read_tokens or usage.cache_write_tokens:
        metadata["input_token_details"] = InputTokenDetails(
            cache_read=usage.cache_read_tokens, cache_creation=usage.cache_write_tokens
        )
    return metadata


def token_usage(usage: Usage) -> dict[str, Any]:
    """`usage` in the OpenAI keys ChatOpenAI's `llm_output["token_usage"]` has, which `on_llm_end`
    handlers written for it read (cached input tokens only when there are any)."""
    counts: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        counts["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    return counts


def response_metadata(routed: RoutedResponse, tier: int | None) -> dict[str, Any]:
    """`response_metadata` naming the model that actually answered, and how gearshift got there.

    `tier` is the answering model's tier. `decided_model` and `reasons` are those of the decision
    behind the answer: after an escalation, the stronger model's (the first choice is the
    escalation's `from`); after a fallback the answering model differs from the decided one.
    `attempts` lists every provider call (the deployment called: `model_id` and `provider`; `probe`
    for a tripped deployment's one-token probe) with its tokens and cost; `cost_usd` is their sum.
    """
    response = routed.response
    metadata: dict[str, Any] = {
        "model_name": response.provider_model or response.model_id,
        "finish_reason": response.finish_reason,
        GEARSHIFT_KEY: {
            "model_id": response.model_id,
            "tier": tier,
            "decided_model": routed.decision.model,
            "decided_tier": routed.decision.tier,
            "reasons": list(routed.decision.reasons),
            "escalations": [escalation.to_dict() for escalation in routed.escalations],
            "attempts": [a.to_dict() for a in routed.attempts],
            "cost_usd": routed.cost_usd,
            "request_id": routed.request_id,
        },
    }
    response_id = response.metadata.get("response_id")
    if response_id:
        metadata["id"] = response_id
    return metadata


def _tool_calls(calls: tuple[GearshiftToolCall, ...]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for call in calls:
        # The agent answers a call by its id; a provider that sent none still needs one.
        call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
        try:
            args = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            invalid.append(
                InvalidToolCall(
                    name=call.name,
                    args=call.arguments,
                    id=call_id,
                    error=f"arguments are not valid JSON: {exc.msg}",
                    type="invalid_tool_call",
                )
            )
            continue
        if not isinstance(args, dict):
            invalid.append(
                InvalidToolCall(
                    name=call.name,
                    args=call.arguments,
                    id=call_id,
                    error=f"arguments must be a JSON object, got {type(args).__name__}",
                    type="invalid_tool_call",
                )
            )
            continue
        valid.append(ToolCall(name=call.name, args=args, id=call_id, type="tool_call"))
    return valid, invalid


def ai_message(routed: RoutedResponse, metadata: dict[str, Any]) -> AIMessage:
    """The `AIMessage` for one routed answer.

    Its usage counts every attempt the call took (a failed one, a weaker model that escalated):
    what the step was billed for, which is what token and cost trackers downstream add up.
    """
    response = routed.response
    valid, invalid = _tool_calls(response.message.tool_calls)
    return AIMessage(
        content=response.text,
        tool_calls=valid,
        invalid_tool_calls=invalid,
        usage_metadata=usage_metadata(routed.usage),
        response_metadata=metadata,
    )


def chat_result(routed: RoutedResponse, tier: int | None) -> ChatResult:
    """The `ChatResult` `_generate` returns for one routed answer."""
    metadata = response_metadata(routed, tier)
    message = ai_message(routed, metadata)
    llm_output = {
        "token_usage": token_usage(routed.usage),
        "model_name": metadata["model_name"],
        GEARSHIFT_KEY: metadata[GEARSHIFT_KEY],
    }
    return ChatResult(generations=[ChatGeneration(message=message)], llm_output=llm_output)


def combined_llm_output(outputs: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """The `llm_output` of a `generate` over several inputs: their token usage summed, as ChatOpenAI's,
    and the model's name when one model answered them all (each answer's message names its own).

    One call's output is kept whole, its routing record included.
    """
    present = [output for output in outputs if output]
    if len(present) == 1:
        return dict(present[0])
    combined: dict[str, Any] = {"token_usage": {}}
    for output in present:
        combined["token_usage"] = _summed(combined["token_usage"], output.get("token_usage") or {})
    names = {output.get("model_name") for output in present}
    if len(names) == 1:
        combined["model_name"] = names.pop()
    return combined


def _summed(counts: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    total = dict(counts)
    for key, value in more.items():
        total[key] = (
            _summed(total.get(key, {}), value) if isinstance(value, dict) else total.get(key, 0) + value
        )
    return total


def delta_chunk(delta: TextDelta | ToolCallDelta) -> ChatGenerationChunk:
    """One streamed piece of text or of a tool call."""
    if isinstance(delta, TextDelta):
        return ChatGenerationChunk(message=AIMessageChunk(content=delta.text))
    chunk = tool_call_chunk(name=delta.name, args=delta.arguments, id=delta.id, index=delta.index)
    return ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[chunk]))


def final_chunk(routed: RoutedResponse, tier: int | None, *, usage: bool = True) -> ChatGenerationChunk:
    """The last chunk of a stream: usage (unless `usage` is False) and metadata, once, and the
    end-of-stream marker."""
    metadata = response_metadata(routed, tier)
    message = AIMessageChunk(
        content="",
        usage_metadata=usage_metadata(routed.usage) if usage else None,
        response_metadata=metadata,
        chunk_position="last",
    )
    return ChatGenerationChunk(message=message)
