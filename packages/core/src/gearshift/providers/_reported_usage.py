"""The usage of an answer, as servers really report it: counts left out are estimated, never zero.

OpenAI always reports both counts. Compatible servers may leave the object out (older Ollama and
LM Studio streams), fill it with nulls or zeros, or give one count without the other (Ollama reports
no prompt tokens for a prompt it had cached); gateways that speak Anthropic's Messages API do the
same. A count read as 0 made the call free: no cost and no budget charge (its reservation released
as if no call had been made). So each count that is missing, or that the call contradicts (no request
has zero input tokens; an answer with output has output tokens), is estimated, and the usage says so.

The router holds every provider's answer to the same rule (`charged_answer`), the caller's own too: a
provider written to the public protocol may leave `usage`, or `cost_usd`, at its default, and such a
call must not be free either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .._messages import ChatRequest, ChatResponse, Message, Usage
from .._models import ModelSpec
from ..signals._tokens import estimate_request_tokens, estimate_tokens
from ._json_fields import field

__all__ = ["charged_answer", "counted_or_estimated", "reported_usage"]


def reported_usage(raw: Mapping[str, Any] | None, request: ChatRequest, output: str) -> tuple[Usage, bool]:
    """The usage in `raw` (a Chat Completions answer's `usage` object, if any), each count it leaves
    out estimated from `request` and `output` (everything the model wrote: text, tool calls,
    reasoning); and whether any was."""
    raw = raw or {}
    details = field(raw, "prompt_tokens_details", dict) or {}
    usage = Usage(
        input_tokens=field(raw, "prompt_tokens", int) or 0,
        cache_read_tokens=field(details, "cached_tokens", int) or 0,
    )
    output_tokens = field(raw, "completion_tokens", int)
    return counted_or_estimated(usage, output_tokens, estimate_request_tokens(request), output)


def counted_or_estimated(
    usage: Usage, output_tokens: int | None, input_tokens: int, output: str
) -> tuple[Usage, bool]:
    """`usage` (its `output_tokens` set from `output_tokens`, None when the server left it out) with
    the counts the call contradicts estimated: its input as `input_tokens` (gearshift's estimate of
    all the call is billed as input: the request, and what the provider's API adds to it), its
    output from `output`; and whether any was."""
    estimated = False
    if not usage.input_tokens:
        usage, estimated = replace(usage, input_tokens=input_tokens), True
    if output_tokens is None or (output_tokens == 0 and output):
        output_tokens, estimated = estimate_tokens(output), True
    return replace(usage, output_tokens=output_tokens), estimated


def charged_answer(
    response: ChatResponse, model: ModelSpec, input_tokens: int, streamed: str = ""
) -> ChatResponse:
    """`response`, an answer of `model`, as the budget must charge it whichever provider gave it: the
    counts its usage leaves out or contradicts estimated (and its metadata saying `usage_estimated`),
    its input as `input_tokens`, the estimate its reservation held and a failed or cancelled call is
    charged (the request as sent and what the provider's API adds); and priced at `model`'s prices
    when it states no cost (`cost_usd` left at 0) or less than those of estimated counts. `streamed`
    is the output the stream delivered, which a provider's final response may not hold."""
    written = _written(response.message)
    usage, estimated = counted_or_estimated(
        response.usage, response.usage.output_tokens, input_tokens, max(written, streamed, key=len)
    )
    priced = model.cost(usage)
    if not estimated and (response.cost_usd > 0 or priced == 0):
        return response
    cost = max(response.cost_usd, priced)
    metadata = {**response.metadata, "usage_estimated": True} if estimated else response.metadata
    return replace(response, usage=usage, cost_usd=cost, metadata=metadata)


def _written(message: Message) -> str:
    """What an answer's message holds that a provider bills as output: its text and tool calls."""
    return message.text + "".join(call.name + call.arguments for call in message.tool_calls)
